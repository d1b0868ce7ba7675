"""What a run prints as it goes: journal events as they are written, and a status line from the board
every couple of real seconds. Display only: a fault here never stops a drill (the journal holds it
as a quiet listener)."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .clock import DrillClock
    from .monitor.monitor import Monitor
    from .runbook.engine import RunbookEngine

ANNOUNCED = ("steady_state", "fault.injected", "fault.reverted", "alert.raised", "check.finished",
             "level.declared", "step.started", "step.finished", "step.skipped", "notification.sent",
             "recovery", "rpo.measured", "run.horizon", "teardown.error", "fault.revert_failed",
             "run.halted", "incident.ended")
STATUS_EVERY = 2.0  # real seconds between two status lines


def clock_text(drill_seconds: float | None) -> str:
    """Drill seconds → 'MM:SS' ('--:--' before T+0)."""
    if drill_seconds is None:
        return "--:--"
    m, s = divmod(int(drill_seconds), 60)
    return f"{m:02d}:{s:02d}"


class Progress:
    def __init__(self, say: Callable[[str], None], clock: "DrillClock"):
        self.say, self.clock = say, clock
        self._last = 0.0

    def announce(self, event: dict) -> None:
        """Journal listener: one line per event that tells the story (on its own drill time)."""
        if event["type"] in ANNOUNCED:
            from .score.texts import describe
            self.say(f"T+{clock_text(event.get('drill'))} {describe(event)}")

    def status(self, phase: str, monitor: "Monitor", engine: "RunbookEngine | None") -> None:
        """The board at a glance, on the scenario's timeline, at most every STATUS_EVERY seconds."""
        now = time.monotonic()
        if now - self._last < STATUS_EVERY:
            return
        self._last = now
        snap = monitor.snapshot()
        states = list(engine.states.values()) if engine else []
        done = sum(1 for s in states if s.status == "done")
        self.say(f"T+{clock_text(self.clock.drill())} [{phase}] patients served "
                 f"{snap['requests'] - snap['failed']} failing {snap['failed']} "
                 f"(now {snap['window_error_rate']:.0%}) alerts: {', '.join(snap['alerts']) or '-'}"
                 f" steps {done}/{len(states)}")
