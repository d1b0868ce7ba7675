"""Checks on single values a user writes, shared by the models and the command line: durations that
are finite and bounded, names that are safe as file names. Each raises ValueError with the reason."""
from __future__ import annotations

import math
import re
from typing import Any

from .clock import parse_duration

# the longest wait a drill may declare: a month of drill time (a backup cycle, a long observation);
# anything longer is a typo, and would hold a run (and its charts) open for ever
MAX_DRILL_SECONDS = 30 * 86400.0

_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


def drill_seconds(value: Any) -> float:
    """A duration as parse_duration reads it, refused when not finite or longer than a month."""
    seconds = parse_duration(value)
    if not math.isfinite(seconds):
        raise ValueError(f"durations must be finite, not {value!r}")
    if seconds > MAX_DRILL_SECONDS:
        raise ValueError(f"{value!r} is longer than the {MAX_DRILL_SECONDS / 86400:g} days a drill "
                         "may declare")
    return seconds


def slug(value: str) -> str:
    """A name that becomes part of a path (run directory, acknowledgement file): letters, digits,
    '.', '_' and '-', starting with a letter or digit; no '/', no '..' on its own."""
    if not _SLUG.fullmatch(value):
        raise ValueError(f"{value!r} is not a name: use letters, digits, '.', '_' and '-' "
                         "(starting with a letter or digit, at most 80)")
    return value


def finite(value: float, what: str = "value") -> float:
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, not {value!r}")
    return value
