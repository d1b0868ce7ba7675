"""The db-crash drill end to end through the CLI, at time scale 60."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.journal import read_journal
from tests.helpers import assert_nothing_left, start_drill, wait_in_journal, without_database

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def addresses(run_dir: Path) -> list[str]:
    up = read_journal(run_dir / "journal.jsonl").first("stack.up") or {}
    return [*up.get("services", {}).values(), *up.get("links", {}).values()]


def test_default_drill_meets_its_targets_and_reports(tmp_path):
    out = tmp_path / "run"
    p = run_cli("run", "drills/db-crash-failover.yaml", "--out", str(out))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "report:" in p.stdout and "T+" in p.stdout  # progress and the report's path
    for name in ("journal.jsonl", "score.json", "report.html", "report.md", "junit.xml"):
        assert (out / name).stat().st_size > 0, name
    assert list((out / "records").glob("*.jsonl"))

    card = json.loads((out / "score.json").read_text())
    assert card["verdict"] == "pass"
    by_id = {t["id"]: t for t in card["targets"]}
    # every target measured, within its bound, and not trivially zero
    assert 0 < by_id["detect"]["actual"] <= 60
    assert 0 < by_id["dr-takeover"]["actual"] <= 180
    assert by_id["dr-takeover"]["actual"] >= by_id["detect"]["actual"]
    assert by_id["detect"]["actual"] < by_id["core-recovered"]["actual"] <= 1800
    assert by_id["level"]["actual"] == 1

    journal = read_journal(out / "journal.jsonl")
    types = [e["type"] for e in journal.events]
    for t in ("stack.up", "steady_state", "fault.injected", "alert.raised", "check.finished",
              "level.declared", "step.finished", "notification.sent", "recovery", "rpo.measured",
              "fault.reverted", "run.finished"):
        assert t in types, t
    # async replication with a 30 s lag loses the writes in flight: counted, not assumed
    rpo = journal.first("rpo.measured")
    assert rpo["acked_writes"] > 100
    assert rpo["lost_writes"] > 0 and 0 < rpo["lost_seconds"] <= 3600
    assert journal.first("level.declared")["share"] > 0.5
    # the crash changed what patients got, and they came back
    records = [r for r in (json.loads(l) for f in (out / "records").glob("*.jsonl")
                           for l in f.read_text().splitlines() if l)
               if r.get("journey") != "offline"]  # offline reception is not the hospital serving
    during = without_database(records, journal, journal.first("fault.injected")["wall"])
    back = journal.first("recovery")["at_wall"]
    after = [r for r in records if r["t"] > back + 0.5]
    assert during and sum(not r["ok"] for r in during) / len(during) > 0.5
    assert after and sum(r["ok"] for r in after) / len(after) > 0.95

    junit = (out / "junit.xml").read_text()
    assert junit.count("<testcase") == len(card["targets"]) and "<failure" not in junit
    assert_nothing_left(out, addresses(out))


def test_offline_records_are_back_entered_once_and_none_lost(drill_copy, tmp_path):
    # offline reception itself dies in the middle of the outage and comes back 15 s later
    scenario = drill_copy.parent.parent / "scenarios" / "db-crash.yaml"
    scenario.write_text(scenario.read_text(encoding="utf-8").replace(
        "    target: pg-primary\n", "    target: pg-primary\n"
        "  - {id: offline-desk-killed, at: 4m30s, type: service_kill, target: offline-reception,"
        " duration: 15s}\n"), encoding="utf-8")
    out = tmp_path / "run"
    p = run_cli("run", str(drill_copy), "--out", str(out), "--quiet")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    journal = read_journal(out / "journal.jsonl")
    kill = journal.first("fault.injected", fault="offline-desk-killed")
    assert kill and kill["detail"]["signal"] == "SIGKILL"
    assert journal.first("fault.reverted", fault="offline-desk-killed")
    first, second = journal.of_type("offline.back_entered")
    assert journal.first("recovery")["wall"] < first["wall"]
    # the first pass enters every offline record there is, a few held as conflicts, none lost
    assert first["read"] > 0 and first["duplicates_refused"] == 0
    assert first["entered"] + first["conflicts"] == first["read"] == first["in_main_db"]
    assert first["lost"] == 0
    # the second pass refuses all of those as duplicates and enters only what came in since
    assert second["duplicates_refused"] == first["read"]
    assert second["entered"] + second["conflicts"] == second["read"] - first["read"]
    assert second["lost"] == 0 and second["in_main_db"] == second["read"]
    # against the patients' own receipts: N taken, N back-entered, 0 lost
    offline = json.loads((out / "score.json").read_text())["offline"]
    n = offline["taken"] - offline["taken_after"]
    assert n > 0 and offline["back_entered"] == n == second["in_main_db"]
    assert offline["lost"] == 0 and offline["back_entry_runs"] == 2
    assert offline["choices"]["offline"] > 0 and offline["choices"]["retry"] + offline["choices"]["give_up"] > 0
    assert "线下接诊与补录" in (out / "report.md").read_text()
    assert_nothing_left(out, addresses(out))


def test_sync_replication_loses_nothing(tmp_path):
    out = tmp_path / "run"
    p = run_cli("run", "drills/db-crash-failover-sync.yaml", "--out", str(out), "--quiet")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    rpo = read_journal(out / "journal.jsonl").first("rpo.measured")
    assert rpo["mode"] == "sync" and rpo["acked_writes"] > 100 and rpo["lost_writes"] == 0
    assert_nothing_left(out, addresses(out))


def test_missed_target_exits_1_and_junit_says_which(tmp_path, drill_copy):
    drill = yaml.safe_load(drill_copy.read_text(encoding="utf-8"))
    drill["targets"].append({"id": "dr-takeover", "within": "1s"})  # the plan class's 3m, tightened
    drill_copy.write_text(yaml.safe_dump(drill, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "run"
    p = run_cli("run", str(drill_copy), "--out", str(out), "--quiet")
    assert p.returncode == 1, p.stdout[-2000:] + p.stderr[-2000:]
    assert "MISSED dr-takeover" in p.stdout
    junit = (out / "junit.xml").read_text()
    assert junit.count("<failure") == 1 and "dr-takeover" in junit
    assert_nothing_left(out, addresses(out))


def test_failing_runbook_step_still_cleans_up(tmp_path, drill_copy):
    # the runbook promotes the remote standby, which this stack does not run: the step fails at
    # run time, the takeover target is missed, and everything is still torn down
    drill = yaml.safe_load(drill_copy.read_text(encoding="utf-8"))
    drill["stack"]["remote_dr"] = False
    promote = next(s for s in drill["runbook"] if s["id"] == "promote-same-city")
    promote["with"] = {"standby": "pg-remote"}  # over the plan class's pg-samecity
    drill_copy.write_text(yaml.safe_dump(drill, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "run"
    p = run_cli("run", str(drill_copy), "--out", str(out), "--quiet", "--time-scale", "120")
    assert p.returncode == 1, p.stdout[-2000:] + p.stderr[-2000:]
    failed = [e for e in read_journal(out / "journal.jsonl").of_type("step.finished") if not e["ok"]]
    assert failed and failed[0]["step"] == "promote-same-city" and "pg-remote" in failed[0]["detail"]["error"]
    assert_nothing_left(out, addresses(out))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_mid_drill_leaves_nothing_behind(tmp_path, sig):
    out = tmp_path / "run"
    proc = start_drill("drills/db-crash-failover.yaml", "--out", str(out), "--quiet")
    wait_in_journal(proc, out, "fault.injected", "the fault was never injected")
    journal = out / "journal.jsonl"
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3, output
    events = read_journal(journal)
    finished = events.first("run.finished")
    assert finished["status"] == "aborted" and "interrupted" in finished["reason"]
    assert events.first("fault.reverted") is not None
    assert json.loads((out / "score.json").read_text())["verdict"] == "aborted"
    assert_nothing_left(out, addresses(out))
