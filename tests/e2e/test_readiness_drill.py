"""A drill's readiness phase end to end: the wrong-backup-ip drill with the audit's live checks as
its first phase finds the typo'd insurance backup address refusing on its own stack before the
insurer's primary goes down, reports it as the top finding and measures the drill as before; with
`stop_on_critical` the run ends there, aborted (exit 3), with nothing left running."""
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
DRILL = ROOT / "tests" / "e2e" / "drills" / "wrong-backup-ip-readiness.yaml"
TYPO = "127.0.0.9:18090"  # as in drills/wrong-backup-ip.yaml
FOUND = f"found before the drill: insurance backup interface {TYPO} refused connection"


def run(drill: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "run", str(drill), "--out", str(out),
                           "--lang", "en"], cwd=ROOT, capture_output=True, text=True, timeout=600)


def finished(out: Path):
    journal = read_journal(out / "journal.jsonl")
    up = journal.first("stack.up")
    assert up is not None
    assert_nothing_left(out, [*up["services"].values(), *up["links"].values()])
    return journal, json.loads((out / "score.json").read_text(encoding="utf-8"))


def seq(journal, type_: str, **match) -> int:
    event = journal.first(type_, **match)
    assert event is not None, (type_, match)
    return event["seq"]


def test_the_phase_finds_the_refused_address_before_the_fault(tmp_path):
    out = tmp_path / "run"
    p = run(DRILL, out)
    assert p.returncode == 1, p.stdout[-3000:] + p.stderr[-3000:]
    assert FOUND in p.stdout  # on the console, as the phase ends
    journal, card = finished(out)

    # journal order: bring-up, the checks, then warm-up and the fault
    checked = journal.first("audit.check", name="interfaces")
    assert checked["status"] == "fail"
    [found] = checked["findings"]
    assert found["severity"] == "critical" and found["evidence"]["address"] == TYPO
    assert found["evidence"]["what"] == "refused connection"
    # it points at the line of the drill file that holds the typo
    path, line = found["where"].rsplit(":", 1)
    assert TYPO in (ROOT / path).read_text(encoding="utf-8").splitlines()[int(line) - 1]
    assert (seq(journal, "stack.up") < seq(journal, "audit.started") < checked["seq"]
            < seq(journal, "audit.finished") < seq(journal, "load.started")
            < seq(journal, "fault.injected"))
    assert journal.first("audit.check", name="backups")["status"] == "skipped"
    fin = journal.first("audit.finished")
    assert fin["verdict"] == "not_ready" and fin["stops_drill"] is False
    print(f"readiness phase: {fin['seconds']:.2f}s wall "
          f"(interfaces {checked['seconds']:.2f}s, "
          f"standbys {journal.first('audit.check', name='standbys')['seconds']:.2f}s)")
    assert fin["seconds"] < 5

    # every route it switched was put back: the routes the checks verified were switched back,
    # and the runbook's own switch later found the routes at primary again
    before_fault = [e for e in journal.of_type("route.verified") if e["seq"] < seq(journal, "fault.injected")]
    assert {r for e in before_fault for r in e["routes"]} == {"insurance", "payment", "notification", "egress"}
    drill_switch = next(e for e in journal.of_type("route.verified") if e["seq"] > seq(journal, "fault.injected"))
    assert drill_switch["rolled_back"]["routes"] == {"insurance": "primary"}

    # the card: the top finding, the section, and the drill measured as without the phase
    top = card["findings"][0]
    assert top["kind"] == "readiness" and top["severity"] == "critical" and top["id"] == "F1"
    assert top["text"].startswith(FOUND), top["text"]
    assert card["readiness"]["verdict"] == "not_ready" and not card["readiness"]["stopped_drill"]
    assert {t["id"]: t["status"] for t in card["targets"]} == {
        "detect": "met", "insurance-switched": "missed", "payments-recovered": "missed", "level": "met"}
    assert card["verdict"] == "fail"
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "Readiness before the drill" in report and "NOT READY" in report and TYPO in report
    assert "Readiness before the drill" in (out / "report.md").read_text(encoding="utf-8")


def test_a_critical_finding_stops_the_drill_before_any_fault(tmp_path):
    drill = tmp_path / "stopping.yaml"
    drill.write_text(f"extends: {DRILL}\nname: wrong-backup-ip-readiness-stop\n"
                     f"scenario: {ROOT / 'scenarios' / 'insurance-primary-down.yaml'}\n"
                     "readiness: {before: true, stop_on_critical: true}\n", encoding="utf-8")
    out = tmp_path / "run"
    p = run(drill, out)
    assert p.returncode == 3, p.stdout[-3000:] + p.stderr[-3000:]
    assert f"run aborted: stopped before any fault: {FOUND}" in p.stdout
    journal, card = finished(out)
    assert journal.first("audit.finished")["stops_drill"] is True
    # nothing was broken, no patient came in
    assert not journal.of_type("fault.injected") and not journal.of_type("load.started")
    fin = journal.first("run.finished")
    assert fin["status"] == "aborted" and FOUND in fin["reason"]
    assert card["verdict"] == "aborted" and card["exit_code"] == 3
    assert card["readiness"]["stopped_drill"] is True
    top = card["findings"][0]
    assert top["kind"] == "readiness" and "the drill stopped here" in top["evidence"]
    assert (out / "report.html").is_file() and (out / "junit.xml").is_file()
