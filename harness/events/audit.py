"""Events of the readiness audit (harness/plan/)."""
from __future__ import annotations

from typing import Any, Literal

from .base import Event, _f, event


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
