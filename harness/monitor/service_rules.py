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
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Iterable

import requests

from .monitor import SAMPLERS, Observation, rule
from .probe import TEST_ACCOUNT

if TYPE_CHECKING:
    from .monitor import Monitor

TRAFFIC_WINDOW_S = 2  # the boards' window that is read
TRAFFIC_FRESH_S = 3.0  # real seconds: an older sample is no evidence (the board reads each sample)
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


def failing_function(records: Iterable[dict], *, streak: int = 3, others_min: int = 10,
                     others_max: float = 0.1, span: float = 0.5) -> str | None:
    """The one patient call (record `name`) whose last `streak` requests all failed while the other
    calls worked, or None.

    "Worked": at least `others_min` requests of other calls while the streak ran (from its first
    failure to its last, and at least `span` real seconds), failing at `others_max` or less. When
    everything fails it is not one function (and the critical rules speak); when two calls fail it
    is not a single one either; a rare call whose last calls failed in an outage that is over, with
    the others failing beside it then, is not one either. A streak, not a share of the window: the
    window still holds the call's successes from before it broke.
    """
    calls: dict[str, list[tuple[float, bool]]] = {}
    for r in records:
        t = r.get("t")
        calls.setdefault(str(r.get("name")), []).append((t if isinstance(t, (int, float)) else 0.0,
                                                         bool(r.get("ok"))))
    failing = []  # (name, first and last failure of its streak)
    for name, seen in calls.items():
        last = sorted(seen)[-streak:]
        if len(last) == streak and not any(ok for _, ok in last):
            failing.append((name, last[0][0], last[-1][0]))
    if len(failing) != 1:
        return None
    name, since, until = failing[0]
    until = max(until, since + span)
    others = [ok for other, seen in calls.items() if other != name for t, ok in seen if since <= t <= until]
    bad = others.count(False)
    return name if len(others) >= others_min and bad / len(others) <= others_max else None


# --- sampler and rules -----------------------------------------------------------------------------

def latest_traffic(m: "Monitor", now: float) -> dict | None:
    samples = m.samples.get("traffic")
    if not samples or now - samples[-1]["t"] > TRAFFIC_FRESH_S:
        return None
    return samples[-1]


def read_boards(stack: Any, http: requests.Session, timeout: float) -> tuple[list[dict], list[str]]:
    """The traffic boards of the running app instances, and which instances answered."""
    boards, answered = [], []
    for app in stack.live_app_nodes():
        try:
            r = http.get(f"{stack.url(app)}/admin/traffic", params={"window": TRAFFIC_WINDOW_S},
                         timeout=timeout)
            if r.status_code == 200:
                boards.append(r.json())
                answered.append(app)
        except (requests.RequestException, ValueError, KeyError):
            continue
    return boards, answered


def sample_traffic(m: "Monitor", now: float) -> None:
    """Read the apps' traffic boards within the board's sample (on its lane: the reads are real
    work, the cadence is the board's declared one)."""
    if m.stack is None:
        return
    samples: deque = m.samples.setdefault("traffic", deque(maxlen=40))
    http = getattr(m, "_traffic_http", None)
    if http is None:
        http = m._traffic_http = requests.Session()
        m.closers.append(http.close)
    boards, answered = read_boards(m.stack, http, TRAFFIC_TIMEOUT_S)
    if answered:
        samples.append({"t": time.time(), "apps": answered, "clients": merge_boards(boards),
                        "blocked": sorted({c for b in boards for c in b.get("blocked") or []})})


SAMPLERS.add("traffic", sample_traffic)


@rule("abusive_clients", "critical",
      "malicious traffic: clients calling far above the normal rate, hammering one endpoint")
def _abusive(o: Observation) -> dict | bool:
    sample = latest_traffic(o.monitor, o.now)
    found = abusive_clients(sample["clients"]) if sample else []
    # the evidence goes into the alert: who, how fast, on what
    return {"clients": {c["client"]: {"rate": c.get("rate"), "endpoint": c.get("top_endpoint")}
                        for c in found}} if found else False


# raised at once: its evidence is already a streak of failures. It holds recovery: a few
# patients failing one function are too few to move the error rate, but they are not back.
@rule("single_function_failing", "warning",
      "one patient function fails while the others work (e.g. exam booking after a release)",
      raise_after=1, blocks_recovery=True)
def _single_function(o: Observation) -> dict | bool:
    name = failing_function(window_records(o.monitor))
    return {"function": name} if name else False


def window_records(m: "Monitor") -> list[dict[str, Any]]:
    """A copy of the monitor's recent patient records (the runbook's threads ingest too)."""
    return m.recent_records()
