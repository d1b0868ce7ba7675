"""The desk of a live drill: where named people of the roster claim, complete and block the steps
that need a person, and observers leave notes. It is the runbook engine's operator in a live drill
(`perform` for a manual step, `wait_for_claim` for a step that `needs` someone before its action
runs), and what the command board and `hospital-drill ack` act through.

Every move is checked before anything is journalled: an unknown step or person, an absent person, a
step that is not open, or one another person has taken, is a `DeskError` (one line, exit 2 at a
terminal). Human time is measured: the person's real time counts 1:1 on the step's lane at any scale.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from . import moves
from .roster import Roster

if TYPE_CHECKING:
    from ..clock import DrillClock, Lane
    from ..journal import Journal
    from ..models import Drill, RunbookStep

FINAL = ("done", "failed", "skipped")


class DeskError(InputError):
    """A move the desk refuses: unknown step or person, absent, step not open, taken."""


@dataclass
class _Step:
    step: "RunbookStep"
    status: str = "pending"  # pending|open|claimed|running|done|blocked|failed|skipped
    lane: "Lane | None" = None
    opened: float | None = None  # drill s on the step's lane when it opened
    waiting: str | None = None  # "claim" or "done": what the engine waits for
    claim: dict | None = None  # the person.claimed record
    finish: dict | None = None  # the person.done record
    reminded: bool = False  # the overdue reminder was pushed


class Desk:
    def __init__(self, clock: "DrillClock", roster: Roster | None = None):
        self.clock = clock
        self.roster = roster
        self.journal: "Journal | None" = None
        self.steps: dict[str, _Step] = {}
        self.notes: list[dict] = []
        self._cond = threading.Condition()

    # --- the engine's operator --------------------------------------------------------------------
    def attach(self, drill: "Drill | None", journal: "Journal") -> None:
        """Once, by the runbook engine: the runbook, the roster, and who is absent (journalled)."""
        self.journal = journal
        if self.roster is None:
            self.roster = Roster.of(drill)
        self.steps = {s.id: _Step(s) for s in (drill.runbook if drill else [])}
        moves.journal_absences(journal, self.roster)
        journal.subscribe(self._on_event)

    def wait_for_claim(self, step: "RunbookStep", stop: threading.Event, lane: "Lane") -> dict | None:
        """A step that needs someone: its person.claimed record once a person claims it, None when the
        run ends first. Then it runs (the machine part) until the engine journals its end."""
        st = self._open(step, lane, "claim")
        with self._cond:
            while st.claim is None or st.status == "blocked":
                if stop.is_set():
                    st.waiting = None
                    return None
                self._remind_if_overdue(st)
                self._cond.wait(0.2)
            st.status, st.waiting = "running", None
            return st.claim

    def perform(self, step: "RunbookStep", stop: threading.Event, lane: "Lane") -> tuple[bool, dict]:
        """A manual step: done when a person says so (claimed by them first, if nobody had)."""
        st = self._open(step, lane, "done")
        with self._cond:
            while st.finish is None:
                if stop.is_set():
                    st.waiting = None
                    return False, {"error": "the run ended before a person completed the step",
                                   "claimed_by": st.claim and st.claim["person"], "modeled": False}
                self._remind_if_overdue(st)
                self._cond.wait(0.2)
            st.waiting = None
            return True, moves.outcome(st.claim, st.finish, note=st.finish["note"])

    def _remind_if_overdue(self, st: _Step) -> None:
        """Once a step that waits for people is past its deadline, push one reminder (journalled, on
        the board's alert list) naming who has it and whom to call next. Called with the lock held."""
        deadline = st.step.deadline
        if st.reminded or deadline is None or st.opened is None or st.lane is None or self.journal is None:
            return
        if st.lane.now() - st.opened <= deadline:
            return
        st.reminded = True
        holder = st.claim["person"] if st.claim and st.status != "blocked" else None
        call = [p.name for p in self.roster.next_in_line(st.step)] if self.roster else []
        self.journal.record("step.overdue", lane=st.lane, step=st.step.id, group=st.step.group,
                            waiting=st.waiting or "claim", deadline=deadline, claimed_by=holder,
                            call=[n for n in call if n != holder])

    def _open(self, step: "RunbookStep", lane: "Lane", waiting: str) -> _Step:
        with self._cond:
            st = self.steps.setdefault(step.id, _Step(step))
            st.lane, st.opened, st.waiting = lane, lane.now(), waiting
            st.status = "open"
            self._cond.notify_all()
            return st

    def _on_event(self, event: dict) -> None:
        kind = event.get("type")
        if kind not in ("step.started", "step.finished", "step.skipped"):
            return
        with self._cond:
            st = self.steps.get(event.get("step", ""))
            if st is None:
                return
            if kind == "step.started":
                st.opened = event.get("drill") if st.opened is None else st.opened
                if st.status == "pending":
                    st.status = "running"  # a step with no human part; `_open` says so otherwise
            elif kind == "step.finished":
                st.status = "done" if event.get("ok") else "failed"
            else:
                st.status = "skipped"

    # --- the people's moves -----------------------------------------------------------------------
    def claim(self, step_id: str, person: str) -> dict:
        with self._cond:
            st, who = self._may(step_id, person)
            if st.claim is not None and st.status != "blocked":
                if st.claim["person"] == who.name:
                    return st.claim
                raise DeskError(f"{step_id!r} is taken by {st.claim['person']}", field="step")
            st.claim = moves.claimed(self.journal, st.lane, st.step, who, st.opened, modeled=False)
            st.status = "claimed"
            self._cond.notify_all()
            return st.claim

    def done(self, step_id: str, person: str, note: str = "") -> dict:
        with self._cond:
            st, who = self._may(step_id, person)
            if st.waiting != "done":
                raise DeskError(f"{step_id!r} is done by its {st.step.kind} part once claimed: claim it",
                                field="step")
            if st.claim is not None and st.status != "blocked" and st.claim["person"] != who.name:
                raise DeskError(f"{step_id!r} is taken by {st.claim['person']}", field="step")
            if st.claim is None or st.status == "blocked":
                st.claim = moves.claimed(self.journal, st.lane, st.step, who, st.opened, modeled=False)
            st.finish = moves.done(self.journal, st.lane, st.step, who, note, modeled=False)
            st.status = "done"
            self._cond.notify_all()
            return st.finish

    def block(self, step_id: str, person: str, reason: str) -> dict:
        """The person cannot go on with the step: it is open again for anyone in line."""
        with self._cond:
            st, who = self._may(step_id, person)
            if not reason.strip():
                raise DeskError("say why the step is blocked", field="reason")
            record = self.journal.record("person.blocked", lane=st.lane, step=step_id,
                                         person=who.name, reason=reason.strip())
            st.status = "blocked"
            self._cond.notify_all()
            return record

    def ack(self, step_id: str, person: str) -> dict:
        """A terminal's one move: a manual step is done, any other claimed."""
        with self._cond:
            st = self._step(step_id)
            manual = st.step.kind == "manual"
        return self.done(step_id, person) if manual else self.claim(step_id, person)

    def note(self, by: str, text: str) -> dict:
        """An observer's note: anyone may write one, on the scenario's timeline."""
        if not by.strip() or not text.strip():
            raise DeskError("a note needs who writes it and its text", field="note")
        record = self.journal.record("observer.note", by=by.strip(), text=text.strip())
        with self._cond:
            self.notes.append(record)
        return record

    def _step(self, step_id: str) -> _Step:
        st = self.steps.get(step_id)
        if st is None:
            known = ", ".join(self.steps) or "none"
            raise DeskError(f"no step {step_id!r} in this drill (steps: {known})", field="step")
        return st

    def _may(self, step_id: str, person: str) -> tuple[_Step, Any]:
        """The step and the person, once both are known, the step open and the person able."""
        st = self._step(step_id)
        who = self.roster.get(person) if self.roster else None
        if who is None:
            raise DeskError(f"{person!r} is not on the roster", field="person")
        if st.waiting is None or st.lane is None:
            raise DeskError(f"{step_id!r} is not open (it is {st.status})", field="step")
        why = self.roster.refusal(who, st.step)
        if why:
            raise DeskError(why, field="person")
        return st, who

    # --- for the board ----------------------------------------------------------------------------
    def snapshot(self) -> dict:
        with self._cond:
            steps = [self._card(st) for st in self.steps.values()]
            notes = [{"by": n["by"], "text": n["text"], "drill": n["drill"], "wall": n["wall"]}
                     for n in self.notes]
        roster = [p.card() for p in self.roster.people] if self.roster else []
        return {"steps": steps, "roster": roster, "notes": notes}

    def _card(self, st: _Step) -> dict:
        step = st.step
        now = st.lane.now() if st.lane is not None else self.clock.drill()
        deadline = (st.opened + step.deadline
                    if st.opened is not None and step.deadline is not None else None)
        overdue = (deadline is not None and now is not None and now > deadline
                   and st.status not in FINAL)
        line = self.roster.next_in_line(step) if self.roster else []
        return {"id": step.id, "title": step.title, "group": step.group, "kind": step.kind,
                "needs": step.needs, "status": st.status,
                "claimed_by": st.claim["person"] if st.claim and st.status != "blocked" else None,
                "owner_candidates": [p.name for p in line],
                "opened_drill": st.opened, "deadline_drill": deadline, "overdue": overdue}
