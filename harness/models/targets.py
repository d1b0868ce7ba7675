"""What a drill is scored against: time targets, and the levels' thresholds."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..checks import slug
from ..level_plan import RequiredByLevel
from .base import Duration, Strict

Measure = Literal["detection", "step", "recovery", "rpo", "level", "back_entry"]
BACK_ENTRY_WITHIN = 24 * 3600.0  # the plan: offline records back-entered within 24 h of recovery


class Target(Strict):
    id: str
    title: str = ""
    measure: Measure
    step: str | None = Field(None, description="for measure: step — the step whose end counts")
    within: Duration | None = Field(None, description="the bound; measure back_entry (from recovery "
                                                      "to back-entry complete): 24h unless set")
    critical: bool = True

    @field_validator("id")
    @classmethod
    def _slug_id(cls, v: str) -> str:
        return slug(v)

    @model_validator(mode="after")
    def _needs(self) -> "Target":
        if self.measure == "step" and not self.step:
            raise ValueError("measure 'step' needs 'step'")
        if self.measure == "back_entry" and self.within is None:
            self.within = BACK_ENTRY_WITHIN
        if self.measure != "level" and self.within is None:
            raise ValueError(f"measure {self.measure!r} needs 'within'")
        return self


class PatientSlo(Strict):
    """How slow a patient's request may be before that patient counts as affected (real time: a
    request takes what it takes at any scale)."""
    latency: Duration = Field(2.0, description="any request slower than this affects its patient")
    journeys: dict[str, Duration] = Field(
        default_factory=dict, description="per journey (followup, consultation, prescription, exam, "
                                          "payment), e.g. payment: 5s")

    def limit(self, journey: str | None) -> float:
        return self.journeys.get(journey or "", self.latency)


class Levels(Strict):
    """Shares of affected patients that classify a response level (plan: >50% → 1, 20–50% → 2),
    judged over the plan's observation window from when the incident began."""
    level1_above: float = Field(0.5, ge=0, le=1)
    level2_above: float = Field(0.2, ge=0, le=1)
    observe: Duration = Field(60.0, gt=0, description="the observation window that the share of "
                                                      "affected patients is judged over (drill time)")
    patient_slo: PatientSlo = Field(default_factory=PatientSlo)
    required: RequiredByLevel = Field(
        default_factory=RequiredByLevel,
        description="channels and steps each level requires (level_plan.py; the plan's by default)")
