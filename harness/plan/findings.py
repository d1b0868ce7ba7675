"""What an audit check finds, and the readiness score over all of it.

A check is a function returning `Finding`s; a check that finds nothing passed. A finding carries its
severity (critical, high, medium, low: the after-action report's scale), the evidence that shows it
(a field of the plan at file:line, an address and what it did), and what to do about it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["critical", "high", "medium", "low"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")
# what one finding of each severity takes off the readiness score (out of 100)
PENALTY: dict[str, float] = {"critical": 25.0, "high": 10.0, "medium": 4.0, "low": 1.0}


@dataclass
class Finding:
    check: str  # the check that found it
    severity: Severity
    message: str
    where: str | None = None  # file:line of the plan field it is about
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "", {})}

    def line(self) -> str:
        where = f"{self.where}: " if self.where else ""
        return f"{where}[{self.severity}] {self.check}: {self.message}"


@dataclass
class CheckResult:
    """One check as run: what it looked at, what it found, how long it took (real seconds)."""
    name: str
    title: str
    kind: Literal["static", "live"]
    findings: list[Finding] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)  # what it saw when it passed, too
    seconds: float = 0.0
    skipped: str | None = None  # why it did not run

    @property
    def status(self) -> str:
        if self.skipped is not None:
            return "skipped"
        return "fail" if any(f.severity in ("critical", "high") for f in self.findings) else (
            "warn" if self.findings else "pass")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "kind": self.kind, "status": self.status,
                "seconds": round(self.seconds, 3), "skipped": self.skipped,
                "evidence": self.evidence, "findings": [f.as_dict() for f in self.findings]}


def headline(message: str) -> str:
    """A finding's message up to its first '; ' outside parentheses: what was found, without the
    account of how (the evidence keeps the whole message)."""
    depth = 0
    for i, ch in enumerate(message):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and message.startswith("; ", i):
            return message[:i]
    return message


def readiness(results: list[CheckResult]) -> tuple[float, dict[str, int]]:
    """(score 0–100, findings by severity). 100 less each finding's penalty (PENALTY), never below
    0. Skipped checks neither add nor take away: the report lists them, so a score from a static-only
    audit is read as such. No check at all scores 0: nothing was shown ready."""
    counts = {s: 0 for s in SEVERITIES}
    for r in results:
        for f in r.findings:
            counts[f.severity] += 1
    if not any(r.skipped is None for r in results):
        return 0.0, counts
    score = 100.0 - sum(PENALTY[s] * n for s, n in counts.items())
    return max(0.0, score), counts


def critical(results: list[CheckResult]) -> list[Finding]:
    return [f for r in results for f in r.findings if f.severity == "critical"]
