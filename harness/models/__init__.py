"""Typed models of everything a user writes: scenarios, drills (teams, runbook, targets, stack config).

Durations are drill time, written '90s', '5m', '1h' (or seconds). Validation is strict: unknown keys
are errors, so a typo in a runbook is found before anything starts. One module per part; every name
is importable from here.
"""
from .base import Duration, Group, GROUP_TITLES, FailureClass, Strict
from .scenario import LoadProfile, FaultSpec, SteadyState, Inject, Scenario
from .people import Member, Team, RosterMinimums, People
from .runbook import Trigger, ManualStep, ExecStep, HttpMethod, HttpStep, StepFailure, GoldenMove, GOLDEN_MOVES, GOLDEN_HOUR, StepKind, STEP_KINDS, RunbookStep
from .targets import Measure, BACK_ENTRY_WITHIN, Target, PatientSlo, Levels
from .stack import Replication, BackupPlan, EgressLine, LoopbackAddress, ThirdPartyKind, StackConfig
from .drill import ErrorRateGuard, LostWritesGuard, Audit, Safeguards, Readiness, Drill

__all__ = [
    "Duration",
    "Group",
    "GROUP_TITLES",
    "FailureClass",
    "Strict",
    "LoadProfile",
    "FaultSpec",
    "SteadyState",
    "Inject",
    "Scenario",
    "Member",
    "Team",
    "RosterMinimums",
    "People",
    "Trigger",
    "ManualStep",
    "ExecStep",
    "HttpMethod",
    "HttpStep",
    "StepFailure",
    "GoldenMove",
    "GOLDEN_MOVES",
    "GOLDEN_HOUR",
    "StepKind",
    "STEP_KINDS",
    "RunbookStep",
    "Measure",
    "BACK_ENTRY_WITHIN",
    "Target",
    "PatientSlo",
    "Levels",
    "Replication",
    "BackupPlan",
    "EgressLine",
    "LoopbackAddress",
    "ThirdPartyKind",
    "StackConfig",
    "ErrorRateGuard",
    "LostWritesGuard",
    "Audit",
    "Safeguards",
    "Readiness",
    "Drill",
]
