"""Whole drills on the docker backend through the CLI, at time scale 60: the same verdicts as on the
local backend (tests/e2e), and nothing of the run left in the engine afterwards."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.journal import read_journal
from tests.docker.conftest import run_leftovers
from tests.helpers import start_drill, wait_in_journal, without_database

pytestmark = [pytest.mark.docker, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]

# drill → (exit code, verdict) as on the local backend; drills written later join when they exist.
# The default drill (db crash) has its own, closer test below.
DRILLS = {
    "wrong-backup-ip.yaml": (1, "fail"),  # the backup interface's address is wrong: targets missed
    "egress-saturation.yaml": (0, "pass"),  # the bandwidth drill: primary egress line saturated
    "bandwidth-saturation.yaml": (0, "pass"),
    "data-deletion-restore.yaml": (0, "pass"),  # backups of a container, restored into a new one
}


def run_drill(drill: str, out: Path, base_image: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "run", f"drills/{drill}", "--backend", "docker",
                           "--base-image", base_image, "--out", str(out), "--time-scale", "60"],
                          cwd=ROOT, capture_output=True, text=True, timeout=420)


@pytest.mark.parametrize("drill", [d for d in DRILLS if (ROOT / "drills" / d).exists()])
def test_drill_on_docker_has_the_local_verdict(tmp_path, docker_engine, base_image, drill):
    out = tmp_path / "run"
    t0 = time.monotonic()
    p = run_drill(drill, out, base_image)
    wall = time.monotonic() - t0
    code, verdict = DRILLS[drill]
    assert p.returncode == code, p.stdout[-3000:] + p.stderr[-3000:]
    card = json.loads((out / "score.json").read_text())
    assert card["verdict"] == verdict
    journal = read_journal(out / "journal.jsonl")
    assert journal.first("run.started")["backend"] == "docker"
    up = journal.first("stack.up")
    print(f"{drill} on docker: exit {p.returncode}, verdict {verdict}, stack up in {up['seconds']}s, "
          f"whole run {wall:.1f}s")
    assert journal.first("run.finished")["status"] == "completed"
    assert not any(run_leftovers(docker_engine, out).values())
    for name in ("report.html", "junit.xml"):
        assert (out / name).stat().st_size > 0


def test_db_crash_drill_on_docker_measures_what_local_does(tmp_path, docker_engine, base_image):
    """The default drill, checked as closely as tests/e2e checks it on the local backend."""
    out = tmp_path / "run"
    p = run_drill("db-crash-failover.yaml", out, base_image)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    card = json.loads((out / "score.json").read_text())
    by_id = {t["id"]: t for t in card["targets"]}
    assert 0 < by_id["detect"]["actual"] <= 60
    assert by_id["detect"]["actual"] <= by_id["dr-takeover"]["actual"] <= 180
    assert by_id["detect"]["actual"] < by_id["core-recovered"]["actual"] <= 1800
    assert by_id["level"]["actual"] == 1
    journal = read_journal(out / "journal.jsonl")
    crash = journal.first("fault.injected")
    assert crash["detail"]["signal"] == "SIGKILL" and crash["detail"]["container"]
    # async replication with a lag loses the writes in flight, as on the local backend
    rpo = journal.first("rpo.measured")
    assert rpo["acked_writes"] > 100 and rpo["lost_writes"] > 0
    records = [r for f in (out / "records").glob("*.jsonl") for l in f.read_text().splitlines() if l
               if (r := json.loads(l)).get("journey") != "offline"]  # the hospital's own requests
    during = without_database(records, journal, crash["wall"])
    back = journal.first("recovery")["at_wall"]
    after = [r for r in records if r["t"] > back + 0.5]
    assert during and sum(not r["ok"] for r in during) / len(during) > 0.5
    assert after and sum(r["ok"] for r in after) / len(after) > 0.95
    assert (out / "logs" / "pg-primary.log").exists()
    # offline reception is its own container; what patients recorded there is back-entered once
    up = journal.first("stack.up")
    assert "offline-reception" in up["services"] and "offline" in up["links"]
    assert (out / "logs" / "offline-reception.log").exists()  # its own container's log, kept
    held = {r["offline_id"] for f in (out / "records").glob("*.jsonl") for l in f.read_text().splitlines()
            if l and (r := json.loads(l)).get("journey") == "offline" and r.get("offline_id") and r.get("ok")}
    first, second = journal.of_type("offline.back_entered")
    assert held and first["lost"] == 0 and first["entered"] + first["conflicts"] == first["read"]
    assert second["duplicates_refused"] == first["read"] and second["rows"] == second["in_main_db"]
    offline = card["offline"]
    assert offline["taken"] == len(held) and (offline["lost"], offline["duplicates"]) == (0, 0)
    assert offline["back_entered"] >= len(held) - offline["taken_after"]
    assert by_id["back-entry"]["status"] == "met"
    assert not any(run_leftovers(docker_engine, out).values())


def test_interrupted_docker_drill_removes_everything(tmp_path, docker_engine, base_image):
    out = tmp_path / "run"
    proc = start_drill("drills/db-crash-failover.yaml", "--backend", "docker", "--base-image", base_image,
                       "--out", str(out), "--quiet")
    wait_in_journal(proc, out, "fault.injected", "the fault was never injected")
    journal = out / "journal.jsonl"
    assert run_leftovers(docker_engine, out)["containers"]
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=90)
    assert proc.returncode == 3, output
    finished = read_journal(journal).first("run.finished")
    assert finished["status"] == "aborted" and "interrupted" in finished["reason"]
    assert not any(run_leftovers(docker_engine, out).values())


def test_scripted_failover_on_docker_passes(tmp_path, docker_engine, base_image):
    """The hospital's own failover script (runbooks/db-crash-failover.sh) against the containers:
    psql reaches the standby at its container's address, ctl moves the same stack, and the drill
    passes as on the local backend."""
    out = tmp_path / "run"
    p = run_drill("db-crash-failover-scripted.yaml", out, base_image)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    card = json.loads((out / "score.json").read_text())
    assert card["verdict"] == "pass"
    got = {t["id"]: t["actual"] for t in card["targets"]}
    assert 0 < got["detect"] <= got["dr-takeover"] <= 180 and got["core-recovered"] <= 1800
    print(f"\nscripted failover on docker: {got}")
    journal = read_journal(out / "journal.jsonl")
    assert journal.first("run.started")["backend"] == "docker"
    step = next(e for e in journal.of_type("step.finished") if e["step"] == "promote-same-city")
    assert step["ok"] and step["detail"]["reported"]["promoted"] == "pg-samecity"
    assert "hd: db_link=pg-samecity" in (out / step["detail"]["output"] / "stdout.log").read_text()
    assert [m["verb"] for m in journal.of_type("control.move") if m["ok"]] == \
        ["notice", "notify", "notify", "promote", "repoint"]
    rpo = journal.first("rpo.measured")
    assert rpo["measured_on"] == "pg-samecity" and rpo["lost_writes"] > 0
    assert not (out / "control.json").exists()
    assert not any(run_leftovers(docker_engine, out).values())
