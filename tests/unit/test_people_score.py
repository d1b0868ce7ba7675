"""The people's part of the score, over synthetic journals of the people events (person.claimed,
person.done, person.blocked, person.absent, observer.note, inject.shown): each target's human and
machine parts, the golden hour's four moves, modeled figures marked as such, and the report's
people section."""
import json
import re
import time
from pathlib import Path

import pytest

from harness import cli
from harness.clock import DrillClock
from harness.journal import Journal, JournalRead
from harness.models import Drill, People, RunbookStep, Target
from harness.people.desk import Desk
from harness.report.render import summary_line, write_reports
from harness.runbook.actions import ActionContext
from harness.runbook.engine import RunbookEngine
from harness.score.build import build_scorecard
from harness.validate import load_drill

SHIPPED = Path(__file__).resolve().parents[2] / "harness" / "catalog" / "drills" / "db-crash-failover.yaml"

T0, FAULT = 1000.0, 1010.0  # wall of T+0 and of the fault; the fault is at drill 10


def _members(group, skills_of_first=()):
    core = [{"name": f"{group}-core-{i}", "role": "engineer", "location": "main campus"} for i in range(5)]
    core[0]["skills"] = list(skills_of_first)
    backup = [{"name": f"{group}-backup-{i}", "location": "remote"} for i in range(3)]
    return {"core": core, "backup": backup}


def drill(*, tag_reassure=True, manual_duration="2m"):
    technical = _members("technical", ["dba"])
    technical["backup"][0]["skills"] = ["dba"]
    step = lambda sid, group, when, **kw: {"id": sid, "group": group, "when": when, **kw}  # noqa: E731
    runbook = [
        step("identify", "technical", {"alert": "any"}, manual={"duration": manual_duration},
             golden_hour="identify"),
        step("classify", "technical", {"after": "identify"}, action="declare_level", golden_hour="classify"),
        step("promote", "technical", {"after": "classify"}, action="promote_standby", needs="dba",
             golden_hour="take_over"),
        step("hotline", "patient_communication", {"after": "identify"}, manual={"duration": "5m"},
             **({"golden_hour": "reassure"} if tag_reassure else {})),
    ]
    return Drill.model_validate({
        "name": "people-drill", "scenario": "s.yaml", "time_scale": 1,
        "teams": {"technical": technical, "patient_communication": _members("patient_communication")},
        "runbook": runbook,
        "targets": [{"id": "identify-in", "measure": "step", "step": "identify", "within": "5m"},
                    {"id": "dr-takeover", "measure": "step", "step": "promote", "within": "5m"},
                    {"id": "detect", "measure": "detection", "within": "1m"},
                    {"id": "core-back", "measure": "recovery", "within": "30m"}]})


class Synthetic:
    """Events with v2 chains: each lane's drill time is its anchor's plus declared waits and real
    work since (harness/clock.py)."""

    def __init__(self, *, live=True, scale=1.0):
        self.events: list[dict] = []
        self.add("run.started", T0 - 5, None, time_scale=scale, time_model="v2", live=live)
        self.add("scenario.started", T0, 0.0)
        self.fault = self.add("fault.injected", FAULT, 10.0, lane="scenario", cause=None, declared=10.0,
                              fault="crash", fault_type="db_crash")

    def add(self, type_, wall, drill, *, lane=None, cause=None, declared=0.0, real=0.0, **fields):
        e = {"seq": len(self.events) + 1, "wall": wall, "drill": drill, "type": type_, **fields}
        if lane is not None:
            e["chain"] = {"lane": lane, "cause": cause, "declared": declared, "real": real}
        self.events.append(e)
        return e["seq"]

    def on_step(self, type_, step, cause_seq, anchor, real, declared=0.0, **fields):
        """An event on step `step`'s lane, anchored at `cause_seq` (drill `anchor`)."""
        return self.add(type_, FAULT + (anchor - 10.0) + real + declared, anchor + real + declared,
                        lane=f"step:{step}", cause=cause_seq, declared=declared, real=real, step=step,
                        **fields)

    def read(self):
        return JournalRead(events=list(self.events))


def live_journal(*, with_hotline_done=False):
    """A live drill at scale 1: the alert 15 s after the fault; core-0 claims the manual identify
    30 s after it opens and is done 30 s later; classify is an action; the backup DBA claims the
    promotion 40 s after it opens (the core DBA is absent) and the promotion takes 0.5 s."""
    j = Synthetic()
    alert = j.add("alert.raised", FAULT + 15, 25.0, lane="monitor", cause=j.fault, declared=15.0,
                  alert="db_down", severity="critical")
    j.add("person.absent", T0 - 1, None, person="technical-core-0", group="technical", tier="core",
          why="named", seed=None)
    j.on_step("step.started", "identify", alert, 25.0, 0.0, group="technical", kind="manual")
    j.on_step("person.claimed", "identify", alert, 25.0, 30.0, person="technical-core-1",
              group="technical", tier="core", call_out=30.0, modeled=False)
    j.on_step("person.done", "identify", alert, 25.0, 60.0, person="technical-core-1",
              note="DB primary down, checked the logs", modeled=False)
    ident = j.on_step("step.finished", "identify", alert, 25.0, 60.0, group="technical", kind="manual",
                      ok=True, detail={"operator": "person", "by": "technical-core-1"})
    j.on_step("step.started", "classify", ident, 85.0, 0.0, group="technical", kind="auto")
    j.on_step("person.claimed", "classify", ident, 85.0, 5.0, person="technical-core-2",
              group="technical", tier="core", call_out=5.0, modeled=False)
    cls = j.on_step("step.finished", "classify", ident, 85.0, 5.2, group="technical", kind="auto", ok=True,
                    detail={})
    j.on_step("step.started", "promote", cls, 90.2, 0.0, group="technical", kind="auto")
    j.on_step("person.claimed", "promote", cls, 90.2, 8.0, person="technical-core-3",
              group="technical", tier="core", call_out=8.0, modeled=False)
    j.on_step("person.blocked", "promote", cls, 90.2, 10.0, person="technical-core-3",
              reason="no access to the DR site")
    j.on_step("person.claimed", "promote", cls, 90.2, 40.0, person="technical-backup-0",
              group="technical", tier="backup", call_out=40.0, modeled=False)
    promo = j.on_step("step.finished", "promote", cls, 90.2, 40.5, group="technical", kind="auto",
                      ok=True, detail={"promoted": "pg-samecity"})
    j.on_step("step.started", "hotline", ident, 85.0, 0.0, group="patient_communication", kind="manual")
    if with_hotline_done:
        j.on_step("person.claimed", "hotline", ident, 85.0, 20.0, person="patient_communication-core-0",
                  group="patient_communication", tier="core", call_out=20.0, modeled=False)
        j.on_step("person.done", "hotline", ident, 85.0, 120.0, person="patient_communication-core-0",
                  note="", modeled=False)
        j.on_step("step.finished", "hotline", ident, 85.0, 120.0, group="patient_communication",
                  kind="manual", ok=True, detail={})
    j.add("observer.note", FAULT + 50, 60.0, by="observer", text="the DBA phone went to voicemail")
    j.add("inject.shown", FAULT + 20, 30.0, inject="hotline-busy", text="the hotline has 20 callers",
          to="patient_communication")
    rec_wall = FAULT + 130.7 + 6.0
    j.add("recovery", rec_wall + 3, 136.7 + 3, lane="monitor", cause=promo, declared=5.0, real=4.0,
          at_wall=rec_wall, at_drill=136.7, at_chain={"lane": "monitor", "cause": promo, "declared": 5.0,
                                                      "real": 1.0})
    j.add("run.finished", rec_wall + 60, None, status="completed", reason=None)
    return j


def ci_journal():
    """The same drill run by the simulated operator at x60: every person move says modeled."""
    j = Synthetic(live=False, scale=60.0)
    alert = j.add("alert.raised", FAULT + 0.25, 25.0, lane="monitor", cause=j.fault, declared=15.0,
                  alert="db_down", severity="critical")
    j.on_step("step.started", "identify", alert, 25.0, 0.0, group="technical", kind="manual")
    j.on_step("person.claimed", "identify", alert, 25.0, 0.0, declared=30.0, person="technical-core-0",
              group="technical", tier="core", call_out=30.0, modeled=True)
    j.on_step("person.done", "identify", alert, 25.0, 0.0, declared=150.0, person="technical-core-0",
              note="", modeled=True)
    ident = j.on_step("step.finished", "identify", alert, 25.0, 0.0, declared=150.0, group="technical",
                      kind="manual", ok=True, detail={"operator": "simulated", "modeled": True})
    j.on_step("step.started", "classify", ident, 175.0, 0.0, group="technical", kind="auto")
    cls = j.on_step("step.finished", "classify", ident, 175.0, 0.2, group="technical", kind="auto", ok=True,
                    detail={})
    j.on_step("step.started", "promote", cls, 175.2, 0.0, group="technical", kind="auto")
    j.on_step("person.claimed", "promote", cls, 175.2, 0.0, declared=120.0, person="technical-core-0",
              group="technical", tier="core", call_out=120.0, modeled=True)
    j.on_step("step.finished", "promote", cls, 175.2, 0.4, declared=120.0, group="technical", kind="auto",
              ok=True, detail={})
    j.add("run.finished", FAULT + 60, None, status="completed", reason=None)
    return j


def card_of(j, d=None):
    return build_scorecard(d or drill(), j.read(), [])


def target(card, tid):
    return next(t for t in card.targets if t.id == tid)


def test_live_targets_split_into_the_people_and_the_machines():
    card = card_of(live_journal())
    ident = target(card, "identify-in")
    assert ident.actual == 75.0 and ident.met  # fault (drill 10) → done (drill 85)
    assert (ident.human, ident.machine) == (60.0, 0.0)  # a manual step is all the person's
    assert ident.people == ["technical-core-1"] and not ident.modeled
    promo = target(card, "dr-takeover")
    assert promo.actual == pytest.approx(120.7)
    # identify 60 (person) + classify 5 claim / 0.2 action + promote 40 claim / 0.5 promotion;
    # the other 15 s are the alert's detection
    assert promo.human == pytest.approx(105.0) and promo.machine == pytest.approx(0.7)
    assert promo.actual - promo.human - promo.machine == pytest.approx(15.0)
    # the core engineer who claimed first was blocked: the human part runs to the backup's claim
    assert promo.people == ["technical-core-3", "technical-backup-0", "technical-core-2", "technical-core-1"]
    assert promo.breakdown["human"] == promo.human and promo.breakdown["modeled"] is False
    back = target(card, "core-back")  # recovery's chain passes through the promotion
    assert back.human == pytest.approx(105.0) and back.actual == pytest.approx(126.7)
    detect = target(card, "detect")  # no step on its chain: no people's part
    assert detect.human is None and "human" not in detect.breakdown and not detect.modeled


def test_live_people_section_data_and_golden_hour():
    card = card_of(live_journal(with_hotline_done=True))
    p = card.people
    assert p is not None and p.live and not p.modeled
    claims = [(a.step, a.person, a.call_out) for a in p.actions if a.what == "claimed"]
    assert ("promote", "technical-backup-0", 40.0) in claims
    blocked = next(a for a in p.actions if a.what == "blocked")
    assert (blocked.person, blocked.note) == ("technical-core-3", "no access to the DR site")
    absent = p.absent[0]
    assert absent.person == "technical-core-0" and absent.why == "named"
    assert absent.covered_by == ["technical-backup-0"]  # the backup DBA took the promotion
    assert [n.text for n in p.notes] == ["the DBA phone went to voicemail"]
    assert p.injects[0].text == "the hotline has 20 callers" and p.injects[0].at == 20.0
    moves = {g.move: g for g in p.golden_hour}
    assert list(moves) == ["identify", "classify", "reassure", "take_over"]
    assert (moves["identify"].at, moves["identify"].by) == (75.0, "technical-core-1")
    assert moves["classify"].by == "technical-core-2"  # an action step: who claimed it
    assert (moves["reassure"].at, moves["reassure"].by) == (195.0, "patient_communication-core-0")
    assert moves["take_over"].at == pytest.approx(120.7)
    assert moves["take_over"].by == "technical-backup-0"  # who claimed it last, not the one blocked
    assert all(g.met for g in p.golden_hour)
    assert not [f for f in card.findings if f.kind == "golden_hour"]


def test_a_missing_golden_hour_move_is_a_finding():
    card = card_of(live_journal(with_hotline_done=False))  # the hotline step never done
    found = [f for f in card.findings if f.kind == "golden_hour"]
    assert len(found) == 1 and found[0].severity == "high" and found[0].step == "hotline"
    assert "reassure not done" in found[0].text and found[0].owner == "patient_communication"
    untagged = card_of(live_journal(with_hotline_done=True), drill(tag_reassure=False))
    found = [f for f in untagged.findings if f.kind == "golden_hour"]
    assert len(found) == 1 and found[0].capability == "plan" and "golden_hour: reassure" in found[0].action
    assert next(g for g in untagged.people.golden_hour if g.move == "reassure").step is None


def test_a_move_after_the_golden_hour_is_late():
    j = live_journal()
    for e in j.events:  # the identify done an hour and a half after the fault instead
        if e.get("step") == "identify" and e["type"] in ("person.done", "step.finished"):
            e["drill"] += 5400.0
            e["chain"]["real"] += 5400.0
    card = card_of(j)
    ident = next(g for g in card.people.golden_hour if g.move == "identify")
    assert not ident.met and ident.at == 5475.0
    late = next(f for f in card.findings if f.kind == "golden_hour" and f.step == "identify")
    assert late.severity == "medium" and "done late" in late.text


def test_the_plans_declared_waits_after_the_claim_are_not_the_machines():
    j = ci_journal()
    for e in j.events:  # the promotion's step waits a declared minute for replication after the claim
        if e.get("step") == "promote" and e["type"] == "step.finished":
            e["drill"] += 60.0
            e["chain"]["declared"] += 60.0
    promo = target(card_of(j), "dr-takeover")
    assert promo.waits == pytest.approx(60.0) and promo.machine == pytest.approx(0.6)
    assert promo.human == pytest.approx(270.0) and promo.breakdown["waits"] == promo.waits


def test_ci_modeled_figures_are_marked_in_the_score(tmp_path):
    card = card_of(ci_journal())
    ident, promo = target(card, "identify-in"), target(card, "dr-takeover")
    assert ident.modeled and ident.breakdown["modeled"] is True and ident.human == 150.0
    assert promo.modeled and promo.human == pytest.approx(270.0) and promo.machine == pytest.approx(0.6)
    assert not target(card, "detect").modeled  # the monitor's figure has no modeled part
    assert card.people.modeled and all(a.modeled for a in card.people.actions)
    assert all(g.modeled for g in card.people.golden_hour if g.at is not None)
    paths = write_reports(tmp_path, card, lang="en")
    score = json.loads(paths["json"].read_text())
    by_id = {t["id"]: t for t in score["targets"]}
    assert by_id["dr-takeover"]["modeled"] is True and by_id["dr-takeover"]["breakdown"]["modeled"] is True
    assert by_id["detect"]["modeled"] is False
    assert score["people"]["modeled"] is True


def result_row(md, tid):
    """The target's row of the report's targets table (the objectives table lists it too)."""
    return next(line for line in md.splitlines() if line.startswith(f"| {tid} ") and ("✓" in line or "✗" in line))


def test_the_report_marks_modeled_figures_and_lists_the_people(tmp_path):
    paths = write_reports(tmp_path / "ci", card_of(ci_journal()), lang="en")
    md, html = paths["md"].read_text(), paths["html"].read_text()
    row = result_row(md, "dr-takeover")
    assert "4m46s † modeled" in row and "human 4m30s · plan's waits 0s · machine 0.6s" in row
    assert "† modeled: the figure contains a simulated operator's" in md  # the legend
    assert "modeled" not in result_row(md, "detect")
    assert "† <span class=\"muted\">modeled</span>" in html and "† modeled: the figure" in html
    paths = write_reports(tmp_path / "live", card_of(live_journal(with_hotline_done=True)), lang="en")
    md, html = paths["md"].read_text(), paths["html"].read_text()
    for shown in ("technical-backup-0", "no access to the DR site", "the DBA phone went to voicemail",
                  "the hotline has 20 callers", "technical-core-0"):
        assert shown in md and shown in html
    assert "†" not in md and "†" not in html  # nothing of a live run is marked modeled
    claim = next(line for line in md.splitlines() if "technical-backup-0" in line and "claimed" in line)
    assert "F+2m (" in claim and re.search(r"\(\d\d:\d\d:\d\d\.\d{3}\)", claim)  # from the fault, and the clock
    assert "human 1m45s · plan's waits 0s · machine 0.7s" in result_row(md, "dr-takeover")


def test_a_live_run_at_another_scale_labels_its_figures(tmp_path):
    j = live_journal(with_hotline_done=True)
    j.events[0]["time_scale"] = 20.0
    md = write_reports(tmp_path, card_of(j), lang="en")["md"].read_text()
    assert "2m1s ×20" in result_row(md, "dr-takeover")
    assert "F+1m15s ×20" in md and "This live drill ran at ×20" in md  # the people's times, the legend
    summary = md.split("## 2. Executive summary\n\n")[1]
    assert summary.startswith("> This live drill ran at ×20")  # said before any figure
    ones = write_reports(tmp_path / "one", card_of(live_journal()), lang="en")["md"].read_text()
    assert "×" not in result_row(ones, "dr-takeover") and "This live drill ran at" not in ones


def test_a_drill_without_people_has_no_people_part():
    j = Synthetic(live=False, scale=60.0)
    j.add("run.finished", FAULT + 60, None, status="completed", reason=None)
    d = drill()
    for s in d.runbook:
        s.golden_hour = None
    assert card_of(j, d).people is None


def test_the_console_says_modeled_next_to_a_modeled_figure(capsys):
    card = card_of(ci_journal())
    cli._say_targets(card)
    lines = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()}
    assert "actual 4m46s modeled / target 5m" in lines["dr-takeover"]
    assert "[human 4m30s, plan's waits 0s, machine 0.6s]" in lines["dr-takeover"]
    assert "modeled" not in lines["detect"]
    assert "dr-takeover 4m46s modeled/5m" in summary_line(card)
    j = live_journal(with_hotline_done=True)
    j.events[0]["time_scale"] = 20.0
    cli._say_targets(card_of(j))
    live = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()}
    assert "actual 2m1s ×20 / target 5m" in live["dr-takeover"] and "modeled" not in live["dr-takeover"]
    assert "PASS 100/100 (live, figures at ×20) — " in summary_line(card_of(j))
    assert "figures at" not in summary_line(card_of(live_journal()))


def test_a_modeled_figure_is_worded_modeled_in_reasons_findings_and_strengths():
    tight = drill()
    tight.targets[1].within = 60.0  # the takeover missed: its reason and finding quote the figure
    card = card_of(ci_journal(), tight)
    missed = target(card, "dr-takeover")
    assert missed.reason.startswith("4m46s (modeled), ") and "（模拟）" in missed.reason_zh
    finding = next(f for f in card.findings if f.kind == "target" and f.target == "dr-takeover")
    assert finding.evidence.startswith("4m46s (modeled) against")
    strength = next(s for s in card.strengths if s.target == "identify-in")
    assert "2m45s (modeled) against 5m" in strength.text
    assert "modeled" not in next(s for s in card.strengths if s.target == "detect").text


def test_the_live_desk_journal_scores_measured_human_time(tmp_path):
    """The runbook engine with the live desk as its operator, people moving on a wall clock the test
    turns: the journal it writes scores the person's time as measured (not modeled), the absent
    nurse's backup covering, the golden hour's moves by who made them."""
    runbook = [RunbookStep.model_validate(s) for s in (
        {"id": "identify", "group": "technical", "when": {"alert": "any"}, "needs": "监控",
         "manual": {"duration": "1m"}, "golden_hour": "identify"},
        {"id": "reception", "group": "clinical_support", "when": {"after": "identify"},
         "needs": "线下扫码接诊", "manual": {"duration": "5m"}, "golden_hour": "take_over"})]
    live = load_drill(SHIPPED).drill.model_copy(update={
        "runbook": runbook, "people": People(absent=["吴护士长"]), "time_scale": 1.0,
        "targets": [Target(id="reception-open", measure="step", step="reception", within="10m")]})
    wall = [1_000_000.0]
    clock = DrillClock(1, now=lambda: wall[0])
    clock.start()
    journal = Journal(tmp_path / "journal.jsonl", clock)
    desk = Desk(clock)
    engine = RunbookEngine(runbook, ActionContext(None, journal, None, live, 1.0), journal, desk, clock)
    journal.subscribe(engine.on_event, critical=True)
    engine.arm()
    fault = journal.record("fault.injected", lane=clock.lane("scenario", 0.0, wall[0]), fault="crash",
                           fault_type="db_crash", target="pg-primary", detail={})
    wall[0] += 20
    monitor = clock.lane("monitor")
    monitor.anchor_to(fault)
    journal.record("alert.raised", lane=monitor, alert="db_down", severity="critical", detail={},
                   describe="the database is down")

    def when_open(step_id):
        deadline = time.monotonic() + 5
        while desk.steps[step_id].status != "open" and time.monotonic() < deadline:
            time.sleep(0.01)

    when_open("identify")
    wall[0] += 45  # 刘洋 answers 45 s after the step opened, done 30 s later
    desk.claim("identify", "刘洋")
    wall[0] += 30
    desk.done("identify", "刘洋", "the primary is down")
    when_open("reception")
    wall[0] += 100  # the backup nurse: the head nurse is absent
    desk.done("reception", "何护士", "offline desk open")
    deadline = time.monotonic() + 5
    while len([e for e in journal.events if e["type"] == "step.finished"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    engine.stop()
    journal.close()
    started = {"seq": 0, "wall": fault["wall"] - 5, "drill": None, "type": "run.started", "time_scale": 1.0,
               "time_model": "v2", "live": True}
    card = build_scorecard(live, JournalRead(events=[started, *journal.events]), [])
    r = card.targets[0]
    assert r.actual == pytest.approx(195.0, abs=0.05) and r.met and not r.modeled
    assert r.human == pytest.approx(175.0, abs=0.05)  # 75 s identifying + 100 s to open reception
    assert r.people == ["何护士", "刘洋"]
    assert card.people.absent[0].person == "吴护士长" and card.people.absent[0].covered_by == ["何护士"]
    moves = {g.move: g for g in card.people.golden_hour}
    assert (moves["identify"].by, moves["take_over"].by) == ("刘洋", "何护士")
    assert moves["identify"].at == pytest.approx(95.0, abs=0.05) and not moves["identify"].modeled
    claim = next(a for a in card.people.actions if a.what == "claimed" and a.step == "identify")
    assert claim.call_out == pytest.approx(45.0, abs=0.05)


def test_an_overdue_reminder_is_listed_in_the_report(tmp_path):
    j = live_journal()
    alert = next(e["seq"] for e in j.events if e["type"] == "alert.raised")
    j.on_step("step.overdue", "identify", alert, 25.0, 200.0, group="technical", waiting="done",
              deadline=180.0, claimed_by="technical-core-1", call=["technical-core-2"])
    card = card_of(j)
    (r,) = card.people.reminders
    assert (r.step, r.waiting, r.claimed_by, r.call) == ("identify", "done", "technical-core-1",
                                                         ["technical-core-2"])
    assert r.at == pytest.approx(215.0)  # drill 225 on the step's lane, the fault at drill 10
    md = write_reports(tmp_path, card, lang="en")["md"].read_text()
    assert "Overdue reminders pushed" in md and "call: technical-core-2" in md
    assert card_of(live_journal()).people.reminders == []
