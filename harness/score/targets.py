"""One drill target → its result: the figure measured from the journal, with its breakdown along the
causal chain, met or missed (with the reason, in English and Chinese), or n/a."""
from __future__ import annotations

from typing import Any, NamedTuple

from ..clock import format_duration
from ..models import Target
from .applicability import NotApplicable
from .card import LevelResult, OfflineResult, RpoResult, TargetResult
from .facts import Facts
from .people import figure_parts
from .policy import rate
from .texts import actual_text, error_of
from .values import wall_of


class Figure(NamedTuple):
    """What the journal gave for a time target: the figure (None: not measured) and why not."""
    actual: float | None = None
    breakdown: dict[str, float] | None = None
    reason: str | None = None
    reason_zh: str = ""
    end: dict | None = None  # the event the figure ends at: its causal chain holds the people's part
    chain_key: str = "chain"


def measure_target(t: Target, f: Facts, level: LevelResult, rpo: RpoResult | None,
                   na: NotApplicable | None = None,
                   offline: OfflineResult | None = None) -> TargetResult:
    """One target → its result. Unmeasurable means missed, with the reason (English and Chinese),
    unless the target did not apply (`na`, applicability.py): then n/a, with why."""
    base: dict[str, Any] = dict(id=t.id, title=t.title, measure=t.measure, critical=t.critical,
                                step=t.step)
    if t.measure == "level":
        return _level_target(base, level)
    fig = _figure(t, f, rpo, offline)
    within = t.within
    if fig.actual is None and na is not None:
        return TargetResult(**base, target=within, actual=None, status="n/a", rating="n/a",
                            reason=na.reason, reason_zh=na.reason_zh)
    actual, reason, reason_zh = fig.actual, fig.reason, fig.reason_zh
    met = actual is not None and within is not None and actual <= within
    margin = None if actual is None or within is None else round(within - actual, 3)
    r = TargetResult(**base, target=within, actual=actual, met=met, margin=margin,
                     headroom=None if margin is None or not within else round(margin / within, 4),
                     reason=reason, reason_zh=reason_zh, breakdown=fig.breakdown)
    _with_people(r, fig, f)
    if actual is not None and not met:
        shown, over = actual_text(actual, within), format_duration(actual - within)
        mark, mark_zh = (" (modeled)", "（模拟）") if r.modeled else ("", "")
        r.reason = f"{shown}{mark}, {over} over the {format_duration(within)} target"
        r.reason_zh = f"实际 {shown}{mark_zh}，超出 {format_duration(within)} 的指标 {over}"
    r.rating = rate(r)
    return r


def _with_people(r: TargetResult, fig: Figure, f: Facts) -> None:
    """The figure's human, declared-wait and machine parts, and the modeled mark, onto the result and its breakdown."""
    parts = figure_parts(fig.end, f, fig.chain_key) if r.actual is not None else None
    if parts is None:
        return
    r.modeled, r.people = parts.modeled, parts.people
    r.human, r.waits, r.machine = parts.human, parts.waits, parts.machine
    r.breakdown = {**(r.breakdown or {}), "human": parts.human, "waits": parts.waits,
                   "machine": parts.machine, "modeled": parts.modeled}


def _level_target(base: dict[str, Any], level: LevelResult) -> TargetResult:
    """The level target: the declared level against the one the patients' share implies. A level
    declared below the implied one (or none at all) is a critical miss, whatever the drill's flag:
    the response the patients needed was not called; one above it is a miss of the drill's weight."""
    reason = reason_zh = None
    under = level.implied is not None and (level.declared is None or level.declared > level.implied)
    if under:
        base = {**base, "critical": True}
    if level.implied is None:
        reason = "no patient requests during the incident: the level cannot be judged"
        reason_zh = "故障期间无患者请求，无法判断响应级别"
    elif level.declared is None:
        reason = f"no level was declared (level {level.implied} was implied)"
        reason_zh = f"未宣布响应级别（应为 {level.implied} 级）"
    elif not level.ok:
        reason = (f"declared level {level.declared}, but {level.share:.0%} of patients affected "
                  f"implies level {level.implied}" + (" (declared below it: critical)" if under else ""))
        reason_zh = (f"宣布 {level.declared} 级，但受影响患者占 {level.share:.0%}，应为 {level.implied} 级"
                     + ("（低于应有级别：严重）" if under else ""))
    r = TargetResult(**base, unit="level", target=level.implied, actual=level.declared,
                     met=bool(level.ok), reason=reason, reason_zh=reason_zh or "")
    r.rating = rate(r)
    return r


def _figure(t: Target, f: Facts, rpo: RpoResult | None, offline: OfflineResult | None) -> Figure:
    if t.measure == "rpo":
        return _rpo(rpo)
    if f.t_fault is None:
        return Figure(reason="no fault was injected: nothing to time from", reason_zh="未注入故障，无计时起点")
    if t.measure == "detection":
        e = next((e for e in f.events if e.get("type") == "alert.raised"
                  and (wall_of(e) or 0) >= f.t_fault), None)
        if e is None:
            return Figure(reason="no alert was raised after the fault", reason_zh="故障后未触发告警")
        return Figure(f.since_fault(e), f.breakdown(e), end=e)
    if t.measure == "recovery":
        actual = f.since_fault(f.recovery, drill_key="at_drill", wall_key="at_wall")
        breakdown = f.breakdown(f.recovery, "at_chain")
        if actual is None:
            return Figure(None, breakdown, "no recovery before the run ended", "演练结束前未恢复")
        return Figure(actual, breakdown, end=f.recovery, chain_key="at_chain")
    if t.measure == "step":
        return _step(t.step, f)
    if t.measure == "back_entry":
        return _back_entry(f, offline)
    return Figure()


def _rpo(rpo: RpoResult | None) -> Figure:
    if rpo is None:
        return Figure(reason="RPO was not measured (no rpo.measured event)",
                      reason_zh="未测量数据恢复点（日志无 rpo.measured）")
    if not isinstance(rpo.lost_seconds, (int, float)):
        why = rpo.error or "no lost_seconds in rpo.measured"
        return Figure(reason=f"RPO was not measured: {why}", reason_zh=f"未测得数据恢复点：{why}")
    return Figure(float(rpo.lost_seconds))


def _step(step: str | None, f: Facts) -> Figure:
    """A step target: from the fault to the step's first good finish (a manual step's: the person's
    done in a live run, the simulated operator's modeled duration in an automatic one)."""
    fin = [e for e in f.events if e.get("type") == "step.finished" and e.get("step") == step
           and (wall_of(e) or 0) >= f.t_fault]
    good = next((e for e in fin if e.get("ok") is True), None)
    if good is not None:
        return Figure(f.since_fault(good), f.breakdown(good), end=good)
    if fin:
        err = error_of(fin[-1].get("detail")) or "no detail"
        return Figure(reason=f"step {step} failed: {err}", reason_zh=f"步骤 {step} 失败：{err}")
    if any(e.get("type") == "step.started" and e.get("step") == step for e in f.events):
        return Figure(reason=f"step {step} never finished", reason_zh=f"步骤 {step} 开始后未完成")
    return Figure(reason=f"step {step} never started", reason_zh=f"步骤 {step} 未开始")


def _back_entry(f: Facts, offline: OfflineResult | None) -> Figure:
    """From recovery (patients back) to back-entry complete (score/offline.py `complete_seq`): the
    plan's clock for back-entry starts when the system can take the records again, not at the fault.
    The breakdown is the back-entry's chain less recovery's, each part at least 0."""
    if f.recovery is None:
        return Figure(reason="no recovery before the run ended: back-entry is timed from recovery",
                      reason_zh="演练结束前未恢复：补录自恢复起计时")
    done = f.by_seq.get(offline.complete_seq) if offline and offline.complete_seq is not None else None
    if done is None:
        if offline is None or not offline.back_entry_runs:
            return Figure(reason="no back-entry run", reason_zh="未进行补录")
        return Figure(reason=f"back-entry never completed: {offline.lost} receipt(s) not in the main "
                             f"database after {offline.back_entry_runs} run(s)",
                      reason_zh=f"补录未完成：{offline.back_entry_runs} 次补录后仍有 {offline.lost} 张回执不在主库")
    end, start = f.since_fault(done), f.since_fault(f.recovery, drill_key="at_drill", wall_key="at_wall")
    if end is None or start is None:
        return Figure(reason="back-entry or recovery has no time in the journal",
                      reason_zh="日志中补录或恢复缺少时间")
    ours, theirs = f.breakdown(done), f.breakdown(f.recovery, "at_chain")
    breakdown = None
    if ours is not None and theirs is not None:
        breakdown = {k: round(max(0.0, ours[k] - theirs[k]), 3) for k in ("declared", "real")}
        breakdown["links"] = ours["links"]
    return Figure(round(max(0.0, end - start), 3), breakdown)
