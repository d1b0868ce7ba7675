"""Redundancy the hospital can lose without a patient noticing — yet: a standby database that is down
or not streaming, an app instance that stopped answering while the other one (behind the patient
entry point) carries the patients.

Looked at every REDUNDANCY_EVERY drill seconds, within the board's sample (on its lane), over real
connections with short timeouts. A loss is a warning: patients are not failing because of it, so it
does not open an incident that patients must recover from.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
import requests

from .monitor import SAMPLERS, Observation, rule

if TYPE_CHECKING:
    from .monitor import Monitor

REDUNDANCY_EVERY = 15.0  # drill seconds between two looks
HEALTH_TIMEOUT = 0.5  # real seconds: an instance that cannot answer /health in this is down
DB_TIMEOUT = 1  # psycopg's connect_timeout is whole seconds
KEY = "redundancy"


def standby_state(dsn: str) -> str | None:
    """None when `dsn` is a streaming standby; else what is wrong with it."""
    try:
        with psycopg.connect(dsn, connect_timeout=DB_TIMEOUT, autocommit=True) as conn:
            in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            if not in_recovery:
                return "not in recovery (it is a primary)"
            row = conn.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
            if row is None or row[0] != "streaming":
                return f"replication {'stopped' if row is None else row[0]}"
            return None
    except psycopg.Error as e:
        return (str(e).strip().splitlines() or [e.__class__.__name__])[0][:160]


def app_state(http: requests.Session, url: str) -> str | None:
    """None when the instance answers at all: its liveness, not its database (a slow or lost
    database is another alert), so the call is one that needs no database."""
    try:
        http.get(f"{url}/api/notice", timeout=HEALTH_TIMEOUT)
        return None
    except requests.RequestException as e:
        return f"no answer: {e.__class__.__name__}"


def _serving(stack) -> str | None:
    """The address behind the patient entry point (VIP), as the load balancer's config says."""
    try:
        return (stack.links.proxies().get("app-vip") or {}).get("upstream")
    except Exception:
        return None


def look(m: "Monitor") -> dict[str, str]:
    """What redundancy is lost now: component → why."""
    stack, lost = m.stack, {}
    serving = _serving(stack)
    with requests.Session() as http:
        for app in stack.app_nodes():
            if stack.addresses.get(app) == serving:
                continue  # the instance patients reach: its trouble is theirs, other alerts say so
            why = app_state(http, stack.url(app))
            if why:
                lost[app] = why
    for node, role in list(stack.db_roles.items()):
        if role == "standby":
            why = standby_state(stack.db_dsn(node, "postgres"))
            if why:
                lost[node] = why
    return lost


def sample_redundancy(m: "Monitor", now: float) -> None:
    if m.stack is None or not hasattr(m.stack, "db_roles"):
        return
    last = m.samples.get(KEY)
    t = m.lane.now()
    if last and t - last[-1]["drill"] < REDUNDANCY_EVERY:
        return
    m.samples.setdefault(KEY, []).append({"drill": t, "t": now, "lost": look(m)})
    del m.samples[KEY][:-20]


SAMPLERS.add("redundancy", sample_redundancy)


@rule("redundancy_lost", "warning",
      "a standby database or an app instance is down or not streaming: redundancy lost",
      raise_after=2, clear_after=2, patient_facing=False)
def _redundancy_lost(o: Observation) -> dict[str, Any] | bool:
    samples = o.monitor.samples.get(KEY) or []
    lost = samples[-1]["lost"] if samples else {}
    return {"lost": lost} if lost else False
