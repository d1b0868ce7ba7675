"""After-action report: files written, user text escaped, junit one case per target."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import yaml

from harness.journal import JournalRead
from harness.models import Drill
from harness.report.render import summary_line, write_reports
from harness.score.scorecard import ScoreCard, build_scorecard, score_run

EVIL = "<script>alert('x')</script>"
DRILL = {
    "name": "db-crash-failover", "title": f"数据库宕机 {EVIL}", "scenario": "scenario.yaml",
    "teams": {"technical": {"core": [{"name": f"王工 {EVIL}"}], "backup": [{"name": "李工"}]}},
    "runbook": [{"id": "promote-same-city", "group": "technical", "when": {"alert": "any"},
                 "action": "promote_same_city"}],
    "targets": [
        {"id": "detect", "title": "识别 | identify", "measure": "detection", "within": "1m"},
        {"id": "dr-takeover", "measure": "step", "step": "promote-same-city", "within": "3m"},
        {"id": "core-back", "measure": "recovery", "within": "30m", "critical": False},
        {"id": "level", "measure": "level"},
    ],
}


def card() -> ScoreCard:
    """At ×60: alert 0.2 s after the fault (12 s drill), takeover done 250/60 s after it (4m10s drill),
    level 1 declared with 6 of 10 patients failing, no recovery."""
    e = [{"seq": 1, "wall": 100.0, "drill": None, "type": "run.started", "run_id": "r1",
          "drill": "db-crash-failover", "scenario": "db-crash", "time_scale": 60, "backend": "local"},
         {"seq": 2, "wall": 101.0, "drill": 0.0, "type": "scenario.started"},
         {"seq": 3, "wall": 103.0, "drill": 120.0, "type": "steady_state", "ok": True, "error_rate": 0.0},
         {"seq": 4, "wall": 104.0, "drill": 180.0, "type": "fault.injected", "fault": "db", "fault_type": "db_crash"},
         {"seq": 5, "wall": 104.2, "drill": 192.0, "type": "alert.raised", "alert": EVIL, "severity": "critical"},
         {"seq": 6, "wall": 104.3, "drill": 198.0, "type": "step.started", "step": "promote-same-city",
          "group": "technical", "kind": "auto", "action": "promote_same_city"},
         {"seq": 7, "wall": 104.0 + 250 / 60, "drill": 430.0, "type": "step.finished",
          "step": "promote-same-city", "group": "technical", "kind": "auto", "ok": True, "detail": {"a": "|b|"}},
         {"seq": 8, "wall": 109.0, "drill": 480.0, "type": "level.declared", "level": 1, "affected": 6,
          "active": 10, "share": 0.6},
         {"seq": 9, "wall": 110.0, "drill": 540.0, "type": "notification.sent", "channel": "app_banner",
          "audience": "patients", "text": EVIL},
         {"seq": 10, "wall": 111.0, "drill": 600.0, "type": "run.finished", "status": "completed"}]
    recs = [{"t": 102.0 + i / 100, "ms": 5.0, "patient": f"P{i}", "journey": "followup", "ok": True}
            for i in range(10)]
    recs += [{"t": 105.0, "ms": 3000.0, "patient": f"P{i}", "journey": "payment", "ok": i >= 6}
             for i in range(10)]
    return build_scorecard(Drill.model_validate(DRILL), JournalRead(events=e), recs)


def test_card_numbers():
    c = card()
    got = {r.id: (r.actual, r.met) for r in c.targets}
    assert got["detect"] == (pytest.approx(12.0), True)
    assert got["dr-takeover"] == (pytest.approx(250.0), False)
    assert got["core-back"] == (None, False)
    assert got["level"] == (1, True)
    assert c.verdict == "fail" and c.exit_code == 1


def test_summary_line():
    c = card()
    line = summary_line(c)
    assert line.startswith(f"db-crash-failover: FAIL {c.score}/100 — ")
    assert "detect 12s/1m ✓" in line and "dr-takeover 4m10s/3m ✗" in line
    assert "core-back —/30m ✗" in line and "level L1/L1 ✓" in line


def test_write_reports(tmp_path):
    c = card()
    out = write_reports(tmp_path, c)
    assert set(out) == {"json", "html", "md", "junit"} and all(p.exists() for p in out.values())
    assert ScoreCard.model_validate_json(out["json"].read_text()) == c
    assert json.loads(out["json"].read_text())["verdict"] == "fail"

    html = out["html"].read_text(encoding="utf-8")
    assert "<script" not in html.lower()  # a drill title, a member, an alert, a notice: all escaped
    assert "&lt;script&gt;" in html
    assert "<link" not in html and "src=" not in html and "http://" not in html and "https://" not in html
    for heading in ("概况", "目标", "响应级别", "患者影响", "RPO", "发现", "时间线", "处置步骤"):
        assert heading in html
    assert "×60" in html and "4m10s" in html and "4.2s wall" in html  # both clocks

    md = out["md"].read_text(encoding="utf-8")
    assert "<script" not in md and "识别 \\| identify" in md
    assert "| 处置步骤" not in md and "## 处置步骤 Runbook steps" in md
    row = next(line for line in md.splitlines() if line.startswith("| dr-takeover"))
    assert row.count(" | ") == 6  # pipes in user text do not break the table


def test_junit_one_case_per_target(tmp_path):
    c = card()
    root = ET.parse(write_reports(tmp_path, c)["junit"]).getroot()
    assert root.tag == "testsuite" and root.get("tests") == "4" and root.get("failures") == "2"
    cases = {tc.get("name"): tc for tc in root.iter("testcase")}
    assert list(cases) == ["detect", "dr-takeover", "core-back", "level"]
    assert cases["detect"].find("failure") is None and cases["level"].find("failure") is None
    fail = cases["dr-takeover"].find("failure")
    assert fail.get("type") == "missed" and "over the 3m target" in fail.get("message")
    fail = cases["core-back"].find("failure")
    assert fail.get("type") == "unmeasured" and fail.get("message") == "no recovery before the run ended"
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["verdict"] == "fail" and props["score"] == str(c.score)


def test_partial_report_of_a_run_that_died_early(tmp_path):
    (tmp_path / "drill.yaml").write_text(yaml.safe_dump(DRILL, allow_unicode=True), encoding="utf-8")
    (tmp_path / "journal.jsonl").write_text(
        '{"seq": 1, "wall": 100.0, "drill": null, "type": "run.started", "time_scale": 60}\n{"seq": 2, "wa',
        encoding="utf-8")
    c = score_run(tmp_path)  # no scenario.yaml, no records/, a torn line, no run.finished
    assert c.verdict == "aborted" and c.exit_code == 3 and c.score == 0
    out = write_reports(tmp_path, c)
    assert "中止 ABORTED" in out["html"].read_text(encoding="utf-8")
    assert summary_line(c).startswith("db-crash-failover: ABORTED 0/100 — detect —/1m ✗")
    assert len(ET.parse(out["junit"]).getroot().findall("testcase/failure")) == 4
