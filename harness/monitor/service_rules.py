"""Alert rules and samplers for the service failure classes.

- Malicious traffic: every app instance keeps a traffic board (`GET /admin/traffic`: requests per
  client key and endpoint over the last seconds). A sampler reads the boards; `abusive_clients`
  raises when a client calls far more often than the normal client does, hammering one endpoint.
- One patient function failing while the rest work (a stale front end after a release, a broken
  feature): `single_function_failing`, a warning. With the test-account journey fine and the
  errors the patients' own (4xx), the three-step check calls it not a system failure.

Rates are real seconds: patient load is never scaled, so they mean the same at any time scale.
"""
from __future__ import annotations

import statistics
from collections import deque
from typing import TYPE_CHECKING, Any, Iterable

import requests

from .monitor import SAMPLERS, Observation, rule
from .probe import TEST_ACCOUNT

if TYPE_CHECKING:
    from .monitor import Monitor

TRAFFIC_EVERY_S = 0.5  # real seconds between reads of the traffic boards
TRAFFIC_WINDOW_S = 3  # the boards' window that is read
TRAFFIC_FRESH_S = 3.0  # an older sample is no evidence
TRAFFIC_TIMEOUT_S = 0.5
ABUSE_MIN_RATE = 10.0  # req/s: more than any patient journey makes (a patient: about 2–7 req/s)
ABUSE_FACTOR = 5.0  # ... and this many times the median client's rate
ABUSE_MIN_SHARE = 0.8  # ... nearly all on one endpoint: bots repeat a call, patients walk a journey


# --- pure pieces -----------------------------------------------------------------------------------

def merge_boards(boards: Iterable[dict]) -> list[dict]:
    """Traffic boards of several app instances → one row per client, rates summed, busiest first.
    The top endpoint (and its share) is taken from the instance where the client called most."""
    rows: dict[str, dict] = {}
    for board in boards:
        for c in board.get("clients") or []:
            key = c.get("client")
            if not isinstance(key, str):
                continue
            row = rows.get(key)
            if row is None:
                rows[key] = dict(c)
                continue
            busier = (c.get("requests", 0) + c.get("blocked", 0)
                      > row.get("requests", 0) + row.get("blocked", 0))
            for k in ("requests", "blocked", "rate", "blocked_rate"):
                row[k] = round(row.get(k, 0) + c.get(k, 0), 3)
            if busier:
                row["top_endpoint"], row["top_share"] = c.get("top_endpoint"), c.get("top_share")
    return sorted(rows.values(), key=lambda r: r.get("requests", 0) + r.get("blocked", 0), reverse=True)


def abusive_clients(clients: list[dict], *, min_rate: float = ABUSE_MIN_RATE,
                    factor: float = ABUSE_FACTOR, min_share: float = ABUSE_MIN_SHARE,
                    exclude: Iterable[str] = (TEST_ACCOUNT,)) -> list[dict]:
    """Clients whose admitted request rate is above both `min_rate` and `factor` × the median
    client's, with at least `min_share` of their calls on one endpoint.

    Edge cases: no clients → none; the median is over every client on the board (bots included,
    so a handful of bots among many patients does not move it); blocked requests are not counted
    (a blocked bot stops being abusive); `exclude` (our own test account, whose probe walks a whole
    journey many times a second at high time scales) is never flagged.
    """
    if not clients:
        return []
    normal = statistics.median(float(c.get("rate") or 0.0) for c in clients)
    limit = max(min_rate, factor * normal)
    skip = set(exclude)
    return [c for c in clients if c.get("client") not in skip and float(c.get("rate") or 0.0) > limit
            and float(c.get("top_share") or 0.0) >= min_share]


def failing_function(records: Iterable[dict], *, min_requests: int = 5, fail_share: float = 0.5,
                     others_min: int = 10, others_max: float = 0.1) -> str | None:
    """The one patient call (record `name`) that mostly fails while every other call works, or None.

    Needs `min_requests` of that call failing at `fail_share` or more, and `others_min` other calls
    failing at `others_max` or less: when everything fails it is not one function (and the critical
    rules speak).
    """
    counts: dict[str, list[int]] = {}
    for r in records:
        c = counts.setdefault(str(r.get("name")), [0, 0])
        c[0] += 1
        c[1] += 0 if r.get("ok") else 1
    worst = max(((n, f, name) for name, (n, f) in counts.items() if n >= min_requests and f / n >= fail_share),
                key=lambda x: x[1] / x[0], default=None)
    if worst is None:
        return None
    others = [v for name, v in counts.items() if name != worst[2]]
    on, of = sum(n for n, _ in others), sum(f for _, f in others)
    return worst[2] if on >= others_min and of / on <= others_max else None


# --- sampler and rules -----------------------------------------------------------------------------

def latest_traffic(m: "Monitor", now: float) -> dict | None:
    samples = m.samples.get("traffic")
    if not samples or now - samples[-1]["t"] > TRAFFIC_FRESH_S:
        return None
    return samples[-1]


def sample_traffic(m: "Monitor", now: float) -> None:
    """Read every running app instance's traffic board (at most every TRAFFIC_EVERY_S)."""
    if m.stack is None:
        return
    samples: deque = m.samples.setdefault("traffic", deque(maxlen=40))
    if samples and now - samples[-1]["t"] < TRAFFIC_EVERY_S:
        return
    boards, answered = [], []
    for app in m.stack.live_app_nodes():
        try:
            r = requests.get(f"{m.stack.url(app)}/admin/traffic", params={"window": TRAFFIC_WINDOW_S},
                             timeout=TRAFFIC_TIMEOUT_S)
            if r.status_code == 200:
                boards.append(r.json())
                answered.append(app)
        except (requests.RequestException, ValueError):
            continue
    if answered:
        samples.append({"t": now, "apps": answered, "clients": merge_boards(boards),
                        "blocked": sorted({c for b in boards for c in b.get("blocked") or []})})


SAMPLERS.append(sample_traffic)


@rule("abusive_clients", "critical",
      "malicious traffic: clients calling far above the normal rate, hammering one endpoint")
def _abusive(o: Observation) -> bool:
    sample = latest_traffic(o.monitor, o.now)
    return bool(sample and abusive_clients(sample["clients"]))


@rule("single_function_failing", "warning",
      "one patient function fails while the others work (e.g. exam booking after a release)")
def _single_function(o: Observation) -> bool:
    return failing_function(window_records(o.monitor)) is not None


def window_records(m: "Monitor") -> list[dict[str, Any]]:
    """A copy of the monitor's recent patient records (the runbook's threads ingest too)."""
    with m._lock:
        return list(m.window.items)
