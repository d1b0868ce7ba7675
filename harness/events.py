"""Every journal event type, declared once as a typed, documented model.

The journal checks each event it records against its model here: an undeclared type, a field the
model does not know, a missing or mistyped one is a harness bug. With HD_STRICT_EVENTS=1 (the tests)
it raises; otherwise the event is kept and a `harness.error` says what was wrong, so a drill is never
lost to a journal contract. Readers (scorer, report, trend) still read the events as plain dicts.

The event table in docs/internals.md is generated from these models:
`python -m harness.events --write docs/internals.md` rewrites it between its markers, and a unit test
fails when it is stale.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


# --- the run -----------------------------------------------------------------------------------------

@event("run.started")
class RunStarted(Event):
    """The run began: what is drilled, how, at which scale."""
    run_id: str = _f("the run directory's name")
    drill_name: str = _f("the drill's `name`")
    scenario: str = _f("the scenario's `name`")
    failure_class: str = _f("the scenario's failure class")
    time_scale: float = _f("drill seconds of declared waits per real second")
    time_model: str = _f("how drill time was counted (`v2`: declared waits compressed, real work 1:1)")
    backend: str = _f("`local` or `docker`")
    live: bool = _f("a live drill: people ack the manual steps")
    drill_file: str = _f("the drill file as given")
    config: dict[str, Any] = _f("the drill's stack config as run")


@event("stack.up")
class StackUp(Event):
    """The mock hospital answered healthy."""
    seconds: float = _f("bring-up, real s")
    services: dict[str, str] = _f("service name → address")
    links: dict[str, str] = _f("proxy name → the address it listens on")


@event("load.started")
class LoadStarted(Event):
    """Patient load is running."""
    users: int = _f("Locust users")
    workers: int = _f("Locust workers (0: one local process)")


@event("scenario.started")
class ScenarioStarted(Event):
    """T+0: the timeline begins."""


@event("steady_state")
class SteadyState(Event):
    """The warm-up's judgement over its second half; not ok aborts the run."""
    ok: bool = _f("enough requests, error rate within the steady state, the test account's walk ok")
    error_rate: float = _f("patients' error rate")
    requests: int = _f("patient requests judged")
    p95_ms: float = _f("95th percentile latency, ms")
    probe_ok: bool = _f("the test account's last walk succeeded")


@event("fault.injected")
class FaultInjected(LaneEvent):
    """A fault took effect, on the scenario's lane."""
    fault: str = _f("the fault's id")
    fault_type: str = _f("its registered type")
    target: str | None = _f("node or link it acts on")
    detail: dict[str, Any] | None = _f("what it observably changed")


@event("fault.reverted")
class FaultReverted(FaultInjected):
    """A fault was undone (on its `revert:<fault>` lane when it had a duration; else at teardown)."""


@event("fault.revert_failed")
class FaultRevertFailed(Event):
    """Reverting a fault raised: it may still be in place."""
    fault: str = _f("the fault's id")
    error: str = _f("what the revert raised")


@event("run.horizon")
class RunHorizon(Event):
    """The run stopped watching at its horizon rather than after recovery plus `observe`."""
    drill_limit: float = _f("the horizon, drill s")
    recovered: bool = _f("whether patients had recovered by then")


@event("teardown.error")
class TeardownError(Event):
    """One teardown part raised; the others still ran."""
    part: str = _f("`backups`, `injects`, `runbook`, `control`, `faults`, `load`, `monitor`, `rpo`, "
                   "`stack` or `board`")
    error: str = _f("exception class and message")


@event("harness.error")
class HarnessError(Event):
    """A harness bug seen during the run: a critical listener raised (the run aborts), or an event
    did not fit its declared type (the event is kept)."""
    part: str = _f("`listener`, `journal` or `safeguards`")
    error: str = _f("what went wrong")


@event("run.halted")
class RunHalted(Event):
    """A safeguard held, or `hospital-drill stop` was used: every fault is reverted at once and the
    run ends aborted (exit 3), its reason `halted by safeguard <name>: …`."""
    safeguard: str = _f("`error_rate`, `lost_writes`, `wall_clock`, or `stop` (the emergency stop)")
    reason: str = _f("one line: what held, against which limit")
    evidence: dict[str, Any] = _f("the figures the safeguard judged (for `stop`: who, why, when)")
    phase: str = _f("the run's phase when it halted")


@event("incident.ended")
class IncidentEnded(Event):
    """A failed step whose failure ends the incident (`on_failure: end_incident`, or a critical
    target's step by default): the run stops waiting for recovery and is scored as it stands."""
    step: str = _f("the failed step's id")
    error: str | None = _f("its error")
    reason: str = _f("why the incident ended")


@event("run.finished")
class RunFinished(Event):
    """The last event of a run that ended in this process."""
    status: Literal["completed", "aborted"] = _f("`aborted`: a stop condition or harness error")
    reason: str | None = _f("why it aborted")


# --- the monitor -------------------------------------------------------------------------------------

@event("alert.raised")
class AlertRaised(LaneEvent):
    """An alert rule held long enough, on the monitor's lane."""
    alert: str = _f("the rule's name")
    severity: str = _f("`critical` or `warning`")
    detail: dict[str, Any] = _f("`error_rate`, `requests`, the probe's failed step, and the rule's evidence")
    describe: str = _f("what the rule watches")


@event("alert.cleared")
class AlertCleared(LaneEvent):
    """An alert rule stopped holding, on the monitor's lane."""
    alert: str = _f("the rule's name")


@event("truth.raised")
class TruthRaised(AlertRaised):
    """A ground-truth rule (the board cannot see it; for the score only) began to hold."""


@event("truth.cleared")
class TruthCleared(AlertCleared):
    """A ground-truth rule stopped holding."""


@event("recovery")
class Recovery(LaneEvent):
    """Patients are back: the test journey and the error rate good, and staying so (journalled once sure)."""
    at_wall: float = _f("when they became good, epoch s")
    at_drill: float = _f("that moment on the monitor's lane, drill s")
    at_chain: Account = _f("the lane's account at that moment")
    detail: dict[str, Any] = _f("`probes_ok`, `error_rate`, `requests` since then")


@event("link.sample")
class LinkSample(Event):
    """One sample of a metered egress line, taken at the board's looks every 15 drill s (its rate read
    over at least 0.25 real s of counters); written without a lane."""
    link: str = _f("the line's proxy")
    up: bool = _f("the line takes connections")
    bytes_per_s: float = _f("the busier direction")
    upstream_bps: float = _f("bytes/s towards the third parties")
    downstream_bps: float = _f("bytes/s back")
    utilisation: float | None = _f("busier direction ÷ capacity; null when unmetered")
    capacity_kbps: float | None = _f("the line's capacity")
    error: str | None = _f("why the line refused a connection", None)
    rtt_ms: float | None = _f("latest round trip over the line; null: timed out", None)


@event("data.missing")
class DataMissing(Event):
    """Acknowledged consultations the database no longer holds (data-loss scenarios only)."""
    table: str = _f("the table watched")
    acked: int = _f("acknowledged writes so far")
    missing: int = _f("of those, not in the database")
    last_intact_wall: float | None = _f("when all were last present")
    patient_reads: list[dict[str, Any]] = _f("a few patients' own reads: `consultation`, `patient`, `status`")


@event("data.reconciled")
class DataReconciled(Event):
    """The acknowledged rows a restore should bring back are back."""
    table: str = _f("the table watched")
    acked: int = _f("acknowledged writes so far")
    missing: int = _f("still missing: beyond the restore point, lost")
    restored: int = _f("rows that came back")
    restore_point_wall: float | None = _f("start of the last backup restored")
    patient_reads: list[dict[str, Any]] = _f("a few patients' own reads")


# --- the runbook -------------------------------------------------------------------------------------

@event("step.started")
class StepStarted(LaneEvent):
    """A runbook step's trigger held; on its lane, anchored at the triggering event."""
    step: str = _f("the step's id")
    group: str = _f("owner group")
    kind: Literal["auto", "manual", "exec", "http"] = _f(
        "`auto` (a built-in action), `manual` (a person, or a modeled one), `exec` (the hospital's "
        "program) or `http` (a call of the hospital's tools)")
    action: str | None = _f("the action's name; null for the other kinds")
    title: str = _f("the step's title")
    deadline: float | None = _f("its own deadline from the trigger, drill s")


@event("step.finished")
class StepFinished(LaneEvent):
    """A runbook step ended."""
    step: str = _f("the step's id")
    group: str = _f("owner group")
    kind: Literal["auto", "manual", "exec", "http"] = _f("`auto`, `manual`, `exec` or `http`")
    action: str | None = _f("the action's name")
    ok: bool = _f("it did what it is for")
    detail: dict[str, Any] | None = _f(
        "the action's result, or `error`; a manual step's `modeled`/`by`; an exec step's `argv`, "
        "`exit`, `output` (its directory in the run), `stdout_tail`, `stderr_tail`, `reported` (its "
        "`hd:` lines); an http step's `method`, `url`, `status`, `body` (head)")
    real_seconds: float = _f("real time the step took")


@event("step.skipped")
class StepSkipped(Event):
    """At teardown: a step whose trigger never held."""
    step: str = _f("the step's id")
    group: str = _f("owner group")
    reason: str = _f("why it never ran")


@event("control.move")
class ControlMove(LaneEvent):
    """A move a hospital's script (or a person at a terminal) asked the running drill for with
    `hospital-drill ctl` (harness/control/): on the asking step's lane, or on a `ctl` lane of its own."""
    verb: str = _f("`promote`, `repoint`, `line`, `interface`, `notice`, `notify`, `wait` or `status`")
    action: str | None = _f("the built-in action that carried it out; null for `wait` and `status`")
    args: list[str] = _f("the arguments as given")
    step: str | None = _f("the step that asked (its HD_STEP); null from a terminal")
    context: Literal["step", "run"] = _f("`step`: ran as the running step; `run`: outside any running step")
    ok: bool = _f("it did what it is for")
    detail: dict[str, Any] | None = _f("the action's result (as a step's); null when it failed")
    error: str | None = _f("why it failed; null when it did not")
    real_seconds: float = _f("real time the move took")


@event("check.finished")
class CheckFinished(LaneEvent):
    """The three-step check (三步核查) gave its verdict."""
    items: dict[str, Any] = _f("`alert_type`, `error_logs`, `test_account`: what each step saw")
    verdict: Literal["system_failure", "not_system_failure"] = _f("the verdict")
    reason: str = _f("why")


@event("level.declared")
class LevelDeclared(LaneEvent):
    """The response level, from the share of patients affected over the observation window."""
    level: int = _f("1–3")
    affected: int = _f("patients affected in the window")
    active: int = _f("patients active in it")
    share: float = _f("affected ÷ active")
    failed: int | None = _f("patients with a failed request")
    slow: int | None = _f("patients only slower than the SLO")
    window_wall: list[float] | None = _f("the window judged, [start, end] epoch s")
    basis: str | None = _f("the rule, in words")
    by_share: int | None = _f("`declare_network_level`: the level the share alone gives", None)
    rule: dict[str, Any] | None = _f("`declare_network_level`: `alerts`, `level` when the network rule set it", None)


@event("notification.sent")
class NotificationSent(LaneEvent):
    """A message went to patients or staff (the app banner included)."""
    channel: str = _f("`sms`, `official_account`, `app_banner`, `hotline` or `broadcast`")
    audience: str = _f("who it is for")
    text: str = _f("what it said; `(cleared)` for a cleared banner")


@event("replica.verified")
class ReplicaVerified(LaneEvent):
    """`verify_replica`: a marker row written on the serving primary arrived on a DR replica."""
    primary: str = _f("node written on")
    replica: str = _f("node it arrived on")
    marker: str = _f("the row in `drill_markers`")
    lsn: str = _f("WAL position of the write")
    primary_timeline: int = _f("the primary's timeline")
    written_wall: float = _f("when written")
    seen_wall: float = _f("when seen on the replica")
    lag_drill_s: float = _f("the lag in drill s")
    receiver: dict[str, Any] | None = _f("the replica's WAL receiver: `status`, `received_tli`, `sender_host`, `sender_port`")


@event("data.restored")
class DataRestored(LaneEvent):
    """`restore_from_backup`: a backup chain restored into `pg-restore` and its rows copied back."""
    backups: list[dict[str, Any]] | None = _f("the chain restored: labels, kinds, sizes", None)
    source: str = _f("which copy: `local` or `offline`")
    restored_node: str = _f("the staging node")
    restored_address: str | None = _f("its address")
    restored_into: str = _f("the live primary the rows went to")
    restore_point_wall: float = _f("start of the last backup used: what was committed before is in it")
    rows_in_backup: dict[str, int] = _f("per table")
    copied_back: dict[str, int] = _f("per table")
    live_after: dict[str, int] = _f("rows per table on the live primary after")
    restore_seconds: float = _f("real s")
    copy_seconds: float = _f("real s")
    drill_seconds: float = _f("restore + copy: a machine's work counts 1:1")
    patient_view: dict[str, Any] | None = _f("a patient's own read after")


@event("offline.back_entered")
class OfflineBackEntered(LaneEvent):
    """`back_entry`: offline reception's records entered into the main database (补录)."""
    read: int = _f("records read from offline reception")
    entered: int = _f("entered by this run")
    duplicates_refused: int = _f("already in the main database from an earlier run: not entered again")
    conflicts: int = _f("entered for clinical review (a slot held by another patient, an id reused)")
    in_main_db: int = _f("of the records read, how many the main database holds after")
    lost: int = _f("read but not in the main database after: the target is 0")
    landed_ids: list[str] = _f("offline ids the main database holds after (for the score's check "
                               "against the patients' receipts)")
    conflict_list: list[dict[str, Any]] = _f("up to 50: `offline_id`, `patient`, `why`")
    into: str = _f("the database node entered into")
    rows: int = _f("the main database's rows for the records read: more than `in_main_db` is a "
                   "record entered twice", 0)
    attempts: int = _f("passes made: more than 1 when a pass was cut off mid-way", 1)
    seconds: float = _f("real s: a machine's work")


@event("offline.back_entry_interrupted")
class OfflineBackEntryInterrupted(LaneEvent):
    """`back_entry`: a pass was cut off mid-way (its database session or the desk lost); the clerk
    enters again from the first record after `retry_after`."""
    attempt: int = _f("the pass that was cut off, from 1")
    error: str = _f("what cut it off")
    into: str = _f("the database node it was entering into")
    committed: dict[str, int] = _f("what this run's committed batches held so far: `entered`, "
                                   "`duplicates_refused`, `conflicts`")


@event("route.verified")
class RouteVerified(LaneEvent):
    """`switch_and_verify`: test calls through the switched routes."""
    ok: bool = _f("a test call reached the switched interface")
    routes: dict[str, str] = _f("route → `primary`/`backup`")
    attempts: int = _f("tries made")
    test_payment: dict[str, Any] | None = _f("`ok`, `status`, `ms`, `body`/`error`, the app's `culprit`", None)
    test_message: dict[str, Any] | None = _f("the same for a test message", None)
    culprit: dict[str, Any] | None = _f("not ok: `component`, `address`, `what`, `reported_by` (`via`… behind a link)", None)
    found: list[dict[str, Any]] | None = _f("not ok: per route switched, the configured `address` and what a connection did", None)
    corrective_action: str | None = _f("not ok: the fix, in the stack config's terms", None)
    rolled_back: dict[str, Any] | None = _f("not ok: the routes put back", None)


@event("payments.settled")
class PaymentsSettled(LaneEvent):
    """`settle_deferred`: nothing queued or owed is left."""
    settled: dict[str, int] = _f("`claims`, `payments` settled")
    refund_due: float = _f("what patients are owed back")
    tries: int = _f("calls to /admin/settle-claims")


# --- the people (harness/people/) and the command board ------------------------------------------------

@event("person.absent")
class PersonAbsent(Event):
    """A member of the roster who cannot be reached in this drill (journalled as the run starts)."""
    person: str = _f("the member's name")
    group: str = _f("their group")
    tier: Literal["core", "backup"] = _f("core or backup member")
    why: Literal["named", "drawn"] = _f("named by the drill's `people.absent`, or drawn")
    seed: int | None = _f("the draw's seed (drawn only): the same seed draws the same people")


@event("person.claimed")
class PersonClaimed(LaneEvent):
    """A person of the roster took a step; on the step's lane."""
    step: str = _f("the step's id")
    person: str = _f("who took it")
    group: str = _f("their group")
    tier: Literal["core", "backup"] = _f("core or backup member")
    call_out: float = _f("drill s from the step opening to the claim")
    modeled: bool = _f("true: the simulated operator's modeled call-out, never a measurement")


@event("person.done")
class PersonDone(LaneEvent):
    """A person completed a manual step; on the step's lane."""
    step: str = _f("the step's id")
    person: str = _f("who completed it")
    note: str = _f("what they said, may be empty")
    modeled: bool = _f("true: the simulated operator's modeled duration, never a measurement")


@event("person.blocked")
class PersonBlocked(LaneEvent):
    """A person cannot go on with a step: it is open again for the next in line."""
    step: str = _f("the step's id")
    person: str = _f("who is blocked")
    reason: str = _f("why")


@event("observer.note")
class ObserverNote(Event):
    """An observer's note, on the scenario's timeline."""
    by: str = _f("who wrote it")
    text: str = _f("the note")


@event("inject.shown")
class InjectShown(LaneEvent):
    """A scripted message of the scenario (`injects`) at its drill time, shown on the command board of
    a live drill; on the `injects` lane, anchored at T+0 (its `at` is a declared wait)."""
    inject: str = _f("the inject's id")
    text: str = _f("the message")
    to: str = _f("the group it is for, or `all`")


@event("board.started")
class BoardStarted(Event):
    """The live drill's command board is served."""
    url: str = _f("where the board is, on 127.0.0.1")


# --- the database ------------------------------------------------------------------------------------

@event("backup.taken")
class BackupTaken(Event):
    """A scheduled backup finished (`wall` is when)."""
    kind: Literal["full", "incremental"] = _f("full or incremental")
    label: str = _f("on the hospital's clock: `full-d1-0100`, `incr-d1-0200`")
    node: str = _f("the primary it was taken from")
    based_on: str | None = _f("the previous backup's label (incrementals)")
    scheduled_at: float = _f("drill s")
    started_wall: float = _f("epoch s")
    size: int | None = _f("bytes")
    seconds: float = _f("real s")
    drill_seconds: float = _f("the same: a machine's work counts 1:1")
    path: str = _f("the local copy")
    offline: str | None = _f("the offline copy")
    offline_seconds: float | None = _f("real s to copy it")


@event("backup.failed")
class BackupFailed(Event):
    """A scheduled backup could not be taken."""
    kind: str = _f("full or incremental")
    label: str = _f("its label")
    node: str | None = _f("the primary")
    started_wall: float = _f("epoch s")
    error: str = _f("why")


@event("backup.copy_failed")
class BackupCopyFailed(Event):
    """A backup was taken but its offline copy failed."""
    label: str = _f("the backup's label")
    copy_: str = Field(alias="copy", description="which copy: `offline`")
    error: str = _f("why")


@event("db.split_brain")
class DbSplitBrain(Event):
    """At teardown, after a promotion: another database node still answered as a writable primary
    (not in recovery, not read-only; `stack/fencing.py`)."""
    promoted: str = _f("the node promoted")
    promoted_address: str | None = _f("its address")
    step: str | None = _f("the step that promoted it")
    promoted_wall: float | None = _f("when")
    writable: list[str] = _f("the other nodes taking writes")
    nodes: list[dict[str, Any]] = _f("each: `node`, `address`, `role` as the stack filed it, `in_recovery`, `read_only`")


@event("rpo.measured")
class RpoMeasured(Event):
    """At teardown, after a `db_crash`, a data-loss fault or any promotion (`stack/rpo.py`):
    acknowledged writes missing on the serving primary."""
    trigger: str = _f("the type of the fault that lost data (e.g. `db_crash`, `data_deletion`), or `promotion`")
    mode: str = _f("replication mode (`sync`/`async`); `backup_restore` after a data-loss fault")
    replication_lag: float | None = _f("the configured replication lag, drill s", None)
    acked_writes: int = _f("writes acknowledged to patients")
    lost_writes: int | None = _f("of those, missing; null when no primary served")
    lost_sample: list[str] | None = _f("up to 20 lost write ids", None)
    lost_seconds: float | None = _f("drill s from the oldest lost write to the trigger", None)
    crash_wall: float = _f("where the lost window ends: when a crashed host's links were down, the "
                           "fault's wall, or the promotion's")
    measured_on: str | None = _f("the primary asked", None)
    lost_patients: list[str] | None = _f("patients whose acknowledged writes were lost: the ones to "
                                         "contact (the level rule counts them as affected)", None)
    error: str | None = _f("why nothing could be measured", None)


# --- the readiness audit (harness/plan/) ---------------------------------------------------------------

@event("audit.started")
class AuditStarted(Event):
    """`hospital-drill audit` began, or a drill's readiness phase (its first, before any fault):
    which plan or drill, and whether the live checks run."""
    plan: str | None = _f("the plan's `name` (null: a drill's readiness phase)", None)
    plan_file: str | None = _f("the plan file as given", None)
    drill_name: str | None = _f("the drill whose readiness phase this is, on its own stack", None)
    live: bool = _f("the live checks run (a stack is brought up with no fault)")
    backend: str | None = _f("`local` or `docker` (live only)")


@event("audit.check")
class AuditCheck(Event):
    """One audit check done (static: of the plan; live: against the stack)."""
    name: str = _f("the check: `coverage`, `roster`, … `interfaces`, `standbys`, `backups`, `restore`")
    kind: Literal["static", "live"] = _f("static or live")
    status: Literal["pass", "warn", "fail", "skipped"] = _f("fail: a critical or high finding")
    seconds: float = _f("real s")
    findings: list[dict[str, Any]] = _f("`check`, `severity`, `message`, `where`, `evidence`, `fix`")


@event("audit.finished")
class AuditFinished(Event):
    """The audit's verdict."""
    score: float = _f("readiness score 0–100 (findings' penalties off 100)")
    findings: dict[str, int] = _f("count by severity")
    verdict: Literal["ready", "not_ready", "aborted"] = _f("not_ready: a critical finding (exit 1)")
    reason: str | None = _f("aborted: why", None)
    seconds: float | None = _f("real s from audit.started (a drill's readiness phase)", None)
    stops_drill: bool | None = _f("a drill's phase: its critical finding stops the drill before "
                                  "any fault (readiness.stop_on_critical)", None)


# --- checking and the generated table -----------------------------------------------------------------

def problem(type_: str, fields: dict[str, Any], *, on_lane: bool = False, wall: float = 0.0,
            drill: float | None = None) -> str | None:
    """What is wrong with an event a writer is about to record, in one line; None when it fits."""
    model = EVENTS.get(type_)
    if model is None:
        return f"{type_}: undeclared event type (declare it in harness/events.py)"
    taken = [k for k in RESERVED if k in fields]
    if taken:
        return f"{type_}: {', '.join(taken)}: set by the journal, not by the writer"
    if on_lane and not model.on_lane:
        return f"{type_}: written on a lane but declared without `chain` (derive it from LaneEvent)"
    event = {"seq": 1, "wall": wall, "drill": drill, "type": type_, **fields}
    if on_lane:
        event["chain"] = {"lane": "check", "cause": None, "declared": 0.0, "real": 0.0}
    try:
        model.model_validate(event)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(event)"
        more = f" (+{e.error_count() - 1} more)" if e.error_count() > 1 else ""
        return f"{type_}: {where}: {first['msg']}{more}"
    return None


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    return text or str(annotation).replace("typing.", "")


def event_table() -> str:
    """The Markdown table of every event type: what it says, and each field with its meaning
    (`?`: may be absent), one field a line."""
    base = set(Event.model_fields) | {"chain"}
    rows = ["| type | when | fields |", "|---|---|---|"]
    for kind, model in EVENTS.items():
        fields = []
        for name, info in model.model_fields.items():
            if name in base:
                continue
            mark = "" if info.is_required() else "?"
            fields.append(f"`{info.alias or name}`{mark}: {info.description}")
        when = (model.__doc__ or "").strip()
        if model.on_lane:
            when += " On a lane: carries `chain`."
        rows.append(f"| `{kind}` | {_cell(when)} | {'<br>'.join(_cell(f) for f in fields) or '—'} |")
    return "\n".join(rows) + "\n"


def rewrite_doc(path: Path) -> bool:
    """Put the current table between the markers in `path`; True when the file changed."""
    text = path.read_text(encoding="utf-8")
    head, sep, rest = text.partition(TABLE_BEGIN)
    _, sep2, tail = rest.partition(TABLE_END)
    if not sep or not sep2:
        raise ValueError(f"{path}: the event table markers are missing")
    new = head + TABLE_BEGIN + "\n" + event_table() + TABLE_END + tail
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True


def table_in_doc(path: Path) -> str | None:
    """The table as it stands between the markers in `path` (None when they are missing)."""
    text = path.read_text(encoding="utf-8")
    _, sep, rest = text.partition(TABLE_BEGIN)
    inside, sep2, _ = rest.partition(TABLE_END)
    return inside.lstrip("\n") if sep and sep2 else None


def main(argv: list[str]) -> int:
    if argv[:1] == ["--write"] and len(argv) == 2:
        changed = rewrite_doc(Path(argv[1]))
        print(f"{argv[1]}: event table {'rewritten' if changed else 'already current'}")
        return 0
    if argv:
        print("usage: python -m harness.events [--write docs/internals.md]", file=sys.stderr)
        return 2
    sys.stdout.write(event_table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
