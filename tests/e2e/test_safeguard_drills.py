"""Stop conditions end to end through the command line: a safeguard halts a drill (exit 3, every
fault reverted, nothing left running), `hospital-drill stop` halts one from another process, and a
failed critical step ends the incident instead of running on to max_duration."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.journal import read_journal
from harness.monitor.monitor import SAMPLE_EVERY
from tests.helpers import assert_nothing_left, start_drill, wait_in_journal

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def finished(out: Path):
    journal = read_journal(out / "journal.jsonl")
    up = journal.first("stack.up")
    assert up is not None
    assert_nothing_left(out, [*up["services"].values(), *up["links"].values()])
    return journal, json.loads((out / "score.json").read_text()), (out / "junit.xml").read_text()


def test_a_safeguard_halts_the_drill_within_one_look_at_the_board(tmp_path):
    drill = tmp_path / "guarded.yaml"
    drill.write_text(f"""extends: {ROOT / 'drills' / 'db-crash-failover.yaml'}
name: guarded-db-crash
scenario: {ROOT / 'scenarios' / 'db-crash.yaml'}
safeguards:
  error_rate: {{above: 0.3, for: 10s}}
""", encoding="utf-8")
    out = tmp_path / "run"
    p = cli("run", str(drill), "--out", str(out), "--quiet")
    assert p.returncode == 3, p.stdout[-3000:] + p.stderr[-3000:]
    assert "run aborted: halted by safeguard error_rate: patients' error rate" in p.stdout

    journal, card, junit = finished(out)
    halted = journal.first("run.halted")
    assert halted["safeguard"] == "error_rate" and halted["phase"] in ("incident", "recovered")
    ev = halted["evidence"]
    assert ev["error_rate"] > 0.3 and ev["requests"] >= 10
    # it halted at the first look at which the rate had held for 10 s, not later
    assert 10 <= ev["at_drill"] - ev["since_drill"] < 10 + SAMPLE_EVERY
    # the fault was reverted at once, before the teardown began
    reverted = journal.first("fault.reverted", fault="primary-db-crash")
    assert reverted is not None and reverted["seq"] > halted["seq"]
    teardown = [e["seq"] for e in journal.events if e["type"] in ("step.skipped", "rpo.measured")]
    assert all(reverted["seq"] < s for s in teardown)
    fin = journal.first("run.finished")
    assert fin["status"] == "aborted" and fin["reason"].startswith("halted by safeguard error_rate")
    assert card["verdict"] == "aborted"
    assert 'errors="1"' in junit and "halted by safeguard error_rate" in junit


def test_stop_from_another_process_halts_a_running_drill(tmp_path):
    out = tmp_path / "run"
    proc = start_drill(str(ROOT / "drills" / "db-crash-failover.yaml"), "--out", str(out), "--quiet")
    try:
        wait_in_journal(proc, out, '"fault.injected"', "the fault never went in")
        t0 = time.monotonic()
        stop = cli("stop", str(out), "--reason", "a real outage", "--by", "duty-officer", timeout=180)
        took = time.monotonic() - t0
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert proc.wait(timeout=120) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
    journal, card, junit = finished(out)
    halted = journal.first("run.halted")
    assert halted["safeguard"] == "stop"
    assert halted["evidence"]["by"] == "duty-officer" and halted["evidence"]["reason"] == "a real outage"
    fin = journal.first("run.finished")
    assert fin["reason"] == "halted by emergency stop: hospital-drill stop by duty-officer: a real outage"
    assert "halted: halted by emergency stop" in stop.stdout
    assert not (out / "run.pid").exists()
    assert cli("stop", str(out)).returncode == 2  # nothing left to stop
    print(f"stop → run ended and cleaned up in {took:.1f}s")


def test_the_wrong_backup_ip_drill_ends_soon_after_its_failed_switch(tmp_path):
    out = tmp_path / "run"
    t0 = time.monotonic()
    p = cli("run", str(ROOT / "drills" / "wrong-backup-ip.yaml"), "--out", str(out), "--quiet")
    took = time.monotonic() - t0
    assert p.returncode == 1, p.stdout[-3000:] + p.stderr[-3000:]
    journal, card, _ = finished(out)
    failed = journal.first("step.finished", step="switch-insurance")
    assert failed is not None and not failed["ok"]
    ended = journal.first("incident.ended")
    assert ended["step"] == "switch-insurance" and ended["error"] == failed["detail"]["error"]
    assert journal.first("run.horizon") is None
    fin = journal.first("run.finished")
    assert fin["status"] == "completed"
    # the incident is over once the switch failed: the run ends within the declared observe (2m at
    # x60: 2 s) plus the teardown, not 36 drill minutes later at max_duration (36 s at x60)
    assert fin["wall"] - failed["wall"] < 15, fin["wall"] - failed["wall"]
    assert {t["id"]: t["status"] for t in card["targets"]}["insurance-switched"] == "missed"
    print(f"wrong-backup-ip: {took:.1f}s wall, {fin['wall'] - failed['wall']:.1f}s after the failed switch")
