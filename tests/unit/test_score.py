"""Score card: synthetic journals and request records, real numbers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.journal import JournalRead
from harness.models import Drill, Levels
from harness.score.scorecard import (TargetResult, build_scorecard, implied_level, overall_score,
                                     score_run, tally_records)

T_FAULT = 1000.0
SCALE = 10.0  # run.started's effective scale; drill.yaml says 60 (the CLI overrode it)

DRILL = {
    "name": "db-crash-failover", "title": "数据库宕机演练", "scenario": "scenario.yaml", "time_scale": 60,
    # one observation window over the whole incident of these few records (60 real s at ×60)
    "levels": {"observe": "1h"},
    "teams": {"technical": {"core": [{"name": "王工", "role": "DBA"}], "backup": [{"name": "李工"}]},
              "patient_communication": {"core": [{"name": "赵护士"}]}},
    "runbook": [
        {"id": "three-step-check", "group": "technical", "when": {"alert": "any"}, "action": "three_step_check"},
        {"id": "promote-same-city", "group": "technical", "when": {"after": "three-step-check"},
         "action": "promote_same_city", "deadline": "3m"},
        {"id": "notice", "group": "patient_communication", "when": {"level": 1},
         "manual": {"duration": "2m"}},
    ],
    "targets": [
        {"id": "detect", "measure": "detection", "within": "1m"},
        {"id": "dr-takeover", "measure": "step", "step": "promote-same-city", "within": "3m"},
        {"id": "core-back", "measure": "recovery", "within": "30m"},
        {"id": "rpo", "measure": "rpo", "within": "60s", "critical": False},
        {"id": "level", "measure": "level"},
    ],
}
SCENARIO = {"name": "db-crash", "title": "主库宕机", "failure_class": "database",
            "faults": [{"at": "3m", "type": "db_crash"}]}


def ev(seq: int, wall: float, type_: str, **fields) -> dict:
    return {"seq": seq, "wall": wall, "drill": round((wall - 982.0) * SCALE, 3), "type": type_, **fields}


def base_events(*, step_ok: bool | None = True, recovery: bool = True, finished: bool = True) -> list[dict]:
    e = [ev(1, 970.0, "run.started", run_id="r1", drill="db-crash-failover", scenario="db-crash",
            time_scale=SCALE, backend="local", config={}),
         ev(2, 982.0, "scenario.started"),
         ev(3, 999.0, "steady_state", ok=True, error_rate=0.0, rps=5, p95_ms=30, requests=80),
         ev(4, T_FAULT, "fault.injected", fault="db_crash-1", fault_type="db_crash", target="pg-primary",
            detail={"pid": 42}),
         ev(5, 1005.0, "alert.raised", alert="patient_errors", severity="critical", detail={"error_rate": 0.4}),
         ev(6, 1006.0, "step.started", step="three-step-check", group="technical", kind="auto",
            action="three_step_check"),
         ev(7, 1007.0, "step.finished", step="three-step-check", group="technical", kind="auto",
            action="three_step_check", ok=True, detail={"verdict": "system_failure"}),
         ev(8, 1008.0, "level.declared", level=2, affected=3, active=10, share=0.3),
         ev(9, 1008.0, "step.started", step="promote-same-city", group="technical", kind="auto",
            action="promote_same_city")]
    if step_ok is not None:
        e.append(ev(10, 1020.0, "step.finished", step="promote-same-city", group="technical", kind="auto",
                    action="promote_same_city", ok=step_ok,
                    detail={"promoted": "pg-samecity"} if step_ok else {"error": "standby not in recovery"}))
    if recovery:
        e.append(ev(11, 1150.0, "recovery", at_wall=1120.0, detail={"probes_ok": 3}))
    e.append(ev(12, 1151.0, "rpo.measured", mode="async", acked_writes=500, lost_writes=2,
                lost_sample=["w-1", "w-2"], lost_seconds=4.5, crash_wall=T_FAULT))
    e.append(ev(13, 1160.0, "alert.cleared", alert="patient_errors"))
    if finished:
        e.append(ev(14, 1170.0, "run.finished", status="completed", reason=None))
    return e


def records(affected: int = 3, active: int = 10) -> list[dict]:
    """Steady state before the fault; `affected` of `active` patients fail during; all fine after."""
    out = []
    for i in range(active):
        p = f"P{i:05d}"
        out.append({"t": 990.0 + i * 0.1, "ms": 10.0, "patient": p, "journey": "followup", "ok": True})
        failed = i < affected
        out.append({"t": 1010.0 + i, "ms": 2000.0 if failed else 15.0, "patient": p,
                    "journey": "payment" if i == 0 else "followup", "ok": not failed,
                    "status": 503 if failed else 201})
        out.append({"t": 1130.0 + i, "ms": 12.0, "patient": p, "journey": "followup", "ok": True})
    out.append({"t": 995.0, "ms": 9.0, "patient": "P09999", "journey": "exam", "ok": False})
    return out


def write_run(tmp: Path, events: list[dict], recs: list[dict], *, drill: dict = DRILL,
              tail: str = "") -> Path:
    (tmp / "drill.yaml").write_text(yaml.safe_dump(drill, allow_unicode=True), encoding="utf-8")
    (tmp / "scenario.yaml").write_text(yaml.safe_dump(SCENARIO, allow_unicode=True), encoding="utf-8")
    with open(tmp / "journal.jsonl", "w", encoding="utf-8") as fh:
        for e in events:
            fh.write(json.dumps(e, ensure_ascii=False) + "\n")
        fh.write(tail)
    (tmp / "records").mkdir(exist_ok=True)
    with open(tmp / "records" / "local.jsonl", "w", encoding="utf-8") as fh:
        for r in recs:
            fh.write(json.dumps(r) + "\n")
    return tmp


def by_id(card, id_: str) -> TargetResult:
    return next(r for r in card.targets if r.id == id_)


def test_times_are_drill_seconds_from_the_fault_at_the_runs_scale(tmp_path):
    card = score_run(write_run(tmp_path, base_events(), records()))
    assert card.overview.time_scale == SCALE
    detect = by_id(card, "detect")
    assert detect.actual == pytest.approx(50.0) and detect.met and detect.margin == pytest.approx(10.0)
    takeover = by_id(card, "dr-takeover")
    assert takeover.actual == pytest.approx(200.0) and not takeover.met
    assert takeover.margin == pytest.approx(-20.0) and "20s over" in takeover.reason
    back = by_id(card, "core-back")  # at_wall (1120), not the event's wall (1150)
    assert back.actual == pytest.approx(1200.0) and back.met
    rpo = by_id(card, "rpo")
    assert rpo.actual == 4.5 and rpo.met
    level = by_id(card, "level")
    assert level.met and (level.actual, level.target) == (2, 2)
    assert card.verdict == "fail" and card.exit_code == 1
    # weights 2+2+2+1 over 80 points; takeover 0.5 × (1 − 20/180); level right: +20; level 2 sent
    # neither the official account nor the app notice: 2 × 5 points off
    assert card.score == round(80 * (2 + 2 * 0.5 * (1 - 20 / 180) + 2 + 1) / 7 + 20 - 10) == 77
    assert [d["kind"] for d in card.breakdown["deductions"]] == ["plan_step", "plan_step"]
    steps = {s.id: s for s in card.steps if s.status != "not run"}
    assert steps["promote-same-city"].duration == pytest.approx(120.0)
    assert steps["promote-same-city"].deadline_met is True
    assert [s.id for s in card.steps if s.status == "not run"] == ["notice"]
    assert any("2 acknowledged patient writes lost" in f.text for f in card.findings)


def test_patient_impact(tmp_path):
    card = score_run(write_run(tmp_path, base_events(), records()))
    im = card.impact
    assert (im.affected, im.active, im.patients) == (3, 10, 11)
    assert im.affected_share == pytest.approx(0.3)
    assert (im.before.requests, im.before.failed) == (11, 1)
    assert (im.during.requests, im.during.failed) == (10, 3)
    assert (im.after.requests, im.after.failed) == (10, 0)
    assert im.error_rate_steady == pytest.approx(1 / 11) and im.error_rate_after == 0
    assert im.downtime == pytest.approx(1200.0) and im.recovered
    journeys = {j.journey: j for j in im.journeys}
    assert journeys["payment"].failed == 1 and journeys["payment"].downtime == 0
    # followup failures at 1011 and 1012 → first F+110s, downtime 10 s drill
    assert journeys["followup"].first_failure == pytest.approx(110.0)
    assert journeys["followup"].downtime == pytest.approx(10.0)
    assert im.longest_wait.ms == 2000.0 and im.longest_wait.patient == "P00000"
    assert card.rpo.lost_writes == 2 and card.rpo.lost_sample == ["w-1", "w-2"]


@pytest.mark.parametrize("step_ok, reason", [
    (None, "step promote-same-city never finished"),
    (False, "step promote-same-city failed: "),
])
def test_step_target_missed_when_the_step_did_not_finish_ok(tmp_path, step_ok, reason):
    card = score_run(write_run(tmp_path, base_events(step_ok=step_ok), records()))
    r = by_id(card, "dr-takeover")
    assert not r.met and r.actual is None and r.margin is None and r.reason.startswith(reason)
    assert card.verdict == "fail"
    texts = [f.text for f in card.findings]
    assert "target dr-takeover missed" in texts
    if step_ok is False:
        assert "standby not in recovery" in r.reason and "step promote-same-city failed" in texts
    else:  # still running at the end of the run (1170 − 1008 = 162 real s ≫ 3m drill)
        assert "step promote-same-city missed its deadline" in texts


def test_step_never_started_and_no_recovery(tmp_path):
    events = [e for e in base_events(step_ok=None, recovery=False) if e.get("step") != "promote-same-city"]
    card = score_run(write_run(tmp_path, events, records()))
    assert by_id(card, "dr-takeover").reason == "step promote-same-city never started"
    back = by_id(card, "core-back")
    assert not back.met and back.reason == "no recovery before the run ended"
    # no recovery: the incident runs to the end of the records
    assert card.impact.during.requests == 20 and not card.impact.recovered
    assert card.impact.downtime is None


def test_level_declared_differs_from_implied(tmp_path):
    card = score_run(write_run(tmp_path, base_events(), records(affected=6)))
    assert card.level.implied == 1 and card.level.declared == 2 and card.level.ok is False
    r = by_id(card, "level")
    assert not r.met and "implies level 1" in r.reason
    f = next(f for f in card.findings if f.text.startswith("response level"))
    assert f.severity == "critical"  # declared milder than the facts: under-reaction
    assert r.critical and card.verdict == "fail"  # a critical miss, whatever the drill's flag
    assert card.breakdown["level"]["points"] == 0


@pytest.mark.parametrize("share, level", [
    (0.0, 3), (0.2, 3), (0.2001, 2), (0.5, 2), (0.5001, 1), (1.0, 1)])
def test_implied_level_thresholds(share, level):
    assert implied_level(share, Levels()) == level


@pytest.mark.parametrize("affected, level", [(2, 3), (3, 2), (5, 2), (6, 1)])
def test_level_implied_from_records_at_the_thresholds(affected, level):
    # pure: parsed drill + journal in memory + an iterable of records
    drill = Drill.model_validate(DRILL)
    card = build_scorecard(drill, JournalRead(events=base_events()), iter(records(affected=affected)))
    assert card.level.share == pytest.approx(affected / 10)
    assert card.level.implied == level


def res(id_, target, actual, met, critical=True, unit="s"):
    return TargetResult(id=id_, measure="level" if unit == "level" else "recovery", unit=unit,
                        target=target, actual=actual, met=met, critical=critical)


def test_overall_score_edge_cases():
    ok = [res("a", 60, 30, True), res("b", 180, 100, True, critical=False)]
    assert overall_score(ok, True)[0] == 100
    assert overall_score(ok, False)[0] == 80
    assert overall_score(ok, None)[0] == 100  # level unjudgeable: targets take all the points
    # missed at 1.5× → 0.25 credit; at 2× and beyond → 0; unmeasured → 0
    score, br = overall_score([res("a", 60, 90, False)], None)
    assert score == 25 and br["targets"][0]["credit"] == 0.25
    assert overall_score([res("a", 60, 120, False)], None)[0] == 0
    assert overall_score([res("a", 60, 600, False)], None)[0] == 0
    assert overall_score([res("a", 60, None, False)], True)[0] == 20
    assert overall_score([res("a", 0, 3, False)], None)[0] == 0  # within 0: no room to scale
    # critical weighs 2: critical met + other unmeasured → 80 × 2/3
    assert overall_score([res("a", 60, 1, True), res("b", 60, None, False, critical=False)], False)[0] == 53
    # level targets are not weighed twice; with no time targets the level is all 100
    only_level = [res("l", 2, 2, True, unit="level")]
    assert overall_score(only_level, True)[0] == 100
    assert overall_score(only_level, False)[0] == 0
    assert overall_score([], None) == (0, {"targets": [], "target_points": 0.0,
                                           "level": {"ok": None, "max": 0.0, "points": 0.0},
                                           "not_applicable": [], "deductions": [], "score": 0})


def test_truncated_journal_line_is_tolerated_with_a_finding(tmp_path):
    events = base_events(finished=False)
    run = write_run(tmp_path, events, records(), tail='{"seq": 14, "wall": 1170.0, "type": "run.fin')
    card = score_run(run)
    assert by_id(card, "detect").actual == pytest.approx(50.0)  # the intact lines still count
    assert card.verdict == "aborted" and card.exit_code == 3
    evidence = [f.evidence for f in card.findings if f.severity == "low"]
    assert any("journal.jsonl:14: unreadable line skipped" in e for e in evidence)
    assert any(f.text == "the run aborted" for f in card.findings)


def test_aborted_run_and_torn_records_line(tmp_path):
    events = base_events(finished=False) + [ev(14, 1170.0, "run.finished", status="aborted",
                                              reason="stop condition: error rate")]
    run = write_run(tmp_path, events, records())
    with open(run / "records" / "local.jsonl", "a") as fh:
        fh.write('{"t": 1169.0, "ms": 3')
    card = score_run(run)
    assert card.verdict == "aborted" and card.overview.abort_reason == "stop condition: error rate"
    assert card.impact.total.requests == 31  # the torn record is not counted


def test_no_fault_and_steady_state_not_reached():
    events = [e for e in base_events() if e["type"] != "fault.injected"]
    events[2] = ev(3, 999.0, "steady_state", ok=False, error_rate=0.3, rps=5, p95_ms=900, requests=80)
    card = build_scorecard(Drill.model_validate(DRILL), JournalRead(events=events), [])
    assert by_id(card, "detect").reason == "no fault was injected: nothing to time from"
    assert by_id(card, "level").reason.startswith("no patient requests")
    assert any(f.text == "steady state not reached before the fault" for f in card.findings)


def test_tally_streams_a_generator_once():
    gen = (r for r in records())
    im = tally_records(gen, T_FAULT, 1120.0, SCALE)
    assert im.total.requests == 31 and next(gen, None) is None


# --- ratings, series, patients unserved, findings and their plan, reading, schema ------------------

from harness.score.scorecard import RATING_RULE, rate, tally  # noqa: E402


@pytest.mark.parametrize("target, actual, met, rating", [
    (60, 30, True, "P"),      # 50 % to spare
    (60, 45, True, "P"),      # exactly 25 %
    (60, 50, True, "S"),      # 16.7 %
    (60, 54, True, "S"),      # exactly 10 %
    (60, 58, True, "M"),      # 3.3 %
    (60, 60, True, "M"),      # met with nothing to spare
    (60, 61, False, "U"),     # missed
    (60, None, False, "U"),   # not measured
    (0, 0, True, "P"),        # a zero target met exactly
])
def test_rating_from_the_margin(target, actual, met, rating):
    r = TargetResult(id="x", measure="recovery", target=target, actual=actual, met=met,
                     margin=None if actual is None else target - actual)
    assert rate(r) == rating
    assert "25%" in RATING_RULE and "10%" in RATING_RULE


def test_targets_carry_rating_and_headroom(tmp_path):
    card = score_run(write_run(tmp_path, base_events(), records()))
    detect = by_id(card, "detect")
    assert detect.headroom == pytest.approx(10 / 60, abs=1e-3) and detect.rating == "S"
    assert by_id(card, "dr-takeover").rating == "U"
    assert by_id(card, "level").rating == "P"
    assert [s.target for s in card.strengths][:2] == ["rpo", "core-back"]  # most headroom first


def test_series_buckets_over_drill_time():
    recs = [{"t": 982.0 + i * 0.5, "ms": 10.0 if i % 10 else 1000.0, "patient": f"P{i % 7}",
             "journey": "followup", "ok": not (40 <= i < 60), "write_id": "w" if i % 2 else None}
            for i in range(200)]  # 100 real s from T+0, failing from 20 s to 30 s
    impact, series = tally(iter(recs), 1002.0, 1012.0, SCALE, origin=982.0, span=100.0)
    assert series.origin_wall == 982.0
    assert series.bucket == 10.0 and series.bucket_real == 1.0  # 1000 drill s / 100 → 10 s buckets
    assert len(series.points) == 100 and series.points[0].t == 0.0 and series.points[1].t == 10.0
    assert sum(p.requests for p in series.points) == 200
    by_t = {p.t: p for p in series.points}
    assert by_t[200.0].success_rate == 0.0 and by_t[190.0].success_rate == 1.0
    assert by_t[0.0].rps == 2.0 and by_t[0.0].acked_writes == 1
    assert sum(p.acked_writes for p in series.points) == 90  # odd i, minus the 10 failed odd ones
    # latency histograms: p50 at 10 ms and p95 of a bucket with one 1 s request out of two
    assert by_t[10.0].p50_ms == pytest.approx(10.0, rel=0.06)
    assert by_t[0.0].p95_ms == pytest.approx(1000.0, rel=0.06)
    assert impact.during.requests == 21 and impact.during.failed == 20


def test_series_merges_when_records_outrun_the_journal():
    recs = [{"t": 1000.0 + i, "ms": 5.0, "patient": "P1", "ok": True} for i in range(5000)]
    _, series = tally(recs, None, None, 1.0, origin=1000.0, span=10.0)  # journal said 10 s
    assert len(series.points) <= 400 and sum(p.requests for p in series.points) == 5000
    assert series.bucket_real > 1.0


def test_longest_time_a_patient_went_unserved():
    recs = [{"t": 1001.0, "patient": "A", "ok": False, "journey": "payment"},
            {"t": 1003.0, "patient": "A", "ok": False, "journey": "payment"},
            {"t": 1011.0, "patient": "A", "ok": True, "journey": "payment"},   # A: 10 real s
            {"t": 1002.0, "patient": "B", "ok": False, "journey": "exam"},
            {"t": 1004.0, "patient": "B", "ok": True, "journey": "exam"},      # B: 2 s
            {"t": 1005.0, "patient": "C", "ok": False, "journey": "exam"},     # C: to the end, 10 s
            {"t": 1015.0, "patient": "D", "ok": True}]
    out = tally_records(recs, T_FAULT, None, SCALE).longest_outage
    assert (out.patient, out.real_seconds, out.seconds, out.journey) == ("A", 10.0, 100.0, "payment")
    assert out.since == pytest.approx(10.0) and not out.ongoing
    recs[2]["t"] = 1001.5  # A is served again after 0.5 s; C waits to the end of the records
    out = tally_records(recs, T_FAULT, None, SCALE).longest_outage
    assert out.patient == "C" and out.ongoing and out.real_seconds == 10.0


def test_failed_step_gives_a_finding_with_evidence_and_a_plan_row(tmp_path):
    events = base_events()
    events[9] = ev(10, 1020.0, "step.finished", step="promote-same-city", group="technical", kind="auto",
                   action="promote_same_city", ok=False,
                   detail={"error": "backup insurance interface 127.0.0.9:18090 refused connection"})
    card = score_run(write_run(tmp_path, events, records()))
    f = next(f for f in card.findings if f.kind == "step")
    assert f.text == "step promote-same-city failed" and f.severity == "high"
    assert "127.0.0.9:18090 refused connection" in f.evidence
    assert "at T+6m20s (F+3m20s)" in f.evidence  # (1020 − 982) × 10 and (1020 − 1000) × 10
    assert "127.0.0.9:18090" in f.action and f.capability == "equipment" and f.owner == "technical"
    assert f.text_zh and "127.0.0.9:18090" in f.evidence_zh and f.action_zh
    date = card.overview.date
    import datetime as dt
    assert f.due == (dt.date.fromisoformat(date) + dt.timedelta(days=30)).isoformat()
    # every finding is numbered and has a plan row
    assert [x.id for x in card.findings] == [f"F{i}" for i in range(1, len(card.findings) + 1)]
    assert all(x.action and x.capability and x.owner and x.due for x in card.findings)
    kinds = {x.kind for x in card.findings}
    assert {"target", "step", "rpo", "alert"} <= kinds  # missed target, failed step, lost writes, alert
    alert = next(x for x in card.findings if x.kind == "alert")
    assert "patient_errors" in alert.text and "F+50s" in alert.evidence and "error_rate: 0.4" in alert.evidence


def test_alert_before_the_fault_is_a_false_alarm_finding():
    events = base_events()
    events.insert(3, ev(99, 995.0, "alert.raised", alert="noisy", severity="warning"))
    card = build_scorecard(Drill.model_validate(DRILL), JournalRead(events=events), records())
    f = next(x for x in card.findings if x.kind == "alert" and "noisy" in x.text)
    assert f.severity == "medium" and f.capability == "equipment" and "F−50s" in f.evidence


def test_corrupt_and_torn_records_are_counted_and_reported(tmp_path):
    run = write_run(tmp_path, base_events(), records())
    with open(run / "records" / "local.jsonl", "a") as fh:
        fh.write("garbage\n[1, 2]\n\n")
        fh.write(json.dumps({"t": 1140.0, "ms": 5.0, "patient": "P00001", "ok": True}) + "\n")
        fh.write('{"t": 1169.0, "ms": 3')
    card = score_run(run)
    assert card.impact.total.requests == 32  # 31 + the good line after the garbage
    assert "records/local.jsonl: 2 corrupt line(s) skipped" in card.problems
    assert any("unfinished last line" in p for p in card.problems)
    evidence = [f.evidence for f in card.findings if f.kind == "evidence"]
    assert any("corrupt line" in e for e in evidence)


def test_records_read_in_blocks_match_line_by_line(tmp_path, monkeypatch):
    from harness.load.records import iter_records
    from harness.score import reading
    run = write_run(tmp_path, base_events(), records())
    with open(run / "records" / "local.jsonl", "a") as fh:
        fh.write("not json\n" + json.dumps({"t": 1150.0, "ok": True}) + "\n")
    monkeypatch.setattr(reading, "BLOCK", 97)  # blocks that cut lines anywhere
    reader = reading.RecordReader(run / "records")
    assert list(reader) == list(iter_records(run / "records"))
    assert reader.bad_lines == {"local.jsonl": 1} and not reader.torn


def test_published_schema_is_current_and_score_json_validates(tmp_path):
    import jsonschema
    from harness.report.render import write_reports
    from harness.score.schema import schema_text
    published = Path(__file__).resolve().parents[2] / "docs" / "score.schema.json"
    assert published.read_text(encoding="utf-8") == schema_text(), \
        "docs/score.schema.json is stale: python -m harness.score.schema > docs/score.schema.json"
    schema = json.loads(published.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    run = write_run(tmp_path, base_events(), records())
    write_reports(run, score_run(run))
    doc = json.loads((run / "score.json").read_text(encoding="utf-8"))
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    doc["verdict"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
