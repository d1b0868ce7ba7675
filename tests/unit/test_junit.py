"""junit.xml for CI: a run that did not complete is an error, and each case's time is its figure."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from harness.journal import JournalRead
from harness.models import Drill
from harness.report.render import junit_xml
from harness.score.scorecard import build_scorecard

DRILL = {
    "name": "db-crash-failover", "scenario": "scenario.yaml",
    "teams": {"technical": {"core": [{"name": "王工"}]}},
    "runbook": [{"id": "promote-same-city", "group": "technical", "when": {"alert": "any"},
                 "action": "promote_same_city"}],
    "targets": [
        {"id": "detect", "measure": "detection", "within": "1m"},
        {"id": "dr-takeover", "measure": "step", "step": "promote-same-city", "within": "3m"},
        {"id": "level", "measure": "level"},
    ],
}


def _card(finished: dict | None):
    """At x60: alert 12 s (drill) after the fault, takeover 250 s, level 1 declared at 300 s."""
    e = [{"seq": 1, "wall": 100.0, "drill": None, "type": "run.started", "run_id": "r1",
          "drill_name": "db-crash-failover", "scenario": "db-crash", "time_scale": 60},
         {"seq": 2, "wall": 101.0, "drill": 0.0, "type": "scenario.started"},
         {"seq": 3, "wall": 104.0, "drill": 180.0, "type": "fault.injected", "fault": "db",
          "fault_type": "db_crash"},
         {"seq": 4, "wall": 104.2, "drill": 192.0, "type": "alert.raised", "alert": "db-down",
          "severity": "critical"},
         {"seq": 5, "wall": 104.3, "drill": 198.0, "type": "step.started", "step": "promote-same-city",
          "group": "technical", "kind": "auto", "action": "promote_same_city"},
         {"seq": 6, "wall": 104.0 + 250 / 60, "drill": 430.0, "type": "step.finished",
          "step": "promote-same-city", "group": "technical", "kind": "auto", "ok": True},
         {"seq": 7, "wall": 109.0, "drill": 480.0, "type": "level.declared", "level": 1, "affected": 6,
          "active": 10, "share": 0.6}]
    if finished is not None:
        e.append({"seq": 8, "wall": 111.0, "drill": 600.0, "type": "run.finished", **finished})
    recs = [{"t": 105.0, "ms": 3000.0, "patient": f"P{i}", "journey": "payment", "ok": i >= 6}
            for i in range(10)]
    return build_scorecard(Drill.model_validate(DRILL), JournalRead(events=e), recs)


def _suite(card) -> tuple[ET.Element, dict[str, ET.Element]]:
    root = junit_xml(card).getroot()
    return root, {tc.get("name"): tc for tc in root.iter("testcase")}


def test_case_time_is_the_measured_figure():
    card = _card({"status": "completed"})
    root, cases = _suite(card)
    figures = {r.id: r.actual for r in card.targets}
    assert float(cases["detect"].get("time")) == pytest.approx(figures["detect"], abs=1e-3)
    assert float(cases["dr-takeover"].get("time")) == pytest.approx(figures["dr-takeover"], abs=1e-3)
    assert float(cases["dr-takeover"].get("time")) > 200  # drill seconds, not the 0 CI used to see
    assert float(cases["level"].get("time")) == pytest.approx(card.level.declared_at, abs=1e-3)
    assert root.get("errors") == "0" and "run" not in cases


def test_an_aborted_run_is_an_error_with_its_reason():
    root, cases = _suite(_card({"status": "aborted", "reason": "HarnessError: stack would not start"}))
    assert root.get("errors") == "1"
    assert int(root.get("tests")) == len(DRILL["targets"]) + 1
    error = cases["run"].find("error")
    assert error is not None and error.get("type") == "aborted"
    assert "stack would not start" in error.get("message")


def test_a_run_without_an_end_is_an_error_too():
    root, cases = _suite(_card(None))
    assert root.get("errors") == "1"
    assert "did not end cleanly" in cases["run"].find("error").get("message")
    assert len(root.findall("testcase/error")) == int(root.get("errors"))


def _counts_match_cases(root: ET.Element) -> None:
    """The suite's counts are those of its cases: what a CI's test-report reader adds up."""
    cases = root.findall("testcase")
    assert int(root.get("tests")) == len(cases)
    for tag, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        assert int(root.get(attr)) == sum(1 for c in cases if c.find(tag) is not None), attr


def test_a_halted_run_is_an_error_and_its_cases_keep_their_times():
    halted = {"status": "aborted",
              "reason": "halted by safeguard error_rate: 62% of patients failing > 50% for 2m"}
    card = _card(halted)
    root, cases = _suite(card)
    error = cases["run"].find("error")
    assert error is not None and error.get("message") == halted["reason"]
    assert root.find("system-err").text == f"run aborted: {halted['reason']}"
    assert card.verdict == "aborted"
    # the error case took the run's wall time: run.started at 100, run.finished at 111
    assert float(cases["run"].get("time")) == pytest.approx(11.0) == float(root.get("time"))
    assert float(cases["detect"].get("time")) == pytest.approx(12.0, abs=1e-3)  # the figure still
    _counts_match_cases(root)


def test_an_unmeasured_target_takes_the_run_wall_time_and_counts_as_a_failure(monkeypatch):
    monkeypatch.setitem(DRILL, "targets", DRILL["targets"] + [
        {"id": "core-back", "measure": "recovery", "within": "30m"}])
    card = _card({"status": "completed"})
    root, cases = _suite(card)
    core = next(r for r in card.targets if r.id == "core-back")
    assert core.actual is None and core.status == "missed"  # no recovery in this journal
    assert cases["core-back"].find("failure").get("type") == "unmeasured"
    assert float(cases["core-back"].get("time")) == pytest.approx(11.0)
    failed = {name for name, c in cases.items() if c.find("failure") is not None}
    assert failed == {r.id for r in card.targets if r.status == "missed"} and "core-back" in failed
    assert root.get("errors") == "0"
    _counts_match_cases(root)
    _counts_match_cases(_suite(_card(None))[0])
