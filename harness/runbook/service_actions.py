"""Runbook actions of the service failure classes: server down, malicious traffic, a false alarm,
main-DC power loss — and the three-step check that tells a system failure from a false alarm.

- `switch_app`: point the patient entry point (the VIP) at another app instance once it is healthy.
- `switch_egress`: switch every running app instance to an egress line (a dead one is skipped).
- `block_clients`: read the traffic boards, block the abusive clients on every running instance.
- `refresh_cache`: refresh the front end's cache (patients get the current app script).
- `verify_replica`: write a marker row on the serving primary, wait for it on a DR replica.
"""
from __future__ import annotations

import time
import uuid
from typing import Any, Literal

import psycopg
import requests
from pydantic import Field

from ..models import Duration
from ..monitor.service_rules import abusive_clients, merge_boards, read_boards
from .actions import ActionContext, ActionFailed, Params, action

HTTP_TIMEOUT = 2.0


# --- server down: the backup server takes the entry point ----------------------------------------

class SwitchAppParams(Params):
    to: str = "app-backup"
    link: str = "app-vip"
    wait: Duration = Field(120.0, description="how long the instance may take to be healthy (drill)")


def _health(http: requests.Session, url: str) -> tuple[int | None, dict]:
    try:
        r = http.get(f"{url}/health", timeout=HTTP_TIMEOUT)
        body = r.json() if r.headers.get("Content-Type", "").startswith("application/json") else {}
        return r.status_code, body if isinstance(body, dict) else {}
    except (requests.RequestException, ValueError) as e:
        return None, {"error": e.__class__.__name__}


@action("switch_app", SwitchAppParams,
        "point the patient entry point (VIP) at another app instance once it is healthy",
        refs=(("to", ("app",), False), ("link", (), True)), failover=True)
def switch_app(ctx: ActionContext, p: SwitchAppParams) -> dict[str, Any]:
    stack = ctx.stack
    if p.to in stack.killed_services:
        raise ActionFailed(f"{p.to} is down itself")
    deadline = ctx.give_up(p.wait)
    with requests.Session() as http:
        while True:  # a backup whose database is not back yet answers 503: wait for it, boundedly
            status, body = _health(http, stack.url(p.to))
            if status == 200:
                break
            if time.monotonic() > deadline:
                raise ActionFailed(f"{p.to} not healthy: HTTP {status} {body}")
            time.sleep(0.1)
        t0 = time.monotonic()
        stack.links.repoint(p.link, stack.addresses[p.to])
        entry = f"http://{stack.link_listen[p.link]}"
        while True:  # what patients reach through the link now
            status, body = _health(http, entry)
            if status == 200 and body.get("instance") == p.to:
                break
            if time.monotonic() > deadline:
                raise ActionFailed(f"{p.link} repointed, but patients reach HTTP {status} {body}")
            time.sleep(0.05)
    return {"link": p.link, "to": p.to, "address": stack.addresses[p.to], "serving": body.get("instance"),
            "confirm_seconds": round(time.monotonic() - t0, 3)}


class LineParams(Params):
    line: Literal["primary", "backup"] = "backup"


@action("switch_egress", LineParams,
        "switch every running app instance to an egress line (instances that are down are skipped)",
        failover=True)
def switch_egress(ctx: ActionContext, p: LineParams) -> dict[str, Any]:
    live = ctx.stack.live_app_nodes()
    down = sorted(set(ctx.stack.app_nodes()) - set(live))
    answered = ctx.stack.post_apps("/admin/route", {"egress": p.line}, apps=live)
    if not live or not all(v == 200 for v in answered.values()):
        raise ActionFailed(f"egress line switch not taken by every running app: {answered}, down: {down}")
    return {"egress": p.line, "apps": answered, "skipped_down": down}


# --- malicious traffic ---------------------------------------------------------------------------

class BlockParams(Params):
    clients: list[str] | None = Field(None, description="block these; default: what the board flags")
    wait: Duration = Field(120.0, description="how long to watch the board for abusers (drill)")


def _boards(ctx: ActionContext, http: requests.Session) -> list[dict]:
    return read_boards(ctx.stack, http, HTTP_TIMEOUT)[0]


@action("block_clients", BlockParams,
        "block the clients the traffic board shows as abusive (or those named) on every app instance")
def block_clients(ctx: ActionContext, p: BlockParams) -> dict[str, Any]:
    deadline = ctx.give_up(p.wait)
    with requests.Session() as http:
        while True:
            board = merge_boards(_boards(ctx, http))
            targets = list(p.clients or [c["client"] for c in abusive_clients(board)])
            if targets:
                break
            if time.monotonic() > deadline:
                raise ActionFailed(f"the traffic board shows no abusive client (top: {board[:3]})")
            time.sleep(0.2)
    live = ctx.stack.live_app_nodes()
    answered = ctx.stack.post_apps("/admin/block", {"clients": targets}, apps=live)
    if not live or not all(v == 200 for v in answered.values()):
        raise ActionFailed(f"block not taken by every running app: {answered}")
    evidence = {c["client"]: {k: c.get(k) for k in ("rate", "top_endpoint", "top_share")}
                for c in board if c.get("client") in targets}
    return {"blocked": targets, "evidence": evidence, "apps": answered}


# --- a false alarm: the front end's cache --------------------------------------------------------

@action("refresh_cache", describe="refresh the front end's cache on every running app instance")
def refresh_cache(ctx: ActionContext, _: Params) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with requests.Session() as http:
        for app in ctx.stack.live_app_nodes():
            try:
                r = http.post(f"{ctx.stack.url(app)}/admin/cache/refresh", json={}, timeout=HTTP_TIMEOUT)
                out[app] = r.json() if r.status_code == 200 else f"HTTP {r.status_code}"
            except (requests.RequestException, ValueError) as e:
                out[app] = f"unreachable: {e.__class__.__name__}"
    if not out or not all(isinstance(v, dict) for v in out.values()):
        raise ActionFailed(f"cache refresh not taken by every running app: {out}")
    return {"apps": out}


# --- the remote DR follows the new primary --------------------------------------------------------

class VerifyParams(Params):
    replica: str = "pg-remote"
    timeout: Duration = Field(600.0, description="how long the row may take to arrive (drill)")


MARKERS_DDL = ("CREATE TABLE IF NOT EXISTS drill_markers (marker text PRIMARY KEY, "
               "written_on text NOT NULL, written_at timestamptz NOT NULL DEFAULT now())")


@action("verify_replica", VerifyParams,
        "write a marker row on the serving primary and wait until a DR replica has it",
        refs=(("replica", ("postgres",), False),))
def verify_replica(ctx: ActionContext, p: VerifyParams) -> dict[str, Any]:
    stack = ctx.stack
    primary = stack.current_primary()
    if primary is None:
        raise ActionFailed("no database primary is serving")
    if stack.db_role(p.replica) != "standby":
        raise ActionFailed(f"{p.replica} is not a running standby (it is {stack.db_role(p.replica)})")
    marker = f"drill-{uuid.uuid4()}"
    try:
        with psycopg.connect(stack.db_dsn(primary), autocommit=True) as conn:
            conn.execute(MARKERS_DDL)
            written = conn.execute(
                "INSERT INTO drill_markers (marker, written_on) VALUES (%s, %s) "
                "RETURNING pg_current_wal_lsn()::text AS lsn, "
                "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS timeline",
                [marker, primary]).fetchone()
    except psycopg.Error as e:
        raise ActionFailed(f"write on {primary}: {str(e).strip().splitlines()[0]}") from None
    written_wall = time.time()
    deadline = ctx.give_up(p.timeout)
    last, conn = "not asked yet", None
    try:
        while True:
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(stack.db_dsn(p.replica), autocommit=True)
                if conn.execute("SELECT 1 FROM drill_markers WHERE marker = %s", [marker]).fetchone():
                    receiver = conn.execute(
                        "SELECT status, received_tli, sender_host, sender_port FROM pg_stat_wal_receiver"
                    ).fetchone()
                    break
                last = "the row has not arrived"
            except psycopg.errors.UndefinedTable:
                last = "no drill_markers table there yet"
            except psycopg.Error as e:
                last = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
                if conn is not None:
                    conn.close()
                conn = None
            if time.monotonic() > deadline:
                raise ActionFailed(f"{p.replica} did not receive the marker written on {primary} "
                                   f"within {p.timeout:g}s drill: {last}")
            time.sleep(0.05)
    finally:
        if conn is not None:
            conn.close()
    seen_wall = time.time()
    detail = {"primary": primary, "replica": p.replica, "marker": marker, "lsn": written[0],
              "primary_timeline": written[1], "written_wall": written_wall, "seen_wall": seen_wall,
              "lag_drill_s": round((seen_wall - written_wall) * ctx.time_scale, 3),
              "receiver": dict(zip(("status", "received_tli", "sender_host", "sender_port"),
                                   receiver)) if receiver else None}
    ctx.record("replica.verified", **detail)
    return detail
