"""One human line per journal event, in English and in Chinese (the timeline of the report)."""
from __future__ import annotations

import json
from typing import Any

from ..clock import format_duration
from ..models import GROUP_TITLES

GROUP_EN = {"technical": "technical group", "clinical_support": "clinical support group",
            "patient_communication": "patient communication group"}


def group_name(group: str | None, lang: str = "en") -> str:
    if not group:
        return "—"
    return (GROUP_TITLES if lang == "zh" else GROUP_EN).get(group, group)


def short(value: Any, limit: int = 200) -> str:
    """A value as one line of at most `limit` characters ('' for None)."""
    if value is None:
        return ""
    if isinstance(value, dict):  # key: value pairs read better than JSON in a report
        value = ", ".join(f"{k}: {_flat(v)}" for k, v in value.items())
    elif isinstance(value, list):
        value = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def actual_text(actual: float | None, target: float | None) -> str:
    """`actual` as a duration, precise enough not to read the same as a different `target`
    (60.5 s against 1m reads '60.5s', not '1m')."""
    text = format_duration(actual)
    if actual is not None and target is not None and actual != target and text == format_duration(target):
        return f"{actual:.3f}".rstrip("0").rstrip(".") + "s"
    return text


def _flat(v: Any) -> str:
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False, default=str, separators=(", ", ": "))


def error_of(detail: Any) -> str:
    """The error text of a step's or fault's detail: detail.error when there is one, else all of it."""
    if isinstance(detail, dict):
        for key in ("error", "reason", "message"):
            if detail.get(key):
                return short(detail[key], 400)
    return short(detail, 400)


def _pct(x: Any, digits: int = 0) -> str:
    return f"{x:.{digits}%}" if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


def describe(e: dict) -> str:
    """One English line for a journal event."""
    return _describe(e, "en")


def describe_zh(e: dict) -> str:
    """One Chinese line for a journal event (identifiers and user text stay as written)."""
    return _describe(e, "zh")


def _describe(e: dict, lang: str) -> str:  # noqa: C901 (a flat table of event types)
    g = e.get
    t = g("type")
    zh = lang == "zh"
    has_detail = g("detail") not in (None, "", {})
    detail = (f"：{short(g('detail'))}" if zh else f": {short(g('detail'))}") if has_detail else ""
    if t == "run.started":
        if zh:
            return (f"演练开始 {g('run_id')}：演练 {g('drill_name')}，场景 {g('scenario')}，"
                    f"时间倍率 ×{g('time_scale')}，后端 {g('backend')}")
        return (f"run {g('run_id')} started: drill {g('drill_name')}, scenario {g('scenario')}, "
                f"time scale ×{g('time_scale')}, backend {g('backend')}")
    if t == "stack.up":
        n = len(g("services") or {})
        return (f"模拟医院系统启动，用时 {g('seconds')} 秒（{n} 个服务）" if zh
                else f"stack up in {g('seconds')} real s ({n} services)")
    if t == "load.started":
        return (f"患者负载启动：{g('users')} 名用户，{g('workers')} 个工作进程" if zh
                else f"patient load started: {g('users')} users, {g('workers')} workers")
    if t == "scenario.started":
        return "T+0：场景开始（负载运行，时间线起点）" if zh else \
            "T+0: scenario started (load running, timeline begins)"
    if t == "steady_state":
        facts = [(f"错误率 {_pct(g('error_rate'), 2)}" if zh else f"error rate {_pct(g('error_rate'), 2)}")
                 if g("error_rate") is not None else None,
                 f"{g('rps')} req/s" if g("rps") is not None else None,
                 f"p95 {g('p95_ms')} ms" if g("p95_ms") is not None else None,
                 (f"{g('requests')} 次请求" if zh else f"{g('requests')} requests")
                 if g("requests") is not None else None]
        facts_s = ("，" if zh else ", ").join(x for x in facts if x)
        if zh:
            return f"稳态{'已达到' if g('ok') else '未达到'}：{facts_s}"
        return f"steady state {'reached' if g('ok') else 'NOT reached'}: {facts_s}"
    if t in ("fault.injected", "fault.reverted"):
        injected = t == "fault.injected"
        on = (f"，目标 {g('target')}" if zh else f" on {g('target')}") if g("target") else ""
        if zh:
            return f"故障 {g('fault')} {'注入' if injected else '撤销'}（{g('fault_type')}{on}）{detail}"
        return f"fault {g('fault')} {'injected' if injected else 'reverted'} ({g('fault_type')}{on}){detail}"
    if t == "fault.revert_failed":
        return (f"故障 {g('fault')} 撤销失败：{short(g('error'))}" if zh
                else f"fault {g('fault')} could NOT be reverted: {short(g('error'))}")
    if t == "alert.raised":
        what = f" — {short(g('describe'))}" if g("describe") else ""
        return (f"告警 {g('alert')} 触发（{g('severity')}）{what}{detail}" if zh
                else f"alert {g('alert')} raised ({g('severity')}){what}{detail}")
    if t == "alert.cleared":
        return f"告警 {g('alert')} 解除" if zh else f"alert {g('alert')} cleared"
    if t == "check.finished":
        verdict = g("verdict")
        if zh:
            v = {"system_failure": "系统故障", "not_system_failure": "非系统故障"}.get(verdict, verdict)
            return f"三步核查完成：{v} — {short(g('items'))}"
        return f"three-step check: {verdict} — {short(g('items'))}"
    if t == "level.declared":
        if zh:
            return (f"宣布{_level_zh(g('level'))}响应（{g('affected')}/{g('active')} 名患者受影响，"
                    f"{_pct(g('share'))}）")
        return (f"level {g('level')} response declared "
                f"({g('affected')}/{g('active')} patients affected, {_pct(g('share'))})")
    if t == "step.started":
        what = f", {'动作' if zh else 'action'} {g('action')}" if g("action") else ""
        kind = {"auto": "自动", "manual": "人工"}.get(g("kind"), g("kind")) if zh else g("kind")
        return (f"步骤 {g('step')} 开始（{group_name(g('group'), 'zh')}，{kind}{what}）" if zh
                else f"step {g('step')} started ({g('group')}, {kind}{what})")
    if t == "step.finished":
        if g("ok"):
            return f"步骤 {g('step')} 完成{detail}" if zh else f"step {g('step')} finished ok{detail}"
        err = error_of(g("detail"))
        return (f"步骤 {g('step')} 失败：{err}" if zh else f"step {g('step')} FAILED: {err}")
    if t == "step.skipped":
        return (f"步骤 {g('step')} 跳过：{short(g('reason'))}" if zh
                else f"step {g('step')} skipped: {short(g('reason'))}")
    if t == "notification.sent":
        return (f"通知已发送（{g('channel')} → {g('audience')}）：{short(g('text'))}" if zh
                else f"notification via {g('channel')} to {g('audience')}: {short(g('text'))}")
    if t == "recovery":
        return f"恢复：患者服务恢复正常{detail}" if zh else f"recovery: patients served again{detail}"
    if t == "rpo.measured":
        if g("lost_writes") is None:
            err = short(g("error")) or ("未能计数" if zh else "not counted")
            return f"数据丢失测量失败：{err}" if zh else f"RPO not measured: {err}"
        if zh:
            return (f"数据恢复点测量：{g('acked_writes')} 条已确认写入中丢失 {g('lost_writes')} 条"
                    f"（{g('lost_seconds')} 演练秒，{g('mode')}）")
        return (f"RPO measured: {g('lost_writes')} of {g('acked_writes')} acknowledged writes lost "
                f"({g('lost_seconds')} drill s, {g('mode')})")
    if t == "link.sample":
        u = _pct(g("utilisation"), 1)
        return (f"链路 {g('link')} 利用率 {u}，{g('bytes_per_s')} B/s" if zh
                else f"link {g('link')} utilisation {u}, {g('bytes_per_s')} B/s")
    if t == "run.horizon":
        return (f"演练达到时间上限 {g('drill_limit')} 演练秒" if zh
                else f"run reached its time limit of {g('drill_limit')} drill s")
    if t == "teardown.error":
        return (f"清理 {g('part')} 出错：{short(g('error'))}" if zh
                else f"teardown of {g('part')} failed: {short(g('error'))}")
    if t == "run.finished":
        reason = (f"：{short(g('reason'))}" if zh else f": {short(g('reason'))}") if g("reason") else ""
        status = {"completed": "完成", "aborted": "中止"}.get(g("status"), g("status")) if zh else g("status")
        return f"演练{status}{reason}" if zh else f"run {status}{reason}"
    rest = {k: v for k, v in e.items() if k not in ("seq", "wall", "drill", "type")}
    return f"{t} {short(rest)}".strip()


def _level_zh(level: Any) -> str:
    return {1: "一级", 2: "二级", 3: "三级"}.get(level, f"{level} 级")
