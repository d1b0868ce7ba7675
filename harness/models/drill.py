"""A drill: the exercise that puts a scenario, a runbook, teams and targets together."""
from __future__ import annotations

import re

from pydantic import ConfigDict, Field, field_validator, model_validator

from ..checks import slug
from .base import Duration, Group, Strict
from .people import People, RosterMinimums, Team
from .runbook import RunbookStep, StepFailure
from .stack import StackConfig
from .targets import Levels, Target


class ErrorRateGuard(Strict):
    """Halt when the patients' error rate on the board (its window, the scenario's steady-state
    window) stays above `above` for `for` of drill time, judged at every look at the board."""
    above: float = Field(ge=0, lt=1, description="share of failed patient requests, e.g. 0.5")
    for_: Duration = Field(alias="for", description="how long it must hold, drill time (the board's lane)")
    min_requests: int = Field(10, ge=1, description="a window with fewer requests is no evidence")

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class LostWritesGuard(Strict):
    """Halt when more than `more_than` patient writes are lost, as the run can know it during the
    drill: acknowledged consultations missing from the database when the run keeps a ledger of them
    (data-loss scenarios), else patient writes that failed since the incident began."""
    more_than: int = Field(ge=0)


class Audit(Strict):
    """The plan's scheduled data audit (a DBA's job, what staff can see): row counts of the tables
    patients write to, on the database the apps use; a count that dropped since the last audit is
    an alert (nothing in the hospital deletes patients' rows)."""
    every: Duration = Field(600.0, gt=0, description="how often the audit runs (drill time)")
    tables: list[str] = Field(
        default_factory=lambda: ["consultations", "prescriptions", "appointments", "exam_bookings",
                                 "payments"], min_length=1)

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, v: list[str]) -> list[str]:
        for t in v:
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", t):
                raise ValueError(f"table {t!r} is not a table name")
        return v


class Safeguards(Strict):
    """Stop conditions: the harm the drill's owner accepts. A breach halts the run at once: every fault
    is reverted, the journal says why (`run.halted`), the run is reported aborted and exits 3."""
    error_rate: ErrorRateGuard | None = None
    lost_writes: LostWritesGuard | None = None
    wall_clock: Duration | None = Field(
        None, gt=0, description="budget of real (wall-clock) time from the run's start, bring-up "
                                "included: never compressed by the time scale")
    failed_critical_step: StepFailure = Field(
        "end_incident", description="a failed step that a critical target measures ends the incident "
                                    "phase instead of waiting for max_duration (a step's own "
                                    "`on_failure` wins)")


class Readiness(Strict):
    """The readiness audit's live checks as the drill's first phase, on the drill's own stack right
    after bring-up and before anything is injected (harness/plan/readiness.py): a backup interface
    that refuses, a standby that does not stream, found before anything is broken."""
    before: bool | None = Field(None, description="run them; default: on for a live drill (--live), "
                                                  "off otherwise")
    stop_on_critical: bool = Field(False, description="a critical finding stops the drill before any "
                                                      "fault: the run ends aborted (exit 3) with it as "
                                                      "the reason")

    def runs(self, live: bool) -> bool:
        return live if self.before is None else self.before


def _class_overrides(schema: dict) -> None:
    """JSON Schema: a drill that names a failure class (or extends one that may) writes of a step or
    target only its id and what it changes; one that names neither writes them whole."""
    from ..schema import _WrittenForms  # the generator that is asking: durations as written
    whole: dict = {"properties": {}, "required": ["runbook", "targets"]}
    for field, model in (("runbook", RunbookStep), ("targets", Target)):
        prop = schema["properties"][field]
        item = model.model_json_schema(by_alias=True, schema_generator=_WrittenForms)
        whole["properties"][field] = {"items": {"required": item["required"]}}
        prop["items"] = {"type": "object", "properties": _inline(item["properties"], item.get("$defs", {})),
                         "required": ["id"], "additionalProperties": False}
    schema["allOf"] = [{"if": {"not": {"anyOf": [{"required": ["extends"]},
                                                 {"required": ["failure_class"]}]}},
                        "then": whole}]


def _inline(node, defs: dict):
    """`node` with its references to `defs` written out (the steps' parts nest without cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


class Drill(Strict):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra=_class_overrides)

    name: str
    title: str = ""
    scenario: str = Field(description="path of the scenario file, relative to the drill file")
    time_scale: float = Field(60.0, gt=0, le=3600)
    plan: str | None = Field(None, description="the plan (应急预案) the drill takes its teams, levels "
                                               "and endpoints from, its own fields overriding them: "
                                               "a plan file relative to the drill file, or a shipped "
                                               "plan's name; as run, the plan file's full path")
    failure_class: str | None = Field(None, description="the failure class of the drill's plan that "
                                                        "it exercises: the class's runbook and "
                                                        "targets become the drill's, which its own "
                                                        "`runbook` and `targets` override by id "
                                                        "(docs/audit.md: Drills and the plan)")
    runbook_skip: list[str] = Field(default_factory=list,
                                    description="ids of the class's steps this drill leaves out")
    targets_skip: list[str] = Field(default_factory=list,
                                    description="ids of the class's targets this drill leaves out")
    teams: dict[Group, Team] = Field(default_factory=dict, validate_default=True,
                                     description="required unless the drill's `plan` staffs them")
    levels: Levels = Field(default_factory=Levels)
    stack: StackConfig = Field(default_factory=StackConfig)
    runbook: list[RunbookStep] = Field(default_factory=list, validate_default=True,
                                       description="required unless the drill's `failure_class` "
                                                   "gives it; with one, the steps that differ")
    targets: list[Target] = Field(default_factory=list, validate_default=True,
                                  description="required unless the drill's `failure_class` gives "
                                              "them; with one, the targets that differ")
    safeguards: Safeguards = Field(default_factory=Safeguards)
    audit: Audit | None = Field(None, description="a scheduled data audit the plan runs")
    readiness: Readiness = Field(default_factory=Readiness,
                                 description="the readiness audit's live checks before the drill")
    roster: RosterMinimums = Field(default_factory=RosterMinimums,
                                   description="the members each group must have")
    people: People = Field(default_factory=People, description="who is absent, and call-out times")

    @field_validator("name")
    @classmethod
    def _slug_name(cls, v: str) -> str:
        return slug(v)  # it names the run directory

    @field_validator("teams")
    @classmethod
    def _staffed(cls, v: dict[str, Team]) -> dict[str, Team]:
        # a plan's groups arrive here as teams (harness/drill_plan.py), so none means neither is given
        if not v:
            raise ValueError("required field missing: give the drill's teams, or a plan that staffs them")
        return v

    @field_validator("runbook", "targets")
    @classmethod
    def _given(cls, v: list) -> list:
        # a plan's failure class arrives here as the drill's own (harness/drill_plan.py)
        if not v:
            raise ValueError("required field missing: write them, or name the plan's failure_class")
        return v

    @model_validator(mode="after")
    def _references(self) -> "Drill":
        ids = [s.id for s in self.runbook]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate runbook step id {dupes[0]!r}")
        for s in self.runbook:
            if s.when.after and s.when.after not in ids:
                raise ValueError(f"step {s.id!r}: 'after' names unknown step {s.when.after!r}")
            if s.group not in self.teams:
                raise ValueError(f"step {s.id!r}: group {s.group!r} has no team")
        for t in self.targets:
            if t.step and t.step not in ids:
                raise ValueError(f"target {t.id!r}: unknown step {t.step!r}")
        return self

    def ends_incident(self, step_id: str) -> bool:
        """Whether the failure of step `step_id` ends the incident phase."""
        step = next((s for s in self.runbook if s.id == step_id), None)
        if step is None:
            return False
        if step.on_failure is not None:
            return step.on_failure == "end_incident"
        critical = any(t.critical and t.measure == "step" and t.step == step_id for t in self.targets)
        return critical and self.safeguards.failed_critical_step == "end_incident"
