"""What every model shares: strict validation, drill durations, the command groups and the
failure classes."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict

from ..checks import drill_seconds

Duration = Annotated[float, BeforeValidator(drill_seconds)]
"""Drill seconds, parsed from '90s' / '5m' / a number; negative, non-finite and over a month refused."""

Group = Literal["technical", "clinical_support", "patient_communication"]
GROUP_TITLES = {"technical": "技术组", "clinical_support": "临床支持组",
                "patient_communication": "患者沟通组"}

FailureClass = Literal[
    "database", "server", "network", "bandwidth", "third_party", "config_error", "malicious_traffic",
    "data_deletion", "power_loss", "false_alarm", "composite",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

