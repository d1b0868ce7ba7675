"""The run's journal: append-only JSON Lines, one event a line, fsynced as written.

Everything after a run is derived from the journal and the request records, so a crashed run still
leaves enough to score and report. Reading tolerates a torn last line and says what it skipped.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from . import events as declared
from .clock import DrillClock, Lane

Listener = Callable[[dict], None]


class Journal:
    """Thread-safe writer. Listeners (progress display, runbook triggers) see each event once."""

    def __init__(self, path: Path, clock: DrillClock):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self._lock = threading.Lock()
        self._fh = open(self.path, "a", encoding="utf-8")
        self._seq = 0
        self._listeners: list[tuple[Listener, bool]] = []
        self.events: list[dict] = []
        self.failure: str | None = None  # a critical listener's error: the run must abort on it

    def subscribe(self, listener: Listener, *, critical: bool = False) -> None:
        """`critical` listeners (runbook engine, monitor) fail the run loudly when they raise; the
        others (progress display) may fail quietly."""
        self._listeners.append((listener, critical))

    def record(self, type_: str, *, wall: float | None = None, lane: "Lane | None" = None,
               account: dict | None = None, **fields: Any) -> dict:
        """Append one event. With a `lane`, its drill time is that lane's causal time and the event
        carries its account (`chain`: the anchoring event's seq, declared waits and real work since
        it); without, drill time is the scenario timeline's (wall × scale from T+0).

        The event must fit its model in harness/events/: in strict mode (the tests) a misfit
        raises `EventError` and nothing is written; otherwise it is written and a `harness.error`
        follows it."""
        wall = self.clock.wall() if wall is None else wall
        chain = None
        if lane is not None:
            # `account`: the lane's reckoning for this event when the caller made it (an observation
            # capped at its onset, clock.Lane.observed); else the lane's account at `wall`
            acc = dict(account) if account is not None else lane.account(wall)
            drill = acc.pop("t")
            chain = {"lane": lane.name, **acc}
        else:
            drill = self.clock.drill(wall)
        misfit = declared.problem(type_, fields, on_lane=chain is not None, wall=wall, drill=drill)
        if misfit is not None and declared.strict():
            raise declared.EventError(misfit)
        with self._lock:
            self._seq += 1
            event = {"seq": self._seq, "wall": round(wall, 6),
                     "drill": None if drill is None else round(drill, 3), "type": type_, **fields}
            if chain is not None:
                event["chain"] = chain
            self._fh.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self.events.append(event)
        if misfit is not None:
            self.record("harness.error", part="journal", error=misfit)
        for listener, critical in list(self._listeners):
            try:
                listener(event)
            except Exception as e:
                if not critical:
                    continue  # a display bug must not stop the drill
                why = f"{getattr(listener, '__qualname__', listener)}: {e.__class__.__name__}: {e}"
                if self.failure is None:
                    self.failure = why
                    self.record("harness.error", part="listener", error=why)
        return event

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class JournalRead:
    events: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what could not be read, line by line

    def of_type(self, type_: str) -> list[dict]:
        return [e for e in self.events if e.get("type") == type_]

    def first(self, type_: str, **match: Any) -> dict | None:
        for e in self.events:
            if e.get("type") == type_ and all(e.get(k) == v for k, v in match.items()):
                return e
        return None


def read_journal(path: Path) -> JournalRead:
    """Read every intact event; note each line that is torn or corrupt instead of failing."""
    out = JournalRead()
    path = Path(path)
    if not path.exists():
        out.problems.append(f"{path.name}: missing")
        return out
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
                if not isinstance(event, dict) or "type" not in event:
                    raise ValueError("not an event")
            except ValueError:
                out.problems.append(f"{path.name}:{n}: unreadable line skipped")
                continue
            out.events.append(event)
    if not out.first("run.finished"):
        out.problems.append(f"{path.name}: no run.finished event (the run did not end cleanly)")
    return out


def iter_events(path: Path) -> Iterator[dict]:
    yield from read_journal(path).events
