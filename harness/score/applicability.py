"""Targets that do not apply to a run are n/a: neither met nor missed, with the reason.

A target is judged n/a only when it could not be measured and the journal of a completed run shows
it had nothing to measure; a target that should have been reached and was not stays missed, and in
a run that did not complete nothing is n/a (what it did not get to is unproven, not inapplicable).

- recovery: patients never degraded — no alert that blocks patients was raised after the fault
  (an alert blocks patients when its event says so, `blocks_patients` or the monitor rule's
  `patient_facing`, or else when it is critical) and
  neither the patients' error rate during the incident nor the affected share rose above the
  steady-state allowance (e.g. a standby app server dies and no patient fails);
- rpo: nothing that can lose acknowledged writes happened — no promotion, no database crash, no
  data-loss fault (the same trigger that makes the run measure RPO: stack/rpo.py);
- back_entry: no outage (the recovery rule above holds, or no fault) or no offline record was taken
  (no receipt and no record read by a back-entry run): nothing to back-enter;
- step: the step never started because its trigger legitimately never held: the level that applied
  (the declared one, or the implied one when more severe) is not one the step runs at, the alert it
  waits for was never raised, or the step it follows was itself not needed. A step whose trigger
  held, or whose predecessor failed or was needed and did not run, should have run: missed.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..models import RunbookStep, Target
from ..stack.rpo import rpo_trigger
from .card import LevelResult, PatientImpact

STEADY_ALLOWANCE = 0.02  # the scenario's steady-state error allowance when none is given


@dataclass(frozen=True)
class NotApplicable:
    reason: str
    reason_zh: str


@dataclass
class Evidence:
    """What the rules read from the journal: after the fault (steps, alerts) or the whole run."""
    alerts: set[str] = field(default_factory=set)
    blocking: list[str] = field(default_factory=list)
    started: set[str] = field(default_factory=set)
    finished_ok: set[str] = field(default_factory=set)
    rpo_trigger: dict | None = None
    fault: bool = False
    completed: bool = False

    @classmethod
    def of(cls, events: Iterable[dict]) -> "Evidence":
        events = list(events)
        ev = cls(rpo_trigger=rpo_trigger(events))
        for e in events:
            t = e.get("type")
            if t == "fault.injected":
                ev.fault = True
            elif t == "alert.raised" and ev.fault:
                name = str(e.get("alert"))
                ev.alerts.add(name)
                blocks = e.get("blocks_patients", e.get("patient_facing"))
                if blocks is True or (blocks is None and e.get("severity") == "critical"):
                    ev.blocking.append(name)
            elif t == "step.started":
                ev.started.add(str(e.get("step")))
            elif t == "step.finished" and e.get("ok") is True:
                ev.finished_ok.add(str(e.get("step")))
            elif t == "run.finished":
                ev.completed = e.get("status") == "completed"
        return ev


def applied_levels(level: LevelResult) -> set[int]:
    """The levels a step's `level` trigger is judged against: the declared level, and the implied
    one when it is more severe (a smaller number)."""
    out = {level.declared} if level.declared in (1, 2, 3) else set()
    if level.implied in (1, 2, 3) and (level.declared is None or level.implied < level.declared):
        out.add(level.implied)
    return out  # type: ignore[return-value]


def judge(targets: list[Target], runbook: list[RunbookStep], events: Iterable[dict],
          level: LevelResult, impact: PatientImpact,
          allowance: float = STEADY_ALLOWANCE, offline_taken: int = 0) -> dict[str, NotApplicable]:
    """Target id → why it does not apply, for the targets whose n/a condition holds.
    `offline_taken`: the offline records the run knows of (receipts, or read by a back-entry)."""
    ev = Evidence.of(events)
    steps = {s.id: s for s in runbook}
    out: dict[str, NotApplicable] = {}
    if not ev.completed:
        return out
    for t in targets:
        why = None
        if t.measure == "recovery":
            why = _recovery(ev, level, impact, allowance)
        elif t.measure == "rpo":
            why = _rpo(ev)
        elif t.measure == "back_entry":
            why = _back_entry(ev, level, impact, allowance, offline_taken)
        elif t.measure == "step" and t.step in steps:
            needed, why = _step_needed(t.step, steps, ev, applied_levels(level), set())
            why = None if needed else why
        if why is not None:
            out[t.id] = why
    return out


def _recovery(ev: Evidence, level: LevelResult, impact: PatientImpact,
              allowance: float) -> NotApplicable | None:
    if not ev.fault or ev.blocking:
        return None
    rate = impact.during.error_rate or 0.0
    share = level.share if level.share is not None else (impact.affected_share or 0.0)
    if rate > allowance or share > allowance:
        return None
    return NotApplicable(
        f"patients never degraded: no alert that blocks patients, patients' error rate "
        f"{rate:.1%} and affected share {share:.1%} within the {allowance:.0%} steady-state allowance",
        f"患者服务未受影响：无阻断患者的告警，故障期间患者错误率 {rate:.1%}、受影响比例 {share:.1%}，"
        f"均在稳态允许的 {allowance:.0%} 以内")


def _back_entry(ev: Evidence, level: LevelResult, impact: PatientImpact, allowance: float,
                offline_taken: int) -> NotApplicable | None:
    if not ev.fault:
        return NotApplicable("no fault was injected: no outage, nothing to back-enter",
                             "未注入故障：无停机，无需补录")
    calm = _recovery(ev, level, impact, allowance)
    if calm is not None:
        return NotApplicable(f"no outage: {calm.reason}", f"无停机：{calm.reason_zh}")
    if offline_taken <= 0:
        return NotApplicable("no offline record was taken during the outage: nothing to back-enter",
                             "停机期间无线下登记记录：无需补录")
    return None


def _rpo(ev: Evidence) -> NotApplicable | None:
    if ev.rpo_trigger is not None:
        return None
    return NotApplicable(
        "no promotion, no database crash and no data-loss fault: no acknowledged write could be lost",
        "未发生主备切换、数据库宕机或数据丢失类故障：已确认的写入不会丢失")


def _step_needed(sid: str, steps: dict[str, RunbookStep], ev: Evidence, levels: set[int],
                 seen: set[str]) -> tuple[bool, NotApplicable | None]:
    """(should the step have run, why not when it should not). A step that started was needed."""
    if sid in ev.started or sid in seen or sid not in steps:
        return True, None
    seen.add(sid)
    on = steps[sid].when
    held_not: list[tuple[str, str]] = []
    if on.level and not levels & set(on.level):
        runs_at = ", ".join(str(x) for x in on.level)
        applied = "/".join(str(x) for x in sorted(levels)) or "none"
        held_not.append((f"level {applied} applied and the step runs at level {runs_at}",
                         f"适用的响应级别为 {applied}，该步骤仅在 {runs_at} 级执行"))
    if on.alert and not (ev.alerts if on.alert == "any" else on.alert in ev.alerts):
        held_not.append((f"alert {on.alert} was never raised", f"告警 {on.alert} 未触发"))
    if on.after and on.after not in ev.finished_ok:
        if on.after in ev.started:
            return True, None  # its predecessor ran and failed: the chain broke, not the trigger
        needed, why = _step_needed(on.after, steps, ev, levels, seen)
        if needed:
            return True, None  # its predecessor should have run and did not
        held_not.append((f"it follows {on.after}, which was not needed ({why.reason if why else ''})",
                         f"其前置步骤 {on.after} 无需执行（{why.reason_zh if why else ''}）"))
    if not held_not:
        return True, None
    return False, NotApplicable(
        f"step {sid} was not needed: its trigger never held (" + "; ".join(e for e, _ in held_not) + ")",
        f"步骤 {sid} 无需执行：触发条件未满足（" + "；".join(z for _, z in held_not) + "）")
