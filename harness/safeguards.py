"""Stop conditions (a drill's `safeguards:`): when the harm to patients goes past what the drill's
owner accepted, the run halts.

The rules are pure functions of what the run can know at one moment and the drill's safeguard; each
answers a `Breach` (which safeguard, one line why, the figures it judged) or None. `SafeguardWatch`
keeps the little state the error-rate rule needs between two looks at the board (since when the rate
has been above its limit) and is fed by the run at each of those looks.

Edge cases, as decided here:
- a board window with fewer than `min_requests` requests is no evidence: it ends a streak (halting
  needs the rate seen above its limit at every look);
- `for: 0s` halts at the first look above the limit;
- a lane whose drill time went back (re-anchored) shortens the streak, never lengthens it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .clock import format_duration
from .models import ErrorRateGuard, LostWritesGuard, Safeguards

EMERGENCY_STOP = "stop"  # the safeguard name of `hospital-drill stop`


@dataclass(frozen=True)
class Breach:
    safeguard: str  # error_rate | lost_writes | wall_clock | stop
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def headline(self) -> str:
        """How the run's end is reported: 'halted by safeguard error_rate: …'."""
        if self.safeguard == EMERGENCY_STOP:
            return f"halted by emergency stop: {self.reason}"
        return f"halted by safeguard {self.safeguard}: {self.reason}"


def window_error_rate(records: Iterable[dict]) -> tuple[float, int]:
    """(share failed, requests) of patient request records."""
    n = failed = 0
    for r in records:
        n += 1
        failed += 0 if r.get("ok") else 1
    return (failed / n if n else 0.0), n


def error_rate(since: float | None, t: float, rate: float, requests: int,
               guard: ErrorRateGuard) -> tuple[float | None, Breach | None]:
    """One look at the board at drill time `t`: (the streak's new start, a breach or None).

    `since` is the drill time of the first look of the current streak above the limit (None: no
    streak). The rule holds when every look from `since` to `t` was above `guard.above` and
    `t - since` reached `guard.for_`."""
    if requests < guard.min_requests or rate <= guard.above:
        return None, None
    since = t if since is None or since > t else since
    held = t - since
    if held < guard.for_:
        return since, None
    return since, Breach(
        "error_rate",
        f"patients' error rate {rate:.0%} above {guard.above:.0%} for {format_duration(held)} "
        f"(limit {format_duration(guard.for_)}; {requests} requests in the board's window)",
        {"error_rate": round(rate, 4), "requests": requests, "above": guard.above,
         "for": guard.for_, "since_drill": round(since, 3), "at_drill": round(t, 3)})


def lost_writes(lost: int, counted: str, guard: LostWritesGuard) -> Breach | None:
    """More than `guard.more_than` writes lost; `counted` says what `lost` counts."""
    if lost <= guard.more_than:
        return None
    return Breach("lost_writes", f"{lost} patient writes lost, more than {guard.more_than} ({counted})",
                  {"lost": lost, "more_than": guard.more_than, "counted": counted})


def wall_clock(elapsed: float, budget: float | None) -> Breach | None:
    """The run has taken more real time than its budget."""
    if budget is None or elapsed <= budget:
        return None
    return Breach("wall_clock", f"the run took {format_duration(elapsed)} of real time, over its "
                                f"budget of {format_duration(budget)}",
                  {"elapsed_real": round(elapsed, 3), "budget_real": budget})


def emergency_stop(request: dict) -> Breach:
    """`hospital-drill stop` was used: who, and why."""
    by = request.get("by") or "someone"
    why = request.get("reason") or "no reason given"
    return Breach(EMERGENCY_STOP, f"hospital-drill stop by {by}: {why}", dict(request))


class SafeguardWatch:
    """The drill's safeguards, fed at each look at the board; answers the first breach."""

    def __init__(self, safeguards: Safeguards):
        self.safeguards = safeguards
        self._since: float | None = None

    @property
    def watches_board(self) -> bool:
        return self.safeguards.error_rate is not None or self.safeguards.lost_writes is not None

    def look(self, t: float, rate: float, requests: int, lost: int | None = None,
             counted: str = "") -> Breach | None:
        g = self.safeguards
        if g.error_rate is not None:
            self._since, breach = error_rate(self._since, t, rate, requests, g.error_rate)
            if breach is not None:
                return breach
        if g.lost_writes is not None and lost is not None:
            return lost_writes(lost, counted, g.lost_writes)
        return None

    def elapsed(self, seconds: float) -> Breach | None:
        return wall_clock(seconds, self.safeguards.wall_clock)
