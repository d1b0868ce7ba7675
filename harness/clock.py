"""Drill time versus wall time.

Everything a user writes is drill time. `time_scale` drill seconds pass per real second, so at 60 a
30-minute target is 30 real seconds. Real durations are multiplied by the scale when scored: for
automated actions that is pessimistic, never flattering.
"""
from __future__ import annotations

import re
import time

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


class DrillClock:
    """Maps wall time to drill time around T+0 (the scenario start)."""

    def __init__(self, time_scale: float, now=time.time, sleep=time.sleep):
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.scale = float(time_scale)
        self._now, self._sleep = now, sleep
        self.t0: float | None = None

    def start(self, at: float | None = None) -> float:
        self.t0 = self._now() if at is None else at
        return self.t0

    def drill(self, wall: float | None = None) -> float | None:
        """Drill seconds since T+0 for a wall time (now by default); None before start."""
        if self.t0 is None:
            return None
        return ((self._now() if wall is None else wall) - self.t0) * self.scale

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
