"""A scenario: what goes wrong and when, the patients' load, the injects."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..checks import finite, slug
from ..load.load_config import check_personas
from ..load.named_shapes import SHAPES
from .base import Duration, FailureClass, Group, Strict


class LoadProfile(Strict):
    users: int = Field(20, ge=1, le=10000,
                       description="patients at once, each a distinct patient of the population "
                                   "(up to its 10,000)")
    spawn_rate: float = Field(10, gt=0)
    workers: int = Field(0, ge=0, le=16, description="Locust workers; 0 = one local process")
    external_workers: int = Field(
        0, ge=0, le=256, description="Locust workers that people start on other machines with "
                                     "`hospital-drill load-worker --master HOST:PORT` (the run prints "
                                     "the line); the master waits for them, see docs/scale.md")
    wait_for_workers: Duration = Field(
        60.0, gt=0, le=3600, description="how long the master waits for the external workers to join "
                                         "before the run aborts; real time (people start them), never "
                                         "compressed by the time scale")
    personas: dict[str, int] = Field(
        default_factory=lambda: {"followup": 3, "consultation": 3, "prescription": 2, "exam": 2,
                                 "payment": 1})
    think_time: tuple[Duration, Duration] = Field(
        (30.0, 90.0), description="drill time a patient thinks between journeys (min, max): a "
                                  "declared wait, compressed by the time scale like any other, so "
                                  "that a window of drill time holds as many journeys at any scale")
    offline_share: float = Field(0.5, ge=0, le=1,
                                 description="share of patients in trouble (a failed step, or the app's "
                                             "level-1/level-2 notice) who go to offline reception and "
                                             "record their need there; the rest retry or give up")
    mix: str | None = Field(None, description="a persona mix of the plan's `load_mixes` (e.g. "
                                              "morning_peak), instead of `personas`")
    shape: str | None = Field(None, description="a named load shape over drill time (e.g. "
                                                "morning_peak: the night's few patients, a ramp, "
                                                "the peak held), in shares of `users`; none: all "
                                                "`users` from the start")
    seed: int | None = Field(None, description="the seed of the draw of patients from the hospital's "
                                               "10,000; none: one made from the drill's name, so the "
                                               "same drill always draws the same patients")

    @field_validator("personas")
    @classmethod
    def _known_personas(cls, v: dict[str, int]) -> dict[str, int]:
        return check_personas(v)

    @field_validator("shape")
    @classmethod
    def _known_shape(cls, v: str | None) -> str | None:
        if v is not None and v not in SHAPES:
            raise ValueError(f"unknown shape {v!r} (known: {', '.join(sorted(SHAPES))})")
        return v

    @model_validator(mode="after")
    def _mix_or_personas(self) -> "LoadProfile":
        if self.mix is not None and "personas" in self.model_fields_set:
            raise ValueError("give `personas` or a `mix`, not both")
        return self

    @field_validator("think_time")
    @classmethod
    def _think_time(cls, v: tuple[float, float]) -> tuple[float, float]:
        low, high = (finite(x, "think time") for x in v)
        if low < 0 or high < 0:
            raise ValueError(f"think time is never negative ({low:g}, {high:g})")
        if low > high:
            raise ValueError(f"the shortest think time {low:g} is above the longest {high:g}")
        return v


class FaultSpec(Strict):
    id: str | None = None
    at: Duration
    type: str
    target: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    duration: Duration | None = Field(None, description="revert after this long; default: at the end")

    @field_validator("id")
    @classmethod
    def _slug_id(cls, v: str | None) -> str | None:
        return v if v is None else slug(v)


class SteadyState(Strict):
    max_error_rate: float = Field(0.02, ge=0, le=1)
    window: Duration = 60.0
    probe_payment: bool = Field(
        False, description="the test account's journey ends with a payment with insurance, so that "
                           "'back' means payments work again")


class Inject(Strict):
    """A scripted message that reaches the command at a drill time (shown on the board)."""
    id: str
    at: Duration = Field(description="when it is shown, drill time from T+0")
    text: str = Field(min_length=1, description="what the command is told")
    to: Group | Literal["all"] = Field("all", description="the group it is for, or all")

    @field_validator("id")
    @classmethod
    def _slug_id(cls, v: str) -> str:
        return slug(v)


class Scenario(Strict):
    name: str
    title: str = ""
    failure_class: FailureClass
    description: str = ""
    load: LoadProfile = Field(default_factory=LoadProfile)
    warmup: Duration = 180.0
    faults: list[FaultSpec] = Field(min_length=1)
    observe: Duration = Field(120.0, description="keep watching this long after recovery")
    max_duration: Duration | None = Field(None, description="hard stop in drill time")
    steady_state: SteadyState = Field(default_factory=SteadyState)
    injects: list[Inject] = Field(default_factory=list,
                                  description="messages for the command board at drill times (live drills)")

    @field_validator("injects")
    @classmethod
    def _one_inject_an_id(cls, v: list[Inject]) -> list[Inject]:
        ids = [i.id for i in v]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"inject id {twice[0]!r} used twice")
        return v

    @field_validator("name")
    @classmethod
    def _slug_name(cls, v: str) -> str:
        return slug(v)  # it names the run directory

    @model_validator(mode="after")
    def _fault_ids(self) -> "Scenario":
        seen: set[str] = set()
        for i, f in enumerate(self.faults):
            if f.id is None:
                f.id = f"{f.type}-{i + 1}"
            if f.id in seen:
                raise ValueError(f"duplicate fault id {f.id!r}")
            seen.add(f.id)
        return self
