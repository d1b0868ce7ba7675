"""Trend across drills: actuals run by run and quarter by quarter, regressions flagged."""
from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from harness.cli import main
from harness.journal import JournalRead
from harness.models import Drill
from harness.report.render import write_reports
from harness.report.trend import find_regressions, find_runs, write_trend
from harness.score.scorecard import build_scorecard

DRILL = {
    "name": "db-crash-failover", "title": "数据库宕机 <b>演练</b>", "scenario": "scenario.yaml",
    "teams": {"technical": {"core": [{"name": "王工"}]}},
    "runbook": [{"id": "promote", "group": "technical", "when": {"alert": "any"}, "action": "promote_standby"}],
    "targets": [
        {"id": "detect", "measure": "detection", "within": "1m"},
        {"id": "dr-takeover", "measure": "step", "step": "promote", "within": "3m"},
        {"id": "level", "measure": "level", "critical": False},
    ],
}


def run_card(day: dt.date, detect_s: float, takeover_s: float, run_id: str):
    """A run at noon on `day`, time scale 60: the alert `detect_s` and the promotion `takeover_s`
    drill seconds after the fault."""
    t0 = dt.datetime.combine(day, dt.time(12)).astimezone().timestamp()
    fault = t0 + 4
    e = [{"seq": 1, "wall": t0 - 1, "drill": None, "type": "run.started", "run_id": run_id, "time_scale": 60},
         {"seq": 2, "wall": t0, "drill": 0.0, "type": "scenario.started"},
         {"seq": 3, "wall": fault, "drill": 240.0, "type": "fault.injected", "fault": "db"},
         {"seq": 4, "wall": fault + detect_s / 60, "drill": None, "type": "alert.raised", "alert": "db_down"},
         {"seq": 5, "wall": fault + detect_s / 60, "drill": None, "type": "step.started", "step": "promote"},
         {"seq": 6, "wall": fault + takeover_s / 60, "drill": None, "type": "step.finished", "step": "promote",
          "ok": True},
         {"seq": 7, "wall": fault + 10, "drill": None, "type": "level.declared", "level": 1},
         {"seq": 8, "wall": fault + 12, "drill": None, "type": "run.finished", "status": "completed"}]
    recs = [{"t": fault + 1, "ms": 5.0, "patient": f"P{i}", "ok": False} for i in range(10)]
    return build_scorecard(Drill.model_validate(DRILL), JournalRead(events=e), recs)


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "reports"
    plan = [(dt.date(2026, 2, 10), 30, 100, "q1"), (dt.date(2026, 5, 12), 40, 120, "q2a"),
            (dt.date(2026, 6, 1), 35, 110, "q2b"), (dt.date(2026, 8, 20), 70, 150, "q3")]
    for day, detect, takeover, run_id in plan:
        write_reports(root / run_id, run_card(day, detect, takeover, run_id))
    return root


def test_runs_found_in_a_folder_and_read_from_score_json(runs):
    found = find_runs([runs])
    assert [p.name for p in found] == ["q1", "q2a", "q2b", "q3"]
    assert find_runs([runs / "q1", runs / "q1"]) == [runs / "q1"]


def test_regressions_quarters_and_files(runs, tmp_path):
    out = tmp_path / "trend"
    result = write_trend([runs], out, threshold=0.2, lang="en")
    df = result.frame
    assert len(df) == 12 and set(df["quarter"]) == {"2026Q1", "2026Q2", "2026Q3"}
    regs = {(r["target"], r["to_run"], r["kind"]) for r in result.regressions}
    # detect 30 → 40 s: +33 % (slower); 40 → 35: better; 35 → 70: met → missed (newly_missed)
    # dr-takeover 100 → 120: +20 % is not more than 20 %; 110 → 150: +36 % (slower)
    assert regs == {("detect", "q2a", "slower"), ("detect", "q3", "newly_missed"),
                    ("dr-takeover", "q3", "slower")}
    assert {(r["target"], r["kind"]) for r in result.latest_regressions} == {
        ("detect", "newly_missed"), ("dr-takeover", "slower")}
    q = result.quarters
    assert list(q.columns) == ["2026Q1", "2026Q2", "2026Q3"]
    assert q.loc[("db-crash-failover", "detect"), "2026Q2"] == pytest.approx(35.0)  # the quarter's last run
    assert q.loc[("db-crash-failover", "dr-takeover"), "2026Q3"] == pytest.approx(150.0)
    for name in ("trend.html", "trend.md", "trend.csv", "charts/trend-db-crash-failover.svg"):
        assert (out / name).stat().st_size > 0, name
    html = (out / "trend.html").read_text(encoding="utf-8")
    assert "<b>演练</b>" not in html and "&lt;b&gt;" in html  # drill titles are user text
    assert "<svg " in html and "http://" not in html and "<script" not in html
    assert "newly_missed" in html and "★" in html and "2026Q2" in html
    md = (out / "trend.md").read_text(encoding="utf-8")
    assert "| `detect` | 1m | 30s | 35s | 1m10s |" in md
    assert pd.read_csv(out / "trend.csv")["run_id"].nunique() == 4


def test_threshold_and_zero_before():
    df = pd.DataFrame([
        {"drill": "d", "target": "t", "run_id": "a", "date": "2026-01-01", "unit": "s", "met": True, "actual": 0.0},
        {"drill": "d", "target": "t", "run_id": "b", "date": "2026-02-01", "unit": "s", "met": True, "actual": 9.0},
        {"drill": "d", "target": "t", "run_id": "c", "date": "2026-03-01", "unit": "s", "met": True, "actual": 10.0},
    ])
    assert find_regressions(df, 0.2) == []  # from 0: no share to judge; 9 → 10 is +11 %
    assert [r["to_run"] for r in find_regressions(df, 0.1)] == ["c"]


def test_cli_trend(runs, tmp_path, capsys):
    out = tmp_path / "t"
    assert main(["trend", str(runs), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "REGRESSION db-crash-failover detect" in text and str(out / "trend.html") in text
    assert main(["trend", str(runs), "--out", str(out), "--fail-on-regression"]) == 1
    assert main(["trend", str(runs / "q1"), str(runs / "q2a"), "--out", str(out),
                 "--fail-on-regression", "--threshold", "0.5"]) == 0
    assert main(["trend", str(tmp_path / "nowhere"), "--out", str(out)]) == 2


def test_a_run_without_score_json_is_scored_from_its_journal(runs, tmp_path):
    (runs / "q1" / "score.json").write_text("{not json", encoding="utf-8")
    import yaml
    (runs / "q1" / "drill.yaml").write_text(yaml.safe_dump(DRILL, allow_unicode=True), encoding="utf-8")
    card = run_card(dt.date(2026, 2, 10), 30, 100, "q1")
    # a journal cut after its first event: the run is scored again from it, with nothing measured
    (runs / "q1" / "journal.jsonl").write_text(json.dumps(
        {"seq": 1, "wall": card.overview.started_wall, "drill": None, "type": "run.started",
         "run_id": "q1", "time_scale": 60}) + "\n", encoding="utf-8")
    result = write_trend([runs], tmp_path / "t2", lang="zh")
    q1 = result.frame[result.frame["run_id"] == "q1"]
    assert len(q1) == 3 and q1["actual"].isna().sum() == 3  # re-scored: nothing measured, said so
    assert (tmp_path / "t2" / "trend.html").read_text(encoding="utf-8").count("演练趋势分析") >= 1


# --- like with like ------------------------------------------------------------------------------

def scaled_card(day: dt.date, detect_s: float, run_id: str, scale: float, model: str | None):
    """A run at `scale` (and `time_model`, absent when None): the alert `detect_s` drill s after the fault."""
    t0 = dt.datetime.combine(day, dt.time(12)).astimezone().timestamp()
    fault = t0 + 4
    started = {"seq": 1, "wall": t0 - 1, "type": "run.started", "run_id": run_id, "time_scale": scale}
    if model is not None:
        started["time_model"] = model
    e = [started, {"seq": 2, "wall": t0, "type": "scenario.started"},
         {"seq": 3, "wall": fault, "type": "fault.injected", "fault": "db"},
         {"seq": 4, "wall": fault + detect_s / scale, "type": "alert.raised", "alert": "db_down"},
         {"seq": 5, "wall": fault + 12, "type": "run.finished", "status": "completed"}]
    return build_scorecard(Drill.model_validate(DRILL), JournalRead(events=e), [])


def test_runs_at_another_scale_or_time_model_are_not_compared(tmp_path):
    root = tmp_path / "reports"
    plan = [(dt.date(2026, 2, 10), 30, "x60-a", 60.0, None), (dt.date(2026, 3, 10), 80, "x120", 120.0, None),
            (dt.date(2026, 4, 10), 40, "x60-b", 60.0, "v1"), (dt.date(2026, 5, 10), 45, "x60-v2", 60.0, "v2")]
    for day, detect, run_id, scale, model in plan:
        write_reports(root / run_id, scaled_card(day, detect, run_id, scale, model))
    result = write_trend([root], tmp_path / "t", threshold=0.2, lang="en")
    regs = {(r["target"], r["from_run"], r["to_run"], r["kind"]) for r in result.regressions if r["target"] == "detect"}
    # 30 s at ×60 → 80 s at ×120 is not flagged; x60-b is compared with x60-a (30 → 40: +33 %);
    # a missing time model reads v1, so x60-a and x60-b are alike; v2 is compared with nothing
    assert regs == {("detect", "x60-a", "x60-b", "slower")}
    pairs = [(p["from_run"], p["to_run"], p["compared_with"]) for p in result.incomparable]
    assert pairs == [("x60-a", "x120", None), ("x120", "x60-b", "x60-a"), ("x60-b", "x60-v2", None)]
    assert "time scale ×60 → ×120" in result.incomparable[0]["why"]
    assert result.incomparable[2]["why"].startswith("time model v1 → v2")
    assert any("not compared db-crash-failover x60-a → x120" in line for line in result.lines())
    md = (tmp_path / "t" / "trend.md").read_text(encoding="utf-8")
    assert "Runs not compared" in md and "| ×120 | v1 |" in md


def test_na_is_neither_met_nor_missed_in_the_trend():
    df = pd.DataFrame([
        {"drill": "d", "target": "t", "run_id": "a", "date": "2026-01-01", "unit": "s", "met": True,
         "status": "met", "actual": 10.0, "time_scale": 60.0, "time_model": "v2"},
        {"drill": "d", "target": "t", "run_id": "b", "date": "2026-02-01", "unit": "s", "met": False,
         "status": "n/a", "actual": None, "time_scale": 60.0, "time_model": "v2"},
        {"drill": "d", "target": "t", "run_id": "c", "date": "2026-03-01", "unit": "s", "met": False,
         "status": "missed", "actual": None, "time_scale": 60.0, "time_model": "v2"},
    ])
    assert find_regressions(df, 0.2) == []  # met → n/a is no regression, n/a → missed was never met
    df.loc[1, ["status", "met", "actual"]] = ["met", True, 11.0]
    assert [(r["to_run"], r["kind"]) for r in find_regressions(df, 0.2)] == [("c", "newly_missed")]
