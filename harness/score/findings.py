"""Findings (areas for improvement) and their improvement-plan rows, from the score card's parts.

Generic rules, so that any drill gets them:
- every missed target;                       - every step that finished with ok=false (its error,
                                                and the address its error names first: the culprit);
- every step that missed its deadline;       - every step that started and never finished;
- every alert raised (one finding per alert name, with its first detail);
- a response level other than the one the share of affected patients implies;
- acknowledged patient writes lost;          - no steady state; an aborted run; unreadable evidence.

Each finding names its evidence from the journal (what, where, when in drill time), a corrective
action, the capability element it belongs to (plan, organisation, equipment, training), the owner
group and a due date: the drill's date + DUE_DAYS[severity].
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Callable

from ..clock import format_duration
from .card import (AlertEntry, Capability, Finding, LevelResult, Overview, RpoResult, Severity,
                   StepResult, Strength, TargetResult)
from .texts import actual_text, group_name

DUE_DAYS = {"critical": 7, "high": 30, "medium": 60, "low": 90}
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
# found before the drill (its readiness phase) comes first: it is what to fix before any other
KIND_ORDER = {"readiness": -1, "aborted": 0, "split_brain": 1, "step": 2, "target": 3, "rpo": 4,
              "level": 5, "plan_step": 6, "response": 7, "unfinished": 8, "deadline": 9, "steady_state": 10,
              "alert": 11, "evidence": 12}
ADDRESS = re.compile(r"\b(?:\d{1,3}(?:\.\d{1,3}){3}|localhost|[\w-]+(?:\.[\w-]+)+):\d{2,5}\b")

MEASURE_EN = {"detection": "identify the incident", "step": "finish the step", "recovery":
              "bring core business back", "rpo": "keep data loss within bounds", "level":
              "declare the right response level"}
MEASURE_ZH = {"detection": "识别故障", "step": "完成处置步骤", "recovery": "恢复核心业务",
              "rpo": "控制数据丢失", "level": "正确定级"}


@dataclass
class Context:
    """What the rules read besides the card's parts."""
    overview: Overview
    targets: list[TargetResult]
    steps: list[StepResult]
    alerts: list[AlertEntry]
    level: LevelResult
    rpo: RpoResult | None
    problems: list[str]
    steady: dict | None  # the last steady_state event
    level_owner: str = "technical"  # the group of the step that declares the level
    tplus: Callable[[float | None], float | None] = lambda at: None  # F+ drill s → T+ drill s
    out: list[Finding] = field(default_factory=list)


def when(at: float | None, tplus: float | None, lang: str = "en") -> str:
    """'T+8m10s (F+4m10s)' / 'T+8m10s（故障后 4m10s）'; whichever is known."""
    t = f"T+{format_duration(tplus)}" if tplus is not None else None
    if at is None:
        return t or "—"
    f = (f"故障后 {format_duration(at)}" if at >= 0 else f"故障前 {format_duration(-at)}") if lang == "zh" \
        else ("F+" if at >= 0 else "F−") + format_duration(abs(at))
    if t is None:
        return f
    return f"{t}（{f}）" if lang == "zh" else f"{t} ({f})"


def addresses(text: str) -> list[str]:
    """host:port addresses named in an error text."""
    return ADDRESS.findall(text or "")


def build_findings(ctx: Context) -> list[Finding]:
    for rule in (_aborted, _targets, _steps, _level, _grew, _rpo, _steady, _alerts, _evidence):
        rule(ctx)
    out = sorted(ctx.out, key=lambda f: (SEVERITY_ORDER[f.severity], KIND_ORDER.get(f.kind, 99),
                                         f.at if f.at is not None else float("inf")))
    due_from = _date(ctx.overview)
    for i, f in enumerate(out, 1):
        f.id = f"F{i}"
        if due_from is not None:
            f.due = (due_from + dt.timedelta(days=DUE_DAYS[f.severity])).isoformat()
    return out


def merged(findings: list[Finding], extra: list[Finding], overview: Overview) -> list[Finding]:
    """`findings` and `extra` (findings of other modules) in the card's order (severity, kind,
    time), numbered F1… again; the new ones get their due date."""
    if not extra:
        return findings
    due_from = _date(overview)
    for f in extra:
        if due_from is not None:
            f.due = (due_from + dt.timedelta(days=DUE_DAYS[f.severity])).isoformat()
    out = sorted([*findings, *extra], key=lambda f: (SEVERITY_ORDER[f.severity], KIND_ORDER.get(f.kind, 99),
                                                     f.at if f.at is not None else float("inf")))
    for i, f in enumerate(out, 1):
        f.id = f"F{i}"
    return out


def _figure(r: TargetResult, zh: bool = False) -> str:
    """A target's figure as words; a simulated operator's part is never worded as measured."""
    return actual_text(r.actual, r.target) + (("（模拟）" if zh else " (modeled)") if r.modeled else "")


def build_strengths(targets: list[TargetResult], level: LevelResult) -> list[Strength]:
    """What went well: every met target, with its headroom."""
    out = []
    for r in targets:
        if not r.met:
            continue
        if r.unit == "level":
            out.append(Strength(target=r.id, text=f"{r.title or r.id}: level {r.actual:g} declared, as the "
                                f"{_share(level.share)} of affected patients implies",
                                text_zh=f"{r.title or r.id}：按受影响患者比例 {_share(level.share)} 正确宣布"
                                        f" {r.actual:g} 级响应"))
            continue
        head = f", {r.headroom:.0%} headroom" if r.headroom is not None else ""
        head_zh = f"，余量 {r.headroom:.0%}" if r.headroom is not None else ""
        out.append(Strength(target=r.id,
                            text=f"{r.title or r.id}: {_figure(r)} against "
                                 f"{format_duration(r.target)}{head}",
                            text_zh=f"{r.title or r.id}：实际 {_figure(r, zh=True)}，要求 "
                                    f"{format_duration(r.target)}{head_zh}"))
    return sorted(out, key=lambda s: -(next((r.headroom or 0) for r in targets if r.id == s.target)))


# --- the rules -----------------------------------------------------------------------------------

def _add(ctx: Context, *, kind: str, severity: Severity, capability: Capability, owner: str | None,
         en: tuple[str, str, str], zh: tuple[str, str, str], at: float | None = None,
         target: str | None = None, step: str | None = None) -> None:
    ctx.out.append(Finding(kind=kind, severity=severity, capability=capability,
                           owner=owner or "technical", text=en[0], evidence=en[1], action=en[2],
                           text_zh=zh[0], evidence_zh=zh[1], action_zh=zh[2], at=at, target=target,
                           step=step))


def _aborted(ctx: Context) -> None:
    ov = ctx.overview
    if ov.status == "completed":
        return
    why = ov.abort_reason or "no run.finished event"
    _add(ctx, kind="aborted", severity="high", capability="equipment", owner="technical",
         en=("the run aborted", why,
             "Find why the run stopped (see the evidence and the services' logs), fix it and run the "
             "drill again; targets not reached in this run are unproven."),
         zh=("演练中止", why, "查明演练中止原因（见依据与各服务日志），修复后重新演练；本次未达到的目标视为未验证。"))


def _targets(ctx: Context) -> None:
    steps = {s.id: s for s in ctx.steps}
    for r in ctx.targets:
        if r.status != "missed" or (r.measure == "level" and ctx.level.ok is False):
            continue  # a wrong level has its own finding (_level), with the shares as evidence
        owner = "technical"
        capability: Capability = {"detection": "equipment", "recovery": "plan", "rpo": "equipment",
                                  "level": "training", "step": "plan"}.get(r.measure, "plan")
        step = steps.get(r.step) if r.step else None
        if step is not None:
            owner = step.group or owner
            if step.status == "failed":
                capability = "training" if step.kind == "manual" else "equipment"
            elif step.status in ("not run", "skipped"):
                capability = "plan"
            elif step.kind == "manual":
                capability = "training"
        if r.measure == "level":
            owner = ctx.level_owner
        if r.unit == "level":
            got, want = (f"L{r.actual:g}" if r.actual is not None else "none"), \
                        (f"L{r.target:g}" if r.target is not None else "—")
            ev_en = r.reason or f"declared {got}, implied {want}"
            ev_zh = f"宣布 {got}，应为 {want}" + (f"；{r.reason_zh or r.reason}" if r.reason else "")
        elif r.actual is None:
            ev_en = f"not measured: {r.reason or 'no evidence in the journal'}"
            ev_zh = f"未能测得：{r.reason_zh or r.reason or '日志中无依据'}"
        else:
            ev_en = (f"{_figure(r)} against a {format_duration(r.target)} target "
                     f"({format_duration(-(r.margin or 0))} over)")
            ev_zh = (f"实际 {_figure(r, zh=True)}，要求 {format_duration(r.target)}"
                     f"（超出 {format_duration(-(r.margin or 0))}）")
        action_en = {
            "detection": "Tighten the alert rules and the monitoring interval so that this failure "
                         "class raises an alert within the target; re-drill.",
            "step": f"Make step {r.step} reliable within {format_duration(r.target)}: fix its cause "
                    "(see the step's finding), add a fallback to the runbook and re-drill.",
            "recovery": "Review the runbook's order and the takeover path so that core business is "
                        f"back within {format_duration(r.target)}; re-drill.",
            "rpo": "Reduce the data at risk: synchronous replication to the same-city DR, or a "
                   "shorter replication lag; reconcile (补录) the lost writes.",
            "level": "Train the classification rule (share of affected patients → level) and "
                     "declare from the measured share, not an estimate.",
        }.get(r.measure, "Review and re-drill.")
        action_zh = {
            "detection": "优化告警规则与监控采样间隔，使此类故障在时限内告警；重新演练。",
            "step": f"保证步骤 {r.step} 在 {format_duration(r.target)} 内可靠完成：消除其失败原因（见该步骤的发现），"
                    "在预案中增加备用方案并重新演练。",
            "recovery": f"复核预案步骤顺序与接管路径，确保核心业务在 {format_duration(r.target)} 内恢复；重新演练。",
            "rpo": "降低数据丢失风险：同城灾备改为同步复制或缩短复制延迟；对丢失数据进行补录。",
            "level": "培训定级规则（受影响患者比例 → 响应级别），依据实测比例定级。",
        }.get(r.measure, "复核并重新演练。")
        _add(ctx, kind="target", severity="high" if r.critical else "medium", capability=capability,
             owner=owner, target=r.id, step=r.step,
             at=r.actual if r.unit == "s" and r.measure != "rpo" else None,
             en=(f"target {r.id} missed" + (f" ({r.title})" if r.title else ""),
                 ev_en, action_en),
             zh=(f"目标 {r.id} 未达成" + (f"（{r.title}）" if r.title else ""),
                 ev_zh, action_zh))


def _steps(ctx: Context) -> None:
    targets_of = {}
    for r in ctx.targets:
        if r.step:
            targets_of.setdefault(r.step, []).append(r.id)
    for s in ctx.steps:
        name = f"{s.id}" + (f" ({s.title})" if s.title else "")
        g_en, g_zh = group_name(s.group, "en"), group_name(s.group, "zh")
        also_en = f"; it is what target {', '.join(targets_of[s.id])} measures" if s.id in targets_of else ""
        also_zh = f"；目标 {', '.join(targets_of[s.id])} 依赖此步骤" if s.id in targets_of else ""
        if s.status == "failed":
            err = s.error or s.detail or "no detail journalled"
            # an action names its culprit first (see runbook/culprit.py); other addresses in its
            # error are context (a link in front of it, a line that carried the call)
            where = addresses(err)[:1]
            at_en, at_zh = when(s.finished, ctx.tplus(s.finished)), when(s.finished, ctx.tplus(s.finished), "zh")
            check_en = f" Verify {', '.join(where)} is the right address and reachable from the app, " \
                       "and test it before every drill." if where else ""
            check_zh = f"核对 {'、'.join(where)} 是否为正确地址且应用可达，并在每次演练前测试。" if where else ""
            own_en, own_zh = _own_output(s)
            fix_en, fix_zh = _fix(s)
            _add(ctx, kind="step", severity="high",
                 capability="training" if s.kind == "manual" else "equipment",
                 owner=s.group, step=s.id, at=s.finished,
                 en=(f"step {s.id} failed", f"{name} by the {g_en} failed at {at_en}: {err}{own_en}{also_en}",
                     fix_en + check_en),
                 zh=(f"步骤 {s.id} 失败", f"{g_zh}执行的 {name} 于 {at_zh} 失败：{err}{own_zh}{also_zh}",
                     fix_zh + check_zh))
        elif s.status == "unfinished":
            at_en = when(s.started, ctx.tplus(s.started))
            at_zh = when(s.started, ctx.tplus(s.started), "zh")
            manual = s.kind == "manual"
            _add(ctx, kind="unfinished", severity="medium",
                 capability="organisation" if manual else "equipment", owner=s.group, step=s.id,
                 at=s.started,
                 en=(f"step {s.id} never finished",
                     f"{name} started at {at_en}, no step.finished in the journal{also_en}",
                     "Make sure someone on the roster (core or backup) acknowledges the step, "
                     "and give the step a deadline with an escalation." if manual else
                     "Give the action a timeout and a clear failure, so the runbook can move on."),
                 zh=(f"步骤 {s.id} 未完成", f"{name} 于 {at_zh} 开始，日志中无完成记录{also_zh}",
                     "确保值班名单（核心或后备）中有人确认该步骤，并设定时限与升级机制。" if manual else
                     "为该自动动作设置超时与明确的失败结果，使预案可以继续。"))
        if s.deadline_met is False:
            _deadline(ctx, s, name)


STDERR_QUOTED = 5  # last stderr lines of a failed exec step quoted in its finding


def _own_output(s: StepResult) -> tuple[str, str]:
    """A failed exec step's own words: its last stderr lines, and where the whole output is."""
    if s.kind != "exec":
        return "", ""
    lines = " | ".join(s.stderr_tail[-STDERR_QUOTED:]) or "(nothing)"
    where = f"{s.output}/stderr.log" if s.output else "the step's stderr.log"
    return (f"; its stderr ended: {lines} (all of it in {where}, stdout beside it)",
            f"；脚本标准错误输出末尾：{lines}（完整输出见 {where} 及同目录 stdout.log）")


def _fix(s: StepResult) -> tuple[str, str]:
    """The corrective action for a failed step, by what the step is."""
    if s.kind == "exec":
        return ("Fix the hospital's script (its own output is quoted above), run it against a stack "
                "brought up with `hospital-drill up` and re-drill.",
                "修复医院自有脚本（其输出见上），用 `hospital-drill up` 启动的环境验证后重新演练。")
    if s.kind == "http":
        return ("Fix the call or the endpoint it reaches (status and answer above) and re-drill.",
                "修复该调用或其访问的接口（状态与应答见上），并重新演练。")
    if s.kind == "manual":
        return ("Rehearse the manual step with the people who perform it, core and backup.",
                "组织核心与后备人员演练该人工步骤。")
    return (f"Fix what made the automated action {s.action} fail.",
            f"修复导致自动动作 {s.action} 失败的问题。")


def _deadline(ctx: Context, s: StepResult, name: str) -> None:
    """A step that took longer than its own deadline (or was still running past it)."""
    took = format_duration(s.duration) if s.duration is not None else "still running"
    took_zh = format_duration(s.duration) if s.duration is not None else "仍未完成"
    manual = s.kind == "manual"
    _add(ctx, kind="deadline", severity="medium",
         capability="training" if manual else "equipment", owner=s.group, step=s.id,
         at=s.finished if s.finished is not None else s.started,
         en=(f"step {s.id} missed its deadline",
             f"{name}: {took} against a {format_duration(s.deadline)} deadline "
             f"(started {when(s.started, ctx.tplus(s.started))})",
             "Rehearse the step to its deadline, or review whether the deadline is "
             "realistic for the people on the roster." if manual else
             "Speed the action up or raise its deadline in the plan with a reason."),
         zh=(f"步骤 {s.id} 超时", f"{name}：用时 {took_zh}，时限 {format_duration(s.deadline)}"
                                  f"（开始于 {when(s.started, ctx.tplus(s.started), 'zh')}）",
             "按时限演练该步骤，或复核时限对值班人员是否现实。" if manual else
             "加快该自动动作，或在预案中有理由地调整时限。"))


def _level(ctx: Context) -> None:
    lv = ctx.level
    if lv.ok is not False:
        return
    under = lv.declared is None or lv.declared > (lv.implied or 3)
    share = _share(lv.share)
    target = next((r.id for r in ctx.targets if r.measure == "level"), None)
    _add(ctx, kind="level", severity="critical" if under else "medium", capability="training",
         owner=ctx.level_owner, at=lv.declared_at, target=target,
         en=(f"response level declared {lv.declared or 'never'}, implied {lv.implied}",
             f"{lv.affected} of {lv.active} active patients affected ({share}); thresholds "
             f">{lv.level1_above:.0%} → 1, >{lv.level2_above:.0%} → 2",
             "Train the classification rule and declare from the measured share of affected patients."),
         zh=(f"宣布响应级别 {lv.declared or '无'}，应为 {lv.implied}",
             f"{lv.active} 名活跃患者中 {lv.affected} 名受影响（{share}）；阈值 >{lv.level1_above:.0%} → 一级，"
             f">{lv.level2_above:.0%} → 二级",
             "培训定级规则，依据实测受影响患者比例定级。"))


def _grew(ctx: Context) -> None:
    """The incident grew after the declaration: a later observation window called for a more severe
    level, and the runbook never declared it."""
    lv = ctx.level
    if lv.grew_to is None or lv.declared is None or lv.declared <= lv.grew_to:
        return
    share = _share(lv.grew_share)
    _add(ctx, kind="level", severity="medium", capability="plan", owner=ctx.level_owner,
         at=lv.grew_at, target=None,
         en=(f"the incident grew to level {lv.grew_to} after level {lv.declared} was declared",
             f"{share} of active patients affected in a later observation window",
             "Re-assess the level at every observation window while the incident lasts."),
         zh=(f"宣布 {lv.declared} 级后事件升级为 {lv.grew_to} 级",
             f"其后某观察窗内 {share} 的活跃患者受影响",
             "事件持续期间，每个观察窗重新评估响应级别。"))


def _rpo(ctx: Context) -> None:
    rpo = ctx.rpo
    if rpo is None:
        return
    if rpo.lost_writes is None:
        _add(ctx, kind="rpo", severity="medium", capability="equipment", owner="technical",
             en=("data loss could not be counted", rpo.error or "rpo.measured without a count",
                 "Make sure a database primary serves at the end of the drill so that acknowledged "
                 "writes can be checked."),
             zh=("数据丢失无法统计", rpo.error or "rpo.measured 无计数", "确保演练结束时有数据库主库提供服务，以便核对已确认写入。"))
        return
    if rpo.lost_writes <= 0:
        return
    sample = ", ".join(rpo.lost_sample[:3])
    lag = f", configured replication lag {format_duration(rpo.replication_lag)}" if rpo.replication_lag else ""
    lag_zh = f"，配置的复制延迟 {format_duration(rpo.replication_lag)}" if rpo.replication_lag else ""
    _add(ctx, kind="rpo", severity="high", capability="equipment", owner="technical",
         en=(f"{rpo.lost_writes} acknowledged patient writes lost",
             f"{rpo.lost_writes} of {rpo.acked_writes} writes acknowledged to patients are missing on "
             f"{rpo.measured_on or 'the new primary'} after the takeover ({rpo.mode} replication{lag}; "
             f"{format_duration(rpo.lost_seconds)} of writes); e.g. {sample}",
             "Replicate synchronously to the same-city DR (or cut the lag), and have the clinical "
             "support group reconcile (补录) the lost appointments, consultations and payments with "
             "the patients, from the offline records."),
         zh=(f"{rpo.lost_writes} 条已向患者确认的写入丢失",
             f"接管后 {rpo.measured_on or '新主库'} 缺少 {rpo.acked_writes} 条已确认写入中的 {rpo.lost_writes} 条"
             f"（{rpo.mode} 复制{lag_zh}；约 {format_duration(rpo.lost_seconds)} 的写入）；如 {sample}",
             "同城灾备改为同步复制（或缩短延迟）；由临床支持组依据线下记录与患者核对并补录丢失的预约、问诊与缴费。"))


def _steady(ctx: Context) -> None:
    s = ctx.steady
    if s is None:
        if ctx.overview.status == "completed":
            _add(ctx, kind="steady_state", severity="medium", capability="equipment", owner="technical",
                 en=("steady state was never checked", "no steady_state event in the journal",
                     "Check the steady state before injecting faults, so that the incident's effect "
                     "is measured against a healthy baseline."),
                 zh=("未检查稳态", "日志中无 steady_state 事件", "注入故障前检查稳态，以健康基线衡量故障影响。"))
        return
    if s.get("ok"):
        return
    ev = (f"error rate {s.get('error_rate')}, {s.get('requests')} requests, p95 {s.get('p95_ms')} ms")
    _add(ctx, kind="steady_state", severity="medium", capability="equipment", owner="technical",
         en=("steady state not reached before the fault", ev,
             "Find why the hospital was not healthy before the drill (errors, latency) and fix it "
             "before the next drill."),
         zh=("故障前未达到稳态", ev, "查明演练前系统不健康（错误、延迟）的原因并在下次演练前修复。"))


def _alerts(ctx: Context) -> None:
    seen: dict[str, list[AlertEntry]] = {}
    for a in ctx.alerts:
        seen.setdefault(a.alert, []).append(a)
    for name, raised in seen.items():
        first = raised[0]
        before = first.raised is not None and first.raised < 0 and ctx.overview.fault_wall is not None
        still = any(a.cleared_wall is None for a in raised)
        times = len(raised)
        lasted = (f", cleared {when(first.cleared, ctx.tplus(first.cleared))}"
                  if first.cleared is not None else ", not cleared by the end of the run")
        lasted_zh = (f"，{when(first.cleared, ctx.tplus(first.cleared), 'zh')}解除"
                     if first.cleared is not None else "，演练结束时仍未解除")
        detail = f"; {first.detail}" if first.detail else ""
        what = f" ({first.describe})" if first.describe else ""
        more = f"; raised {times} times" if times > 1 else ""
        more_zh = f"；共触发 {times} 次" if times > 1 else ""
        if before:
            action_en = ("A false alarm before the fault: tune the rule's threshold or window so "
                         "that a healthy hospital does not raise it.")
            action_zh = "故障前的误报：调整该规则的阈值或窗口，避免系统健康时告警。"
        else:
            action_en = ("Confirm that the alert reaches the technical group's on-call roster (core "
                         "and backup) and that the runbook names the step that answers it; keep its "
                         "cause in the three-step check.")
            action_zh = "确认该告警送达技术组值班名单（核心与后备），预案中有对应的处置步骤，并纳入三步核查。"
        _add(ctx, kind="alert", severity="medium" if (before or still) else "low",
             capability="equipment" if before else "plan", owner="technical", at=first.raised,
             en=(f"alert {name} raised{what}",
                 f"{first.severity or 'alert'} at {when(first.raised, ctx.tplus(first.raised))}"
                 f"{lasted}{more}{detail}", action_en),
             zh=(f"告警 {name} 触发" + (f"（{first.describe}）" if first.describe else ""),
                 f"{first.severity or '告警'}，{when(first.raised, ctx.tplus(first.raised), 'zh')}触发"
                 f"{lasted_zh}{more_zh}{detail}", action_zh))


def _evidence(ctx: Context) -> None:
    for p in ctx.problems:
        if ctx.overview.status == "unknown" and "no run.finished" in p:
            continue  # already the 'run aborted' finding
        _add(ctx, kind="evidence", severity="low", capability="equipment", owner="technical",
             en=("evidence incomplete", p, "Keep the run directory's files whole (disk space, "
                                          "clean shutdown); what is missing here is not scored."),
             zh=("证据不完整", p, "保证运行目录文件完整（磁盘空间、正常退出）；缺失部分未计入评分。"))


def _share(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def _date(ov: Overview) -> dt.date | None:
    return dt.date.fromisoformat(ov.date) if ov.date else None
