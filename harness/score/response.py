"""The plan's level-dependent response, scored: pure functions of the journal events and the card's
parts → findings.

The plan (应急预案) keeps level 3 (single functions, <20% of users) to the technical group alone,
and a false alarm out of production. What each level requires to be sent and done (broadcast,
hotline, notices, offline reception) is the drill's `levels.required` (level_plan.py), checked in
plan_steps.py.

Findings:
- at level 3, steps of groups other than the technical group (low: the plan keeps them out);
- a failover (promotion, VIP / line / interface switch: an action that declares `failover`, run by
  a step or by a script's move) after the three-step check found no system failure (high: a false
  alarm must not move production).

Edge cases: no level declared → no level-3 finding; only events after the fault count.
"""
from __future__ import annotations

from typing import Any, Iterable

from ..runbook.actions import ACTIONS
from .card import Finding, LevelResult, Overview, StepResult
from .findings import merged


def _incident(events: Iterable[dict]) -> tuple[float | None, list[dict]]:
    events = list(events)
    fault = next((e for e in events if e.get("type") == "fault.injected"), None)
    t_fault = fault.get("wall") if fault else None
    if not isinstance(t_fault, (int, float)):
        return None, events
    return float(t_fault), [e for e in events if isinstance(e.get("wall"), (int, float))
                            and e["wall"] >= t_fault]


def response_findings(events: Iterable[dict], level: LevelResult, steps: list[StepResult],
                      overview: Overview | None = None) -> list[Finding]:
    """Findings on the level-dependent response (see the module docstring); unnumbered."""
    t_fault, during = _incident(events)
    out: list[Finding] = []
    if t_fault is None:
        return out
    scale = overview.time_scale if overview is not None else 1.0

    def rel(wall: Any) -> float | None:
        return round((wall - t_fault) * scale, 3) if isinstance(wall, (int, float)) else None

    declared = level.declared
    ran = [s for s in steps if s.status in ("ok", "failed", "unfinished")]
    if declared == 3:
        others = [s for s in ran if s.group not in (None, "technical")
                  and (s.started is None or level.declared_at is None or s.started >= level.declared_at)]
        if others:
            names = ", ".join(f"{s.id} ({s.group})" for s in others)
            out.append(Finding(
                kind="response", severity="low", capability="organisation", owner="technical",
                at=others[0].started,
                text="level 3 response mobilised more than the technical group",
                evidence=f"steps after the level-3 declaration: {names}",
                action="Gate these steps on levels 1–2: at level 3 the technical group handles it alone.",
                text_zh="三级响应动员了技术组以外的小组",
                evidence_zh=f"宣布三级响应后执行的步骤：{names}",
                action_zh="将这些步骤限定为一、二级响应：三级响应由技术组单独处置。"))

    check = next((e for e in reversed(during) if e.get("type") == "check.finished"), None)
    if check is not None and check.get("verdict") == "not_system_failure":
        steps = [s for s in ran if ACTIONS.declares(s.action, "failover")]
        # a script's move (`hospital-drill ctl`) moves production like the step that would run it
        moves = [e for e in during if e.get("type") == "control.move"
                 and ACTIONS.declares(e.get("action"), "failover")]
        names = ", ".join([f"{s.id} ({s.action}, {s.status})" for s in steps]
                          + [f"{e.get('step') or 'a terminal'}: ctl {e.get('verb')} "
                             f"({e.get('action')}, {'ok' if e.get('ok') else 'failed'})" for e in moves])
        first = min([(s.started, s.id) for s in steps if s.started is not None]
                    + [(rel(e.get("wall")), e.get("step")) for e in moves], default=(None, None),
                    key=lambda x: x[0])
        if names:
            out.append(Finding(
                kind="response", severity="high", capability="plan", owner="technical",
                at=first[0] if first[0] is not None else rel(check.get("wall")),
                step=first[1] or (steps[0].id if steps else None),
                text="failover on a false alarm",
                evidence=f"the three-step check found no system failure ({check.get('reason') or 'no reason'}),"
                         f" yet: {names}",
                action="Gate failover steps on levels 1–2 (after the three-step check), so that a false "
                       "alarm is handled without moving production.",
                text_zh="假故障时执行了切换",
                evidence_zh=f"三步核查结论为非系统故障，但执行了：{names}",
                action_zh="切换类步骤仅在一、二级响应（三步核查之后）执行，假故障不得切换生产。"))
    return out


def with_response_findings(findings: list[Finding], events: Iterable[dict], level: LevelResult,
                           steps: list[StepResult], overview: Overview) -> list[Finding]:
    """`findings` and the response findings, in the card's order, numbered F1… again."""
    return merged(findings, response_findings(events, level, steps, overview), overview)
