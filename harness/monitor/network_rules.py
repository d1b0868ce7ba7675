"""Alert rules and samplers for the network failure classes: the egress lines to the third parties.

Samples. A watcher thread beside the monitor (started by the `sample_egress_lines` sampler hook;
on its own clock, so that a slow tick of the board does not stretch a sample) reads each egress
line's Toxiproxy byte counters (`Links.stats`) every SAMPLE_EVERY drill seconds (but never closer
than MIN_SAMPLE_REAL real seconds, so that a sample holds enough bytes to mean something) and tries
to connect to the address its callers dial. One sample per line:

    {"t": wall, "link": "egress-primary", "up": true, "bytes_per_s": 1999512.0,
     "upstream_bps": 310.2, "downstream_bps": 1999512.0, "utilisation": 0.9998, "capacity_kbps": 2000}

`bytes_per_s` and `utilisation` are those of the busier direction (a line is full duplex; its
capacity holds each way); `utilisation` is None when the line has no configured capacity (stack
config `egress_lines`) or the Toxiproxy has no byte counters (a real Toxiproxy). Samples are kept
in `monitor.samples["link:<name>"]`; those of metered lines are journalled as `link.sample` events
(with `rtt_ms`, the line's latest round trip).

Round trips. The watcher also times `GET /_ping` over each line (request and answer cross the
line, queueing behind whatever fills it) every PING_EVERY drill seconds, giving up after
PING_TIMEOUT real seconds (several may be in flight on a full line): `monitor.samples["ping:<name>"]`
holds `{"t", "link", "rtt_ms"}` (None when it timed out or failed, with `error`). A full line shows
here first, as it does on a network team's latency graph.

Rules — the plan's network rule is "3 consecutive samples of egress-line utilisation above 95% while
external services are unreachable → level 2, switch to the backup line":

- `egress_latency_high` (warning): a line's last 2 round trips took over LATENCY_MS (or timed out);
- `egress_utilisation_high` (warning): a line's last 3 samples all above 95%; it clears once 3 in a
  row are at or below (hysteresis: one sample at 94% does not make it flap);
- `egress_saturated` (critical): that, while the third parties are unreachable over it — patients'
  payments failing with 502/504, or the test account's payment failing so;
- `egress_line_down` (critical): a line's address refused (or did not take) a connection on its
  last 2 samples.

A rule answers its evidence (which line, the samples) as a dict: it goes into the alert's detail.
"""
from __future__ import annotations

import socket
import threading
import time
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from ..stack import topology
from .monitor import SAMPLERS, Observation, rule

if TYPE_CHECKING:
    from .monitor import Monitor

EGRESS_LINKS = tuple(name for name in topology.LINKS if name.startswith("egress-"))
SAMPLE_EVERY = 15.0  # drill seconds between samples of a line
MIN_SAMPLE_REAL = 0.25  # real seconds of counters a utilisation is measured over, at least
PING_EVERY = 5.0  # drill seconds between round trips over a line
SATURATED = 0.95  # the plan: utilisation above 95% ...
CONSECUTIVE = 3  # ... on 3 consecutive samples
DOWN_SAMPLES = 2  # a line refusing connections on this many samples in a row is down
CONNECT_TIMEOUT = 0.5
PING_TIMEOUT = 0.3  # real seconds: a line's round trip is a few ms when it is not full
LATENCY_MS = 250.0  # a round trip slower than this (or none) ...
LATENCY_SAMPLES = 2  # ... this many times in a row is high latency
KEEP = 720  # samples (and round trips) kept per line: hours of drill time


def sample_key(link: str) -> str:
    return f"link:{link}"


# --- pure pieces -----------------------------------------------------------------------------------

def utilisation(up_bytes: float, down_bytes: float, seconds: float,
                capacity_kbps: float | None) -> tuple[float, float, float | None]:
    """Byte-counter increments over `seconds` → (up bytes/s, down bytes/s, utilisation of the busier
    direction). Utilisation is None without a capacity or a positive interval."""
    if seconds <= 0:
        return 0.0, 0.0, None
    up, down = max(0.0, up_bytes) / seconds, max(0.0, down_bytes) / seconds
    if not capacity_kbps:
        return up, down, None
    return up, down, max(up, down) / (capacity_kbps * 1000)


def above(samples: list[dict], threshold: float = SATURATED, n: int = CONSECUTIVE) -> bool:
    """The last `n` samples all have a utilisation above `threshold` (consecutive: none missing)."""
    last = samples[-n:]
    return len(last) == n and all(s.get("utilisation") is not None and s["utilisation"] > threshold
                                  for s in last)


def at_or_below(samples: list[dict], threshold: float = SATURATED, n: int = CONSECUTIVE) -> bool:
    """The last `n` samples are all at or below `threshold` (or unmeasured): the line has cooled."""
    last = samples[-n:]
    return len(last) == n and all(s.get("utilisation") is None or s["utilisation"] <= threshold
                                  for s in last)


def saturated(samples: list[dict], raised: bool) -> bool:
    """With hysteresis: raised by `above`, kept until `at_or_below`."""
    return above(samples) or (raised and not at_or_below(samples))


def down(samples: list[dict], n: int = DOWN_SAMPLES) -> bool:
    last = samples[-n:]
    return len(last) == n and not any(s.get("up") for s in last)


def slow(pings: list[dict], limit_ms: float = LATENCY_MS, n: int = LATENCY_SAMPLES) -> bool:
    """The last `n` round trips were slower than `limit_ms` or got no answer in time (a refused
    connection is the line being down, not slow)."""
    last = pings[-n:]
    return len(last) == n and all(
        (p.get("rtt_ms") is None and p.get("error") == "timeout")
        or (p.get("rtt_ms") is not None and p["rtt_ms"] > limit_ms) for p in last)


def unreachable(stats: dict, probe: Any) -> dict | None:
    """Evidence that the third parties cannot be reached: payments failing 502/504 in the window,
    or the test account's payment failing so (or with no answer at all)."""
    failed = int(stats.get("third_party_failed") or 0)
    probe_failed = bool(probe is not None and not probe.ok and probe.failed_step == "payment"
                        and probe.status in (502, 504, None))
    if not failed and not probe_failed:
        return None
    out: dict[str, Any] = {"payments_failed": failed}
    if probe_failed:
        out["test_payment"] = probe.error
    return out


# --- the watcher: samples and round trips, on its own clock -----------------------------------------

def line_up(address: str | None) -> tuple[bool, str | None]:
    """Whether something takes a TCP connection at `address` (a link's listen address)."""
    if not address:
        return False, "no address"
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            return True, None
    except OSError as e:
        return False, e.strerror or e.__class__.__name__


def capacity_of(stack: Any, link: str) -> float | None:
    lines = getattr(getattr(stack, "config", None), "egress_lines", None) or {}
    spec = lines.get(link.removeprefix("egress-"))
    return float(spec.capacity_kbps) if spec is not None else None


def ping_line(address: str, timeout: float = PING_TIMEOUT) -> dict:
    """One round trip over a line to the egress gateway's `/_ping` (a new connection each time)."""
    t0 = time.monotonic()
    try:
        r = requests.get(f"http://{address}/_ping", timeout=timeout, headers={"Connection": "close"})
        rtt = round((time.monotonic() - t0) * 1000, 1)
        return {"rtt_ms": rtt} if r.status_code == 200 else {"rtt_ms": None, "error": f"HTTP {r.status_code}"}
    except requests.Timeout:
        return {"rtt_ms": None, "error": "timeout"}
    except requests.RequestException as e:
        return {"rtt_ms": None, "error": e.__class__.__name__}


@dataclass
class _Reading:
    mono: float
    up: float | None
    down: float | None


class LineSampler:
    """Turns successive readings of each egress line's counters into samples (pure bookkeeping
    around `read`, so that it can be driven by a test clock)."""

    def __init__(self, m: "Monitor"):
        self.monitor = m
        self.last: dict[str, _Reading] = {}
        self.history: dict[str, deque] = {}

    def sample(self, link: str, wall: float, drill: float | None = None) -> dict | None:
        m, stack = self.monitor, self.monitor.stack
        t0 = time.monotonic()
        try:
            counters = stack.links.stats(link)
        except Exception:
            counters = None
        mono = (t0 + time.monotonic()) / 2  # when the counters were read, near enough
        ok, why = line_up(stack.link_listen.get(link))
        now = _Reading(mono, counters.get("upstream_bytes") if counters else None,
                       counters.get("downstream_bytes") if counters else None)
        hist = self.history.setdefault(link, deque(maxlen=64))
        # the newest reading at least MIN_SAMPLE_REAL old (else the oldest): a short interval would
        # count a handful of pieces of data, not a rate
        prev = next((r for r in reversed(hist) if now.mono - r.mono >= MIN_SAMPLE_REAL),
                    hist[0] if hist else None)
        hist.append(now)
        self.last[link] = now
        if prev is None:
            return None  # the first reading only starts the count
        cap = capacity_of(stack, link)
        up_bps = down_bps = 0.0
        util = None
        if now.up is not None and prev.up is not None:
            up_bps, down_bps, util = utilisation(now.up - prev.up, now.down - prev.down,
                                                 now.mono - prev.mono, cap)
        sample = {"t": wall, "drill": drill, "link": link, "up": ok,
                  "bytes_per_s": round(max(up_bps, down_bps), 1),
                  "upstream_bps": round(up_bps, 1), "downstream_bps": round(down_bps, 1),
                  "utilisation": None if util is None else round(util, 4), "capacity_kbps": cap}
        if not ok:
            sample["error"] = why
        pings = m.samples.get(f"ping:{link}")
        if pings:
            sample["rtt_ms"] = pings[-1].get("rtt_ms")
        m.samples.setdefault(sample_key(link), deque(maxlen=KEEP)).append(sample)
        if cap is not None:  # for the report's charts: the lines the drill is about
            m.journal.record("link.sample", wall=wall,
                             **{k: v for k, v in sample.items() if k not in ("t", "drill")})
        return sample


class LineWatch(threading.Thread):
    """The line monitor, beside the board on a lane of its own (the board's test-account walk can
    take seconds when payments time out; the plan's 3 × 15 s rule must not wait on it): a round trip
    over each line every PING_EVERY drill seconds and a utilisation sample every SAMPLE_EVERY. Round
    trips go out side by side and are waited for (real work, PING_TIMEOUT at most); a sample's
    utilisation is measured over at least MIN_SAMPLE_REAL real seconds of counters, which sharpens
    the reading and never moves when it is taken. Each sample and round trip carries its drill time
    (`drill`); an alert on them is stamped no earlier than that."""

    LANE = "lines"

    def __init__(self, m: "Monitor"):
        super().__init__(name="egress-line-watch", daemon=True)
        self.monitor = m
        self.lane = m.watch_lane(self.LANE)
        self.sampler = LineSampler(m)
        self.pings = ThreadPoolExecutor(max_workers=len(EGRESS_LINKS), thread_name_prefix="egress-ping")
        m.closers.append(self.close)

    def close(self) -> None:
        if self.is_alive():
            self.join(timeout=PING_TIMEOUT + 2)
        self.pings.shutdown(wait=False, cancel_futures=True)

    def run(self) -> None:
        n = 0
        while True:
            self._ping_all()
            if n % round(SAMPLE_EVERY / PING_EVERY) == 0:
                for link in EGRESS_LINKS:
                    self.sampler.sample(link, time.time(), drill=self.lane.now())
            n += 1
            if not self.lane.wait(PING_EVERY, self.monitor._stop_evt):
                return

    def _ping_all(self) -> None:
        m = self.monitor
        sent = time.time()
        jobs = {link: self.pings.submit(ping_line, addr)
                for link in EGRESS_LINKS if (addr := m.stack.link_listen.get(link))}
        for link, job in jobs.items():
            try:
                got = job.result(timeout=PING_TIMEOUT + 0.5)
            except Exception:
                got = {"rtt_ms": None, "error": "timeout"}
            m.samples.setdefault(f"ping:{link}", deque(maxlen=KEEP)).append(
                {"t": sent, "drill": self.lane.now(), "link": link, **got})


_watches: "weakref.WeakKeyDictionary[Monitor, LineWatch]" = weakref.WeakKeyDictionary()


def sample_egress_lines(m: "Monitor", now: float) -> None:
    """The board's sampler hook: start the monitor's line watch once, from the board's own thread
    (so that it runs while the board does, and stops with it)."""
    if m.stack is None or not getattr(m.stack, "link_listen", None) or m in _watches:
        return
    watch = _watches[m] = LineWatch(m)
    watch.start()


SAMPLERS.add("egress_lines", sample_egress_lines)


def samples_of(m: "Monitor", link: str, kind: str = "link") -> list[dict]:
    """A copy of a line's recent samples (kind "link") or round trips (kind "ping")."""
    d = m.samples.get(f"{kind}:{link}")
    return list(d.copy()) if d else []


# --- rules -----------------------------------------------------------------------------------------

def _onset(run: list[dict], every: float) -> dict:
    """Where an alert on the line watch's samples stands: its lane, and the first sample of the run
    of samples that makes the condition (the board stamps the alert from there)."""
    return {"lane": LineWatch.LANE, "since_wall": run[0].get("t"), "every": every}


def _saturated_lines(o: Observation, alert: str) -> dict | None:
    raised = alert in o.monitor.active
    hot = {}
    for link in EGRESS_LINKS:
        samples = samples_of(o.monitor, link)
        if saturated(samples, raised):
            hot[link] = [s["utilisation"] for s in samples[-CONSECUTIVE:]]
    if not hot:
        return None
    link = next(iter(hot))
    samples = samples_of(o.monitor, link)
    return {"link": link, "utilisation": hot[link], "capacity_kbps": samples[-1].get("capacity_kbps"),
            **({"also": sorted(hot)[1:]} if len(hot) > 1 else {}),
            **_onset(samples[-CONSECUTIVE:], SAMPLE_EVERY)}


@rule("egress_latency_high", "warning",
      "an egress line's round trip far above normal: the line is full or failing", raise_after=1)
def _latency_high(o: Observation) -> dict | bool:
    for link in EGRESS_LINKS:
        pings = samples_of(o.monitor, link, "ping")
        if slow(pings):
            return {"link": link, "rtt_ms": [p.get("rtt_ms") or p.get("error") for p in
                                              pings[-LATENCY_SAMPLES:]],
                    **_onset(pings[-LATENCY_SAMPLES:], PING_EVERY)}
    return False


@rule("egress_utilisation_high", "warning",
      "an egress line above 95% utilisation for 3 consecutive samples", raise_after=1)
def _utilisation_high(o: Observation) -> dict | bool:
    return _saturated_lines(o, "egress_utilisation_high") or False


@rule("egress_saturated", "critical",
      "egress line saturated (3 samples above 95%) while third parties are unreachable: "
      "level 2, switch to the backup line", raise_after=1)
def _egress_saturated(o: Observation) -> dict | bool:
    hot = _saturated_lines(o, "egress_saturated")
    if hot is None:
        return False
    cut_off = unreachable(o.stats, o.probe)
    return {**hot, "unreachable": cut_off} if cut_off else False


@rule("egress_line_down", "critical",
      "an egress line takes no connections: third parties unreachable over it", raise_after=1)
def _egress_line_down(o: Observation) -> dict | bool:
    for link in EGRESS_LINKS:
        samples = samples_of(o.monitor, link)
        if down(samples):
            return {"link": link, "error": samples[-1].get("error"),
                    "address": o.monitor.stack.link_listen.get(link) if o.monitor.stack else None,
                    **_onset(samples[-DOWN_SAMPLES:], SAMPLE_EVERY)}
    return False
