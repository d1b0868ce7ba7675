"""The scenario's injects: scripted messages that reach the command at drill times ("the hotline has
20 callers", "the DBA cannot be reached"). A thread plays them on a lane of their own, anchored at
T+0 like the scenario's: each `at` is a declared wait, so an inject comes at the same drill time at any
scale. Each one shown is journalled as `inject.shown`; the board lists them from there."""
from __future__ import annotations

import threading

from ..clock import DrillClock, Lane
from ..journal import Journal
from ..models import Inject

LANE = "injects"


class InjectPlayer:
    def __init__(self, injects: list[Inject], journal: Journal, clock: DrillClock):
        self.injects = sorted(injects, key=lambda i: i.at)
        self.journal, self.clock = journal, clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.shown: list[str] = []

    def start(self) -> "InjectPlayer":
        """From T+0 (the clock must have started): the lane counts from the scenario's start."""
        if not self.injects:
            return self
        lane = self.clock.lane(LANE, 0.0, self.clock.t0)
        self._thread = threading.Thread(target=self._play, args=(lane,), daemon=True, name="injects")
        self._thread.start()
        return self

    def _play(self, lane: Lane) -> None:
        for inject in self.injects:
            if not lane.wait_until(inject.at, self._stop):
                return  # the run is ending: what was not due yet is never shown
            self.journal.record("inject.shown", lane=lane, inject=inject.id, text=inject.text,
                                to=inject.to)
            self.shown.append(inject.id)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
