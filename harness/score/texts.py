"""One human line per journal event, in English and in Chinese (the timeline of the report)."""
from __future__ import annotations

import json
from collections.abc import Callable
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


_STREAMS = ("argv", "stdout_tail", "stderr_tail")


def step_detail(detail: Any) -> Any:
    """A step's detail for a one-line summary: an exec step's output lines are left to its run
    directory and its finding, its exit and what it reported stay."""
    if isinstance(detail, dict) and "stderr_tail" in detail:
        return {k: v for k, v in detail.items() if k not in _STREAMS}
    return detail


STEP_KIND_ZH = {"auto": "自动", "manual": "人工", "exec": "脚本", "http": "HTTP 调用"}


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


class _Event:
    """A journal event as a line is written from it: its fields, the language, its detail."""

    def __init__(self, e: dict, lang: str):
        self.e, self.g, self.zh = e, e.get, lang == "zh"
        has_detail = self.g("detail") not in (None, "", {})
        sep = "：" if self.zh else ": "
        self.detail = f"{sep}{short(self.g('detail'))}" if has_detail else ""

    def say(self, zh: str, en: str) -> str:
        return zh if self.zh else en


def _describe(e: dict, lang: str) -> str:
    t = e.get("type")
    line = _LINES.get(t) if isinstance(t, str) else None
    if line is not None:
        return line(_Event(e, lang))
    rest = {k: v for k, v in e.items() if k not in ("seq", "wall", "drill", "type")}
    return f"{t} {short(rest)}".strip()


def _run_started(v: _Event) -> str:
    g = v.g
    return v.say(f"演练开始 {g('run_id')}：演练 {g('drill_name')}，场景 {g('scenario')}，"
                 f"时间倍率 ×{g('time_scale')}，后端 {g('backend')}",
                 f"run {g('run_id')} started: drill {g('drill_name')}, scenario {g('scenario')}, "
                 f"time scale ×{g('time_scale')}, backend {g('backend')}")


def _stack_up(v: _Event) -> str:
    n = len(v.g("services") or {})
    return v.say(f"模拟医院系统启动，用时 {v.g('seconds')} 秒（{n} 个服务）",
                 f"stack up in {v.g('seconds')} real s ({n} services)")


def _load_started(v: _Event) -> str:
    return v.say(f"患者负载启动：{v.g('users')} 名用户，{v.g('workers')} 个工作进程",
                 f"patient load started: {v.g('users')} users, {v.g('workers')} workers")


def _steady_state(v: _Event) -> str:
    g = v.g
    facts = [v.say(f"错误率 {_pct(g('error_rate'), 2)}", f"error rate {_pct(g('error_rate'), 2)}")
             if g("error_rate") is not None else None,
             f"{g('rps')} req/s" if g("rps") is not None else None,
             f"p95 {g('p95_ms')} ms" if g("p95_ms") is not None else None,
             v.say(f"{g('requests')} 次请求", f"{g('requests')} requests")
             if g("requests") is not None else None]
    facts_s = v.say("，", ", ").join(x for x in facts if x)
    return v.say(f"稳态{'已达到' if g('ok') else '未达到'}：{facts_s}",
                 f"steady state {'reached' if g('ok') else 'NOT reached'}: {facts_s}")


def _fault(v: _Event) -> str:
    g = v.g
    injected = g("type") == "fault.injected"
    on = v.say(f"，目标 {g('target')}", f" on {g('target')}") if g("target") else ""
    if v.zh:
        return f"故障 {g('fault')} {'注入' if injected else '撤销'}（{g('fault_type')}{on}）{v.detail}"
    return f"fault {g('fault')} {'injected' if injected else 'reverted'} ({g('fault_type')}{on}){v.detail}"


def _revert_failed(v: _Event) -> str:
    return v.say(f"故障 {v.g('fault')} 撤销失败：{short(v.g('error'))}",
                 f"fault {v.g('fault')} could NOT be reverted: {short(v.g('error'))}")


def _alert_raised(v: _Event) -> str:
    g = v.g
    what = f" — {short(g('describe'))}" if g("describe") else ""
    return v.say(f"告警 {g('alert')} 触发（{g('severity')}）{what}{v.detail}",
                 f"alert {g('alert')} raised ({g('severity')}){what}{v.detail}")


def _check_finished(v: _Event) -> str:
    verdict = v.g("verdict")
    if v.zh:
        zh = {"system_failure": "系统故障", "not_system_failure": "非系统故障"}.get(verdict, verdict)
        return f"三步核查完成：{zh} — {short(v.g('items'))}"
    return f"three-step check: {verdict} — {short(v.g('items'))}"


def _level_declared(v: _Event) -> str:
    g = v.g
    if v.zh:
        return (f"宣布{_level_zh(g('level'))}响应（{g('affected')}/{g('active')} 名患者受影响，"
                f"{_pct(g('share'))}）")
    return (f"level {g('level')} response declared "
            f"({g('affected')}/{g('active')} patients affected, {_pct(g('share'))})")


def _step_started(v: _Event) -> str:
    g = v.g
    what = f", {v.say('动作', 'action')} {g('action')}" if g("action") else ""
    if v.zh:
        kind = STEP_KIND_ZH.get(g("kind"), g("kind"))
        return f"步骤 {g('step')} 开始（{group_name(g('group'), 'zh')}，{kind}{what}）"
    return f"step {g('step')} started ({g('group')}, {g('kind')}{what})"


def _step_finished(v: _Event) -> str:
    step = v.g("step")
    if v.g("ok"):
        shown = short(step_detail(v.g("detail")))
        detail = f"{v.say('：', ': ')}{shown}" if shown else ""
        return v.say(f"步骤 {step} 完成{detail}", f"step {step} finished ok{detail}")
    err = error_of(v.g("detail"))
    return v.say(f"步骤 {step} 失败：{err}", f"step {step} FAILED: {err}")


def _step_skipped(v: _Event) -> str:
    return v.say(f"步骤 {v.g('step')} 跳过：{short(v.g('reason'))}",
                 f"step {v.g('step')} skipped: {short(v.g('reason'))}")


def _notification(v: _Event) -> str:
    g = v.g
    return v.say(f"通知已发送（{g('channel')} → {g('audience')}）：{short(g('text'))}",
                 f"notification via {g('channel')} to {g('audience')}: {short(g('text'))}")


def _rpo_measured(v: _Event) -> str:
    g = v.g
    if g("lost_writes") is None:
        err = short(g("error")) or v.say("未能计数", "not counted")
        return v.say(f"数据丢失测量失败：{err}", f"RPO not measured: {err}")
    return v.say(f"数据恢复点测量：{g('acked_writes')} 条已确认写入中丢失 {g('lost_writes')} 条"
                 f"（{g('lost_seconds')} 演练秒，{g('mode')}）",
                 f"RPO measured: {g('lost_writes')} of {g('acked_writes')} acknowledged writes lost "
                 f"({g('lost_seconds')} drill s, {g('mode')})")


def _link_sample(v: _Event) -> str:
    u = _pct(v.g("utilisation"), 1)
    return v.say(f"链路 {v.g('link')} 利用率 {u}，{v.g('bytes_per_s')} B/s",
                 f"link {v.g('link')} utilisation {u}, {v.g('bytes_per_s')} B/s")


def _run_finished(v: _Event) -> str:
    g = v.g
    reason = v.say(f"：{short(g('reason'))}", f": {short(g('reason'))}") if g("reason") else ""
    status = {"completed": "完成", "aborted": "中止"}.get(g("status"), g("status")) if v.zh else g("status")
    return v.say(f"演练{status}{reason}", f"run {status}{reason}")


def _audit_check(v: _Event) -> str:
    found = [f for f in v.g("findings") or [] if isinstance(f, dict)]
    first = f" — [{found[0].get('severity')}] {short(found[0].get('message'))}" if found else ""
    more = v.say(f"（另有 {len(found) - 1} 项）", f" (+{len(found) - 1} more)") if len(found) > 1 else ""
    status = {"pass": "通过", "warn": "有提示", "fail": "未通过", "skipped": "跳过"}.get(v.g("status"), v.g("status"))
    return v.say(f"就绪检查 {v.g('name')}：{status}{first}{more}",
                 f"readiness check {v.g('name')}: {v.g('status')}{first}{more}")


def _audit_finished(v: _Event) -> str:
    n = (v.g("findings") or {}).get("critical", 0)
    took = v.g("seconds")
    stop = v.say("；演练在注入故障前停止", "; the drill stops before any fault") if v.g("stops_drill") else ""
    verdict = {"ready": "就绪", "not_ready": "未就绪", "aborted": "中止"}.get(v.g("verdict"), v.g("verdict"))
    return v.say(f"就绪检查结束：{verdict}，{n} 项严重发现" + (f"，用时 {took} 秒" if took is not None else "")
                 + stop,
                 f"readiness checks done: {v.g('verdict')}, {n} critical"
                 + (f", {took} real s" if took is not None else "") + stop)


# event type → its line; a type not here is written as its fields
_LINES: dict[str, Callable[[_Event], str]] = {
    "run.started": _run_started,
    "stack.up": _stack_up,
    "load.started": _load_started,
    "scenario.started": lambda v: v.say("T+0：场景开始（负载运行，时间线起点）",
                                        "T+0: scenario started (load running, timeline begins)"),
    "steady_state": _steady_state,
    "fault.injected": _fault,
    "fault.reverted": _fault,
    "fault.revert_failed": _revert_failed,
    "alert.raised": _alert_raised,
    "alert.cleared": lambda v: v.say(f"告警 {v.g('alert')} 解除", f"alert {v.g('alert')} cleared"),
    "check.finished": _check_finished,
    "level.declared": _level_declared,
    "step.started": _step_started,
    "step.finished": _step_finished,
    "step.skipped": _step_skipped,
    "notification.sent": _notification,
    "recovery": lambda v: v.say(f"恢复：患者服务恢复正常{v.detail}", f"recovery: patients served again{v.detail}"),
    "rpo.measured": _rpo_measured,
    "link.sample": _link_sample,
    "run.horizon": lambda v: v.say(f"演练达到时间上限 {v.g('drill_limit')} 演练秒",
                                   f"run reached its time limit of {v.g('drill_limit')} drill s"),
    "teardown.error": lambda v: v.say(f"清理 {v.g('part')} 出错：{short(v.g('error'))}",
                                      f"teardown of {v.g('part')} failed: {short(v.g('error'))}"),
    "run.finished": _run_finished,
    "audit.started": lambda v: v.say("就绪检查开始（审计的在线检查，注入故障前）",
                                     "readiness checks began (the audit's live checks, before any fault)"),
    "audit.check": _audit_check,
    "audit.finished": _audit_finished,
}


def _level_zh(level: Any) -> str:
    return {1: "一级", 2: "二级", 3: "三级"}.get(level, f"{level} 级")
