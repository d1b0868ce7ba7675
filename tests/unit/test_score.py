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
    # weights 2+2+2+1 over 80 points; takeover 0.5 × (1 − 20/180); level right: +20
    assert card.score == round(80 * (2 + 2 * 0.5 * (1 - 20 / 180) + 2 + 1) / 7 + 20) == 87
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
    assert f.severity == "high"  # declared milder than the facts: under-reaction
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
                                           "level": {"ok": None, "max": 0.0, "points": 0.0}, "score": 0})


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
