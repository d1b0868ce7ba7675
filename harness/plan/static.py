"""The audit's static checks: what can be found wrong in the plan without starting anything.

Each check is a pure function `(plan, source) -> list[Finding]`: `plan` is the parsed document,
`source` says where a field is (`where(loc)` → 'file:line') and what a scenario file it names is
(`scenario_class(name)`), so a test can hand it a plan built in code.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Protocol

from ..clock import format_duration
from ..level_plan import CHANNEL_TITLES
from ..loader import Loc
from ..models import GROUP_TITLES, Target
from .findings import CheckResult, Finding
from .models import Plan, PlanFailureClass, PlanStep

# measures whose bound a failure class may tighten but not loosen (a step target is the class's own)
PLAN_BOUNDED = ("detection", "recovery", "rpo", "back_entry")
RESTORE_ACTIONS = frozenset({"restore_from_backup"})  # steps whose data point is the backups'


class Source(Protocol):
    def where(self, loc: Loc) -> str: ...

    def scenario_class(self, name: str) -> tuple[str | None, str | None]:
        """(the scenario's failure_class, None) or (None, why it cannot be read)."""
        ...


Check = Callable[[Plan, Source], list[Finding]]


def _cls_loc(i: int, *rest: Any) -> Loc:
    return ("failure_classes", i, *rest)


def step_channel(step: PlanStep) -> str | None:
    """The channel a step tells people through, when it tells anyone."""
    if step.channel:
        return step.channel
    if step.action == "notify":
        return step.with_.get("channel")
    if step.action == "set_notice" and step.with_.get("text"):
        return "app_banner"
    if step.http is not None and isinstance(step.http.json_, dict):
        return step.http.json_.get("channel")
    return None


def runs_at(step: PlanStep, level: int) -> bool:
    return step.when.level is None or level in step.when.level


def has_skill(member, needs: str) -> bool:
    """A member can do a step that needs `needs`: it is one of their skills, or words of their role."""
    want = needs.casefold()
    return any(s.casefold() == want for s in member.skills) or want in member.role.casefold()


# --- the checks ----------------------------------------------------------------------------------

def coverage(plan: Plan, src: Source) -> list[Finding]:
    """Every failure class has a scenario (of its failure class) and a runbook; its drills exist."""
    out = []
    for i, fc in enumerate(plan.failure_classes):
        if not fc.scenarios:
            out.append(Finding("coverage", "critical", f"failure class {fc.id!r} has no scenario: "
                               "nothing drills it", src.where(_cls_loc(i)),
                               {"failure_class": fc.id}, "write a scenario and name it in `scenarios`"))
        for j, name in enumerate(fc.scenarios):
            found, why = src.scenario_class(name)
            if why is not None:
                out.append(Finding("coverage", "critical", f"failure class {fc.id!r}: scenario "
                                   f"{name!r} {why}", src.where(_cls_loc(i, "scenarios", j)),
                                   {"failure_class": fc.id, "scenario": name}))
            elif found != fc.failure_class:
                out.append(Finding("coverage", "high", f"failure class {fc.id!r} ({fc.failure_class}) "
                                   f"names scenario {name!r}, which drills {found!r}",
                                   src.where(_cls_loc(i, "scenarios", j)),
                                   {"expected": fc.failure_class, "scenario_class": found}))
        if not fc.runbook:
            out.append(Finding("coverage", "critical", f"failure class {fc.id!r} has no runbook: "
                               "nobody knows what to do", src.where(_cls_loc(i)),
                               {"failure_class": fc.id}, "write its steps under `runbook`"))
    return out


def roster(plan: Plan, src: Source) -> list[Finding]:
    """Each group keeps its minimum of core and backup members."""
    out = []
    for name, group in plan.groups.items():
        for part in ("core", "backup"):
            have, need = len(getattr(group, part)), getattr(group.minimum, part)
            if have < need:
                out.append(Finding("roster", "high", f"{name} ({GROUP_TITLES[name]}) has {have} {part} "
                                   f"member(s), the plan requires {need}",
                                   src.where(("groups", name, part)),
                                   {"group": name, part: have, "minimum": need},
                                   f"name {need - have} more {part} member(s) on the roster"))
    return out


def owner_groups(plan: Plan, src: Source) -> list[Finding]:
    """Every group of the emergency command is staffed, and every step's owner group exists."""
    out = [Finding("owner_groups", "high", f"the plan has no {name} ({title}) group",
                   src.where(("groups",)), {"group": name})
           for name, title in GROUP_TITLES.items() if name not in plan.groups]
    for i, fc in enumerate(plan.failure_classes):
        for j, step in enumerate(fc.runbook):
            if step.group not in plan.groups:
                out.append(Finding("owner_groups", "critical", f"{fc.id}: step {step.id!r} belongs to "
                                   f"group {step.group!r}, which the plan does not staff",
                                   src.where(_cls_loc(i, "runbook", j, "group")),
                                   {"failure_class": fc.id, "step": step.id, "group": step.group}))
    return out


def skills(plan: Plan, src: Source) -> list[Finding]:
    """Someone in each step's group has the skill or role it needs; more than one, for 24 h cover.
    One finding per group and skill, naming every step that needs it."""
    needed: dict[tuple[str, str], list[tuple[str, str, str]]] = {}  # (group, needs) → steps
    for i, fc in enumerate(plan.failure_classes):
        for j, step in enumerate(fc.runbook):
            if step.group in plan.groups:  # else owner_groups says so
                needed.setdefault((step.group, step.needs), []).append(
                    (fc.id, step.id, src.where(_cls_loc(i, "runbook", j, "needs"))))
    out = []
    for (name, needs), steps in needed.items():
        group = plan.groups[name]  # type: ignore[index]
        able = [m.name for m in (*group.core, *group.backup) if has_skill(m, needs)]
        ev = {"group": name, "needs": needs, "members": able,
              "steps": [f"{fc}/{step}" for fc, step, _ in steps]}
        where = steps[0][2]
        users = ", ".join(ev["steps"][:4]) + (f" and {len(steps) - 4} more" if len(steps) > 4 else "")
        if not able:
            out.append(Finding("skills", "critical", f"nobody in {name} ({GROUP_TITLES[name]}) has "
                               f"{needs!r}, which {users} need(s)", where, ev,
                               f"train or name a {name} member with {needs}"))
        elif len(able) == 1:
            out.append(Finding("skills", "medium", f"only {able[0]} in {name} has {needs!r} "
                               f"({users}): no cover on call", where, ev,
                               f"name a backup member with {needs}"))
    return out


def channels(plan: Plan, src: Source) -> list[Finding]:
    """Each class's level has a step for every channel (and step) the level requires, running at
    that level; and the plan has a notice text for each required channel."""
    out = []
    for i, fc in enumerate(plan.failure_classes):
        for req in plan.levels.required.for_level(fc.level):
            if req.channel:
                ok = any(step_channel(s) == req.channel and runs_at(s, fc.level) for s in fc.runbook)
                what = f"the {CHANNEL_TITLES.get(req.channel, (req.channel,))[0]} ({req.channel})"
            else:
                ok = any(s.id == req.step and runs_at(s, fc.level) for s in fc.runbook)
                what = f"step {req.step!r}"
            if not ok:
                out.append(Finding(
                    "channels", "critical" if fc.level == 1 else "high",
                    f"{fc.id} (level {fc.level}): no step gives {what} that level {fc.level} requires",
                    src.where(_cls_loc(i, "runbook")),
                    {"failure_class": fc.id, "level": fc.level, "requires": req.key},
                    f"add a step for {req.key} that runs at level {fc.level}"))
    for level in (1, 2, 3):
        texts = plan.notices.get(level, {})  # type: ignore[call-overload]
        for req in plan.levels.required.for_level(level):
            if req.channel and not texts.get(req.channel):
                out.append(Finding("channels", "medium", f"level {level}: no notice text for "
                                   f"{req.channel}", src.where(("notices",)),
                                   {"level": level, "channel": req.channel},
                                   f"write notices.{level}.{req.channel}"))
    return out


def targets(plan: Plan, src: Source) -> list[Finding]:
    """Each class has its detection and recovery targets, its step targets name its steps, no
    class loosens a bound the plan states, and no step's deadline is looser than its target."""
    out = []
    bounds = {t.measure: t for t in plan.targets if t.measure in PLAN_BOUNDED and t.within is not None}
    for i, fc in enumerate(plan.failure_classes):
        here = src.where(_cls_loc(i, "targets"))
        if not fc.targets:
            out.append(Finding("targets", "critical", f"{fc.id} has no targets: nothing to judge "
                               "the response by", here, {"failure_class": fc.id}))
            continue
        for measure in ("detection", "recovery"):
            if not any(t.measure == measure for t in fc.targets):
                out.append(Finding("targets", "high", f"{fc.id} has no {measure} target", here,
                                   {"failure_class": fc.id, "missing": measure}))
        steps = {s.id: s for s in fc.runbook}
        for k, t in enumerate(fc.targets):
            where = src.where(_cls_loc(i, "targets", k))
            if t.measure == "step" and t.step not in steps:
                out.append(Finding("targets", "critical", f"{fc.id}: target {t.id!r} measures step "
                                   f"{t.step!r}, which its runbook does not have", where,
                                   {"failure_class": fc.id, "target": t.id, "step": t.step}))
            bound = bounds.get(t.measure)
            if bound is not None and t.within is not None and t.within > bound.within:  # type: ignore[operator]
                out.append(Finding("targets", "high", f"{fc.id}: target {t.id!r} allows "
                                   f"{format_duration(t.within)}, the plan's {bound.id!r} "
                                   f"{format_duration(bound.within)}", where,
                                   {"failure_class": fc.id, "target": t.id, "within": t.within,
                                    "plan_within": bound.within}))
            step = steps.get(t.step or "")
            if step is not None and step.deadline and t.within is not None and step.deadline > t.within:
                out.append(Finding("targets", "medium", f"{fc.id}: step {step.id!r} has a deadline of "
                                   f"{format_duration(step.deadline)}, its target {t.id!r} "
                                   f"{format_duration(t.within)}", where,
                                   {"failure_class": fc.id, "step": step.id, "deadline": step.deadline,
                                    "within": t.within}))
    return out


def rpo_targets(plan: Plan) -> list[tuple[str, Target, Loc]]:
    """The RPO targets the backups must meet: the plan's, and those of a class that restores from
    the backups (a class that fails over to a standby loses what replication had not sent)."""
    found = [("plan", t, ("targets", k)) for k, t in enumerate(plan.targets) if t.measure == "rpo"]
    for i, fc in enumerate(plan.failure_classes):
        if any(s.action in RESTORE_ACTIONS for s in fc.runbook):
            found += [(fc.id, t, _cls_loc(i, "targets", k)) for k, t in enumerate(fc.targets)
                      if t.measure == "rpo"]
    return found


def backup_schedule(plan: Plan, src: Source) -> list[Finding]:
    """The schedule can meet the RPO targets, and where copies go agrees with the schedule.

    A backup is consistent as of its end, and the next one ends one interval later: a restore from
    the backups loses up to one interval (the incremental's, else the full's) of writes."""
    b = plan.backups
    worst = b.incremental_every or b.full_every
    kind = "incremental" if b.incremental_every else "full"
    out = []
    for owner, t, loc in rpo_targets(plan):
        if t.within is not None and worst > t.within:
            out.append(Finding(
                "backup_schedule", "critical",
                f"{'the plan' if owner == 'plan' else owner}: RPO target {t.id!r} is "
                f"{format_duration(t.within)}, but a {kind} backup every {format_duration(worst)} can "
                f"lose up to {format_duration(worst)} of writes", src.where(loc),
                {"target": t.id, "within": t.within, "interval": worst, "kind": kind,
                 "schedule": src.where(("backups",))},
                f"back up at least every {format_duration(t.within)} (or archive WAL continuously)"))
    if b.incremental_every and b.incremental_every >= b.full_every:
        out.append(Finding("backup_schedule", "low", "incrementals are due no more often than fulls: "
                           "none is ever taken", src.where(("backups", "incremental_every")),
                           {"incremental_every": b.incremental_every, "full_every": b.full_every}))
    tape = "offline_tape" in b.copies
    if tape != b.offline_copy:
        out.append(Finding("backup_schedule", "medium",
                           "copies lists the offline tape but offline_copy is off" if tape else
                           "offline_copy is on but copies does not list the offline tape",
                           src.where(("backups", "copies")),
                           {"copies": list(b.copies), "offline_copy": b.offline_copy}))
    return out


def triggers(plan: Plan, src: Source) -> list[Finding]:
    """Triggers that cannot work or contradict each other: unknown alerts, the same alerts leading to
    two levels, level thresholds out of order, steps after a step that never runs, or never at the
    levels they run at."""
    from ..monitor.monitor import RULES
    known = set(RULES)
    out = []
    lv = plan.levels
    if lv.level1_above <= lv.level2_above:
        out.append(Finding("triggers", "critical", f"level 1 starts above {lv.level1_above:.0%} of "
                           f"patients affected, level 2 above {lv.level2_above:.0%}: level 1 must be "
                           "the higher share", src.where(("levels",)),
                           {"level1_above": lv.level1_above, "level2_above": lv.level2_above}))
    by_alerts: dict[frozenset[str], tuple[int, PlanFailureClass]] = {}
    for i, fc in enumerate(plan.failure_classes):
        for k, alert in enumerate(fc.trigger.alerts):
            if alert not in known:
                out.append(Finding("triggers", "high", f"{fc.id}: trigger alert {alert!r} is no "
                                   "alert the board raises", src.where(_cls_loc(i, "trigger", "alerts", k)),
                                   {"failure_class": fc.id, "alert": alert, "known": sorted(known)}))
        key = frozenset(fc.trigger.alerts)
        if key in by_alerts and by_alerts[key][1].level != fc.level:
            j, other = by_alerts[key]
            out.append(Finding("triggers", "medium", f"{fc.id} (level {fc.level}) and {other.id} "
                               f"(level {other.level}) are triggered by the same alerts "
                               f"{sorted(key)}: the alerts alone cannot tell the level",
                               src.where(_cls_loc(i, "trigger")),
                               {"classes": [other.id, fc.id], "alerts": sorted(key),
                                "other": src.where(_cls_loc(j, "trigger"))}))
        by_alerts.setdefault(key, (i, fc))
        steps = {s.id: s for s in fc.runbook}
        for j, step in enumerate(fc.runbook):
            where = src.where(_cls_loc(i, "runbook", j, "when"))
            if step.when.alert and step.when.alert != "any" and step.when.alert not in known:
                out.append(Finding("triggers", "high", f"{fc.id}: step {step.id!r} waits for alert "
                                   f"{step.when.alert!r}, which the board never raises", where,
                                   {"failure_class": fc.id, "step": step.id, "alert": step.when.alert}))
            before = steps.get(step.when.after or "")
            if step.when.after and before is None:
                out.append(Finding("triggers", "critical", f"{fc.id}: step {step.id!r} runs after "
                                   f"{step.when.after!r}, which its runbook does not have: it never "
                                   "runs", where, {"failure_class": fc.id, "step": step.id,
                                                   "after": step.when.after}))
            elif before is not None and step.when.level and before.when.level \
                    and not set(step.when.level) & set(before.when.level):
                out.append(Finding("triggers", "medium", f"{fc.id}: step {step.id!r} (levels "
                                   f"{step.when.level}) runs after {before.id!r}, which runs only at "
                                   f"levels {before.when.level}: it never runs", where,
                                   {"failure_class": fc.id, "step": step.id, "after": before.id}))
    return out


CHECKS: dict[str, tuple[str, Check]] = {
    "coverage": ("every failure class has a scenario and a runbook", coverage),
    "roster": ("roster minimums (core and backup members per group)", roster),
    "owner_groups": ("owner groups exist", owner_groups),
    "skills": ("the skill or role each step needs is in its group", skills),
    "channels": ("each level's required channels have a step and a text", channels),
    "targets": ("targets present and consistent with the plan", targets),
    "backup_schedule": ("the backup schedule can meet the RPO target", backup_schedule),
    "triggers": ("triggers do not contradict each other", triggers),
}


def run_static(plan: Plan, src: Source) -> list[CheckResult]:
    """Every static check, timed."""
    results = []
    for name, (title, check) in CHECKS.items():
        t0 = time.monotonic()
        found = check(plan, src)
        results.append(CheckResult(name, title, "static", found, seconds=time.monotonic() - t0))
    return results

