"""What the board shows, as one JSON-able dict: the drill clock, patient impact, alerts, injects and
the run's phase (read from the journal as it is written, and from the monitor's recent patient
records), with the desk's steps, roster and notes beside them.

Display only: the feed listens to the journal quietly (a fault here never stops a drill), and it
judges nothing: alerts are the monitor's, impact is counted the way the monitor counts (bots and
offline reception left out)."""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Protocol

from ..clock import DrillClock
from ..journal import Journal
from ..models import GROUP_TITLES

IMPACT_WINDOW = 15.0  # drill s of patient records behind each impact figure
HISTORY = 120  # impact samples kept for the page's sparkline
SAMPLE_EVERY = 1.0  # real s between two impact samples (display only)

# the run's phase, as the journal tells it (the latest of these events wins)
PHASES = {"run.started": "preparing", "stack.up": "stack up", "scenario.started": "warm-up",
          "fault.injected": "incident", "recovery": "recovered", "incident.ended": "incident ended",
          "run.halted": "halted", "run.finished": "ended"}


class DeskView(Protocol):
    def snapshot(self) -> dict: ...


def impact(records: list[dict], now: float, span: float) -> dict:
    """Patients' success rate and latency over the records that ended within `span` real seconds
    before `now`: {"requests", "success_rate" (None: no request), "p50_ms", "p95_ms"}."""
    recent = [r for r in records
              if r.get("persona") != "attacker" and r.get("journey") != "offline"
              and r.get("t", 0) + r.get("ms", 0) / 1000 >= now - span]
    n = len(recent)
    if not n:
        return {"requests": 0, "success_rate": None, "p50_ms": None, "p95_ms": None}
    ms = sorted(r.get("ms", 0.0) for r in recent)
    ok = sum(1 for r in recent if r.get("ok"))
    return {"requests": n, "success_rate": round(ok / n, 4), "p50_ms": round(ms[(n - 1) // 2], 1),
            "p95_ms": round(ms[int(0.95 * (n - 1))], 1)}


class BoardFeed:
    def __init__(self, journal: Journal, clock: DrillClock, *, drill_name: str, title: str = "",
                 live: bool = True, records: Callable[[], list[dict]] | None = None,
                 desk: DeskView | None = None):
        """`records`: the monitor's recent patient records (None before the monitor runs)."""
        self.clock, self.drill_name, self.title, self.live = clock, drill_name, title, live
        self.records, self.desk = records, desk
        self._lock = threading.Lock()
        self.phase = "preparing"
        self.alerts: dict[str, dict] = {}  # alert → its latest raise, with `active`
        self.injects: list[dict] = []
        self.reminders: list[dict] = []  # steps past their deadline while waiting for people
        self.halted: dict | None = None
        self.finished: dict | None = None
        self.started: dict[str, tuple[float, float]] = {}  # step → (drill on its lane, wall) at start
        self.history: deque[dict] = deque(maxlen=HISTORY)
        self._sampled = 0.0
        for event in list(journal.events):  # what was written before the board started
            self.on_event(event)
        journal.subscribe(self.on_event)

    def on_event(self, event: dict) -> None:
        kind = event.get("type")
        with self._lock:
            if kind in PHASES and not (self.halted and kind != "run.finished"):
                self.phase = PHASES[kind]
            if kind == "alert.raised":
                self.alerts[event["alert"]] = {"alert": event["alert"], "severity": event["severity"],
                                               "describe": event.get("describe", ""),
                                               "raised_drill": event.get("drill"), "active": True,
                                               "cleared_drill": None}
            elif kind == "alert.cleared" and event.get("alert") in self.alerts:
                self.alerts[event["alert"]].update(active=False, cleared_drill=event.get("drill"))
            elif kind == "inject.shown":
                self.injects.append({"inject": event["inject"], "text": event["text"],
                                     "to": event["to"], "drill": event.get("drill")})
            elif kind == "step.overdue":
                self.reminders.append({"step": event["step"], "group": event["group"],
                                       "waiting": event["waiting"], "claimed_by": event["claimed_by"],
                                       "call": event["call"], "drill": event.get("drill")})
            elif kind == "step.started" and isinstance(event.get("drill"), (int, float)):
                self.started[event["step"]] = (event["drill"], event["wall"])
            elif kind == "run.halted":
                self.halted = {"safeguard": event.get("safeguard"), "reason": event.get("reason")}
            elif kind == "run.finished":
                self.finished = {"status": event.get("status"), "reason": event.get("reason")}

    def _impact(self, now: float) -> dict:
        records = self.records() if self.records is not None else []
        figures = impact(records, now, IMPACT_WINDOW / self.clock.scale)
        t = self.clock.drill(now)
        if t is not None and now - self._sampled >= SAMPLE_EVERY:
            self._sampled = now
            self.history.append({"t": round(t, 1), "success_rate": figures["success_rate"],
                                 "p95_ms": figures["p95_ms"]})
        return {**figures, "window_drill_s": IMPACT_WINDOW, "history": list(self.history)}

    def _left(self, step: dict, now: float) -> float | None:
        """Drill s to the step's deadline on its own lane. While a step waits for people its lane
        counts their real time 1:1 (human time is measured, at any scale), so the lane's time now
        is its time at `step.started` plus the real seconds since."""
        deadline, start = step.get("deadline_drill"), self.started.get(step.get("id", ""))
        if deadline is None or start is None:
            return None
        return round(deadline - (start[0] + now - start[1]), 1)

    def state(self) -> dict:
        """Everything the page shows, now."""
        now = self.clock.wall()
        desk = self.desk.snapshot() if self.desk is not None else {"steps": [], "roster": [],
                                                                   "notes": []}
        with self._lock:
            alerts = sorted(self.alerts.values(),
                            key=lambda a: (not a["active"], a["severity"] != "critical",
                                           -(a["raised_drill"] or 0)))
            head = {"name": self.drill_name, "title": self.title, "live": self.live,
                    "scale": self.clock.scale, "t": self.clock.drill(now), "wall": round(now, 3),
                    "phase": self.phase, "halted": self.halted, "finished": self.finished}
            injects = list(self.injects)
            reminders = list(self.reminders)
            steps = [{**s, "left_drill": self._left(s, now)} for s in desk.get("steps", [])]
            impact_now = self._impact(now)
        return {"drill": head, "impact": impact_now, "alerts": alerts, "reminders": reminders,
                "injects": injects,
                "groups": [{"id": g, "title": t} for g, t in GROUP_TITLES.items()],
                "steps": steps, "roster": desk.get("roster", []),
                "notes": desk.get("notes", []), "served_at": time.time()}
