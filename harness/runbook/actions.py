"""Named harness actions a runbook step can call, each with typed parameters.

An action gets an `ActionContext` and its validated parameters, does the thing for real against the
stack, and returns a detail dict for the journal; it raises `ActionFailed` with a one-line reason when
the thing did not work (a failed promotion, an unreachable backup interface).

Each action declares what it does to production (`failover`, `promotes`, `changes_stack`): the
scorer and the RPO measurement ask the registry by the action name the journal carries.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import FieldErrors
from ..registry import Registry, UnknownName
from ..stack import topology

if TYPE_CHECKING:
    from ..clock import Lane
    from ..journal import Journal
    from ..models import Drill
    from ..monitor.monitor import Monitor
    from ..rundir import RunDir
    from ..stack.base import Stack


MIN_PATIENTS_TO_CLASSIFY = 15


class ActionFailed(Exception):
    pass


@dataclass
class ActionContext:
    """What an action works with. Each step gets its own copy with its own `lane` (its causal drill
    time): declared waits go through `ctx.lane.wait`, waits for a machine through `ctx.lane.poll`,
    and what it journals goes through `ctx.record` so that it carries the step's time."""
    stack: "Stack"
    journal: "Journal"
    monitor: "Monitor"
    drill: "Drill"
    time_scale: float
    state: dict[str, Any] = field(default_factory=dict)  # e.g. the declared level (shared by steps)
    lane: "Lane | None" = None
    stop: "threading.Event | None" = None
    run_dir: "RunDir | None" = None  # where the hospital's own steps keep their output
    step: str | None = None  # the step this context runs (None: outside the runbook, e.g. `ctl`)

    def record(self, type_: str, **fields: Any) -> dict:
        return self.journal.record(type_, lane=self.lane, **fields)

    def give_up(self, budget: float) -> float:
        """The monotonic deadline for a machine's work that the plan budgets `budget` drill seconds
        for (clock.give_up_after); polling until then is the machine's real time."""
        from ..clock import give_up_after
        return time.monotonic() + give_up_after(budget, self.time_scale)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Action:
    name: str
    run: Callable[[ActionContext, Any], dict[str, Any]]
    params: type[Params]
    describe: str
    refs: tuple[tuple[str, tuple[str, ...], bool], ...] = ()  # (param, node kinds, links ok)
    failover: bool = False  # moves production: a promotion, a VIP / line / interface switch
    promotes: bool = False  # promotes a database standby: acknowledged writes may be lost
    changes_stack: bool = True  # False for the plan's observing steps (the check, the level)


ACTIONS: Registry[Action] = Registry(
    "action", group="hospital_drill.actions",
    builtin=(__name__, *(f"{__package__}.{m}" for m in ("data_actions", "network_actions",
                                                         "offline_actions", "service_actions"))))


def action(name: str, params: type[Params] = Params, describe: str = "",
           refs: tuple[tuple[str, tuple[str, ...], bool], ...] = (), *, failover: bool = False,
           promotes: bool = False, changes_stack: bool = True):
    """Register the decorated function as the action `name`, with what it declares of itself."""
    def deco(fn):
        ACTIONS.add(name, Action(name, fn, params, describe, refs, failover=failover,
                                 promotes=promotes, changes_stack=changes_stack),
                    origin=f"{fn.__module__}.{fn.__qualname__}")
        return fn
    return deco


def validate(name: str, raw: dict[str, Any]) -> Params:
    """Parameters for an action; FieldErrors (a ValueError) names each field that is wrong."""
    try:
        act = ACTIONS[name]
    except UnknownName as e:
        raise ValueError(f"action: {e}") from None
    try:
        params = act.params.model_validate(raw)
    except ValidationError as e:
        raise FieldErrors.of(e, "with") from None
    problems = [f"with.{key}: {why}" for key, kinds, links in act.refs
                if (why := topology.require(getattr(params, key), kinds=kinds, links=links))]
    if problems:
        raise FieldErrors(problems)
    return params


# --- the plan's check and classification ---------------------------------------------------------

# rejected because of the request itself (a stale page, a malformed body): the client must change
# it. Not 404 (the data may be lost), 401/403 (the login service may be down), 408 or 429.
CLIENT_SIDE = frozenset({400, 409, 412, 415, 422, 426})
CLIENT_SIDE_SHARE = 0.8



def _patient_facing(alert: str) -> bool:
    from ..monitor.monitor import RULES
    rule = RULES.get(alert)
    return rule is None or rule.patient_facing


def check_verdict(alerts: dict[str, str | None], failed_statuses: list[int | None],
                  probe_ok: bool) -> tuple[str, str]:
    """The plan's three-step check as a rule: (verdict, why).

    A system failure when the test account's journey fails, or a critical alert is active, or a
    warning is active and the errors behind it are the system's (5xx, no answer, timeouts, rate
    limits). Not a system failure when no alert is active, when only warnings are active and no
    patient request is failing (redundancy lost), or when only warnings are active and at
    least CLIENT_SIDE_SHARE of the patients' failed requests are rejected as the clients' own fault
    (CLIENT_SIDE: a stale page, a malformed request) while the test account's journey works: a
    false alarm (假故障), handled by the technical group alone.
    """
    if not probe_ok:
        return "system_failure", "the test account's journey fails"
    critical = sorted(a for a, sev in alerts.items() if sev == "critical")
    if critical:
        return "system_failure", f"critical alert(s) on the board: {', '.join(critical)}"
    if not alerts:
        return "not_system_failure", "no alert on the board and the test account's journey works"
    if not failed_statuses and not any(_patient_facing(a) for a in alerts):
        # e.g. redundancy lost: the technical group's, while no patient is failing
        return "not_system_failure", (f"warning only ({', '.join(sorted(alerts))}), about redundancy; "
                                      f"no patient request failing and the test account's journey works")
    client = sum(1 for s in failed_statuses if isinstance(s, int) and s in CLIENT_SIDE)
    if failed_statuses and client / len(failed_statuses) >= CLIENT_SIDE_SHARE:
        return "not_system_failure", (f"warning only ({', '.join(sorted(alerts))}); {client} of "
                                      f"{len(failed_statuses)} errors are rejected client requests "
                                      f"(stale or malformed) and the test account's journey works")
    return "system_failure", (f"warning(s) {', '.join(sorted(alerts))} with server-side errors "
                              f"({len(failed_statuses) - client} of {len(failed_statuses)})")


@action("three_step_check",
        describe="alert type on the board, error logs, test-account journey → system failure or not",
        changes_stack=False)
def three_step_check(ctx: ActionContext, _: Params) -> dict[str, Any]:
    alerts = {name: (ev or {}).get("severity") for name, ev in dict(ctx.monitor.active).items()}
    failed = [r for r in ctx.monitor.recent_records() if not r.get("ok")]
    errors = Counter(f"{r.get('name')}: {str(r.get('error') or r.get('status'))[:80]}" for r in failed)
    probe = ctx.monitor.probe.walk_now()
    verdict, why = check_verdict(alerts, [r.get("status") for r in failed], probe.ok)
    items = {
        "alert_type": [f"{a} ({sev})" for a, sev in sorted(alerts.items())] or ["none"],
        "error_logs": [f"{n}× {msg}" for msg, n in errors.most_common(3)] or ["none"],
        "test_account": "ok" if probe.ok else f"failed at {probe.failed_step}: {probe.error}",
    }
    ctx.state["verdict"] = verdict
    ctx.record("check.finished", items=items, verdict=verdict, reason=why)
    return {"verdict": verdict, "reason": why}


def observe_share(ctx: ActionContext) -> tuple[dict[str, Any], int]:
    """The plan's level rule (score/level.py) over its observation window from when the incident
    began: the operator watches the board until the window has passed (a declared wait), then
    classifies from the share of patients affected in it — the same function the scorer uses."""
    from ..score.level import level_of
    lv = ctx.drill.levels
    seen = ctx.monitor.observed_share(lv, ctx.lane, ctx.stop)
    return seen, level_of(seen["share"], lv)


def record_level(ctx: ActionContext, level: int, seen: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Journal the declared level (every declaring action ends here): the plan's false-alarm rule,
    the share and the window it was judged over, so the scorer judges the same window."""
    if ctx.state.get("verdict") == "not_system_failure":
        level = 3  # the plan: a false alarm never escalates past the technical group
    ctx.state["level"] = level
    ctx.record("level.declared", level=level, affected=seen["affected"], active=seen["active"],
               share=round(seen["share"], 4), failed=seen.get("failed"), slow=seen.get("slow"),
               window_wall=seen.get("window_wall"), basis=seen.get("basis"), **extra)
    return {"level": level, **seen, **extra}


@action("declare_level", describe="classify the response level from the share of affected patients",
        changes_stack=False)
def declare_level(ctx: ActionContext, _: Params) -> dict[str, Any]:
    seen, level = observe_share(ctx)
    return record_level(ctx, level, seen)


# --- failover ------------------------------------------------------------------------------------

class PromoteParams(Params):
    standby: str = "pg-samecity"


@action("promote_standby", PromoteParams, "promote a DR standby and repoint the app's DB link",
        refs=(("standby", ("postgres",), False),), failover=True, promotes=True)
def promote_standby(ctx: ActionContext, p: PromoteParams) -> dict[str, Any]:
    try:
        return ctx.stack.promote_standby(p.standby)
    except Exception as e:  # the journal wants the reason, not a traceback
        raise ActionFailed(f"promote {p.standby}: {e}") from e


class RepointParams(Params):
    link: str
    to: str


@action("repoint_link", RepointParams, "point a link at another node",
        refs=(("link", (), True), ("to", (), False)), failover=True)
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
    ctx.record("notification.sent", channel="app_banner", audience="patients",
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
    ctx.record("notification.sent", channel=p.channel, audience=p.audience, text=p.text)
    return {"sent": sent}


class RouteParams(Params):
    """The egress line, and each third party's interface (primary or backup), to switch to."""
    egress: Literal["primary", "backup"] | None = None
    insurance: Literal["primary", "backup"] | None = None
    payment: Literal["primary", "backup"] | None = None
    notification: Literal["primary", "backup"] | None = None


@action("switch_route", RouteParams,
        "switch the apps' egress line or a third party's interface (insurance, payment, notification)",
        failover=True)
def switch_route(ctx: ActionContext, p: RouteParams) -> dict[str, Any]:
    body = p.model_dump(exclude_none=True)
    if not body:
        raise ActionFailed("nothing to switch: give egress, insurance, payment or notification")
    answered = ctx.stack.post_apps("/admin/route", body)
    if not all(v == 200 for v in answered.values()):
        raise ActionFailed(f"route switch not taken everywhere: {answered}")
    return {"routes": body, "apps": answered}
