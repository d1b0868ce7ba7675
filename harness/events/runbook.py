"""Events of the runbook's steps and what they did."""
from __future__ import annotations

from typing import Any, Literal

from .base import Event, LaneEvent, _f, event


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
