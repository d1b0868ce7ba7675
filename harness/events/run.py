"""Events of the run itself: start, stack, load, faults, halt, end."""
from __future__ import annotations

from typing import Any, Literal

from .base import Event, LaneEvent, _f, event


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
    external_workers: int = _f("workers joined from other machines (`load-worker`)", 0)
    master: str | None = _f("the Locust master's listening address (host:port); null: no master", None)
    patient_seed: int | None = _f("the seed the patients were drawn by from the registered "
                                  "population: the same seed draws the same patients", None)
    mix: str | None = _f("the plan's persona mix the load ran (`load.mix`); null: its own weights", None)
    shape: str | None = _f("the named load shape (`load.shape`); null: every user from the start", None)


@event("load.stopped")
class LoadStopped(Event):
    """The patient load was stopped (teardown): how each Locust process ended, what each sent."""
    exits: dict[str, int | None] = _f("Locust process → exit code (negative: killed by that signal)")
    requests: dict[str, int] = _f("records file → patient requests it holds from this run "
                                  "(`remote-…`: a worker joined with `load-worker`)")


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
