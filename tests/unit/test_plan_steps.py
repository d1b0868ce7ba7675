"""The plan's required channels and steps per level: checked against what was done, each one missing
a finding that costs score."""
from __future__ import annotations

import re

import pytest

from harness.errors import InputError
from harness.journal import JournalRead
from harness.level_plan import RequiredByLevel
from harness.models import Drill
from harness.report.render import write_reports
from harness.score.card import LevelResult, NotificationEntry, StepResult
from harness.score.plan_steps import applied_level, check_plan
from harness.score.scorecard import COSTS, build_scorecard, overall_score
from harness.validate import load_drill

T = 1000.0
SCALE = 60.0


def notify(id_: str, channel: str, text: str = "通知") -> dict:
    return {"id": id_, "group": "patient_communication", "when": {"after": "declare", "level": 1},
            "action": "notify", "with": {"channel": channel, "text": text}}


FULL_LEVEL_1 = [
    {"id": "check", "group": "technical", "when": {"alert": "any"}, "action": "three_step_check"},
    {"id": "declare", "group": "technical", "when": {"after": "check"}, "action": "declare_level"},
    notify("broadcast", "broadcast"), notify("hotline", "hotline"),
    {"id": "notice", "group": "patient_communication", "when": {"after": "declare"}, "action": "set_notice",
     "with": {"text": "维护中"}},
    {"id": "offline-reception", "group": "clinical_support", "when": {"after": "declare", "level": 1},
     "manual": {"duration": "5m"}},
]


def drill(runbook: list[dict], **levels) -> Drill:
    return Drill.model_validate({
        "name": "l1", "scenario": "s.yaml", "time_scale": SCALE,
        "teams": {"technical": {"core": [{"name": "王工"}]}, "patient_communication": {"core": [{"name": "林"}]},
                  "clinical_support": {"core": [{"name": "吴"}]}},
        "levels": {"observe": "1h", **levels}, "runbook": runbook,
        "targets": [{"id": "detect", "measure": "detection", "within": "1m"}]})


def ev(seq: int, at: float, type_: str, **fields) -> dict:
    return {"seq": seq, "wall": T + at / SCALE, "drill": 240.0 + at, "type": type_, **fields}


def done(seq: int, at: float, step: str, **more) -> list[dict]:
    return [ev(seq, at - 1, "step.started", step=step), ev(seq + 1, at, "step.finished", step=step, ok=True, **more)]


def run(runbook_done: list[str], *, declared: int = 1, cleared_banner: bool = False) -> JournalRead:
    """A run where `runbook_done` steps finished ok (their notifications sent) after the fault."""
    events = [{"seq": 1, "wall": T - 10, "drill": None, "type": "run.started", "time_scale": SCALE},
              {"seq": 2, "wall": T - 4, "drill": 0.0, "type": "scenario.started"},
              ev(3, -30, "notification.sent", channel="hotline", audience="患者", text="before the fault"),
              ev(4, 0, "fault.injected", fault="db", fault_type="db_crash"),
              ev(5, 10, "alert.raised", alert="db_unreachable", severity="critical"),
              *done(6, 15, "check"), *done(8, 20, "declare"),
              ev(10, 20, "level.declared", level=declared, affected=15, active=20, share=0.75)]
    seq = 20
    for name in runbook_done:
        events += done(seq, 40 + seq, name)
        channel = {"broadcast": "broadcast", "hotline": "hotline", "notice": "app_banner"}.get(name)
        if channel:
            text = "(cleared)" if channel == "app_banner" and cleared_banner else "通知"
            events.append(ev(seq + 2, 40 + seq, "notification.sent", channel=channel, audience="患者", text=text))
        seq += 3
    events.append(ev(99, 600, "run.finished", status="completed"))
    return JournalRead(events=events)


def records(failing: int = 15, patients: int = 20) -> list[dict]:
    return [{"t": T + 1 + i * 0.01, "ms": 30.0, "patient": f"P{i:03d}", "journey": "followup",
             "ok": i >= failing} for i in range(patients)]


ALL = ["broadcast", "hotline", "notice", "offline-reception"]


def test_a_level_1_response_without_the_hotline_loses_score():
    full = build_scorecard(drill(FULL_LEVEL_1), run(ALL), records())
    assert full.plan is not None and full.plan.level == 1 and full.plan.basis == "declared"
    assert [(i.name, i.done) for i in full.plan.items] == [
        ("broadcast", True), ("hotline", True), ("app_banner", True), ("offline-reception", True)]
    no_hotline = [s for s in FULL_LEVEL_1 if s["id"] != "hotline"]
    card = build_scorecard(drill(no_hotline), run([n for n in ALL if n != "hotline"]), records())
    missing = [f for f in card.findings if f.kind == "plan_step"]
    assert [f.text for f in missing] == ["level 1 response without the emergency hotline"]
    assert missing[0].severity == "high" and missing[0].owner == "patient_communication"
    assert "hotline" not in missing[0].evidence.split("used during the incident: ")[1]  # before the fault
    assert full.score - card.score == COSTS["plan_step"] == 5
    assert card.breakdown["deductions"] == [{"finding": missing[0].id, "kind": "plan_step",
                                             "text": missing[0].text, "points": -5.0}]


def test_every_missing_item_costs_and_a_cleared_banner_is_no_notice(tmp_path):
    card = build_scorecard(drill(FULL_LEVEL_1), run(["notice"], cleared_banner=True), records())
    texts = sorted(f.text for f in card.findings if f.kind == "plan_step")
    assert texts == ["level 1 response without the emergency hotline",
                     "level 1 response without the hospital-wide broadcast",
                     "level 1 response without the offline reception (QR code, paper records)",
                     "level 1 response without the patient notice in the app"]
    step = next(f for f in card.findings if f.step == "offline-reception")
    assert step.owner == "clinical_support" and "status: not run" in step.evidence
    assert len(card.breakdown["deductions"]) == 4
    md = write_reports(tmp_path, card, lang="en")["md"].read_text(encoding="utf-8")
    assert "What the plan requires at L1 (the declared level)" in md and "| 扣分" not in md
    assert "Deductions:" in md


def test_the_implied_level_applies_when_more_severe_than_the_declared_one():
    # level 3 declared, 75 % of patients failing: level 1's channels were owed
    card = build_scorecard(drill(FULL_LEVEL_1), run(["notice"], declared=3), records())
    assert card.plan.level == 1 and card.plan.basis == "implied"
    assert {i.name for i in card.plan.missing} == {"broadcast", "hotline", "offline-reception"}
    f = next(f for f in card.findings if f.kind == "plan_step")
    assert "implied by the affected share (declared: 3)" in f.evidence
    # declared more severe than implied: the declared level is what the response owes
    lv = LevelResult(declared=1, implied=3)
    assert applied_level(lv) == (1, "declared") and applied_level(LevelResult()) is None


def test_the_drill_declares_what_a_level_requires():
    only_hotline = drill(FULL_LEVEL_1, required={1: [{"channel": "hotline"}], 2: []})
    card = build_scorecard(only_hotline, run(["hotline"]), records())
    assert [(i.name, i.done) for i in card.plan.items] == [("hotline", True)]
    assert not [f for f in card.findings if f.kind == "plan_step"]
    req = only_hotline.levels.required
    assert req.for_level(2) == [] and [r.channel for r in req.for_level(3)] == ["app_banner"]  # default kept
    # a level that requires nothing: a check with no items, and no finding
    lv2 = LevelResult(declared=2, implied=2)
    assert check_plan(req, lv2, [], []).items == []


def test_check_plan_counts_only_what_was_done_after_the_fault():
    req = RequiredByLevel()
    notes = [NotificationEntry(channel="official_account", at=-5.0, wall=1.0, text="before"),
             NotificationEntry(channel="app_banner", at=12.0, wall=2.0, text="维护中")]
    steps = [StepResult(id="offline-reception", status="failed", finished=30.0)]
    plan = check_plan(req, LevelResult(declared=2, implied=3), notes, steps)
    assert [(i.name, i.done, i.at) for i in plan.items] == [("official_account", False, None),
                                                            ("app_banner", True, 12.0)]
    assert check_plan(req, LevelResult(declared=2), notes, steps, incident=False) is None


def test_costs_are_a_parameter_of_the_score():
    from harness.score.card import Finding, TargetResult
    met = [TargetResult(id="a", measure="detection", target=60.0, actual=10.0, status="met")]
    missing = [Finding(id="F1", kind="plan_step", severity="high", text="x"),
               Finding(id="F2", kind="split_brain", severity="critical", text="y"),
               Finding(id="F3", kind="alert", severity="low", text="z")]
    assert overall_score(met, True, missing)[0] == 100 - 5 - 25
    assert overall_score(met, True, missing, costs={"alert": 1.0})[0] == 99
    assert overall_score(met, None, missing * 5)[0] == 0  # never below 0


def test_a_bad_requirement_is_one_line_with_file_and_line(drill_copy):
    text = drill_copy.read_text(encoding="utf-8")
    text = text.replace("plan: hospital\n", "plan: hospital\nlevels:\n  level1_above: 0.5\n  required:\n"
                                             "    1:\n      - {channel: pager}\n")
    drill_copy.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_drill(drill_copy)
    assert re.search(r"db-crash-failover\.yaml:\d+: levels\.required\.1\.0\.channel: ", str(e.value)), str(e.value)
    assert "\n" not in str(e.value)
