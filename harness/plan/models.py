"""The hospital's emergency plan (应急预案) as one typed document: the command groups and their roster,
the levels, the failure classes the plan prepares for (each with its trigger, level, scenarios and
drills, runbook and targets), the endpoints, the backup schedule and the notice texts per level.

It reuses the drill's models (`Member`, `Team`, `Levels`, `BackupPlan`, `RunbookStep`, `Target`) so
that a drill can take its roster, levels and a failure class's runbook from the plan (a later stage:
`plan: ../plans/hospital.yaml` and `failure_class: database-crash` in the drill, with the drill's own
`runbook` / `targets` / `teams` overriding the plan's, step by step id).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..checks import slug
from ..level_plan import Channel, LevelNumber
from ..models import (BackupPlan, Duration, EgressLine, FailureClass, Group, Levels, LoopbackAddress,
                      Replication, RunbookStep, StackConfig, Strict, Target, Team, ThirdPartyKind)
from ..load.load_config import check_personas

LineName = Literal["primary", "backup"]
CopyStore = Literal["local_disk", "cloud", "offline_tape"]


def _unique(what: str, ids: list[str]) -> None:
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"duplicate {what} {dupes[0]!r}")


class RosterMinimum(Strict):
    """How many people a group must have on its roster (the plan: 5 core + 3 backup, 24 h on call)."""
    core: int = Field(5, ge=0)
    backup: int = Field(3, ge=0)


class CommandGroup(Team):
    """One group of the emergency command (应急指挥部): its roster and the minimum it must keep."""
    title: str = ""
    minimum: RosterMinimum = Field(default_factory=RosterMinimum)


class PlanStep(RunbookStep):
    """A runbook step as the plan writes it: what a drill step is, plus who can do it."""
    needs: str = Field(description="the skill or role the step needs, found in its group's roster "
                                   "(a member's skills, or words of a member's role)")
    channel: Channel | None = Field(None, description="the channel a manual, exec or http step "
                                                      "tells people through (a `notify` action's "
                                                      "`with.channel` and `set_notice` say it "
                                                      "themselves)")

    @field_validator("needs")
    @classmethod
    def _named(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("name the skill or role the step needs")
        return v.strip()


class ClassTrigger(Strict):
    """What starts the response to a failure class: the alerts the board raises for it."""
    alerts: list[str] = Field(min_length=1, description="alert names (the board's rules)")
    rule: str = Field("", description="the plan's words for the rule, e.g. '3 samples above 95%'")


class PlanFailureClass(Strict):
    """One failure class of the plan: how it is recognised, at which level, how it is drilled, the
    response and its targets."""
    id: str
    title: str = ""
    failure_class: FailureClass = Field(description="the scenarios' `failure_class` that drills it")
    trigger: ClassTrigger
    level: LevelNumber = Field(description="the response level the plan assigns it")
    scenarios: list[str] = Field(default_factory=list,
                                 description="scenario files that exercise it (relative to the plan)")
    drills: list[str] = Field(default_factory=list,
                              description="drill files that exercise it (relative to the plan)")
    runbook: list[PlanStep] = Field(default_factory=list)
    targets: list[Target] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _slug_id(cls, v: str) -> str:
        return slug(v)

    @model_validator(mode="after")
    def _unique_steps(self) -> "PlanFailureClass":
        _unique("runbook step id", [s.id for s in self.runbook])
        return self


class ThirdPartyEndpoints(Strict):
    """A third party's two interfaces. `backup` is the address the hospital configured for its backup
    interface (loopback only here); left out, the stack's own backup interface is used."""
    provider: str = ""
    backup: LoopbackAddress | None = None


class Line(Strict):
    provider: str = ""
    capacity_kbps: float | None = Field(None, gt=0)
    buffer_kb: float | None = Field(None, gt=0)


class Endpoints(Strict):
    third_parties: dict[ThirdPartyKind, ThirdPartyEndpoints] = Field(default_factory=dict)
    lines: dict[LineName, Line] = Field(default_factory=dict)


class BackupSchedule(BackupPlan):
    """The schedule (全量/增量备份) and where each copy goes (本地磁盘、云端、离线磁带)."""
    copies: list[CopyStore] = Field(default_factory=lambda: ["local_disk", "cloud", "offline_tape"],
                                    min_length=1)
    stores: dict[CopyStore, str] = Field(
        default_factory=dict,
        description="the directory each copy is kept in (the cloud bucket or tape library as "
                    "mounted here), relative to the plan file; a store not named: "
                    "<data dir>/hospital-drill/backups/<plan>/<store> (harness/plan/backup_stores.py)")
    grace: Duration = Field(900.0, ge=0, description="how late a backup may be past its interval "
                                                     "before the audit calls it too old (real time)")


class StandbyPlan(Replication):
    """Replication to the DR standbys, and how far behind a standby may be before it is not ready."""
    max_lag: Duration = Field(10.0, description="a standby further behind than this is not ready")
    remote_dr: bool = True


class LoadMix(Strict):
    """Which patients come in one part of the day (a peak hour): the personas' weights, which a
    scenario's load names (`load: {mix: morning_peak}`) instead of writing weights of its own."""
    title: str = ""
    hours: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$",
                       description="the part of the day, HH:MM-HH:MM (e.g. 08:00-10:00)")
    personas: dict[str, int] = Field(description="persona -> weight (followup, consultation, "
                                                 "prescription, exam, payment)")

    @field_validator("personas")
    @classmethod
    def _known_personas(cls, v: dict[str, int]) -> dict[str, int]:
        return check_personas(v)


class Plan(Strict):
    name: str
    title: str = ""
    groups: dict[Group, CommandGroup]
    levels: Levels = Field(default_factory=Levels)
    failure_classes: list[PlanFailureClass] = Field(min_length=1)
    targets: list[Target] = Field(default_factory=list,
                                  description="the plan's stated targets, which a class may tighten")
    endpoints: Endpoints = Field(default_factory=Endpoints)
    backups: BackupSchedule = Field(default_factory=BackupSchedule)
    standbys: StandbyPlan = Field(default_factory=StandbyPlan)
    notices: dict[LevelNumber, dict[Channel, str]] = Field(
        default_factory=dict, description="the text each level sends through each channel")
    load_mixes: dict[str, LoadMix] = Field(
        default_factory=dict, description="persona mixes of the day's peak hours, by name")

    @field_validator("name")
    @classmethod
    def _slug_name(cls, v: str) -> str:
        return slug(v)  # it names the audit's output directory

    @field_validator("notices", mode="before")
    @classmethod
    def _level_keys(cls, v: object) -> object:
        if isinstance(v, dict):  # JSON writes levels as strings
            return {int(k) if isinstance(k, str) and k.isdigit() else k: x for k, x in v.items()}
        return v

    @model_validator(mode="after")
    def _unique_classes(self) -> "Plan":
        _unique("failure class id", [c.id for c in self.failure_classes])
        return self

    def stack_config(self) -> StackConfig:
        """The stack this plan describes: its backup addresses, lines, replication and schedule."""
        lines = {name: EgressLine(capacity_kbps=line.capacity_kbps, buffer_kb=line.buffer_kb)
                 for name, line in self.endpoints.lines.items() if line.capacity_kbps}
        return StackConfig(
            replication=Replication(mode=self.standbys.mode, lag=self.standbys.lag),
            remote_dr=self.standbys.remote_dr,
            backup_addresses={kind: ep.backup for kind, ep in self.endpoints.third_parties.items()
                              if ep.backup},
            egress_lines=lines)
