"""The envelope every event has, and `@event`, which declares a model as the one for its type."""
from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

STRICT_ENV = "HD_STRICT_EVENTS"
TABLE_BEGIN = "<!-- event-table:begin -->"
TABLE_END = "<!-- event-table:end -->"
RESERVED = ("seq", "wall", "drill", "type", "chain")  # set by the journal, never by a writer

EVENTS: dict[str, type["Event"]] = {}  # type string → model, in the order a run writes them


class EventError(Exception):
    """An event that does not fit its declared model (a harness bug)."""


def strict() -> bool:
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


def _f(description: str, default: Any = ...) -> Any:
    return Field(default, description=description)


# --- the envelope ----------------------------------------------------------------------------------

class Chain(BaseModel):
    """A lane's account of an event's drill time (harness/clock.py `Lane.account`)."""
    model_config = ConfigDict(extra="forbid")
    lane: str = _f("the lane's name: `scenario`, `monitor`, `step:<id>`, `revert:<fault>`")
    cause: int | None = _f("seq of the event the lane was anchored at; null: T+0")
    declared: float = _f("declared waits since the anchor, drill s (compressed by the scale)")
    real: float = _f("real work since the anchor, s (counted 1:1 at any scale)")


class Account(BaseModel):
    """A lane's account at a moment, without the lane's name (`recovery.at_chain`)."""
    model_config = ConfigDict(extra="forbid")
    cause: int | None = _f("seq of the anchoring event")
    declared: float = _f("declared waits since the anchor, drill s")
    real: float = _f("real work since the anchor, s")


class Event(BaseModel):
    """Fields every event has. Each type is a subclass, declared with `@event("x.y")`."""
    model_config = ConfigDict(extra="forbid")
    type_name: ClassVar[str] = ""
    on_lane: ClassVar[bool] = False

    seq: int = _f("position in the journal, from 1")
    wall: float = _f("wall time, epoch s")
    drill: float | None = _f("drill s: on a lane its causal time, else the timeline's (null before T+0)")
    type: str = _f("the event type")


def event(type_name: str):
    """Declare a model as the one for `type_name`; a type declared twice is an error."""
    def declare(cls: type[Event]) -> type[Event]:
        if type_name in EVENTS:
            raise TypeError(f"event type {type_name!r} declared twice "
                            f"({EVENTS[type_name].__name__}, {cls.__name__})")
        cls.type_name = type_name
        EVENTS[type_name] = cls
        return cls
    return declare


class LaneEvent(Event):
    """An event journalled on a lane (`lane=`): it carries the lane's account in `chain`."""
    on_lane: ClassVar[bool] = True
    chain: Chain | None = _f("the lane's account (absent when written without a lane)", None)
