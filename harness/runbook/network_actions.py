"""Runbook actions of the network and third-party failure classes: egress line saturated or down, an
insurance interface failing (and a backup interface configured wrong), a third party misbehaving.

- `switch_and_verify`: switch the apps' egress line and/or a third party's interface (insurance,
  payment, notification), then walk a test payment (a test message for notification) through the
  new route; when it fails, the step fails naming the culprit the services' own errors point at
  (the component and the address that refused, see culprit.py), and the routes go back to what
  they were.
- `declare_network_level`: the plan's classification from the share of affected patients, with the
  plan's network rule on top: while an egress-line alert holds, at least level 2.
- `degrade_payments`: the app's degraded mode: insurance claims queued (the patient pays now, the
  claim is settled later) and/or pay-later, checked with a test payment.
- `settle_deferred`: once the third parties answer again, back to normal mode and settle what was
  queued, boundedly waiting for them.
"""
from __future__ import annotations

import time
import uuid
from typing import Any, Literal

import requests
from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from ..models import Duration
from ..monitor.probe import TEST_ACCOUNT
from ..stack import topology
from .actions import ActionContext, ActionFailed, Params, action, observe_share, record_level
from .culprit import Culprit, corrective_action, link_upstream, locate, probe_address

HTTP_TIMEOUT = 2.0
RETRY_EVERY = 5.0  # drill seconds between two verifications of a switch
TEST_AMOUNT = 1.0  # insurance covers part of it, payment the rest: both third parties are walked
ROUTE_NAMES = {"egress": "egress line", **{k: f"{k} interface" for k in topology.THIRD_PARTY_KINDS}}
TEST_MESSAGE = "【演练】通知通道测试，请忽略。(drill: notification route test, please ignore)"

PAYMENT_TIMEOUT = 2 * 2.0 + 3.0  # the app waits up to 2 s for insurance, 2 s for payment, then the DB


def test_payment(ctx: ActionContext, http: requests.Session, purpose: str) -> dict[str, Any]:
    """A payment with insurance by the test account through the patient entry point; what happened:
    {"ok", "status", "ms", "body" or "error"}."""
    body = {"patient_id": TEST_ACCOUNT, "amount": TEST_AMOUNT, "insurance": True,
            "write_id": f"{purpose}-{uuid.uuid4()}"}
    return _test_call(http, f"{ctx.stack.vip_url}/api/payments", body, 201,
                      ("id", "insurance_covered", "paid", "claim_status", "payment_status"))


def test_message(ctx: ActionContext, http: requests.Session) -> dict[str, Any]:
    """A message to the test account through the apps' notification route (their `/admin/notify`
    behind the patient entry point): {"ok", "status", "ms", "body" or "error" (+ "culprit")}."""
    return _test_call(http, f"{ctx.stack.vip_url}/admin/notify",
                      {"channel": "sms", "audience": TEST_ACCOUNT, "text": TEST_MESSAGE}, 200,
                      ("id", "channel"))


def _test_call(http: requests.Session, url: str, body: dict[str, Any], ok_status: int,
               keep: tuple[str, ...]) -> dict[str, Any]:
    """One call by the test account; what happened, with the app's account of a failure."""
    t0 = time.monotonic()
    out: dict[str, Any] = {"ok": False, "status": None}
    try:
        r = http.post(url, json=body, timeout=PAYMENT_TIMEOUT, headers={"X-Patient-Id": TEST_ACCOUNT})
        out["status"] = r.status_code
        data = r.json() if r.content else {}
        if r.status_code == ok_status and isinstance(data, dict):
            out.update(ok=True, body={k: data.get(k) for k in keep})
        else:
            _failed(out, r, data)
    except (requests.RequestException, ValueError) as e:
        out["error"] = f"{e.__class__.__name__}: {str(e)[:160]}"
    out["ms"] = round((time.monotonic() - t0) * 1000, 1)
    return out


def _failed(out: dict[str, Any], r: requests.Response, data: Any) -> None:
    """The app's error and, when it gave one, its account of the culprit."""
    body = data if isinstance(data, dict) else {}
    out["error"] = body.get("error") or r.text[:200]
    if isinstance(body.get("culprit"), dict):
        out["culprit"] = body["culprit"]


def configured_address(ctx: ActionContext, route: str, target: str) -> str | None:
    """Where the apps' `route` (egress or a third party) leads when set to `target`: the address of
    the interface as configured (its link's upstream), or the line's address the apps dial."""
    stack = ctx.stack
    if route == "egress":
        return stack.link_listen.get(f"egress-{target}")
    link = topology.interface(route, target)
    return link_upstream(stack, link) or (stack.config.backup_address(route)
                                          if target == "backup" else None)


def _routes_now(ctx: ActionContext, http: requests.Session) -> dict[str, str]:
    for app in ctx.stack.live_app_nodes():
        try:
            r = http.get(f"{ctx.stack.url(app)}/admin/config", timeout=HTTP_TIMEOUT)
            if r.status_code == 200:
                return dict(r.json().get("routes") or {})
        except (requests.RequestException, ValueError):
            continue
    return {}


def _post_live(ctx: ActionContext, path: str, body: dict) -> dict[str, Any]:
    live = ctx.stack.live_app_nodes()
    answered = ctx.stack.post_apps(path, body, apps=live)
    if not live or not all(v == 200 for v in answered.values()):
        raise ActionFailed(f"{path} {body} not taken by every running app instance: {answered}")
    return answered


# --- a verified switch ---------------------------------------------------------------------------

def _one_of(*others: str):
    """A validator for the last of several optional fields: at least one of them must be given
    (on a field, not the model, so that the error names where to add it)."""
    def check(v: Any, info: ValidationInfo) -> Any:
        if v is None and all(info.data.get(o) is None for o in others):
            names = [*others, info.field_name]
            choice = (f"{names[0]} or {names[1]} (or both)" if len(names) == 2 else
                      f"{', '.join(names[:-1])} or {names[-1]} (any of them)")
            raise PydanticCustomError("missing_choice", f"give {choice}")
        return v
    return check


Interface = Literal["primary", "backup"]


class VerifiedSwitchParams(Params):
    egress: Interface | None = None
    insurance: Interface | None = None
    payment: Interface | None = None
    notification: Interface | None = Field(None, validate_default=True)
    attempts: int = Field(3, ge=1, le=10, description="tests before the switch is judged failed")
    rollback: bool = Field(True, description="when the new route does not work, switch back")

    _any = field_validator("notification")(_one_of("egress", "insurance", "payment"))

    def routes(self) -> dict[str, str]:
        return {k: v for k in ("egress", *topology.THIRD_PARTY_KINDS)
                if (v := getattr(self, k)) is not None}


def _verify_once(ctx: ActionContext, http: requests.Session, body: dict[str, str]) -> dict[str, Any]:
    """Walk what the switched routes carry: a payment with insurance (egress line, insurance or
    payment switched) and/or a message (notification switched). {"ok", "tests": {name: result}}."""
    tests: dict[str, Any] = {}
    if body.keys() - {"notification"}:
        tried = test_payment(ctx, http, "verify-route")
        # a payment whose claim was only queued (degraded mode) did not reach the insurer, one
        # recorded as pay-later did not reach the payment service
        if tried["ok"] and ("insurance" in body and tried["body"].get("claim_status") == "queued"
                            or "payment" in body and tried["body"].get("payment_status") == "pay_later"):
            tried = {**tried, "ok": False, "error": "the app is in degraded mode: the switched "
                                                    "interface was not called"}
        tests["test_payment"] = tried
    if "notification" in body:
        tests["test_message"] = test_message(ctx, http)
    return {"ok": all(t["ok"] for t in tests.values()), "tests": tests}


@action("switch_and_verify", VerifiedSwitchParams,
        "switch the apps' egress line / a third party's interface, then walk a test payment (or a "
        "test message) through it", failover=True)
def switch_and_verify(ctx: ActionContext, p: VerifiedSwitchParams) -> dict[str, Any]:
    body = p.routes()
    with requests.Session() as http:
        before = _routes_now(ctx, http)
        answered = _post_live(ctx, "/admin/route", body)
        tries = []
        for i in range(p.attempts):
            tried = _verify_once(ctx, http, body)
            tries.append(tried)
            if tried["ok"]:
                detail = {"routes": body, "apps": answered, **tried["tests"],
                          "addresses": {r: configured_address(ctx, r, t) for r, t in body.items()}}
                ctx.record("route.verified", ok=True, routes=body, attempts=i + 1, **tried["tests"])
                return detail
            ctx.lane.wait(RETRY_EVERY, ctx.stop)  # the plan's retry interval: declared
        last = tries[-1]["tests"]
        failed = next(t for t in last.values() if not t["ok"])
        # what the switched routes lead to, as configured, and what a connection to each does
        found = []
        for route, target in body.items():
            address = configured_address(ctx, route, target)
            connected, what = probe_address(address)
            found.append({"route": route, "target": target, "address": address,
                          "connected": connected, "what": what})
        rolled = None
        if p.rollback and before:
            back = {k: before[k] for k in body if before.get(k) and before[k] != body[k]}
            if back:
                rolled = ctx.stack.post_apps("/admin/route", back, apps=ctx.stack.live_app_nodes())
                rolled = {"routes": back, "apps": rolled}
        # the culprit is what the services' own errors point at; the configured addresses only
        # when they gave no account (the entry point itself did not answer)
        culprit = locate(ctx.stack, failed.get("culprit"))
        if culprit is None:
            bad = next((f for f in found if not f["connected"]), found[0])
            component = (f"egress-{bad['target']}" if bad["route"] == "egress"
                         else topology.interface(bad["route"], bad["target"]))
            culprit = Culprit(component, bad["address"], bad["what"])
        fix = corrective_action(ctx.stack, culprit)
        switched = {f"egress-{t}" if r == "egress" else topology.interface(r, t)
                    for r, t in body.items()}
        kinds = " and ".join(k.replace("_", " ") for k in last)
        answer = f"HTTP {failed['status']}" if failed["status"] else "no answer"
        msg = (f"{culprit.words()}; {len(tries)} {kinds}(s) after the switch to "
               f"{', '.join(f'{k} {v}' for k, v in body.items())}: {answer}"
               + ("" if culprit.component in switched else
                  "; the switch itself is not at fault: the calls went through it")
               + f"; fix: {fix}"
               + (f"; switched back to {', '.join(f'{k} {v}' for k, v in rolled['routes'].items())}"
                  if rolled else ""))
        ctx.record("route.verified", ok=False, routes=body, attempts=len(tries), **last,
                   culprit=culprit.as_dict(), found=found, corrective_action=fix, rolled_back=rolled)
        raise ActionFailed(msg)


# --- the plan's network rule in the classification ------------------------------------------------

class NetworkLevelParams(Params):
    alerts: list[str] = Field(default_factory=lambda: ["egress_saturated", "egress_line_down"],
                              min_length=1, description="alerts that invoke the network rule")
    level: int = Field(2, ge=1, le=3, description="the level the rule sets at least")

    @field_validator("alerts")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        from ..monitor.monitor import RULES  # the board's rules, built-in and plugins'
        bad = [a for a in v if a not in RULES]
        if bad:
            raise PydanticCustomError("unknown_alert", f"unknown alert {bad[0]!r} "
                                      f"(known: {', '.join(sorted(RULES))})")
        return v


@action("declare_network_level", NetworkLevelParams,
        "classify the level from the share of affected patients; while an egress-line alert holds, "
        "at least level 2 (the plan's network rule)", changes_stack=False)
def declare_network_level(ctx: ActionContext, p: NetworkLevelParams) -> dict[str, Any]:
    seen, by_share = observe_share(ctx)
    holding = sorted(a for a in p.alerts if a in ctx.monitor.active)
    level = min(by_share, p.level) if holding else by_share
    rule = {"alerts": holding, "level": p.level} if holding else None
    return record_level(ctx, level, seen, by_share=by_share, rule=rule)


# --- degraded payments ---------------------------------------------------------------------------

class DegradeParams(Params):
    insurance: Literal["queue", "normal"] | None = Field(
        None, description="queue: patients pay in full now, claims are settled after recovery")
    payment: Literal["later", "normal"] | None = Field(
        None, validate_default=True,
        description="later: the payment is recorded as owed and charged after recovery")
    verify: bool = Field(True, description="walk a test payment in the new mode")

    _either = field_validator("payment")(_one_of("insurance"))


@action("degrade_payments", DegradeParams,
        "degraded payments: queue insurance claims / pay later instead of failing the patient")
def degrade_payments(ctx: ActionContext, p: DegradeParams) -> dict[str, Any]:
    body = {k: v for k, v in (("insurance", p.insurance), ("payment", p.payment)) if v is not None}
    answered = _post_live(ctx, "/admin/degrade", body)
    out: dict[str, Any] = {"mode": body, "apps": answered}
    if p.verify:
        with requests.Session() as http:
            tried = test_payment(ctx, http, "verify-degrade")
        out["test_payment"] = tried
        if not tried["ok"]:
            raise ActionFailed(f"degraded mode {body} set, but a test payment still fails: "
                               f"HTTP {tried['status']} {tried.get('error')}")
    return out


class SettleParams(Params):
    wait: Duration = Field(1800.0, description="how long to wait for the third parties (drill)")
    every: Duration = Field(30.0, gt=0, description="how often to try again (drill)")
    restore: bool = Field(True, description="switch degraded mode off once the third parties answer")


def _settle_once(ctx: ActionContext, http: requests.Session) -> dict[str, Any]:
    try:
        r = http.post(f"{ctx.stack.vip_url}/admin/settle-claims", json={}, timeout=30)
        data = r.json()
    except (requests.RequestException, ValueError) as e:
        return {"error": f"the app did not answer: {e.__class__.__name__}"}
    if r.status_code != 200 or not isinstance(data, dict):
        return {"error": f"HTTP {r.status_code}: {str(data)[:160]}"}
    return data


@action("settle_deferred", SettleParams,
        "once the third parties answer again: normal mode, then settle queued claims and pay-later "
        "payments")
def settle_deferred(ctx: ActionContext, p: SettleParams) -> dict[str, Any]:
    # the third parties come back when the world says (declared time): wait on the step's lane
    started = ctx.lane.now()
    settled = {"claims": 0, "payments": 0}
    refund, tries, restored = 0.0, 0, None
    with requests.Session() as http:
        while True:
            tries += 1
            got = _settle_once(ctx, http)
            for k in settled:
                settled[k] += int((got.get("settled") or {}).get(k) or 0)
            refund += float(got.get("refund_due") or 0)
            pending = got.get("pending") or {}
            answered = got.get("error") is None
            if answered and p.restore and restored is None:
                # the third parties are back: new payments go the normal way again, and the loop
                # settles whatever was queued meanwhile
                restored = _post_live(ctx, "/admin/degrade", {"insurance": "normal", "payment": "normal"})
                continue
            if answered and not any(pending.values()):
                ctx.record("payments.settled", settled=settled, refund_due=round(refund, 2),
                                   tries=tries)
                return {"settled": settled, "refund_due": round(refund, 2), "tries": tries,
                        "normal_mode": restored}
            if ctx.lane.now() - started > p.wait:
                raise ActionFailed(f"{pending.get('claims', '?')} queued claims and "
                                   f"{pending.get('payments', '?')} pay-later payments still "
                                   f"unsettled after {p.wait:g}s: {got.get('error')}")
            ctx.lane.wait(p.every, ctx.stop)
