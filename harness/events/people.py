"""Events of the people (harness/people/) and the command board."""
from __future__ import annotations

from typing import Literal

from .base import Event, LaneEvent, _f, event


@event("person.absent")
class PersonAbsent(Event):
    """A member of the roster who cannot be reached in this drill (journalled as the run starts)."""
    person: str = _f("the member's name")
    group: str = _f("their group")
    tier: Literal["core", "backup"] = _f("core or backup member")
    why: Literal["named", "drawn"] = _f("named by the drill's `people.absent`, or drawn")
    seed: int | None = _f("the draw's seed (drawn only): the same seed draws the same people")


@event("person.claimed")
class PersonClaimed(LaneEvent):
    """A person of the roster took a step; on the step's lane."""
    step: str = _f("the step's id")
    person: str = _f("who took it")
    group: str = _f("their group")
    tier: Literal["core", "backup"] = _f("core or backup member")
    call_out: float = _f("drill s from the step opening to the claim")
    modeled: bool = _f("true: the simulated operator's modeled call-out, never a measurement")


@event("person.done")
class PersonDone(LaneEvent):
    """A person completed a manual step; on the step's lane."""
    step: str = _f("the step's id")
    person: str = _f("who completed it")
    note: str = _f("what they said, may be empty")
    modeled: bool = _f("true: the simulated operator's modeled duration, never a measurement")


@event("person.blocked")
class PersonBlocked(LaneEvent):
    """A person cannot go on with a step: it is open again for the next in line."""
    step: str = _f("the step's id")
    person: str = _f("who is blocked")
    reason: str = _f("why")


@event("step.overdue")
class StepOverdue(LaneEvent):
    """A step waiting for people passed its deadline: the reminder pushed to the board once, naming
    who has it and who is next in line to call; on the step's lane."""
    step: str = _f("the step's id")
    group: str = _f("the step's group")
    waiting: Literal["claim", "done"] = _f("what the step waits for: a person's claim, or their done")
    deadline: float = _f("the step's deadline, drill s from its opening")
    claimed_by: str | None = _f("who has the step; null: nobody yet")
    call: list[str] = _f("the present members with the skill, in the order to call them")


@event("observer.note")
class ObserverNote(Event):
    """An observer's note, on the scenario's timeline."""
    by: str = _f("who wrote it")
    text: str = _f("the note")


@event("inject.shown")
class InjectShown(LaneEvent):
    """A scripted message of the scenario (`injects`) at its drill time, shown on the command board of
    a live drill; on the `injects` lane, anchored at T+0 (its `at` is a declared wait)."""
    inject: str = _f("the inject's id")
    text: str = _f("the message")
    to: str = _f("the group it is for, or `all`")


@event("board.started")
class BoardStarted(Event):
    """The live drill's command board is served."""
    url: str = _f("where the board is, on 127.0.0.1")
