"""One readiness audit: the plan's static checks, then (unless asked not to) the live checks against
its stack brought up with no fault, each journalled as it ends, then the readiness report.

The output directory is laid out like a run's (`RunDir`: journal.jsonl, config/, logs/, pg) with the
report beside it (report.py). Exit code: 0 ready, 1 a critical finding, 2 bad input, 3 aborted (the
stack would not come up, or a check broke): the report is written all the same.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..clock import DrillClock
from ..errors import HarnessError
from ..journal import Journal
from ..rundir import RunDir, claim_run_dir
from .findings import CheckResult, critical, readiness
from .live import Basis, run_live, without_stack
from .load import LoadedPlan
from .static import run_static

REPORTS_ROOT = Path("reports")


@dataclass
class AuditOutcome:
    loaded: LoadedPlan
    out: RunDir
    results: list[CheckResult] = field(default_factory=list)
    aborted: str | None = None
    seconds: float = 0.0
    reports: dict[str, Path] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return readiness(self.results)[0]

    @property
    def verdict(self) -> str:
        if self.aborted:
            return "aborted"
        return "not_ready" if critical(self.results) else "ready"

    @property
    def exit_code(self) -> int:
        return {"ready": 0, "not_ready": 1, "aborted": 3}[self.verdict]


def out_dir(plan_name: str, given: str | Path | None) -> RunDir:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    _, path = claim_run_dir(REPORTS_ROOT, f"audit-{plan_name}", stamp, given)
    path.mkdir(parents=True, exist_ok=True)
    return RunDir.of(path)


def record_check(journal: Journal, r: CheckResult, say: Callable[[str], None]) -> None:
    """One check done: journalled (`audit.check`) and said, with each of its findings."""
    journal.record("audit.check", name=r.name, kind=r.kind, status=r.status,
                   seconds=round(r.seconds, 3), findings=[f.as_dict() for f in r.findings])
    say(f"  {r.status:7} {r.kind:6} {r.name}: {r.title}" + (f" ({r.skipped})" if r.skipped else ""))
    for f in r.findings:
        say(f"          {f.line()}")


def plan_stores(loaded: LoadedPlan) -> dict[str, Path]:
    """The directories of the plan's backup stores (relative to the plan file, else the default)."""
    from .backup_stores import store_dirs
    return store_dirs(loaded.plan.backups, loaded.plan.name, loaded.path.parent)


def audit(loaded: LoadedPlan, out: RunDir, *, live: bool = True, backend: str = "local",
          toxiproxy_url: str | None = None, backups_checked: bool = True, take_backups: bool = False,
          test_restore: bool = False, say: Callable[[str], None] = lambda _: None) -> AuditOutcome:
    from .report import write_reports
    t0 = time.monotonic()
    outcome = AuditOutcome(loaded, out)
    with Journal(out.journal, DrillClock(1.0)) as journal:
        journal.record("audit.started", plan=loaded.plan.name, plan_file=str(loaded.path), live=live,
                       backend=backend if live else None)

        def done(results: list[CheckResult]) -> None:
            for r in results:
                outcome.results.append(r)
                record_check(journal, r, say)

        done(run_static(loaded.plan, loaded))
        if live:
            try:
                done(run_live(loaded.plan, out, journal, where=loaded.where, backend=backend,
                              toxiproxy_url=toxiproxy_url, backups_checked=backups_checked,
                              take_backups=take_backups, test_restore=test_restore,
                              stores=plan_stores(loaded), say=say))
            except (HarnessError, OSError, RuntimeError) as e:
                outcome.aborted = f"live checks: {e.__class__.__name__}: {str(e).splitlines()[0]}"
                say(f"aborted: {outcome.aborted}")
        else:
            done(without_stack(Basis.of_plan(loaded.plan, loaded.where, plan_stores(loaded))))
        outcome.seconds = time.monotonic() - t0
        score, counts = readiness(outcome.results)
        journal.record("audit.finished", score=round(score, 1), findings=counts,
                       verdict=outcome.verdict, reason=outcome.aborted)
    outcome.reports = write_reports(outcome)
    return outcome
