"""The hospital's own failover scripts under test (runbooks/), end to end through the CLI at ×60: the
shell script passes from a folder `hospital-drill init` made, its broken copy fails quoting its own
stderr, and the plain-Python one passes with a promotion the drill only sees in the database."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.journal import read_journal
from tests.helpers import assert_nothing_left

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
TAKEOVER = "promote-same-city"  # the exec step, the one the dr-takeover target measures


def cli(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def run(drill: str, out: Path, cwd: Path = ROOT):
    p = cli("run", drill, "--out", str(out), "--quiet", cwd=cwd)
    assert (out / "score.json").exists(), p.stdout[-3000:] + p.stderr[-3000:]
    return p, json.loads((out / "score.json").read_text()), read_journal(out / "journal.jsonl")


def figures(card: dict) -> dict[str, float]:
    return {t["id"]: t["actual"] for t in card["targets"]}


def addresses(journal) -> list[str]:
    up = journal.first("stack.up") or {}
    return [*up.get("services", {}).values(), *up.get("links", {}).values()]


def takeover_finished(journal) -> dict:
    return next(e for e in journal.of_type("step.finished") if e["step"] == TAKEOVER)


def assert_nothing_of_the_run_left(out: Path, journal) -> None:
    assert not (out / "control.json").exists()  # the control surface closed with the run
    assert_nothing_left(out, addresses(journal))


def test_the_shell_script_takes_over_from_an_init_folder(tmp_path):
    project = tmp_path / "hospital"
    made = cli("init", str(project), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    drill = project / "drills" / "db-crash-failover-scripted.yaml"
    assert f"hospital-drill run {drill}" in made.stdout

    out = tmp_path / "run"
    p, card, journal = run(str(drill), out, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert card["verdict"] == "pass"
    got = figures(card)
    assert 0 < got["detect"] <= got["dr-takeover"] <= 180 and got["core-recovered"] <= 1800
    print(f"\nscripted (shell) figures: {got}")

    # the step ran the copy in the project folder, and its own output is kept in the run
    step = takeover_finished(journal)
    assert step["ok"] and step["kind"] == "exec"
    assert step["detail"]["argv"][0] == str((project / "runbooks" / "db-crash-failover.sh").resolve())
    stdout = (out / step["detail"]["output"] / "stdout.log").read_text()
    assert "hd: promoted=pg-samecity" in stdout and "hd: db_link=pg-samecity" in stdout
    assert step["detail"]["reported"]["promoted"] == "pg-samecity"
    # each of its moves went through ctl on the step's own lane
    moves = [(m["verb"], m["ok"], m["context"]) for m in journal.of_type("control.move")]
    assert [v for v, *_ in moves] == ["notice", "notify", "notify", "promote", "repoint"]
    assert all(ok and ctx == "step" for _, ok, ctx in moves)
    channels = {e["channel"] for e in journal.of_type("notification.sent")}
    assert {"app_banner", "hotline", "broadcast"} <= channels
    # the script's promotion is what the RPO measurement counted on: writes lost with the async lag
    rpo = journal.first("rpo.measured")
    assert rpo["measured_on"] == "pg-samecity" and rpo["trigger"] == "db_crash"
    assert rpo["acked_writes"] > 100 and rpo["lost_writes"] > 0
    assert_nothing_of_the_run_left(out, journal)


def test_the_broken_copy_fails_with_its_own_stderr_in_the_finding(tmp_path):
    out = tmp_path / "run"
    p, card, journal = run("drills/db-crash-failover-scripted-broken.yaml", out)
    assert p.returncode == 1, p.stdout[-3000:] + p.stderr[-3000:]
    assert card["verdict"] == "fail"
    said = "failover: pg-sametown: no such standby in this stack (standbys: pg-samecity pg-remote)"
    step = takeover_finished(journal)
    assert not step["ok"] and step["detail"]["exit"] == 3
    assert (out / "steps" / TAKEOVER / "stderr.log").read_text().strip() == said
    finding = next(f for f in card["findings"] if f["kind"] == "step" and f["step"] == TAKEOVER)
    assert said in finding["evidence"] and "steps/promote-same-city/stderr.log" in finding["evidence"]
    assert said in (out / "report.html").read_text() and said in (out / "report.md").read_text()
    missed = {t["id"] for t in card["targets"] if t["status"] != "met"}
    assert {"dr-takeover", "core-recovered"} <= missed
    # it stopped before moving anything: no move asked, nothing promoted
    assert not journal.of_type("control.move")
    assert journal.first("rpo.measured")["measured_on"] == "pg-primary"
    assert_nothing_of_the_run_left(out, journal)


def test_the_python_failover_is_seen_in_the_database(tmp_path):
    out = tmp_path / "run"
    p, card, journal = run("drills/db-crash-failover-python.yaml", out)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert card["verdict"] == "pass"
    got = figures(card)
    assert 0 < got["detect"] <= got["dr-takeover"] <= 180
    print(f"\nscripted (python) figures: {got}")
    # no ctl: the drill found the promotion by asking the databases once the program ended
    assert not journal.of_type("control.move")
    step = takeover_finished(journal)
    assert step["ok"] and step["detail"]["promoted_outside_ctl"] == ["pg-samecity"]
    assert step["detail"]["reported"]["followers"] == "pg-remote"
    rpo = journal.first("rpo.measured")
    assert rpo["measured_on"] == "pg-samecity" and rpo["lost_writes"] > 0
    assert not journal.of_type("db.split_brain")
    assert_nothing_of_the_run_left(out, journal)
