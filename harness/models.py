"""Typed models of everything a user writes: scenarios, drills (teams, runbook, targets, stack config).

Durations are drill time, written '90s', '5m', '1h' (or seconds). Validation is strict: unknown keys
are errors, so a typo in a runbook is found before anything starts.
"""
from __future__ import annotations

import re

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator,
                      model_validator)

from .checks import drill_seconds, finite, slug
from .level_plan import RequiredByLevel

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


# --- scenario: what goes wrong, and when -----------------------------------------------------------

class LoadProfile(Strict):
    users: int = Field(20, ge=1, le=2000)
    spawn_rate: float = Field(10, gt=0)
    workers: int = Field(0, ge=0, le=16, description="Locust workers; 0 = one local process")
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

    @field_validator("personas")
    @classmethod
    def _known_personas(cls, v: dict[str, int]) -> dict[str, int]:
        known = {"followup", "consultation", "prescription", "exam", "payment"}
        bad = sorted(set(v) - known)
        if bad:
            raise ValueError(f"unknown persona {bad[0]!r} (known: {', '.join(sorted(known))})")
        if any(w < 0 for w in v.values()) or not any(w > 0 for w in v.values()):
            raise ValueError("weights must be >= 0 with at least one > 0")
        return v

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


# --- drill: the exercise ---------------------------------------------------------------------------

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


class Trigger(Strict):
    alert: str | None = Field(None, description="an alert name, or 'any'")
    after: str | None = Field(None, description="a previous step id, finished ok")
    level: list[int] | None = Field(None, description="run only when one of these levels is declared")

    @field_validator("level", mode="before")
    @classmethod
    def _one_level(cls, v: Any) -> Any:
        return [v] if isinstance(v, int) else v

    @field_validator("level")
    @classmethod
    def _levels(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(x not in (1, 2, 3) for x in v):
            raise ValueError("levels are 1, 2 or 3")
        return v

    @model_validator(mode="after")
    def _something(self) -> "Trigger":
        if not (self.alert or self.after or self.level):
            raise ValueError("a trigger needs alert, after or level")
        return self


class ManualStep(Strict):
    duration: Duration = Field(description="how long the simulated operator takes (drill time)")
    instructions: str = ""


class ExecStep(Strict):
    """The hospital's own automation: a program run on this machine with the control surface's
    environment (harness/control/env.py, docs/runbook-scripts.md). Exit 0 is success."""
    argv: list[str] | None = Field(None, min_length=1, description="the command and its arguments "
                                                                   "(the command found on PATH)")
    script: str | None = Field(None, description="an executable file, relative to the drill file; "
                                                 "resolved to an absolute path when the drill loads")
    args: list[str] = Field(default_factory=list, description="arguments after `script`")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables")
    cwd: str | None = Field(None, description="working directory, relative to the drill file; "
                                              "default: the drill file's directory")
    timeout: Duration = Field(300.0, gt=0, description="the plan's budget (drill time); the program "
                                                       "and its children are killed past it")

    @field_validator("env")
    @classmethod
    def _own_names(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ValueError(f"{key!r} is not an environment variable name")
            if key.startswith("HD_"):
                raise ValueError(f"{key}: the HD_ names are the drill's own (docs/runbook-scripts.md)")
        return v

    @model_validator(mode="after")
    def _one_program(self) -> "ExecStep":
        if (self.argv is None) == (self.script is None):
            raise ValueError("give exactly one of 'argv' or 'script'")
        if self.argv is not None and self.args:
            raise ValueError("'args' go with 'script'; with 'argv' put them in argv")
        if self.argv is not None and not self.argv[0].strip():
            raise ValueError("argv: the command is empty")
        return self

    def command(self) -> list[str]:
        return list(self.argv) if self.argv is not None else [str(self.script), *self.args]


HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


def _template(v: Any) -> Any:
    from .control.env import check_template
    return check_template(v) if isinstance(v, str) else v


class HttpStep(Strict):
    """One HTTP call of the hospital's tools against the stack, e.g. `POST {app.app-primary}/admin/notice`.
    The URL is a template over the stack's addresses (docs/runbook-scripts.md)."""
    method: HttpMethod = "GET"
    url: Annotated[str, BeforeValidator(_template)]
    json_: Any = Field(None, alias="json", description="a JSON body")
    body: str | None = Field(None, description="a text body")
    headers: dict[str, str] = Field(default_factory=dict)
    expect: list[int] | None = Field(None, min_length=1,
                                     description="statuses that count as success; default: any 2xx")
    timeout: Duration = Field(30.0, gt=0, description="the plan's budget for the answer (drill time)")

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("expect")
    @classmethod
    def _statuses(cls, v: list[int] | None) -> list[int] | None:
        for status in v or []:
            if not 100 <= status <= 599:
                raise ValueError(f"{status} is not an HTTP status (100-599)")
        return v

    @model_validator(mode="after")
    def _one_body(self) -> "HttpStep":
        if self.json_ is not None and self.body is not None:
            raise ValueError("give 'json' or 'body', not both")
        return self

    def accepts(self, status: int) -> bool:
        return status in self.expect if self.expect else 200 <= status < 300


StepFailure = Literal["end_incident", "continue"]
GoldenMove = Literal["identify", "classify", "reassure", "take_over"]
GOLDEN_MOVES: tuple[GoldenMove, ...] = ("identify", "classify", "reassure", "take_over")
GOLDEN_HOUR = 3600.0  # the plan's first 60 minutes (drill s) for the four moves
StepKind = Literal["auto", "manual", "exec", "http"]
STEP_KINDS = {"action": "auto", "manual": "manual", "exec_": "exec", "http": "http"}  # field → kind


class RunbookStep(Strict):
    id: str
    title: str = ""
    group: Group
    when: Trigger
    action: str | None = Field(None, description="a named harness action")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    manual: ManualStep | None = None
    exec_: ExecStep | None = Field(None, alias="exec", description="run the hospital's own program")
    http: HttpStep | None = Field(None, description="call an HTTP endpoint of the stack")
    deadline: Duration | None = Field(None, description="from the moment the step is triggered")
    needs: str | None = Field(None, description="the skill or role of the person who must claim "
                                                "the step before its action runs (a member's "
                                                "skills, or words of a member's role)")
    on_failure: StepFailure | None = Field(
        None, description="what the step's failure does to the run: `end_incident` ends the incident "
                          "phase (no step can bring patients back after it), `continue` waits on; "
                          "default: the drill's `safeguards.failed_critical_step` for a step that a "
                          "critical target measures, else `continue`")
    golden_hour: GoldenMove | None = Field(
        None, description="the golden hour's move (黄金响应期: identify → classify → reassure → take "
                          "over) this step makes: the score times the move from the fault to the "
                          "person's done (or the step's finish) and names who made it")

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)
    @field_validator("id")
    @classmethod
    def _slug_id(cls, v: str) -> str:
        return slug(v)

    @field_validator("needs")
    @classmethod
    def _needs_someone(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("name the skill or role, or leave 'needs' out")
        return v if v is None else v.strip()

    @model_validator(mode="after")
    def _one_kind(self) -> "RunbookStep":
        given = [f for f in STEP_KINDS if getattr(self, f) is not None]
        if len(given) != 1:
            names = ", ".join(repr(f.rstrip("_")) for f in STEP_KINDS)
            raise ValueError(f"a step has exactly one of {names}"
                             + (f" (it has {' and '.join(g.rstrip('_') for g in given)})" if given else ""))
        if self.with_ and self.action is None:
            raise ValueError("'with' gives an action its parameters: this step has no 'action'")
        return self

    @property
    def kind(self) -> StepKind:
        """`auto` (a built-in action), `manual`, `exec` or `http`: which of the four the step is."""
        return next(STEP_KINDS[f] for f in STEP_KINDS if getattr(self, f) is not None)  # type: ignore[return-value]


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


class Replication(Strict):
    mode: Literal["sync", "async"] = "async"
    lag: Duration = Field(0.0, description="extra delay on the replication link (drill time)")


def _at_start(v: Any) -> float:
    """'at start' (or 'start') is T+0; anything else is a duration."""
    if isinstance(v, str) and v.strip().lower() in ("start", "at start"):
        return 0.0
    return drill_seconds(v)


class BackupPlan(Strict):
    """The hospital's backup schedule (全量/增量备份), in drill time: a full pg_basebackup at `full`
    (T+0 by default: the daily 01:00 full) and every `full_every` after it, an incremental one
    (`pg_basebackup --incremental` on the previous backup) every `incremental_every` in between."""
    full: Annotated[float, BeforeValidator(_at_start)] = Field(
        0.0, description="drill time of the first full backup: 'at start' (T+0) or a duration")
    full_every: Duration = Field(86400.0, gt=0, description="a new full backup this often (daily)")
    incremental_every: Duration | None = Field(3600.0, gt=0, description="null: full backups only")
    offline_copy: bool = Field(True, description="also copy each backup to the 'offline' (tape) store")
    clock_start: str | None = Field(
        "01:00", pattern=r"^\d{2}:\d{2}$", description="the hospital's clock at T+0, for backup labels")


class EgressLine(Strict):
    """An egress line's capacity, shared by every flow on it (metered by the egress gateway)."""
    capacity_kbps: float = Field(gt=0, description="KB/s, KB = 1000 bytes (e.g. 2000 ≈ 16 Mbit/s)")
    buffer_kb: float | None = Field(
        None, gt=0, description="what a full line holds queued (default 3 s of capacity): how long "
                                "every call on a saturated line waits")


def _loopback_address(v: Any) -> Any:
    """host:port on this machine (127.0.0.0/8 or localhost): a drill never reaches out of it."""
    if not isinstance(v, str):
        return v
    host, sep, port = v.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{v!r} is not a host:port address")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"{v!r}: a drill's addresses stay on this machine (127.x.x.x or localhost)")
    return v.strip()


LoopbackAddress = Annotated[str, BeforeValidator(_loopback_address)]
ThirdPartyKind = Literal["insurance", "payment", "notification"]


class StackConfig(Strict):
    """The hospital's configuration of the mock stack (what a drill can find wrong)."""
    replication: Replication = Field(default_factory=Replication)
    backups: BackupPlan | None = Field(None, description="take real backups on this schedule")
    remote_dr: bool = True
    backup_addresses: dict[ThirdPartyKind, LoopbackAddress] = Field(
        default_factory=dict, description="host:port configured for a third party's backup "
                                          "interface, e.g. {payment: 127.0.0.9:18091}; default: ours")
    insurance_backup_address: LoopbackAddress | None = Field(
        None, description="the same as backup_addresses.insurance (the older spelling)")
    egress_lines: dict[Literal["primary", "backup"], EgressLine] = Field(
        default_factory=dict, description="capacity of the egress lines; a line not named is unmetered")

    @field_validator("insurance_backup_address")
    @classmethod
    def _one_insurance_address(cls, v: str | None, info: ValidationInfo) -> str | None:
        other = (info.data.get("backup_addresses") or {}).get("insurance")
        if v is not None and other is not None and other != v:
            raise ValueError(f"{v!r} differs from backup_addresses.insurance {other!r}: give one")
        return v

    def backup_address(self, kind: str) -> str | None:
        """The address configured for `kind`'s backup interface; None: the stack's own."""
        if kind == "insurance" and self.insurance_backup_address:
            return self.insurance_backup_address
        return self.backup_addresses.get(kind)  # type: ignore[call-overload]

    def backup_address_field(self, kind: str) -> str:
        """Where the drill file sets it, for a corrective action to point at."""
        if kind == "insurance" and self.insurance_backup_address:
            return "stack.insurance_backup_address"
        return f"stack.backup_addresses.{kind}"


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


class Drill(Strict):
    name: str
    title: str = ""
    scenario: str = Field(description="path of the scenario file, relative to the drill file")
    time_scale: float = Field(60.0, gt=0, le=3600)
    plan: str | None = Field(None, description="the plan (应急预案) the drill takes its teams, levels "
                                               "and endpoints from, its own fields overriding them: "
                                               "a plan file relative to the drill file, or a shipped "
                                               "plan's name; as run, the plan file's full path")
    teams: dict[Group, Team] = Field(default_factory=dict, validate_default=True,
                                     description="required unless the drill's `plan` staffs them")
    levels: Levels = Field(default_factory=Levels)
    stack: StackConfig = Field(default_factory=StackConfig)
    runbook: list[RunbookStep] = Field(min_length=1)
    targets: list[Target] = Field(min_length=1)
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
