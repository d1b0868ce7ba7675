"""The readiness phase read back from the journal: the audit's live checks that a drill ran on its
own stack before any fault (`audit.started` naming the drill, its `audit.check`s, `audit.finished`),
and what they found as the card's findings.

A finding of the phase is the card's finding of kind `readiness`, its severity as the check gave
it, worded "found before the drill: …": at a given severity it comes first (findings.KIND_ORDER),
so a critical one heads the report. It weighs in neither the score nor the verdict: those are what
the drill measured; a phase that stopped the drill makes the run aborted, which says it already.
"""
from __future__ import annotations

from typing import Any

from ..journal import JournalRead
from ..plan.findings import headline
from .card import Finding, ReadinessCheck, ReadinessResult
from .values import num

SEVERITIES = ("critical", "high", "medium", "low")


def readiness_result(journal: JournalRead) -> ReadinessResult | None:
    """The phase as journalled; None when the drill did not run it. A phase without its
    `audit.finished` (the run died in it) reads as aborted."""
    started = next((e for e in journal.of_type("audit.started") if e.get("drill_name")), None)
    if started is None:
        return None
    after = started.get("seq") or 0
    finished = next((e for e in journal.of_type("audit.finished") if (e.get("seq") or 0) > after), None)
    end = (finished or {}).get("seq") or float("inf")
    checks = [ReadinessCheck(name=str(e.get("name")), status=e.get("status"),
                             seconds=num(e.get("seconds")) or 0.0,
                             findings=[{**f, "headline": headline(str(f.get("message") or ""))}
                                       for f in e.get("findings") or [] if isinstance(f, dict)])
              for e in journal.of_type("audit.check")
              if after < (e.get("seq") or 0) < end and e.get("status") in ("pass", "warn", "fail", "skipped")]
    if finished is None:
        return ReadinessResult(verdict="aborted", checks=checks,
                               reason="the journal has no audit.finished after the phase began")
    return ReadinessResult(verdict=finished.get("verdict") or "aborted", score=num(finished.get("score")),
                           seconds=num(finished.get("seconds")),
                           stopped_drill=bool(finished.get("stops_drill")),
                           reason=finished.get("reason"), checks=checks)


def readiness_findings(result: ReadinessResult | None) -> list[Finding]:
    """Each finding of the phase as a finding of the card, most severe first."""
    if result is None:
        return []
    found = [f for c in result.checks for f in c.findings if f.get("severity") in SEVERITIES]
    found.sort(key=lambda f: SEVERITIES.index(f["severity"]))
    return [_finding(f, result.stopped_drill and f["severity"] == "critical") for f in found]


def _finding(f: dict[str, Any], stopped: bool) -> Finding:
    full = str(f.get("message") or f.get("check") or "a readiness check failed")
    message = headline(full)
    ev = f.get("evidence") if isinstance(f.get("evidence"), dict) else {}
    seen = ", ".join(f"{k} {ev[k]}" for k in ("address", "what", "standby", "state") if ev.get(k))
    where = f" (set at {f['where']})" if f.get("where") else ""
    said = f"; {full[len(message) + 2:]}" if full != message else ""
    evidence = f"the {f.get('check') or 'readiness'} check on the drill's stack before any fault" \
               + (f": {seen}" if seen else "") + where + said
    evidence_zh = f"演练开始前（注入故障前）对本次演练环境的{f.get('check') or '就绪'}检查" \
                  + (f"：{seen}" if seen else "") + (f"（配置位置 {f['where']}）" if f.get("where") else "") \
                  + said
    if stopped:
        evidence += "; the drill stopped here (readiness.stop_on_critical)"
        evidence_zh += "；演练因此在注入故障前停止（readiness.stop_on_critical）"
    fix = str(f.get("fix") or "")
    return Finding(kind="readiness", severity=f["severity"], capability="equipment", owner="technical",
                   text=f"found before the drill: {message}", evidence=evidence,
                   action=(fix[:1].upper() + fix[1:] + "; " if fix else "")
                   + "run the readiness checks again before the next drill.",
                   text_zh=f"演练前发现：{message}", evidence_zh=evidence_zh,
                   action_zh=(f"{fix}；" if fix else "") + "下次演练前重新进行就绪检查。")
