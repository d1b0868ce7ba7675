"""The hospital's registered patients, and which of them come to the drill.

The mock hospital's database holds POPULATION patients, ``P00001`` to ``P10000`` (harness/stack/
schema.sql seeds them). A drill's patients are drawn from them: each Locust user is one distinct
patient. With a seed the draw is a seeded shuffle of the population, so the same drill run twice sends
the same patients in the same order, and another seed sends others; without one, patients come in
order from the start of the range (the load's own tests rely on that).

A sibling module of the locustfile (imported without the harness package); standard library only.
"""
from __future__ import annotations

import random

POPULATION = 10_000  # keep in step with the seed in harness/stack/schema.sql


def patient_id(number: int) -> str:
    """The id of registered patient `number` (1-based), as the database and the app know it."""
    return f"P{number:05d}"


class PatientDraw:
    """Patient k (0, 1, ... across every user of every worker) of a drill, from a range of `count`
    registered patients starting after `offset`. Distinct for k < count; past that the draw wraps
    around and patients repeat (`wraps` says when)."""

    def __init__(self, count: int = POPULATION, offset: int = 0, seed: int | None = None):
        if count < 1:
            raise ValueError("a draw needs at least one patient")
        self.count, self.offset, self.seed = count, offset, seed
        self._order: list[int] | None = None
        if seed is not None:
            self._order = list(range(count))
            random.Random(seed).shuffle(self._order)

    def wraps(self, k: int) -> bool:
        return k >= self.count

    def number(self, k: int) -> int:
        """The registered number (1-based) of the k-th patient drawn."""
        i = k % self.count
        return self.offset + 1 + (self._order[i] if self._order is not None else i)

    def patient(self, k: int) -> str:
        return patient_id(self.number(k))

    def first(self, n: int) -> list[str]:
        """The first n patients drawn: who comes when n users are spawned."""
        return [self.patient(k) for k in range(n)]
