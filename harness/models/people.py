"""The command groups' roster, its minimums, and who is absent from a drill."""
from __future__ import annotations

from pydantic import Field, field_validator

from .base import Duration, Strict


class Member(Strict):
    name: str
    role: str = ""
    skills: list[str] = Field(default_factory=list)
    location: str = ""
    phone: str = ""


class Team(Strict):
    core: list[Member] = Field(min_length=1)
    backup: list[Member] = Field(default_factory=list)


class RosterMinimums(Strict):
    """How many people each group must have on its roster (the plan: 5 core + 3 backup, 24 h on
    call); checked by `validate` at teams.GROUP.core / .backup."""
    core_min: int = Field(5, ge=1)
    backup_min: int = Field(3, ge=0)


class People(Strict):
    """Who is kept out of the drill, as in DiRT exercises: named, or drawn from a seed; and the
    modeled call-out of an automatic run, which also says who is nearest."""
    absent: list[str] = Field(default_factory=list, description="members who cannot be reached")
    absent_drawn: int = Field(0, ge=0, description="this many more, drawn from the roster by `seed`")
    seed: int | None = Field(None, description="the draw's seed; none: one is drawn and journalled "
                                               "(person.absent) so the run can be repeated")
    call_out: dict[str, Duration] = Field(
        default_factory=dict, description="by a member's location: drill time from the call to "
                                          "being on the step; the modeled call-out of an automatic "
                                          "run, and what 'nearest' means on the board")
    call_out_default: Duration = Field(120.0, description="a location not in `call_out`")

    @field_validator("absent")
    @classmethod
    def _once(cls, v: list[str]) -> list[str]:
        dupes = sorted({n for n in v if v.count(n) > 1})
        if dupes:
            raise ValueError(f"{dupes[0]!r} is named twice")
        return v
