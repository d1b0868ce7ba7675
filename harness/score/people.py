"""The people's part of a drill, read from the journal: who claimed, did or blocked which step and
when (`person.claimed`, `person.done`, `person.blocked`), who was absent (`person.absent`) and who
covered, the observer's notes, the injects shown, the overdue reminders pushed, the golden hour's four moves, and each target's
human and machine parts.

A figure's human part is what people took on its causal chain: on each step's lane, from the step's
opening (its lane's anchor: the trigger) to a person's claim, or to the done of a manual step. After
that, the plan's declared waits in the step (a check's minute, a replication wait) are its `waits`
part, compressed by the scale like any declared wait, and the machine part is the real work the step
did (the action, the program, the call), counted 1:1. Whatever else
the figure holds (detection, observation windows) is neither. In an automatic run the moves are a
simulated operator's: the events say `modeled: true`, and every figure that contains one is marked
modeled, never shown as measured.

A manual step as a target (`measure: step`) is timed from the fault to the step's finish: in a live
run that is the person's done; in an automatic run the simulated operator's modeled duration, so
the figure is modeled.

The golden hour (黄金响应期): a step tagged `golden_hour: identify|classify|reassure|take_over`
makes that move; the move is timed from the fault to its done (a person's, else the step's good
finish) and must fall within the first 60 drill minutes. A move no step is tagged with, or that was
never done, is a finding; so is one done late. Scored only when the runbook tags at least one step.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from ..models import GOLDEN_HOUR, GOLDEN_MOVES, Drill
from ..plan.static import has_skill
from .card import (AbsentPerson, Finding, GoldenMoveResult, InjectShown, ObserverNote, PeopleResult,
                   PersonAction, Reminder)
from .facts import Facts
from .values import num, text, wall_of

PERSON_MOVES = {"person.claimed": "claimed", "person.done": "done", "person.blocked": "blocked"}
MOVE_NAMES = {"identify": ("identify", "识别"), "classify": ("classify", "分级"),
              "reassure": ("reassure", "安抚"), "take_over": ("take over", "承接")}
# who answers for a move when no step is tagged with it (the plan's groups)
MOVE_OWNERS = {"identify": "technical", "classify": "technical", "reassure": "patient_communication",
               "take_over": "clinical_support"}


class Parts(NamedTuple):
    """A figure's human, declared-wait and machine parts (drill s), who was on it, and whether any
    of it is modeled."""
    human: float
    waits: float
    machine: float
    people: list[str]
    modeled: bool


def _modeled(e: dict | None) -> bool:
    if not e:
        return False
    detail = e.get("detail")
    return e.get("modeled") is True or (isinstance(detail, dict) and detail.get("modeled") is True)


def _tier(v: Any) -> str | None:
    return v if v in ("core", "backup") else None


# --- who did what --------------------------------------------------------------------------------

def actions(f: Facts) -> list[PersonAction]:
    out = []
    for e in f.events:
        what = PERSON_MOVES.get(e.get("type"))  # type: ignore[arg-type]
        if what is None or not isinstance(e.get("step"), str) or not isinstance(e.get("person"), str):
            continue
        out.append(PersonAction(step=e["step"], person=e["person"], group=text(e.get("group")),
                                tier=_tier(e.get("tier")), what=what, at=f.since_fault(e), wall=wall_of(e),
                                call_out=num(e.get("call_out")) if what == "claimed" else None,
                                note=str(e.get("reason") if what == "blocked" else e.get("note") or ""),
                                modeled=_modeled(e)))
    return out


def _absent(drill: Drill, f: Facts, done: list[PersonAction]) -> list[AbsentPerson]:
    """Each absent person, and who covered: whoever claimed (else did) a step of their group that
    needed one of their skills or their role, and was not blocked on it."""
    members = {m.name: m for team in drill.teams.values() for m in (*team.core, *team.backup)}
    out = []
    for e in f.events:
        if e.get("type") != "person.absent" or not isinstance(e.get("person"), str):
            continue
        name, group = e["person"], text(e.get("group"))
        m = members.get(name)
        steps = {s.id for s in drill.runbook if s.group == group and m is not None
                 and getattr(s, "needs", None) and has_skill(m, s.needs)}
        blocked = {(a.step, a.person) for a in done if a.what == "blocked"}  # handed it on: not covering
        covered: list[str] = []
        for a in sorted(done, key=lambda a: a.what != "claimed"):
            if a.step in steps and a.what != "blocked" and (a.step, a.person) not in blocked \
                    and a.person not in covered and a.person != name:
                covered.append(a.person)
        out.append(AbsentPerson(person=name, group=group, tier=_tier(e.get("tier")),
                                why=e.get("why") if e.get("why") in ("named", "drawn") else None,
                                seed=e.get("seed") if isinstance(e.get("seed"), int) else None,
                                covered_by=covered))
    return out


def people_result(drill: Drill, f: Facts, live: bool = False) -> PeopleResult | None:
    """The people's part; None when the journal has none of it and no step is tagged for the golden
    hour (a drill that is not about people)."""
    acts = actions(f)
    notes = [ObserverNote(by=str(e.get("by") or ""), text=str(e.get("text") or ""), at=f.since_fault(e))
             for e in f.events if e.get("type") == "observer.note"]
    injects = [InjectShown(inject=str(e.get("inject") or ""), text=str(e.get("text") or ""),
                           to=text(e.get("to")), at=f.since_fault(e))
               for e in f.events if e.get("type") == "inject.shown"]
    reminders = [Reminder(step=str(e.get("step")), group=text(e.get("group")), waiting=text(e.get("waiting")),
                          claimed_by=text(e.get("claimed_by")), at=f.since_fault(e),
                          call=[str(n) for n in e.get("call") or []])
                 for e in f.events if e.get("type") == "step.overdue"]
    absent = _absent(drill, f, acts)
    golden = golden_hour(drill, f)
    if not (acts or notes or injects or absent or golden or reminders):
        return None
    return PeopleResult(actions=acts, absent=absent, notes=notes, injects=injects, reminders=reminders,
                        golden_hour=golden,
                        modeled=any(a.modeled for a in acts) or any(g.modeled for g in golden),
                        time_scale=f.scale, live=live)


# --- a figure's human and machine parts ----------------------------------------------------------

def _step_span(sid: str, node: dict, chain: dict, f: Facts) -> tuple[float, float, float, list[str], bool]:
    """One step's part of a figure: (human, waits, machine, people, modeled) on its lane, from its
    opening (the lane's anchor) to `node`, the step's event the figure passed through."""
    end = num(node.get("drill"))
    if end is None:
        return 0.0, 0.0, 0.0, [], _modeled(node)
    declared = float(chain.get("declared") or 0.0)
    opening = end - declared - float(chain.get("real") or 0.0)
    lane, cause, upto = chain.get("lane"), chain.get("cause"), node.get("seq")
    mine = [e for e in f.events if e.get("step") == sid and isinstance(e.get("chain"), dict)
            and e["chain"].get("lane") == lane and e["chain"].get("cause") == cause
            and isinstance(e.get("seq"), int) and isinstance(upto, int) and e["seq"] <= upto]
    modeled = any(_modeled(e) for e in mine) or _modeled(node)
    who = list(dict.fromkeys(str(e.get("person")) for e in mine
                             if e.get("type") in ("person.claimed", "person.done") and isinstance(e.get("person"), str)))
    span = max(0.0, end - opening)
    started = next((e for e in mine if e.get("type") == "step.started"), None)
    if (started or node).get("kind") == "manual":  # the step is the person's, claim to done
        return span, 0.0, 0.0, who, modeled
    # the last claim: a person who was blocked handed the step on, and the work began after it
    claimed = next((e for e in reversed(mine) if e.get("type") == "person.claimed"), None)
    claim = num((claimed or {}).get("drill"))
    human = 0.0 if claim is None else min(span, max(0.0, claim - opening))
    # the declared waits after the claim: the lane's declared account at the end, less at the claim
    before = float((claimed or {}).get("chain", {}).get("declared") or 0.0) if claim is not None else 0.0
    waits = min(span - human, max(0.0, declared - before))
    return human, waits, max(0.0, span - human - waits), who, modeled


def figure_parts(end: dict | None, f: Facts, chain_key: str = "chain") -> Parts | None:
    """The human and machine parts of a figure that ends at `end`, summed over the steps on its
    causal chain; None when no step is on it (detection, a v1 journal)."""
    human = waits = machine = 0.0
    who: list[str] = []
    modeled, steps = _modeled(end), 0
    for node, chain in f.causal_chain(end, chain_key):
        sid, lane = node.get("step"), chain.get("lane")
        if not isinstance(sid, str) or lane != f"step:{sid}":
            continue
        h, w, m, people, mod = _step_span(sid, node, chain, f)
        human, waits, machine = human + h, waits + w, machine + m
        modeled, steps = modeled or mod, steps + 1
        who += [p for p in people if p not in who]
    if not steps:
        return Parts(0.0, 0.0, 0.0, [], True) if modeled else None
    return Parts(round(human, 3), round(waits, 3), round(machine, 3), who, modeled)


# --- the golden hour ------------------------------------------------------------------------------

def _move_done(steps: set[str], f: Facts) -> tuple[dict | None, str | None, bool]:
    """The move's done (a person's, else the step's good finish), who made it, and whether modeled."""
    ends = [e for e in f.events if e.get("step") in steps and (
        e.get("type") == "person.done" or (e.get("type") == "step.finished" and e.get("ok") is True))]
    done = next((e for e in ends if e.get("type") == "person.done"), None) or (ends[0] if ends else None)
    if done is None:
        return None, None, False
    who = done.get("person") if isinstance(done.get("person"), str) else next(
        (e.get("person") for e in reversed(f.events) if e.get("type") == "person.claimed"
         and e.get("step") == done.get("step") and isinstance(e.get("person"), str)), None)
    parts = figure_parts(done, f)  # its time holds whatever was modeled upstream on its chain too
    modeled = (parts is not None and parts.modeled) or any(
        _modeled(e) for e in f.events if e.get("step") == done.get("step")
        and e.get("type") in ("person.claimed", "person.done"))
    return done, who, modeled


def golden_hour(drill: Drill, f: Facts) -> list[GoldenMoveResult]:
    """The four moves in order; [] when no step is tagged with one or no fault was injected."""
    tagged = {m: [s.id for s in drill.runbook if s.golden_hour == m] for m in GOLDEN_MOVES}
    if not any(tagged.values()) or f.t_fault is None:
        return []
    out = []
    for move in GOLDEN_MOVES:
        en, zh = MOVE_NAMES[move]
        ids = tagged[move]
        if not ids:
            out.append(GoldenMoveResult(move=move, reason=f"no runbook step is tagged golden_hour: {move}",
                                        reason_zh=f"没有标注为「{zh}」（golden_hour: {move}）的处置步骤"))
            continue
        done, who, modeled = _move_done(set(ids), f)
        at = f.since_fault(done)
        r = GoldenMoveResult(move=move, step=str(done.get("step")) if done else ids[0], by=who, at=at,
                             within=GOLDEN_HOUR, met=at is not None and at <= GOLDEN_HOUR, modeled=modeled)
        if at is None:
            r.reason = f"{en}: step {', '.join(ids)} was never done"
            r.reason_zh = f"{zh}：步骤 {', '.join(ids)} 未完成"
        elif not r.met:
            r.reason = f"{en}: done {at / 60:.0f} min after the fault, past the golden hour"
            r.reason_zh = f"{zh}：故障后 {at / 60:.0f} 分钟完成，超出黄金响应期"
        out.append(r)
    return out


def golden_hour_findings(drill: Drill, moves: list[GoldenMoveResult]) -> list[Finding]:
    """A move missing or never done: high; done after the golden hour: medium."""
    groups = {s.id: s.group for s in drill.runbook}
    out = []
    for g in moves:
        if g.met:
            continue
        en, zh = MOVE_NAMES[g.move]
        owner = groups.get(g.step or "", MOVE_OWNERS[g.move])
        untagged = g.step is None
        late = g.at is not None
        by = f" by {g.by}" if g.by else ""
        out.append(Finding(
            kind="golden_hour", severity="medium" if late else "high", owner=owner, step=g.step, at=g.at,
            capability="plan" if untagged else "training",
            text=f"golden hour: {en} " + ("done late" if late else "not done") + by,
            text_zh=f"黄金响应期：「{zh}」" + ("超时完成" if late else "未完成"),
            evidence=(g.reason or "") + (" (modeled: a simulated operator's time)" if g.modeled else ""),
            evidence_zh=g.reason_zh + ("（模拟人员用时）" if g.modeled else ""),
            action=(f"Tag the runbook step that makes the '{en}' move (golden_hour: {g.move}) and give "
                    f"it an owner on the roster." if untagged else
                    f"Rehearse '{en}' with the people on the roster, core and backup, so that it is "
                    f"done within the first 60 minutes."),
            action_zh=(f"在预案中为「{zh}」标注处置步骤（golden_hour: {g.move}）并指定值班责任人。" if untagged
                       else f"与值班名单（核心与后备）演练「{zh}」，确保在前 60 分钟内完成。")))
    return out
