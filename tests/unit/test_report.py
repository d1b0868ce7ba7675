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
    "levels": {"observe": "2m"},  # 2 real s at ×60: the window holds the failing payments below
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
          "drill_name": "db-crash-failover", "scenario": "db-crash", "time_scale": 60, "backend": "local"},
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
    recs += [{"t": 105.0, "ms": 300.0, "patient": f"P{i}", "journey": "payment", "ok": i >= 6}
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
    assert set(out) == {"json", "html", "md", "junit", "summary", "charts"}
    assert all(p.exists() for p in out.values())
    assert ScoreCard.model_validate_json(out["json"].read_text()) == c
    assert json.loads(out["json"].read_text())["verdict"] == "fail"
    assert out["summary"].read_text(encoding="utf-8") == summary_line(c) + "\n"

    html = out["html"].read_text(encoding="utf-8")
    assert "<script" not in html.lower()  # a drill title, a member, an alert, a notice: all escaped
    assert "&lt;script&gt;" in html
    # self-contained: nothing fetched, nothing run
    assert "<link" not in html and "src=" not in html and "http://" not in html and "https://" not in html
    assert "@import" not in html and "url(" not in html
    for heading in ("演练总结报告与改进计划", "一、演练概况", "二、执行摘要", "三、时间线", "四、目标分析",
                    "五、患者影响", "六、发现与改进计划", "附录 A", "附录 B", "附录 C", "参演人员", "演练目标与指标",
                    "改进计划", "能力要素", "责任组", "完成期限", "评级规则"):
        assert heading in html, heading
    assert "×60" in html and "4m10s" in html and "4.2s 实际" in html  # both clocks
    assert '<meta name="viewport"' in html and "@media print" in html and "@media (max-width" in html
    # charts inline, with the data drawn
    assert html.count("<svg ") >= 4 and 'class="series"' in html and "<polyline" in html
    for name in ("success", "latency", "rps", "response"):
        assert f'id="chart-{name}"' in html
        assert (out["charts"] / f"{name}.svg").read_text().startswith("<?xml")

    md = out["md"].read_text(encoding="utf-8")
    assert "<script" not in md and "识别 \\| identify" in md
    assert "## 附录" in md and "![患者请求成功率](charts/success.svg)" in md
    row = next(line for line in md.splitlines() if line.startswith("| detect"))
    assert row.count(" | ") == 6  # pipes in user text do not break the table


def test_english_report(tmp_path):
    c = card()
    out = write_reports(tmp_path, c, lang="en")
    html = out["html"].read_text(encoding="utf-8")
    assert '<html lang="en">' in html
    for heading in ("After-Action Report / Improvement Plan", "1. Exercise overview", "2. Executive summary",
                    "3. Timeline", "4. Analysis of objectives", "5. Patient impact",
                    "6. Findings and improvement plan", "Appendix A. The runbook as run",
                    "Capability element", "Rating rule"):
        assert heading in html, heading
    assert "一、演练概况" not in html and "target dr-takeover missed" in html
    md = out["md"].read_text(encoding="utf-8")
    assert "## 6. Findings and improvement plan" in md and "| Corrective action |" in md
    with pytest.raises(ValueError):
        write_reports(tmp_path, c, lang="fr")


def test_report_sections_carry_the_runs_data(tmp_path):
    c = card()
    html = write_reports(tmp_path, c, lang="en")["html"].read_text(encoding="utf-8")
    summary = html[html.index('id="summary"'):html.index('id="timeline"')]
    assert "2 of 4 targets met" in summary and "6 of 10 active patients affected (60.0%)" in summary
    assert summary.count("<li><span class=\"sev-") == 3  # the three most important findings
    analysis = html[html.index('id="analysis"'):html.index('id="impact"')]
    assert "rating-U" in analysis and "rating-P" in analysis
    impact = html[html.index('id="impact"'):html.index('id="findings"')]
    assert "payment" in impact and "Longest a patient went unserved" in impact
    findings = html[html.index('id="findings"'):html.index('id="appendix"')]
    for f in c.findings:
        assert f'id="{f.id}"' in findings and f.due in findings


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
    html = out["html"].read_text(encoding="utf-8")
    assert "中止" in html and "证据不完整" in html  # says the run aborted and what is missing
    assert "journal.jsonl:2: unreadable line skipped" in html and "records/: missing" in html
    assert summary_line(c).startswith("db-crash-failover: ABORTED 0/100 — detect —/1m ✗")
    assert len(ET.parse(out["junit"]).getroot().findall("testcase/failure")) == 4


def _network_card() -> ScoreCard:
    """A network scenario with link samples, a failing backup-interface step and lost writes."""
    e = [{"seq": 1, "wall": 100.0, "drill": None, "type": "run.started", "run_id": "r2", "time_scale": 60},
         {"seq": 2, "wall": 101.0, "drill": 0.0, "type": "scenario.started"},
         {"seq": 3, "wall": 103.0, "drill": 120.0, "type": "steady_state", "ok": True, "error_rate": 0.0},
         {"seq": 4, "wall": 104.0, "drill": 180.0, "type": "fault.injected", "fault": "egress", "fault_type": "bandwidth"}]
    e += [{"seq": 5 + i, "wall": 101.0 + i * 0.5, "drill": i * 30.0, "type": "link.sample",
           "link": "egress-primary", "utilisation": 0.3 if i < 6 else 0.97, "bytes_per_s": 1000.0 * i}
          for i in range(16)]
    e += [{"seq": 30, "wall": 104.5, "drill": 210.0, "type": "alert.raised", "alert": f"link_saturated {EVIL}",
           "severity": "critical"},
          {"seq": 31, "wall": 104.6, "drill": 216.0, "type": "step.started", "step": "promote-same-city",
           "group": "technical", "kind": "auto", "action": "promote_same_city"},
          {"seq": 32, "wall": 105.0, "drill": 240.0, "type": "step.finished", "step": "promote-same-city",
           "group": "technical", "kind": "auto", "ok": False,
           "detail": {"error": "backup insurance interface 127.0.0.9:18090 refused connection"}},
          {"seq": 33, "wall": 106.0, "drill": 300.0, "type": "recovery", "at_wall": 106.0},
          {"seq": 34, "wall": 108.0, "drill": 420.0, "type": "rpo.measured", "mode": "async", "acked_writes": 40,
           "lost_writes": 3, "lost_sample": ["w1"], "lost_seconds": 30.0, "crash_wall": 104.0},
          {"seq": 35, "wall": 109.0, "drill": 480.0, "type": "run.finished", "status": "completed"}]
    recs = [{"t": 101.0 + i * 0.05, "ms": 20.0, "patient": f"P{i % 10}", "journey": "payment",
             "ok": not (60 <= i < 100), "write_id": f"w{i}"} for i in range(160)]
    return build_scorecard(Drill.model_validate(DRILL), JournalRead(events=e), recs)


def test_link_and_data_loss_charts_and_failed_step_evidence(tmp_path):
    c = _network_card()
    assert c.links and c.links[0].link == "egress-primary" and c.links[0].peak == 0.97
    out = write_reports(tmp_path, c, lang="en")
    html = out["html"].read_text(encoding="utf-8")
    assert 'id="chart-links"' in html and "95% threshold" in html and "egress-primary" in html
    assert 'id="chart-writes"' in html and "writes lost" in html
    assert (out["charts"] / "links.svg").exists() and (out["charts"] / "writes.svg").exists()
    # the failed step: a finding with the address and the time, and its improvement-plan row
    assert "failed at T+4m (F+1m): backup insurance interface 127.0.0.9:18090 refused connection" in html
    assert "Verify 127.0.0.9:18090 is the right address" in html
    # user text inside the SVG is escaped too
    assert "<script" not in html.lower() and "link_saturated &lt;script&gt;" in html
    md = out["md"].read_text(encoding="utf-8")
    assert "127.0.0.9:18090 refused connection" in md and "![Link utilisation](charts/links.svg)" in md


def test_cli_report_rebuilds_in_the_language_asked(tmp_path, capsys):
    from harness.cli import main
    run = tmp_path / "run"
    run.mkdir()
    (run / "drill.yaml").write_text(yaml.safe_dump(DRILL, allow_unicode=True), encoding="utf-8")
    lines = [json.dumps(e) for e in [
        {"seq": 1, "wall": 100.0, "drill": None, "type": "run.started", "time_scale": 60},
        {"seq": 2, "wall": 101.0, "drill": 0.0, "type": "scenario.started"},
        {"seq": 3, "wall": 104.0, "drill": 180.0, "type": "fault.injected", "fault": "db"}]]
    # a corrupt line in the middle and a torn last line: the report says what is missing
    (run / "journal.jsonl").write_text(lines[0] + "\n" + lines[1] + "\n@@@\n" + lines[2] + "\n{\"seq\": 4",
                                       encoding="utf-8")
    assert main(["report", str(run), "--lang", "en"]) == 0
    assert "ABORTED" in capsys.readouterr().out
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "Incomplete evidence" in html and "journal.jsonl:3: unreadable line skipped" in html
    assert "journal.jsonl:5: unreadable line skipped" in html and "records/: missing" in html
    assert main(["report", str(run)]) == 0 and "证据不完整" in (run / "report.html").read_text(encoding="utf-8")
    assert main(["report", str(tmp_path)]) == 2  # not a run directory
