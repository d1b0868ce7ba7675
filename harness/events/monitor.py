"""Events of the monitor: alerts, the truth behind them, recovery, samples, data checks."""
from __future__ import annotations

from typing import Any

from .base import Account, Event, LaneEvent, _f, event


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
