"""The one rule for the response level, used by the runbook's declare step and by the scorer alike.

The share of patients affected over the plan's observation window (drill time, from when the
incident began), out of the patients active in it. A patient is affected when one of their requests
failed, or was slower than the drill's patient SLO for its journey, or when an acknowledged write of
theirs was lost (known to the scorer only: the runbook cannot see it, so it passes none). Patient
activity lives on the scenario's timeline (think times are declared), so a window of W drill seconds
is W / scale real seconds of records at any scale.

Pure functions and small accumulators over request records (dicts with `t`, `ms`, `ok`, `patient`,
`journey`): no I/O.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..models import Levels, PatientSlo

ATTACKER = "attacker"  # bots of a flood are not patients
OFFLINE = "offline"  # a patient's way to offline reception: not the internet hospital serving them


def level_of(share: float, levels: Levels) -> int:
    """The plan's classification: share > level1_above → 1, > level2_above → 2, else 3.
    Exactly at a threshold is the milder level (the plan says "more than 50%")."""
    if share > levels.level1_above:
        return 1
    if share > levels.level2_above:
        return 2
    return 3


@dataclass
class Share:
    """Who was affected in one window, and why."""
    start: float  # wall
    end: float
    active: int = 0
    affected: int = 0
    failed: int = 0  # patients with a failed request
    slow: int = 0  # patients with a request over the SLO (and none failed)
    lost: int = 0  # patients whose acknowledged write was lost (and nothing else)

    @property
    def share(self) -> float:
        return self.affected / self.active if self.active else 0.0

    def as_dict(self) -> dict:
        return {"affected": self.affected, "active": self.active, "share": round(self.share, 4),
                "failed": self.failed, "slow": self.slow, "lost": self.lost,
                "window_wall": [round(self.start, 6), round(self.end, 6)]}


@dataclass
class _Window:
    start: float
    end: float
    active: set = field(default_factory=set)
    failed: set = field(default_factory=set)
    slow: set = field(default_factory=set)

    def add(self, patient, ok: bool, too_slow: bool) -> None:
        self.active.add(patient)
        if not ok:
            self.failed.add(patient)
        elif too_slow:
            self.slow.add(patient)

    def result(self, lost: frozenset = frozenset()) -> Share:
        lost_only = lost - self.failed - self.slow
        active = self.active | lost
        affected = self.failed | self.slow | lost
        return Share(self.start, self.end, active=len(active), affected=len(affected),
                     failed=len(self.failed), slow=len(self.slow - self.failed), lost=len(lost_only))


def _judge(rec: dict, slo: PatientSlo) -> tuple[object, bool, bool] | None:
    """(patient, ok, too slow) of a patient's request; None for what is not a patient's request."""
    if rec.get("persona") == ATTACKER or rec.get("patient") is None or rec.get("journey") == OFFLINE:
        return None
    ms = rec.get("ms") or 0.0
    return rec["patient"], bool(rec.get("ok")), ms / 1000.0 > slo.limit(rec.get("journey"))


def affected_share(records: Iterable[dict], start: float, end: float, slo: PatientSlo,
                   lost_patients: Iterable = ()) -> Share:
    """The share over one window [start, end) of wall time (request start times)."""
    w = _Window(start, end)
    for rec in records:
        t = rec.get("t")
        if not isinstance(t, (int, float)) or not start <= t < end:
            continue
        judged = _judge(rec, slo)
        if judged is not None:
            w.add(*judged)
    return w.result(frozenset(lost_patients))


class IncidentShares:
    """The scorer's streaming view: consecutive observation windows from the incident's start to its
    end (recovery, or the end of the records), plus the window the runbook declared over, if any.
    Feed every record once with `add`; the implied level is the plan's window's (`judged`), and
    `worst` says whether the incident grew beyond it."""

    def __init__(self, start: float, end: float | None, window_real: float, slo: PatientSlo,
                 declared: tuple[float, float] | None = None, max_windows: int = 1000):
        self.start, self.width, self.slo = start, max(window_real, 1e-6), slo
        n = 1 if end is None else max(1, math.ceil((end - start) / self.width))
        self.windows = [_Window(start + i * self.width, start + (i + 1) * self.width)
                        for i in range(min(n, max_windows))]
        self.open_ended = end is None
        self.declared = _Window(*declared) if declared else None

    def add(self, rec: dict) -> None:
        t = rec.get("t")
        if not isinstance(t, (int, float)) or t < self.start:
            return
        judged = None
        i = int((t - self.start) // self.width)
        if i < len(self.windows):
            judged = _judge(rec, self.slo)
            if judged is not None:
                self.windows[i].add(*judged)
        d = self.declared
        if d is not None and d.start <= t < d.end:
            judged = judged or _judge(rec, self.slo)
            if judged is not None:
                d.add(*judged)

    def feed(self, records: Iterable[dict]):
        """Pass records through, counting each (for a single streaming pass shared with others)."""
        for rec in records:
            self.add(rec)
            yield rec

    def shares(self, lost_patients: Iterable = ()) -> list[Share]:
        lost = frozenset(lost_patients)
        # lost writes were acknowledged before the incident: they count in its first window
        return [w.result(lost if i == 0 else frozenset()) for i, w in enumerate(self.windows)
                if w.active or (i == 0 and lost)]

    def judged(self, lost_patients: Iterable = ()) -> Share | None:
        """The plan's window: the one the runbook declared over (the same function over the same
        records), else the first observation window from the fault; lost writes count in it."""
        lost = frozenset(lost_patients)
        if self.declared is not None and (self.declared.active or lost):
            return self.declared.result(lost)
        first = self.shares(lost)
        return first[0] if first and first[0].start == self.start else None

    def worst(self, lost_patients: Iterable = ()) -> Share | None:
        """The most severe window of the incident (the largest share): a level the incident grew to
        after it was declared; None with no patient at all."""
        found = self.shares(lost_patients)
        judged = self.judged(lost_patients)
        if judged is not None:
            found.append(judged)
        return max(found, key=lambda s: (s.share, s.active), default=None)
