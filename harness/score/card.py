"""The score card's data model (pydantic). `score.json` is this model; `docs/score.schema.json` is
its JSON Schema (regenerate with `python -m harness.score.schema`).

Times: fields documented "drill s from t_fault" count drill seconds from the first injected fault
(from T+0 when no fault was injected); "T+ drill s" count from the scenario start; `*_wall` fields
are epoch seconds. Patient measures (shares, error rates, request latencies) are real.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from ..models import Member

Verdict = Literal["pass", "fail", "aborted"]
Rating = Literal["P", "S", "M", "U", "n/a"]
Capability = Literal["plan", "organisation", "equipment", "training"]
Severity = Literal["critical", "high", "medium", "low"]
TargetStatus = Literal["met", "missed", "n/a"]


class TargetResult(BaseModel):
    """One target's result. `status` n/a: the target did not apply to this run (reason says why); it
    is neither met nor missed and weighs in neither the score nor the verdict."""
    id: str
    title: str = ""
    measure: str
    unit: Literal["s", "level"] = "s"
    target: float | None = Field(description="drill s; for measure 'level': the implied level")
    actual: float | None = Field(description="drill s from t_fault; for 'level': the declared level")
    met: bool = Field(False, description="status == 'met' (kept for older readers; n/a is not met)")
    status: TargetStatus = Field("missed", description="met / missed / n/a (did not apply)")
    margin: float | None = Field(None, description="target − actual, drill s; > 0 is headroom")
    headroom: float | None = Field(None, description="margin ÷ target (None when the target is 0)")
    rating: Rating = Field("U", description="HSEEP-style rating of the objective; rule in RATING_RULE")
    critical: bool = True
    step: str | None = None
    reason: str | None = None
    reason_zh: str = ""
    breakdown: dict[str, float | bool] | None = Field(
        None, description="the figure as declared waits (drill s, compressed by the scale) plus real "
                          "work (s, counted 1:1) along its causal chain from the fault; with people "
                          "on the chain also `human` (drill s from each step's opening to a person's "
                          "claim, or done for a manual step), `waits` (the plan's declared waits in "
                          "the steps after that), `machine` (the steps' own real work) and `modeled` (true: a part is a simulated operator's duration)")
    modeled: bool = Field(False, description="the figure contains a modeled part (a simulated "
                                             "operator's duration or call-out): not measured")
    human: float | None = Field(None, description="drill s of the figure that people took: from each "
                                                  "step's opening on its causal chain to the claim "
                                                  "(a manual step: to the done)")
    waits: float | None = Field(None, description="drill s of the figure that the plan's declared "
                                                  "waits in the steps took after the claim (compressed "
                                                  "by the scale)")
    machine: float | None = Field(None, description="drill s of the figure that the steps' own real "
                                                    "work took (actions, programs, calls) after the claim")
    people: list[str] = Field(default_factory=list, description="who claimed or did the steps on the "
                                                                "figure's causal chain")

    @model_validator(mode="before")
    @classmethod
    def _status_from_met(cls, data: Any) -> Any:
        # a score.json from before `status` (and a caller that gives only `met`) reads as it did
        if isinstance(data, dict) and "status" not in data:
            data = {**data, "status": "met" if data.get("met") else "missed"}
        return data

    @model_validator(mode="after")
    def _met_from_status(self) -> "TargetResult":
        self.met = self.status == "met"
        return self


class LevelResult(BaseModel):
    declared: int | None = None
    declared_at: float | None = Field(None, description="drill s from t_fault")
    declared_share: float | None = Field(None, description="the share the runbook saw when declaring")
    implied: int | None = None
    share: float | None = Field(None, description="affected ÷ active patients in the most severe "
                                                  "observation window of the incident (the level rule)")
    window: list[float] | None = Field(None, description="that window, wall times")
    observe: float | None = Field(None, description="the observation window, drill s")
    grew_to: int | None = Field(None, description="a more severe level a later observation window "
                                                  "showed (the incident grew after the declaration)")
    grew_share: float | None = None
    grew_at: float | None = Field(None, description="drill s from t_fault, that window's start")
    slowed: int = Field(0, description="patients affected only by requests over the SLO")
    lost: int = Field(0, description="patients affected only by a lost acknowledged write")
    affected: int = 0
    active: int = 0
    level1_above: float = 0.5
    level2_above: float = 0.2
    ok: bool | None = None


class PhaseCounts(BaseModel):
    requests: int = 0
    failed: int = 0

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.requests if self.requests else None


class JourneyImpact(BaseModel):
    journey: str
    requests: int = 0  # during the incident
    failed: int = 0
    patients: int = 0  # distinct patients on this journey during the incident
    affected: int = 0  # of them, with a failed request
    first_failure: float | None = Field(None, description="drill s from t_fault")
    last_failure: float | None = None
    downtime: float | None = Field(None, description="first to last failure, drill s")


class LongestWait(BaseModel):
    ms: float = Field(description="the slowest single request, real ms")
    patient: str | None = None
    journey: str | None = None
    name: str | None = None
    at: float | None = Field(None, description="drill s from t_fault")


class LongestOutage(BaseModel):
    """The longest time one patient went without being served: first failure to next success."""
    seconds: float = Field(description="drill s")
    real_seconds: float
    patient: str | None = None
    journey: str | None = None
    since: float | None = Field(None, description="drill s from t_fault")
    ongoing: bool = Field(False, description="no success after it before the records end")


class PatientImpact(BaseModel):
    patients: int = 0  # distinct patients in all records
    active: int = 0  # with a request during the incident
    affected: int = 0  # with a failed request during the incident
    affected_share: float | None = None
    before: PhaseCounts = Field(default_factory=PhaseCounts)
    during: PhaseCounts = Field(default_factory=PhaseCounts)
    after: PhaseCounts = Field(default_factory=PhaseCounts)
    journeys: list[JourneyImpact] = Field(default_factory=list)
    recovered: bool = False
    downtime: float | None = Field(None, description="recovery − t_fault, drill s")
    longest_wait: LongestWait | None = None
    longest_outage: LongestOutage | None = None
    error_rate_steady: float | None = None  # before t_fault
    error_rate_after: float | None = None  # after recovery
    first_wall: float | None = None
    last_wall: float | None = None
    malformed: int = 0  # records without a usable time

    @property
    def total(self) -> PhaseCounts:
        return PhaseCounts(requests=self.before.requests + self.during.requests + self.after.requests,
                           failed=self.before.failed + self.during.failed + self.after.failed)


class SeriesPoint(BaseModel):
    t: float = Field(description="bucket start, T+ drill s")
    requests: int
    failed: int
    success_rate: float | None = None
    rps: float = Field(description="requests per real second")
    p50_ms: float | None = None
    p95_ms: float | None = None
    acked_writes: int = 0


class Series(BaseModel):
    """Patient requests bucketed over time (the charts' data)."""
    origin_wall: float | None = Field(None, description="wall time of T+0 (x = 0)")
    bucket: float = Field(0.0, description="bucket width, drill s")
    bucket_real: float = Field(0.0, description="bucket width, real s")
    points: list[SeriesPoint] = Field(default_factory=list)


class LinkPoint(BaseModel):
    t: float = Field(description="T+ drill s")
    utilisation: float | None = None
    bytes_per_s: float | None = None


class LinkSeries(BaseModel):
    link: str
    points: list[LinkPoint]
    peak: float | None = None


class LagPoint(BaseModel):
    t: float
    lag_seconds: float | None = None
    lag_bytes: float | None = None


class ReplicationSeries(BaseModel):
    standby: str
    points: list[LagPoint]


class RpoResult(BaseModel):
    mode: str | None = None
    acked_writes: int | None = None
    lost_writes: int | None = None
    lost_seconds: float | None = None
    lost_sample: list[str] = Field(default_factory=list)
    crash_wall: float | None = None
    replication_lag: float | None = Field(None, description="configured extra lag, drill s")
    measured_on: str | None = None
    trigger: str | None = Field(None, description="what called for the measurement: db_crash, a "
                                                  "data-loss fault, or promotion")
    error: str | None = None


class StepResult(BaseModel):
    id: str
    title: str = ""
    group: str | None = None
    kind: str | None = None
    action: str | None = None
    trigger: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    instructions: str = ""
    status: Literal["ok", "failed", "unfinished", "skipped", "not run"]
    started: float | None = Field(None, description="drill s from t_fault")
    finished: float | None = None
    started_wall: float | None = None
    finished_wall: float | None = None
    ok: bool | None = None
    duration: float | None = Field(None, description="drill s")
    modeled: bool = Field(False, description="a simulated operator's declared duration, not measured")
    deadline: float | None = None
    deadline_met: bool | None = None
    detail: str | None = None
    error: str | None = None
    output: str | None = Field(None, description="exec step: its stdout.log and stderr.log, a "
                                                 "directory of the run (steps/<id>)")
    stderr_tail: list[str] = Field(default_factory=list,
                                   description="exec step: the last lines it wrote to stderr")


class AlertEntry(BaseModel):
    alert: str
    severity: str | None = None
    describe: str | None = None
    raised: float | None = None  # drill s from t_fault
    raised_wall: float
    cleared: float | None = None
    cleared_wall: float | None = None
    detail: str | None = None


class NotificationEntry(BaseModel):
    channel: str | None = None
    audience: str | None = None
    text: str | None = None
    at: float | None = None
    wall: float


class TimelineEntry(BaseModel):
    seq: int | None = None
    type: str
    subject: str | None = Field(None, description="the step, alert or fault the event is about")
    ok: bool | None = None
    wall: float | None = None
    drill: float | None = Field(None, description="T+ drill s, as journalled")
    since_fault: float | None = None
    text: str
    text_zh: str = ""


class Finding(BaseModel):
    """An area for improvement, with its evidence and its row of the improvement plan."""
    id: str = ""
    kind: str = Field("", description="target, step, deadline, unfinished, alert, level, rpo, "
                                      "split_brain, plan_step, response, steady_state, aborted, "
                                      "evidence, offline, readiness, golden_hour")
    severity: Severity
    text: str
    evidence: str = ""
    action: str = ""
    text_zh: str = ""
    evidence_zh: str = ""
    action_zh: str = ""
    capability: Capability = "plan"
    owner: str = Field("technical", description="the team group that owns the corrective action")
    due: str | None = Field(None, description="YYYY-MM-DD")
    at: float | None = Field(None, description="drill s from t_fault")
    target: str | None = None
    step: str | None = None


class Strength(BaseModel):
    text: str
    text_zh: str = ""
    target: str | None = None


class TeamInfo(BaseModel):
    group: str
    title: str
    core: list[Member]
    backup: list[Member]


class Objective(BaseModel):
    id: str
    title: str = ""
    measure: str
    step: str | None = None
    within: float | None = None
    critical: bool = True


class Overview(BaseModel):
    run_id: str | None = None
    drill: str
    drill_title: str = ""
    date: str | None = Field(None, description="the drill's date, YYYY-MM-DD (local time)")
    scenario: str | None = None
    scenario_title: str = ""
    failure_class: str | None = None
    description: str = ""
    time_scale: float
    time_model: str = Field("v1", description="how drill time was counted (run.started; v1 when absent)")
    backend: str | None = None
    live: bool | None = None
    teams: list[TeamInfo] = Field(default_factory=list)
    objectives: list[Objective] = Field(default_factory=list)
    started_wall: float | None = None
    t0_wall: float | None = None
    fault_wall: float | None = None
    recovery_wall: float | None = None
    ended_wall: float | None = None
    status: str = "unknown"  # completed / aborted / unknown (no run.finished)
    abort_reason: str | None = None


class PlanItem(BaseModel):
    """One thing the applied level requires (levels.required), and whether it was done."""
    kind: Literal["channel", "step"]
    name: str = Field(description="the channel, or the step id")
    title: str = ""
    title_zh: str = ""
    done: bool
    at: float | None = Field(None, description="drill s from t_fault, when it was first done")


class PlanCheck(BaseModel):
    """The plan's required channels and steps for the level that applied, against what was done."""
    level: int = Field(description="the level that applied: the declared one, or the implied one if "
                                   "more severe")
    basis: Literal["declared", "implied"]
    items: list[PlanItem] = Field(default_factory=list)

    @property
    def missing(self) -> list[PlanItem]:
        return [i for i in self.items if not i.done]


class DataFile(BaseModel):
    name: str
    bytes: int
    what: str = ""


class Appendix(BaseModel):
    config: dict[str, Any] = Field(default_factory=dict, description="the stack config as run")
    levels: dict[str, Any] = Field(default_factory=dict)
    scenario: dict[str, Any] = Field(default_factory=dict, description="load, faults, steady state")
    files: list[DataFile] = Field(default_factory=list)
    records: int = 0
    events: int = 0


class OfflineResult(BaseModel):
    """Offline reception and back-entry (补录): score/offline.py."""
    taken: int = Field(0, description="offline records patients got a receipt for")
    choices: dict[str, int] = Field(default_factory=dict,
                                    description="patients in trouble: to offline reception, retry, give up")
    back_entry_runs: int = 0
    back_entered: int = Field(0, description="entered into the main database over all runs, "
                                             "conflicts included")
    duplicates_refused: int = Field(0, description="refused because they had already landed")
    conflicts: int = Field(0, description="of those back-entered, held for clinical review")
    lost: int = Field(0, description="receipts given before the last back-entry, not in the main DB after it")
    taken_after: int = Field(0, description="receipts given after the last back-entry began")
    lost_sample: list[str] = Field(default_factory=list)
    duplicates: int = Field(0, description="rows in the main database beyond one per offline record, "
                                           "counted after each back-entry run (the most seen)")
    complete_seq: int | None = Field(None, description="journal seq of the back-entry run after which "
                                                       "every receipt given before it began was in "
                                                       "the main database: back-entry complete")
    conflict_sample: list[dict[str, Any]] = Field(default_factory=list)
    to_contact: list[str] = Field(default_factory=list,
                                  description="patients the clinical-support group calls: acknowledged "
                                              "writes lost (RPO) or offline receipts not back-entered")


class ReadinessCheck(BaseModel):
    """One live check of the readiness phase, as journalled (`audit.check`)."""
    name: str
    status: Literal["pass", "warn", "fail", "skipped"]
    seconds: float = Field(0.0, description="real s")
    findings: list[dict[str, Any]] = Field(default_factory=list,
                                           description="`severity`, `message` (its `headline`: what, "
                                                       "without how), `where`, `evidence`, `fix`")


class ReadinessResult(BaseModel):
    """The readiness phase: the audit's live checks on the drill's stack before any fault
    (score/readiness.py)."""
    verdict: Literal["ready", "not_ready", "aborted"] = Field(description="not_ready: a critical finding")
    score: float | None = Field(None, description="readiness score 0–100 (the audit's)")
    seconds: float | None = Field(None, description="the phase's wall time, real s")
    stopped_drill: bool = Field(False, description="its critical finding stopped the drill before any fault")
    reason: str | None = Field(None, description="aborted: the check that broke")
    checks: list[ReadinessCheck] = Field(default_factory=list)


class PersonAction(BaseModel):
    """A person's move on a step, as journalled (person.claimed / person.done / person.blocked)."""
    step: str
    person: str
    group: str | None = None
    tier: Literal["core", "backup"] | None = None
    what: Literal["claimed", "done", "blocked"]
    at: float | None = Field(None, description="drill s from t_fault")
    wall: float | None = None
    call_out: float | None = Field(None, description="claimed: drill s from the step's opening to "
                                                     "the claim")
    note: str = Field("", description="done: the person's note; blocked: the reason")
    modeled: bool = Field(False, description="a simulated operator's move (an automatic run)")


class AbsentPerson(BaseModel):
    person: str
    group: str | None = None
    tier: Literal["core", "backup"] | None = None
    why: Literal["named", "drawn"] | None = None
    seed: int | None = None
    covered_by: list[str] = Field(default_factory=list, description="who claimed the steps of the "
                                                                    "group that needed a skill or "
                                                                    "role of theirs")


class ObserverNote(BaseModel):
    by: str
    text: str
    at: float | None = Field(None, description="drill s from t_fault")


class InjectShown(BaseModel):
    inject: str
    text: str
    to: str | None = None
    at: float | None = Field(None, description="drill s from t_fault")


class Reminder(BaseModel):
    """A step past its deadline while it waited for people: the reminder the board pushed."""
    step: str
    group: str | None = None
    waiting: str | None = Field(None, description="claim or done")
    claimed_by: str | None = None
    call: list[str] = Field(default_factory=list, description="whom the reminder said to call next")
    at: float | None = Field(None, description="drill s from t_fault")


class GoldenMoveResult(BaseModel):
    """One move of the golden hour (黄金响应期): identify, classify, reassure, take over."""
    move: Literal["identify", "classify", "reassure", "take_over"]
    step: str | None = Field(None, description="the step tagged with the move (none: no step is)")
    by: str | None = Field(None, description="who did it (done, else claimed)")
    at: float | None = Field(None, description="drill s from t_fault to the move's done")
    within: float = Field(3600.0, description="the golden hour, drill s")
    met: bool = False
    modeled: bool = Field(False, description="its time is a simulated operator's")
    reason: str | None = None
    reason_zh: str = ""


class PeopleResult(BaseModel):
    """The people's part of the drill (score/people.py): who did what and when, who was absent and
    who covered, call-out times, observer notes, injects shown and the golden hour."""
    actions: list[PersonAction] = Field(default_factory=list)
    absent: list[AbsentPerson] = Field(default_factory=list)
    notes: list[ObserverNote] = Field(default_factory=list)
    injects: list[InjectShown] = Field(default_factory=list)
    reminders: list[Reminder] = Field(default_factory=list, description="steps that went overdue "
                                                                        "waiting for people")
    golden_hour: list[GoldenMoveResult] = Field(default_factory=list,
                                                description="the four moves, when a step is tagged")
    modeled: bool = Field(False, description="some of these moves are a simulated operator's")
    time_scale: float = Field(1.0, description="the run's scale: a live run's figures at another "
                                               "scale than 1 are labelled with it")
    live: bool = False


class ScoreCard(BaseModel):
    version: int = 2
    overview: Overview
    verdict: Verdict
    exit_code: int
    score: int
    breakdown: dict[str, Any]
    targets: list[TargetResult]
    level: LevelResult
    impact: PatientImpact
    rpo: RpoResult | None = None
    offline: OfflineResult | None = Field(None, description="offline reception and back-entry (补录)")
    plan: PlanCheck | None = Field(None, description="the level's required channels and steps")
    readiness: ReadinessResult | None = Field(None, description="the readiness checks before the drill")
    people: PeopleResult | None = Field(None, description="the people: claims, completions, absences, "
                                                          "call-outs, notes, injects, the golden hour")
    findings: list[Finding]
    strengths: list[Strength] = Field(default_factory=list)
    steps: list[StepResult]
    alerts: list[AlertEntry]
    notifications: list[NotificationEntry]
    timeline: list[TimelineEntry]
    series: Series = Field(default_factory=Series)
    links: list[LinkSeries] = Field(default_factory=list)
    replication: list[ReplicationSeries] = Field(default_factory=list)
    appendix: Appendix = Field(default_factory=Appendix)
    problems: list[str] = Field(default_factory=list)  # journal / records / file read problems
