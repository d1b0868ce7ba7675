"""A drill's readiness phase: the audit's live checks on the drill's own stack, right after bring-up
and before warm-up and any fault, so that a drill that would fail on a misconfiguration (a backup
interface whose address was typed wrong, a standby that does not stream) says so before anything is
broken.

What the checks judge against comes from the drill itself (`Basis.of_drill`: the addresses its
stack configures, its replication settings). The phase must not change what the drill measures
afterwards: every route it switched is put back as it was (checked once more at the end), and it
takes no backups, which would change the chain the drill's own schedule builds and restores from.

Journalled as the audit is (`audit.started`, `audit.check`, `audit.finished`); the score card reads
them back (score/readiness.py). Whether a critical finding stops the drill is the drill's
`readiness.stop_on_critical`, decided by the run.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import HarnessError
from ..journal import Journal
from ..loader import Document, Loc
from ..models import Drill
from ..rundir import RunDir
from ..stack.base import Stack
from .audit import record_check
from .findings import CheckResult, Finding, critical, headline, readiness
from .live import Basis, check_stack

Checks = Callable[[Stack, Journal, RunDir, Basis], list[CheckResult]]


@dataclass
class ReadinessOutcome:
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0
    aborted: str | None = None  # a check that broke (the drill goes on: the phase only looks)

    @property
    def critical(self) -> list[Finding]:
        return critical(self.results)


def drill_where(drill_path: Path) -> Callable[[Loc], str | None]:
    """A drill field → 'file:line' in the file of its `extends` chain that sets it."""
    doc = Document(drill_path).extend()

    def where(loc: Loc) -> str | None:
        # the file that sets the field itself, else (Document.origin) the one that sets its section
        origin: Document | None = doc
        while origin is not None and tuple(loc) not in origin.lines:
            origin = origin.base
        origin = origin or doc.origin(loc)
        line = origin.line_of(loc)
        path = os.path.normpath(origin.path)  # as the user names it, without an extends' '../'
        return f"{path}:{line}" if line else path
    return where


def _checks(stack: Stack, journal: Journal, out: RunDir, basis: Basis) -> list[CheckResult]:
    why = None if basis.backups is None else (
        "the drill takes its own backups on its schedule: the check's would change the chain it "
        "builds and restores from")
    return check_stack(stack, journal, out, basis, skip_backups=why)


def before_drill(stack: Stack, journal: Journal, out: RunDir, drill: Drill, basis: Basis, *,
                 backend: str, say: Callable[[str], None] = lambda _: None,
                 checks: Checks = _checks) -> ReadinessOutcome:
    """Run the live checks on the drill's stack (up, healthy, no fault yet), journal each and the
    verdict. Never raises for a check that breaks: that is journalled as an aborted phase and the
    drill goes on (the phase only looks)."""
    outcome = ReadinessOutcome()
    t0 = time.monotonic()
    journal.record("audit.started", drill_name=drill.name, live=True, backend=backend)
    say("readiness before the drill: the audit's live checks on the drill's stack")
    try:
        for r in checks(stack, journal, out, basis):
            outcome.results.append(r)
            record_check(journal, r, say)
    except (HarnessError, OSError, RuntimeError, ValueError) as e:
        outcome.aborted = f"readiness checks: {e.__class__.__name__}: {(str(e).splitlines() or [''])[0]}"
        say(f"  {outcome.aborted}")
    outcome.seconds = time.monotonic() - t0
    score, counts = readiness(outcome.results)
    stops = bool(outcome.critical) and drill.readiness.stop_on_critical
    journal.record("audit.finished", score=round(score, 1), findings=counts,
                   verdict="aborted" if outcome.aborted else
                   ("not_ready" if outcome.critical else "ready"),
                   reason=outcome.aborted, seconds=round(outcome.seconds, 3), stops_drill=stops)
    for f in outcome.critical:
        say(f"  found before the drill: {headline(f.message)}")
    say(f"readiness before the drill: {len(outcome.critical)} critical finding(s) in "
        f"{outcome.seconds:.2f}s" + ("; the drill stops here" if stops else ""))
    return outcome
