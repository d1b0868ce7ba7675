"""The plan's required channels and steps per response level (the drill's `levels.required`, see
level_plan.py), checked against what was done during the incident, for the level that applied: the
declared level, or the implied one when it is more severe (an under-declared incident still owes
its patients the channels of its real level).

Done means: a channel used by a `notification.sent` after the fault (a banner cleared is not a
notice), or a required step finished ok after the fault. Each one missing is a finding of kind
`plan_step` — high at level 1 (more than half the patients cannot be served and must be told where
to go), medium otherwise — and costs score (policy.overall_score, COSTS['plan_step']).

Edge cases: no fault or no level at all (neither declared nor implied) → no check; a level whose
requirements are `[]` → a check with no items and no finding.
"""
from __future__ import annotations

from ..level_plan import RequiredByLevel
from .card import Finding, LevelResult, NotificationEntry, PlanCheck, PlanItem, StepResult

CLEARED = "(cleared)"


def applied_level(level: LevelResult) -> tuple[int, str] | None:
    """(level, 'declared' | 'implied'): the declared level, or the implied one when more severe."""
    declared = level.declared if level.declared in (1, 2, 3) else None
    implied = level.implied if level.implied in (1, 2, 3) else None
    if implied is not None and (declared is None or implied < declared):
        return implied, "implied"
    if declared is not None:
        return declared, "declared"
    return None


def check_plan(required: RequiredByLevel, level: LevelResult, notifications: list[NotificationEntry],
               steps: list[StepResult], *, incident: bool = True) -> PlanCheck | None:
    """What the applied level requires, each item done or not (pure; see the module docstring)."""
    applied = applied_level(level)
    if applied is None or not incident:
        return None
    lv, basis = applied
    sent: dict[str, float | None] = {}
    for n in notifications:
        if n.channel and n.text != CLEARED and (n.at is None or n.at >= 0):
            sent.setdefault(n.channel, n.at)
    finished = {s.id: s.finished for s in steps if s.status == "ok"
                and (s.finished is None or s.finished >= 0)}
    items = []
    for req in required.for_level(lv):
        en, zh = req.titles()
        if req.channel:
            items.append(PlanItem(kind="channel", name=req.channel, title=en, title_zh=zh,
                                  done=req.channel in sent, at=sent.get(req.channel)))
        else:
            items.append(PlanItem(kind="step", name=str(req.step), title=en, title_zh=zh,
                                  done=req.step in finished, at=finished.get(str(req.step))))
    return PlanCheck(level=lv, basis=basis, items=items)


def plan_findings(plan: PlanCheck | None, level: LevelResult, notifications: list[NotificationEntry],
                  steps: list[StepResult]) -> list[Finding]:
    """One finding per required item not done (unnumbered; findings.merged numbers them)."""
    if plan is None:
        return []
    used = sorted({n.channel for n in notifications if n.channel and n.text != CLEARED
                   and (n.at is None or n.at >= 0)})
    sent = ", ".join(used) or "none"
    why_en = (f"level {plan.level} declared" if plan.basis == "declared" else
              f"level {plan.level} implied by the affected share (declared: "
              f"{level.declared or 'none'})")
    why_zh = (f"已宣布 {plan.level} 级响应" if plan.basis == "declared" else
              f"受影响患者比例对应 {plan.level} 级（宣布：{level.declared or '无'}）")
    by_id = {s.id: s for s in steps}
    out = []
    for item in plan.missing:
        if item.kind == "channel":
            evidence = f"{why_en}; channels used during the incident: {sent}"
            evidence_zh = f"{why_zh}；事件期间使用的通知渠道：{sent}"
            action = (f"Add a level-{plan.level} runbook step that sends the {item.title} "
                      f"({item.name}) through the notification service, as the plan requires.")
            action_zh = f"按预案在 {plan.level} 级响应的运行手册中增加{item.title_zh}步骤（经通知服务发送）。"
            owner = "patient_communication"
        else:
            step = by_id.get(item.name)
            state = "not in the runbook" if step is None else f"status: {step.status}"
            state_zh = "运行手册中没有该步骤" if step is None else f"状态：{step.status}"
            evidence = f"{why_en}; step {item.name} {state}"
            evidence_zh = f"{why_zh}；步骤 {item.name} {state_zh}"
            action = (f"Make step {item.name} ({item.title}) part of the level-{plan.level} response "
                      f"and rehearse it with its group, core and backup.")
            action_zh = f"将步骤 {item.name}（{item.title_zh}）纳入 {plan.level} 级响应，并组织核心与后备人员演练。"
            owner = (step.group if step is not None and step.group else "clinical_support")
        out.append(Finding(
            kind="plan_step", severity="high" if plan.level == 1 else "medium", capability="plan",
            owner=owner, at=level.declared_at, step=item.name if item.kind == "step" else None,
            text=f"level {plan.level} response without the {item.title}",
            text_zh=f"{plan.level} 级响应缺少{item.title_zh}",
            evidence=evidence, evidence_zh=evidence_zh, action=action, action_zh=action_zh))
    return out
