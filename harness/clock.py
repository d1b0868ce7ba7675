"""Drill time versus wall time: compress the plan's waits, never the machines' work.

Everything a user writes is drill time. `time_scale` says how many drill seconds of the plan's
*declared waits* (sampling intervals, observation windows, modeled human steps, backup schedules,
fault times) pass per real second. What the hospital's machines do (a crash, a promotion, a request
and its timeout) takes its real duration and counts as that much drill time at any scale.

Two views of time follow from that:
- `DrillClock.tplus(wall)`: the scenario's timeline, wall time × scale from T+0. Fault times, patient
  load (think times are declared) and the charts live on it.
- `Lane`: the causal time of one thread of work (the monitor, one runbook step, the scenario). It is
  anchored at its cause (an event's drill time and wall time); from there on its declared waits count
  at their declared length and everything else it spends counts 1:1. Figures (detect, takeover,
  recovery) are read from lanes, so a 0.13 s promotion is 0.13 drill s at ×20 and at ×120.
Lanes run side by side and each keeps its own account, which one global clock could not.
"""
from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass, field

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(value: str | int | float) -> float:
    """'90s', '5m', '1h30m', '250ms' or a number of seconds → seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().replace(" ", "")
        if text.startswith("-"):
            raise ValueError(f"negative duration {value!r}")
        pos, seconds = 0, 0.0
        for m in _PART.finditer(text):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(text) or not text:
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 5m, 1h)") from None
    if seconds < 0:
        raise ValueError(f"negative duration {value!r}")
    return seconds


def format_duration(seconds: float | None) -> str:
    """Seconds → '4m10s' style; '—' for None."""
    if seconds is None:
        return "—"
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    if s < 60:
        return f"{sign}{s:.1f}s" if s % 1 else f"{sign}{int(s)}s"
    total = int(round(s))
    h, rem = divmod(total, 3600)
    m, sec = divmod(rem, 60)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{sec}s" if sec else "")
    return sign + (out or "0s")


TIME_MODEL = "v2"  # declared waits compressed, real work 1:1 (v1: every real second × scale)

# A harness wait for a machine (a promotion, a route to take) polls this often, in real seconds: the
# poll is part of the machine's real work, so it must be short, not a declared interval.
POLL_REAL = 0.02
# A declared budget for a machine's work is compressed like any wait, but a machine is never given
# less real time than this before the harness calls its work failed.
GIVE_UP_FLOOR_REAL = 5.0


def give_up_after(budget: float, scale: float) -> float:
    """Real seconds a machine is given for work the plan budgets `budget` drill seconds for: the
    budget compressed like a declared wait, but never below GIVE_UP_FLOOR_REAL (nor above the budget
    itself). Only a failure's timing depends on it; a success takes what the machine takes."""
    return min(budget, max(budget / scale, GIVE_UP_FLOOR_REAL))


class DrillClock:
    """The scenario's timeline around T+0 (the scenario start), and the factory of lanes."""

    def __init__(self, time_scale: float, now=time.time, sleep=time.sleep, wait=None):
        """`now`, `sleep` and `wait(event, seconds) -> set?` are injectable: a test's fake clock
        advances its own time in them."""
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.scale = float(time_scale)
        self._now, self._sleep = now, sleep
        self._wait = wait or (lambda event, seconds: event.wait(seconds))
        self.t0: float | None = None

    def wall(self) -> float:
        """Wall time now (the injected one in a test)."""
        return self._now()

    def start(self, at: float | None = None) -> float:
        self.t0 = self._now() if at is None else at
        return self.t0

    def drill(self, wall: float | None = None) -> float | None:
        """T+ drill seconds on the scenario's timeline for a wall time (now by default); None before
        start. Right for what is scheduled (faults, backups) and for patients, whose think times are
        declared; figures of a causal chain come from a `Lane` instead."""
        if self.t0 is None:
            return None
        return ((self._now() if wall is None else wall) - self.t0) * self.scale

    tplus = drill

    def lane(self, name: str, t: float | None = None, wall: float | None = None,
             cause: int | None = None) -> "Lane":
        """A lane anchored at (t, wall); by default at the scenario's timeline now."""
        lane = Lane(self, name)
        wall = self._now() if wall is None else wall
        lane.anchor((self.drill(wall) or 0.0) if t is None else t, wall, cause)
        return lane

    def wall_at(self, drill_seconds: float) -> float:
        assert self.t0 is not None, "clock not started"
        return self.t0 + drill_seconds / self.scale

    def real(self, drill_seconds: float) -> float:
        """Real seconds that a drill duration lasts."""
        return drill_seconds / self.scale

    def sleep_until(self, drill_seconds: float, stop=None) -> bool:
        """Sleep until drill time; return False early if `stop` (an Event) is set."""
        while True:
            left = self.wall_at(drill_seconds) - self._now()
            if left <= 0:
                return True
            if stop is not None:
                if stop.wait(min(left, 0.5)):
                    return False
            else:
                self._sleep(min(left, 0.5))


@dataclass
class _Wait:
    start: float  # wall
    end: float  # wall at which the declared wait is (or was) due to end
    drill: float  # declared drill seconds it stands for


@dataclass
class _Segment:
    t: float  # drill time of the anchor
    wall: float
    cause: int | None  # journal seq of the anchoring event
    waits: list[_Wait] = field(default_factory=list)


class Lane:
    """The causal drill time of one thread of work.

    Anchored at its cause; from there `wait()` (a declared wait) counts its declared drill seconds
    and all other elapsed wall time counts 1:1 as real work. Re-anchoring starts a new segment, so
    `at(wall)` still answers for moments before the latest anchor. Thread-safe: the monitor's lane is
    read by the threads that journal its alerts."""

    def __init__(self, clock: DrillClock, name: str):
        self.clock, self.name = clock, name
        self._segments: list[_Segment] = []
        self._lock = threading.Lock()

    # --- anchoring ------------------------------------------------------------------------------
    def anchor(self, t: float, wall: float, cause: int | None = None) -> None:
        """Start a new segment at (t, wall). The anchor may lie a little in the past (an event is
        journaled after its work): declared waits since `wall` move into the new segment, so what
        the lane waited meanwhile still counts as waiting, not as work."""
        seg = _Segment(float(t), float(wall), cause)
        with self._lock:
            if self._segments:
                prev = self._segments[-1]
                keep = []
                for w in prev.waits:
                    if w.end <= wall:
                        keep.append(w)
                    elif w.start >= wall:
                        seg.waits.append(w)
                    else:  # straddles the anchor: split it in proportion (the waiter keeps `w`)
                        share = (w.end - wall) / (w.end - w.start)
                        keep.append(_Wait(w.start, wall, w.drill * (1 - share)))
                        w.start, w.drill = wall, w.drill * share
                        seg.waits.append(w)
                prev.waits = keep
            self._segments.append(seg)
            del self._segments[:-64]  # old segments are no longer asked about

    def anchor_to(self, event: dict) -> bool:
        """Re-anchor at a journal event (its `drill` and `wall`) unless it precedes the anchor."""
        t, wall = event.get("drill"), event.get("wall")
        if not isinstance(t, (int, float)) or not isinstance(wall, (int, float)):
            return False
        with self._lock:
            last = self._segments[-1] if self._segments else None
            # events keep their times rounded (µs, ms): the same moment within that
            same = last is not None and abs(wall - last.wall) < 1e-5 and abs(t - last.t) < 2e-3
            if last is not None and wall < last.wall and not same:
                return False
            if same and last.cause is None:
                last.cause = event.get("seq")  # the event this lane was anchored for ahead of it
                return True
        self.anchor(t, wall, event.get("seq"))
        return True

    # --- reading --------------------------------------------------------------------------------
    def _segment(self, wall: float) -> _Segment:
        for seg in reversed(self._segments):
            if seg.wall <= wall:
                return seg
        return self._segments[0]

    def account(self, wall: float | None = None, *, cause: object = ...) -> dict:
        """{"t", "cause", "declared", "real"} at a wall time (now by default): drill time, the anchor's
        journal seq, and the declared waits and real work since the anchor. With `cause`, reckoned
        from that anchor even if a newer one came since (as if it had not)."""
        wall = self.clock._now() if wall is None else wall
        with self._lock:
            seg = self._segment(wall)
            if cause is not ...:
                seg = next((g for g in reversed(self._segments) if g.cause == cause), seg)
            declared = waited = 0.0
            waits = seg.waits
            if seg is not self._segments[-1] and cause is not ...:
                # a newer anchor took the waits since it: they were this lane's waits all the same
                later = self._segments[self._segments.index(seg) + 1:]
                waits = waits + [w for g in later for w in g.waits]
            for w in waits:
                if w.start >= wall:
                    break
                span = w.end - w.start
                covered = min(wall, w.end) - w.start
                declared += w.drill * (covered / span if span > 0 else 1.0)
                waited += covered
            real = max(0.0, wall - seg.wall - waited)
            return {"t": seg.t + declared + real, "cause": seg.cause,
                    "declared": round(declared, 3), "real": round(real, 4)}

    def observed(self, wall: float, interval: float) -> dict:
        """The account of something a sampling lane first saw at `wall`. The lane's waits since its
        anchor ran beside the machines' work that made the thing observable (a line filling up, an
        app reconnecting): only the last sampling interval before it was seen belongs to the plan,
        the rest was the machines' real time. So: the lane's own account, but no more than the
        real time since the anchor plus one `interval`."""
        own = self.account(wall)
        with self._lock:
            seg = self._segment(wall)
        real = max(0.0, wall - seg.wall)
        cap = seg.t + real + interval
        if own["t"] <= cap:
            return own
        return {"t": cap, "cause": seg.cause, "declared": round(interval, 3), "real": round(real, 4)}

    def since(self, start: dict, base: dict, wall: float | None = None) -> dict:
        """`base` (an onset's account) moved on by what this lane spent from `start` (its account at
        the onset) to `wall` (now by default), reckoned from the onset's anchor; or the lane's own
        account at `wall` if that is later (a newer cause, e.g. a fault reverted, came since)."""
        end = self.account(wall)
        same = self.account(wall, cause=start.get("cause"))
        moved = {"t": base["t"] + same["t"] - start["t"], "cause": base.get("cause"),
                 "declared": round(base["declared"] + same["declared"] - start["declared"], 3),
                 "real": round(base["real"] + same["real"] - start["real"], 4)}
        if end.get("cause") == start.get("cause"):
            return moved
        return end if end["t"] > moved["t"] else moved

    def at(self, wall: float | None = None) -> float:
        return self.account(wall)["t"]

    def now(self) -> float:
        return self.at()

    # --- waiting --------------------------------------------------------------------------------
    def wait(self, drill_seconds: float, stop: threading.Event | None = None) -> bool:
        """A declared wait of `drill_seconds` (compressed by the scale). False if `stop` cut it short;
        the part that was waited still counts."""
        if not math.isfinite(drill_seconds) or drill_seconds <= 0:
            return not (stop is not None and stop.is_set())
        start = self.clock._now()
        w = _Wait(start, start + drill_seconds / self.clock.scale, drill_seconds)
        with self._lock:
            self._segments[-1].waits.append(w)
        left = w.end - start
        while left > 0:
            if stop is not None:
                if self.clock._wait(stop, min(left, 0.5)):
                    with self._lock:  # only what was waited counts
                        now = self.clock._now()
                        if w.start < now < w.end:
                            w.drill *= (now - w.start) / (w.end - w.start)
                            w.end = now
                    return False
            else:
                self.clock._sleep(min(left, 0.5))
            left = w.end - self.clock._now()
        return True

    def wait_until(self, t: float, stop: threading.Event | None = None) -> bool:
        """A declared wait until this lane's drill time reaches `t`."""
        return self.wait(t - self.now(), stop)

    def poll(self, check, budget: float, stop: threading.Event | None = None,
             every: float = POLL_REAL):
        """Wait for a machine: call `check()` every `every` real seconds until it answers something
        truthy, and return that; None when the budget ran out or `stop` was set. The polling is the
        machine's real work (1:1). The budget is drill time, compressed like a declared wait, but
        never below GIVE_UP_FLOOR_REAL real seconds (nor above the budget itself)."""
        give_up = time.monotonic() + give_up_after(budget, self.clock.scale)
        while True:
            got = check()
            if got:
                return got
            if time.monotonic() >= give_up:
                return None
            if stop is not None:
                if stop.wait(every):
                    return None
            else:
                time.sleep(every)
