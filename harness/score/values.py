"""Journal and record values read defensively: a field of the wrong type reads as None.

A journal can be torn or written by an older version, so the scorer never trusts a field's type;
a bool is never taken for a number (JSON true is not 1 s)."""
from __future__ import annotations

from typing import Any


def num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def integer(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def text(x: Any) -> str | None:
    return x if isinstance(x, str) else None


def wall_of(e: dict | None) -> float | None:
    """An event's wall time (epoch s), or None for no event or no usable time."""
    return num(e.get("wall")) if e else None
