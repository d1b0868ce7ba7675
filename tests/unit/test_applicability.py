"""Targets that do not apply are n/a: neither met nor missed, out of the score and the verdict."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.journal import JournalRead
from harness.models import Drill
from harness.report.render import write_reports
from harness.score.scorecard import build_scorecard

T = 1000.0  # the fault's wall time
SCALE = 60.0

RUNBOOK = [
    {"id": "check", "group": "technical", "when": {"alert": "any"}, "action": "three_step_check"},
    {"id": "declare", "group": "technical", "when": {"after": "check"}, "action": "declare_level"},
    {"id": "promote", "group": "technical", "when": {"after": "declare", "level": [1, 2]},
     "action": "promote_standby"},
    {"id": "clear", "group": "technical", "when": {"after": "promote"}, "action": "set_notice",
     "with": {"text": None}},
    {"id": "on-db-down", "group": "technical", "when": {"alert": "db_unreachable"}, "action": "set_notice",
     "with": {"text": "数据库维护中"}},
]
TARGETS = [
    {"id": "detect", "measure": "detection", "within": "1m"},
    {"id": "takeover", "measure": "step", "step": "promote", "within": "3m"},
    {"id": "cleared", "measure": "step", "step": "clear", "within": "10m", "critical": False},
    {"id": "db-notice", "measure": "step", "step": "on-db-down", "within": "5m", "critical": False},
    {"id": "back", "measure": "recovery", "within": "30m"},
    {"id": "rpo", "measure": "rpo", "within": "1m"},
]


def drill(**levels) -> Drill:
    return Drill.model_validate({
        "name": "standby-app-down", "scenario": "s.yaml", "time_scale": SCALE,
        "teams": {"technical": {"core": [{"name": "王工"}]}},
        "levels": {"observe": "1h", "required": {3: []}, **levels},
        "runbook": RUNBOOK, "targets": TARGETS})


def ev(seq: int, at: float, type_: str, **fields) -> dict:
    """An event `at` drill seconds after the fault."""
    return {"seq": seq, "wall": T + at / SCALE, "drill": 240.0 + at, "type": type_, **fields}


def journal(*incident: dict, finished: str | None = "completed") -> JournalRead:
    events = [{"seq": 1, "wall": T - 10, "drill": None, "type": "run.started", "time_scale": SCALE},
              {"seq": 2, "wall": T - 4, "drill": 0.0, "type": "scenario.started"},
              {"seq": 3, "wall": T - 1, "drill": 180.0, "type": "steady_state", "ok": True},
              ev(4, 0, "fault.injected", fault="app-standby", fault_type="service_kill",
                 target="app-standby"),
              *incident]
    if finished:
        events.append(ev(99, 600, "run.finished", status=finished))
    return JournalRead(events=events)


def redundancy_lost(seq: int = 10, **more) -> dict:
    return ev(seq, 12, "alert.raised", **{"alert": "redundancy_lost", "severity": "warning", **more})


def level3_response() -> list[dict]:
    """The check ran, level 3 was declared: promotion was not called for."""
    return [ev(11, 13, "step.started", step="check"),
            ev(12, 14, "step.finished", step="check", ok=True),
            ev(13, 15, "step.started", step="declare"),
            ev(14, 20, "step.finished", step="declare", ok=True),
            ev(15, 20, "level.declared", level=3, affected=0, active=20, share=0.0)]


def records(failing: int = 0, patients: int = 20) -> list[dict]:
    out = []
    for i in range(patients):
        p = f"P{i:03d}"
        out.append({"t": T - 2 + i * 0.01, "ms": 20.0, "patient": p, "journey": "followup", "ok": True})
        out.append({"t": T + 1 + i * 0.01, "ms": 20.0, "patient": p, "journey": "followup",
                    "ok": i >= failing, "status": 200 if i >= failing else 503})
    return out


def by_id(card, id_: str):
    return next(r for r in card.targets if r.id == id_)


def test_standby_lost_without_patients_failing_is_na_not_missed(tmp_path):
    card = build_scorecard(drill(), journal(redundancy_lost(), *level3_response()), records())
    back, rpo, takeover = by_id(card, "back"), by_id(card, "rpo"), by_id(card, "takeover")
    assert (back.status, back.met, back.rating) == ("n/a", False, "n/a")
    assert "never degraded" in back.reason and "患者服务未受影响" in back.reason_zh
    assert rpo.status == "n/a" and "no promotion" in rpo.reason
    assert takeover.status == "n/a" and "level 3 applied" in takeover.reason
    assert by_id(card, "cleared").status == "n/a" and "follows promote" in by_id(card, "cleared").reason
    assert by_id(card, "db-notice").status == "n/a" and "db_unreachable was never raised" in \
        by_id(card, "db-notice").reason
    # out of the verdict and the score: detection met, everything else did not apply
    assert card.verdict == "pass" and card.score == 100
    assert set(card.breakdown["not_applicable"]) == {"takeover", "cleared", "db-notice", "back", "rpo"}
    assert [r["id"] for r in card.breakdown["targets"]] == ["detect"]
    assert not [f for f in card.findings if f.kind == "target"]  # n/a is no "target missed" finding
    out = write_reports(tmp_path, card, lang="en")
    suite = ET.parse(out["junit"]).getroot()
    assert suite.get("skipped") == "5" and suite.get("failures") == "0"
    skipped = {c.get("name"): c.find("skipped") for c in suite.findall("testcase")}
    assert skipped["back"] is not None and "never degraded" in skipped["back"].get("message")
    assert skipped["detect"] is None
    md = out["md"].read_text(encoding="utf-8")
    assert "– n/a" in md and "1 of 1 targets met (5 n/a)" in md and "did not apply" in md
    assert "– n/a" in out["html"].read_text(encoding="utf-8")


def test_patients_failing_or_a_blocking_alert_make_recovery_apply():
    failing = build_scorecard(drill(), journal(redundancy_lost(), *level3_response()), records(failing=3))
    assert by_id(failing, "back").status == "missed"  # 3 of 20 failed: 15 % > the 2 % allowance
    critical = journal(redundancy_lost(), ev(16, 30, "alert.raised", alert="app_unreachable",
                                             severity="critical"), *level3_response())
    assert by_id(build_scorecard(drill(), critical, records()), "back").status == "missed"
    # the rule says it does not block patients: a critical redundancy alert leaves recovery n/a
    told = journal(redundancy_lost(severity="critical", blocks_patients=False), *level3_response())
    assert by_id(build_scorecard(drill(), told, records()), "back").status == "n/a"
    ruled = journal(redundancy_lost(severity="critical", patient_facing=False), *level3_response())
    assert by_id(build_scorecard(drill(), ruled, records()), "back").status == "n/a"
    # a recovery that was measured is measured, degraded or not
    rec = journal(redundancy_lost(), *level3_response(), ev(30, 90, "recovery", at_wall=T + 1.0))
    assert by_id(build_scorecard(drill(), rec, records()), "back").status == "met"


def test_a_step_whose_trigger_held_but_did_not_run_is_missed():
    # level 3 declared, but 60 % of patients failed: level 1 applied and the promotion was owed
    under = build_scorecard(drill(), journal(redundancy_lost(), *level3_response()), records(failing=12))
    takeover = by_id(under, "takeover")
    assert takeover.status == "missed" and takeover.reason == "step promote never started"
    assert under.verdict == "fail"
    # the check failed: declare (and so promote) could not run — a broken chain, not "not needed"
    broken = journal(redundancy_lost(), ev(11, 13, "step.started", step="check"),
                     ev(12, 14, "step.finished", step="check", ok=False, detail={"error": "x"}))
    card = build_scorecard(drill(), broken, records(failing=12))
    assert by_id(card, "takeover").status == "missed" and by_id(card, "cleared").status == "missed"


def test_rpo_applies_after_a_promotion_and_nothing_is_na_in_an_aborted_run():
    promoted = journal(redundancy_lost(), *level3_response(),
                       ev(20, 40, "step.finished", step="manual-promote", ok=True,
                          detail={"promoted": "pg-samecity"}))
    rpo = by_id(build_scorecard(drill(), promoted, records()), "rpo")
    assert rpo.status == "missed" and "not measured" in rpo.reason
    aborted = build_scorecard(drill(), journal(redundancy_lost(), *level3_response(), finished="aborted"),
                              records())
    assert {r.status for r in aborted.targets} == {"met", "missed"} and aborted.verdict == "aborted"


def test_old_score_json_reads_status_from_met():
    from harness.score.card import TargetResult
    old = {"id": "a", "measure": "recovery", "target": 60.0, "actual": None, "met": False}
    assert TargetResult.model_validate(old).status == "missed"
    assert TargetResult.model_validate({**old, "actual": 3.0, "met": True}).status == "met"
    na = TargetResult(id="a", measure="rpo", target=60.0, actual=None, status="n/a")
    assert na.met is False
