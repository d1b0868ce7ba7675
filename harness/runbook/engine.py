"""The runbook engine: starts each step when its trigger holds, runs it, journals the outcome.

Triggers are read from the journal as it is written (alerts raised, steps finished, the level
declared), so the journal alone explains why each step ran. Steps run in their own threads: the
technical group's failover does not wait for clinical support's offline reception. A step is one of
four kinds (`RunbookStep.kind`): a built-in action, a manual step (the operator), or the hospital's
own `exec` program or `http` call (exec_steps.py).

A step that `needs` someone has a human part before its machine part: it waits for a person of the
roster to claim it (the operator's `wait_for_claim`: the live desk, or the simulated operator's
modeled call-out), then its action, program or call runs. A manual step is all human part: the
operator's `perform` returns when a person has done it.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass

from ..clock import DrillClock, Lane
from ..journal import Journal
from ..models import Drill, RunbookStep
from ..people import moves
from ..people.roster import Roster
from . import actions
from .actions import ActionContext, ActionFailed
from .exec_steps import run_exec, run_http


class SimulatedOperator:
    """An automatic run's people: the same moves as the live desk's (people/desk.py), by the same
    roster rules, with modeled durations. A step that `needs` someone is claimed by the first in line
    after their call-out (`people.call_out`, a declared wait); a manual step is then done after its
    declared `duration` (a step with no `needs` is taken at once by its group's first in line: its
    duration covers the call-out). Every record says `modeled: true`."""

    def __init__(self, clock: DrillClock, roster: Roster | None = None):
        self.clock, self.roster = clock, roster
        self.journal: Journal | None = None

    def attach(self, drill: Drill | None, journal: Journal) -> None:
        self.journal = journal
        if self.roster is None:
            self.roster = Roster.of(drill)
        moves.journal_absences(journal, self.roster)

    def wait_for_claim(self, step: RunbookStep, stop: threading.Event, lane: Lane) -> dict | None:
        line = self.roster.next_in_line(step) if self.roster else []
        if not line:
            return None
        opened = lane.now()
        if step.needs and not lane.wait(self.roster.call_out(line[0]), stop):
            return None
        return moves.claimed(self.journal, lane, step, line[0], opened, modeled=True)

    def perform(self, step: RunbookStep, stop: threading.Event, lane: Lane) -> tuple[bool, dict]:
        assert step.manual is not None
        if self.roster is None or (not step.needs and not self.roster.next_in_line(step)):
            # no roster to name anyone from (an engine without a drill): the duration alone
            if not lane.wait(step.manual.duration, stop):
                return False, {"error": "run ended before the step was done", "modeled": True}
            return True, {"operator": "simulated", "modeled": True,
                          "modeled_duration": step.manual.duration}
        claim = self.wait_for_claim(step, stop, lane)
        if claim is None:
            return False, {"error": _unclaimed(self.roster, step, stop), "modeled": True}
        if not lane.wait(step.manual.duration, stop):
            return False, {"error": "run ended before the step was done", "modeled": True,
                           "claimed_by": claim["person"]}
        finish = moves.done(self.journal, lane, step, self.roster.get(claim["person"]), modeled=True)
        return True, moves.outcome(claim, finish, operator="simulated",
                                   modeled_duration=step.manual.duration)


def _unclaimed(roster: Roster | None, step: RunbookStep, stop: threading.Event) -> str:
    if stop.is_set() or roster is None:
        return "the run ended before anyone claimed the step"
    return f"no one could claim it: {roster.unable(step)}"


@dataclass
class StepState:
    step: RunbookStep
    status: str = "pending"  # pending | running | done | failed | skipped
    triggered_wall: float | None = None
    cause: dict | None = None  # the journal event that made it ready: its lane is anchored there


class RunbookEngine:
    def __init__(self, steps: list[RunbookStep], ctx: ActionContext, journal: Journal, operator,
                 clock: DrillClock):
        self.ctx, self.journal, self.operator, self.clock = ctx, journal, operator, clock
        self.states = {s.id: StepState(s) for s in steps}
        attach = getattr(operator, "attach", None)
        if attach is not None:  # the people: the roster, who is absent (journalled now)
            attach(ctx.drill, journal)
        self.params = {s.id: actions.validate(s.action, s.with_) for s in steps if s.action}
        self._alerts: set[str] = set()
        self._level: int | None = None
        self._lock = threading.Lock()
        self._running: dict[str, ActionContext] = {}  # step id → its context, while it runs
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.armed = False  # triggers count only once the incident timeline has begun

    def arm(self) -> None:
        with self._lock:
            self.armed = True
        self._start_ready(None)

    def on_event(self, event: dict) -> None:
        """Journal listener: update what triggers can see, then start whatever became ready."""
        kind = event.get("type")
        with self._lock:
            if kind == "alert.raised" and self.armed:
                self._alerts.add(event["alert"])
            elif kind == "level.declared":
                self._level = event["level"]
            elif kind == "step.finished":
                st = self.states.get(event["step"])
                if st:
                    st.status = "done" if event.get("ok") else "failed"
            else:
                return
        self._start_ready(event)

    def _ready(self, st: StepState) -> bool:
        on = st.step.when
        if on.alert and not (self._alerts if on.alert == "any" else on.alert in self._alerts):
            return False
        if on.after and self.states[on.after].status != "done":
            return False
        if on.level and self._level not in on.level:
            return False
        return True

    def _start_ready(self, cause: dict | None) -> None:
        with self._lock:
            if not self.armed or self._stop.is_set():
                return
            ready = [st for st in self.states.values() if st.status == "pending" and self._ready(st)]
            for st in ready:
                st.status, st.triggered_wall, st.cause = "running", self.clock.wall(), cause
        for st in ready:
            t = threading.Thread(target=self._run, args=(st,), name=f"step-{st.step.id}", daemon=True)
            self._threads.append(t)
            t.start()

    def _lane(self, st: StepState) -> Lane:
        """The step's own causal time, anchored at the event that made it ready (or at the scenario's
        timeline when nothing did, e.g. a step with no trigger)."""
        cause = st.cause
        if cause is not None and isinstance(cause.get("drill"), (int, float)):
            return self.clock.lane(f"step:{st.step.id}", cause["drill"], cause["wall"], cause.get("seq"))
        return self.clock.lane(f"step:{st.step.id}")

    def _run(self, st: StepState) -> None:
        step = st.step
        lane = self._lane(st)
        ctx = dataclasses.replace(self.ctx, lane=lane, stop=self._stop, step=step.id)
        ctx.record("step.started", step=step.id, group=step.group, kind=step.kind,
                   action=step.action, title=step.title, deadline=step.deadline)
        t0 = self.clock.wall()
        with self._lock:
            self._running[step.id] = ctx
        try:
            ok, detail = self._perform(step, ctx, lane)
        except ActionFailed as e:
            ok, detail = False, {"error": str(e)}
        except Exception as e:  # a harness bug in one step must not take the drill down with it
            ok, detail = False, {"error": f"harness error: {e.__class__.__name__}: {e}"}
        finally:
            with self._lock:
                self._running.pop(step.id, None)
        ctx.record("step.finished", step=step.id, group=step.group, kind=step.kind,
                   action=step.action, ok=ok, detail=detail,
                   real_seconds=round(self.clock.wall() - t0, 3))

    def _perform(self, step: RunbookStep, ctx: ActionContext, lane: Lane) -> tuple[bool, dict]:
        """The step's work, by its kind: (ok, detail)."""
        if step.kind == "manual":
            return self.operator.perform(step, self._stop, lane)
        claim = None
        if step.needs and hasattr(self.operator, "wait_for_claim"):
            # the human part: nothing runs until a person of the roster has taken the step
            claim = self.operator.wait_for_claim(step, self._stop, lane)
            if claim is None:
                return False, {"error": _unclaimed(getattr(self.operator, "roster", None), step,
                                                   self._stop)}
        ok, detail = self._machine_part(step, ctx)
        if claim is not None:
            detail = {**(detail or {}), "claimed_by": claim["person"], "call_out": claim["call_out"],
                      "modeled": claim["modeled"]}
        return ok, detail

    def _machine_part(self, step: RunbookStep, ctx: ActionContext) -> tuple[bool, dict]:
        if step.kind == "exec":
            return run_exec(ctx, step.exec_)
        if step.kind == "http":
            return run_http(ctx, step.http)
        return True, actions.ACTIONS[step.action].run(ctx, self.params[step.id])

    def running_context(self, step_id: str) -> ActionContext | None:
        """The context (lane, stop, run dir) of step `step_id` while it runs, else None: what the
        control surface acts in when that step's script asks it for a move."""
        with self._lock:
            return self._running.get(step_id)

    # --- for the run ----------------------------------------------------------------------------
    def busy(self) -> bool:
        with self._lock:
            return any(st.status == "running" for st in self.states.values())

    def settled(self) -> bool:
        """Nothing running and nothing pending that could still start now."""
        with self._lock:
            return not any(st.status == "running" or (st.status == "pending" and self._ready(st))
                           for st in self.states.values())

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            pending = [st for st in self.states.values() if st.status == "pending"]
            for st in pending:
                st.status = "skipped"
        for st in pending:
            self.journal.record("step.skipped", step=st.step.id, group=st.step.group,
                                reason="its trigger never held")
