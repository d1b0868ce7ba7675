"""Named harness actions a runbook step can call, each with typed parameters.

An action gets an `ActionContext` and its validated parameters, does the thing for real against the
stack, and returns a detail dict for the journal; it raises `ActionFailed` with a one-line reason when
the thing did not work (a failed promotion, an unreachable backup interface).
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..stack import topology

if TYPE_CHECKING:
    from ..journal import Journal
    from ..models import Drill
    from ..monitor.monitor import Monitor
    from ..stack.base import Stack


MIN_PATIENTS_TO_CLASSIFY = 15


class ActionFailed(Exception):
    pass


@dataclass
class ActionContext:
    stack: "Stack"
    journal: "Journal"
    monitor: "Monitor"
    drill: "Drill"
    time_scale: float
    state: dict[str, Any] = field(default_factory=dict)  # e.g. the declared level


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Action:
    name: str
    run: Callable[[ActionContext, Any], dict[str, Any]]
    params: type[Params]
    describe: str
    refs: tuple[tuple[str, tuple[str, ...], bool], ...] = ()  # (param, node kinds, links ok)


ACTIONS: dict[str, Action] = {}


def action(name: str, params: type[Params] = Params, describe: str = "",
           refs: tuple[tuple[str, tuple[str, ...], bool], ...] = ()):
    def deco(fn):
        ACTIONS[name] = Action(name, fn, params, describe, refs)
        return fn
    return deco


def validate(name: str, raw: dict[str, Any]) -> Params:
    """Parameters for an action; ValueError('field: why') names what is wrong."""
    act = ACTIONS.get(name)
    if act is None:
        raise ValueError(f"action: unknown action {name!r} (known: {', '.join(sorted(ACTIONS))})")
    try:
        params = act.params.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        raise ValueError(f"with.{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    for key, kinds, links in act.refs:
        why = topology.require(getattr(params, key), kinds=kinds, links=links)
        if why:
            raise ValueError(f"with.{key}: {why}")
    return params


# --- the plan's check and classification ---------------------------------------------------------

@action("three_step_check", describe="alert type on the board, error logs, test-account journey")
def three_step_check(ctx: ActionContext, _: Params) -> dict[str, Any]:
    alerts = sorted(ctx.monitor.active)
    errors = Counter()
    for rec in list(ctx.monitor.window.items):
        if not rec.get("ok"):
            errors[f"{rec.get('name')}: {str(rec.get('error') or rec.get('status'))[:80]}"] += 1
    probe = ctx.monitor.probe.walk_now()
    items = {
        "alert_type": alerts or ["none"],
        "error_logs": [f"{n}× {msg}" for msg, n in errors.most_common(3)] or ["none"],
        "test_account": "ok" if probe.ok else f"failed at {probe.failed_step}: {probe.error}",
    }
    verdict = "system_failure" if (not probe.ok or alerts) else "not_system_failure"
    ctx.state["verdict"] = verdict
    ctx.journal.record("check.finished", items=items, verdict=verdict)
    return {"verdict": verdict}


@action("declare_level", describe="classify the response level from the share of affected patients")
def declare_level(ctx: ActionContext, _: Params) -> dict[str, Any]:
    # the share needs patients to judge by: wait (boundedly) until enough have been seen since the
    # incident began, as an operator would look at the board for half a minute before classifying
    deadline = time.monotonic() + max(1.0, 60.0 / ctx.time_scale)
    seen = ctx.monitor.affected()
    while seen["active"] < MIN_PATIENTS_TO_CLASSIFY and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = ctx.monitor.affected()
    share = seen["share"]
    lv = ctx.drill.levels
    level = 1 if share > lv.level1_above else 2 if share > lv.level2_above else 3
    if ctx.state.get("verdict") == "not_system_failure":
        level = 3  # the plan: a false alarm never escalates past the technical group
    ctx.state["level"] = level
    ctx.journal.record("level.declared", level=level, affected=seen["affected"],
                       active=seen["active"], share=round(share, 4))
    return {"level": level, **seen}


# --- failover ------------------------------------------------------------------------------------

class PromoteParams(Params):
    standby: str = "pg-samecity"


@action("promote_standby", PromoteParams, "promote a DR standby and repoint the app's DB link",
        refs=(("standby", ("postgres",), False),))
def promote_standby(ctx: ActionContext, p: PromoteParams) -> dict[str, Any]:
    try:
        return ctx.stack.promote_standby(p.standby)
    except Exception as e:  # the journal wants the reason, not a traceback
        raise ActionFailed(f"promote {p.standby}: {e}") from e


class RepointParams(Params):
    link: str
    to: str


@action("repoint_link", RepointParams, "point a link at another node",
        refs=(("link", (), True), ("to", (), False)))
def repoint_link(ctx: ActionContext, p: RepointParams) -> dict[str, Any]:
    addr = ctx.stack.addresses.get(p.to)
    if addr is None:
        raise ActionFailed(f"{p.to} has no address in this stack")
    ctx.stack.links.repoint(p.link, addr)
    return {"link": p.link, "to": p.to, "address": addr}


# --- patient communication -----------------------------------------------------------------------

class NoticeParams(Params):
    text: str | None = Field(description="banner text; null clears it")


@action("set_notice", NoticeParams, "show (or clear) the status banner in the patient app")
def set_notice(ctx: ActionContext, p: NoticeParams) -> dict[str, Any]:
    answered = ctx.stack.post_apps("/admin/notice", {"text": p.text})
    if not any(v == 200 for v in answered.values()):
        raise ActionFailed(f"no app instance took the notice: {answered}")
    ctx.journal.record("notification.sent", channel="app_banner", audience="patients",
                       text=p.text or "(cleared)")
    return {"apps": answered}


class NotifyParams(Params):
    channel: Literal["sms", "official_account", "app_banner", "hotline", "broadcast"]
    audience: str = "patients"
    text: str


@action("notify", NotifyParams, "send through the notification service (SMS, 公众号, broadcast)")
def notify(ctx: ActionContext, p: NotifyParams) -> dict[str, Any]:
    try:
        sent = ctx.stack.notify(p.channel, p.audience, p.text)
    except Exception as e:
        raise ActionFailed(f"notification service: {e}") from e
    ctx.journal.record("notification.sent", channel=p.channel, audience=p.audience, text=p.text)
    return {"sent": sent}


class RouteParams(Params):
    egress: Literal["primary", "backup"] | None = None
    insurance: Literal["primary", "backup"] | None = None


@action("switch_route", RouteParams, "switch the apps' egress line or insurance interface")
def switch_route(ctx: ActionContext, p: RouteParams) -> dict[str, Any]:
    body = p.model_dump(exclude_none=True)
    if not body:
        raise ActionFailed("nothing to switch: give egress or insurance")
    answered = ctx.stack.post_apps("/admin/route", body)
    if not all(v == 200 for v in answered.values()):
        raise ActionFailed(f"route switch not taken everywhere: {answered}")
    return {"routes": body, "apps": answered}


# actions of the plan's other failure classes register themselves on import
from . import data_actions, network_actions, service_actions  # noqa: E402,F401
