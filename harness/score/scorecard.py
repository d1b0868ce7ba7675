"""The score card: pure functions of the journal and the request records → per-target results and
ratings, the response level, patient impact, time series for the charts, RPO, findings with their
improvement plan, an overall score and a CI verdict.

Only `score_run` touches files. Conventions:
- drill time = real seconds × time_scale (the effective scale of the journal's `run.started`);
- t_fault = the wall time of the first `fault.injected`; every measured time is counted from it;
- T+ = drill seconds from the scenario start (`scenario.started`), the x axis of the charts;
- patient measures (shares, error rates, request latencies) are real and do not depend on the scale.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..clock import format_duration
from ..errors import InputError
from ..journal import JournalRead, read_journal
from ..loader import Document
from ..models import GROUP_TITLES, Drill, Levels, Scenario, Target
from ..rundir import RunDir
from .card import (AlertEntry, Appendix, DataFile, Finding, JourneyImpact, LagPoint, LevelResult,
                   LinkPoint, LinkSeries, LongestOutage, LongestWait, NotificationEntry, Objective,
                   Overview, PatientImpact, PhaseCounts, Rating, ReplicationSeries, RpoResult,
                   ScoreCard, Series, SeriesPoint, StepResult, Strength, TargetResult, TeamInfo,
                   TimelineEntry, Verdict)
from .applicability import NotApplicable, judge as not_applicable
from .findings import Context, build_findings, build_strengths, merged
from .plan_steps import check_plan, plan_findings
from .split_brain import split_brain_findings
from .level import IncidentShares, level_of
from .response import with_response_findings
from .reading import RecordReader
from .texts import actual_text, describe, describe_zh, error_of, short

__all__ = [
    "AlertEntry", "Finding", "JourneyImpact", "LevelResult", "LongestWait", "NotificationEntry",
    "Overview", "PatientImpact", "PhaseCounts", "RpoResult", "ScoreCard", "Series", "StepResult",
    "Strength", "TargetResult", "TimelineEntry", "build_scorecard", "describe", "implied_level",
    "overall_score", "rate", "score_run", "tally", "tally_records", "verdict_of", "RATING_RULE",
]

EXIT_CODES: dict[str, int] = {"pass": 0, "fail": 1, "aborted": 3}
LEVEL_SHARE = 0.2  # share of the overall score for declaring the right response level
# points off the score for each finding of these kinds (a required plan step or channel missing;
# two primaries after a promotion)
COSTS: dict[str, float] = {"plan_step": 5.0, "split_brain": 25.0}
LOST_SAMPLE = 10

# ratings (HSEEP): P performed without challenges, S with some challenges, M with major
# challenges, U unable to be performed; from the target's headroom = margin ÷ target
RATING_P = 0.25
RATING_S = 0.10
RATING_RULE = (f"P: met with at least {RATING_P:.0%} of the target to spare (a zero target met "
               f"exactly; a level target met); S: met with {RATING_S:.0%}–{RATING_P:.0%} to spare; "
               f"M: met with less than {RATING_S:.0%} to spare; U: missed or not measured.")

# time series: ~TARGET_POINTS buckets of a round number of drill seconds; latency histograms
TARGET_POINTS = 100
MAX_POINTS = 400
NICE_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 14400,
                21600, 43200, 86400)
HIST_RATIO = 1.1  # latency bins grow by 10 %: p50/p95 read from them are within ±5 %
HIST_BINS = 160
_HIST_K = 1.0 / math.log(HIST_RATIO)


# --- small pure pieces ---------------------------------------------------------------------------

implied_level = level_of  # the one rule's classification (score/level.py), by its old name


def rate(r: TargetResult) -> Rating:
    """The objective's rating from its measured margin; the rule is RATING_RULE.

    Edge cases: a target of 0 (e.g. RPO 0 s) met exactly is P (there is no share to spare);
    a level target is P when met and U otherwise (it has no margin)."""
    if not r.met or (r.unit != "level" and r.actual is None):
        return "U"
    if r.unit == "level" or not r.target:
        return "P"
    headroom = (r.margin or 0.0) / r.target
    if headroom >= RATING_P:
        return "P"
    if headroom >= RATING_S:
        return "S"
    return "M"


def overall_score(results: list[TargetResult], level_ok: bool | None, findings: Iterable[Finding] = (),
                  *, level_share: float = LEVEL_SHARE,
                  costs: dict[str, float] = COSTS) -> tuple[int, dict[str, Any]]:
    """Score 0–100 and its breakdown.

    Rule:
    - each time target (measure ≠ 'level') that applies has a weight: critical 2, others 1;
    - credit: met → 1; missed but measured → 0.5 at the target, falling linearly to 0 at 2× the
      target (a miss always costs at least half its weight); unmeasured (actual None) → 0;
    - the targets share 100 × (1 − level_share) points in proportion to weight × credit;
    - the response level is worth level_share × 100 points: right (True) → all, wrong (False) → 0;
    - then each finding whose kind has a cost in `costs` takes that many points off.

    Edge cases:
    - n/a targets weigh nothing: they are out of the score as they are out of the verdict;
    - level_ok None (nothing to judge it on) → its points go to the targets;
    - no time targets that apply → the level is worth all 100; neither → 0 (nothing measured,
      nothing earned) before costs; the score never goes below 0;
    - a missed target with within 0 (e.g. RPO 0 s) gets 0: there is no room to scale an overshoot;
    - 'level' targets are not weighed here (they are the level_ok part), so they never count twice.
    """
    weighed = [r for r in results if r.unit != "level" and r.status != "n/a"]
    total_weight = sum(2 if r.critical else 1 for r in weighed)
    level_points = 0.0 if level_ok is None else (100.0 if not weighed else 100.0 * level_share)
    target_points = (100.0 - level_points) if weighed else 0.0
    rows, points = [], 0.0
    for r in weighed:
        weight = 2 if r.critical else 1
        if r.status == "met":
            credit = 1.0
        elif r.actual is None or not r.target or r.target <= 0:
            credit = 0.0
        else:
            credit = 0.5 * max(0.0, 1.0 - (r.actual - r.target) / r.target)
        p = target_points * weight * credit / total_weight
        points += p
        rows.append({"id": r.id, "weight": weight, "credit": round(credit, 4), "points": round(p, 2)})
    lp = level_points if level_ok else 0.0
    points += lp
    deductions = [{"finding": f.id, "kind": f.kind, "text": f.text, "points": -costs[f.kind]}
                  for f in findings if f.kind in costs]
    points += sum(d["points"] for d in deductions)
    score = max(0, min(100, round(points)))
    return score, {"targets": rows, "target_points": round(target_points, 2),
                   "level": {"ok": level_ok, "max": round(level_points, 2), "points": round(lp, 2)},
                   "not_applicable": [r.id for r in results if r.status == "n/a"],
                   "deductions": deductions, "score": score}


def verdict_of(results: list[TargetResult], status: str) -> Verdict:
    """aborted when the run did not complete (status aborted, or no run.finished at all);
    else pass when no critical target is missed (n/a ones did not apply), fail otherwise."""
    if status != "completed":
        return "aborted"
    return "pass" if all(r.status != "missed" for r in results if r.critical) else "fail"


def bucket_for(span_drill: float | None) -> float:
    """A round bucket width in drill seconds giving about TARGET_POINTS buckets over the span."""
    if not span_drill or span_drill <= 0:
        return float(NICE_BUCKETS[0])
    want = span_drill / TARGET_POINTS
    return float(next((b for b in NICE_BUCKETS if b >= want), NICE_BUCKETS[-1]))


def _percentile(hist: list[int], n: int, q: float) -> float | None:
    if n <= 0:
        return None
    rank = q * n
    seen = 0
    for i, c in enumerate(hist):
        seen += c
        if c and seen >= rank:
            return 0.5 if i == 0 else round(HIST_RATIO ** (i - 0.5), 1)
    return None


def _wall(e: dict | None) -> float | None:
    w = e.get("wall") if e else None
    return float(w) if isinstance(w, (int, float)) and not isinstance(w, bool) else None


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


# --- request records: one streaming pass -------------------------------------------------------

def tally(records: Iterable[dict], t_fault: float | None, t_recovered: float | None, scale: float,
          *, origin: float | None = None, span: float | None = None) -> tuple[PatientImpact, Series]:
    """One streaming pass over request records (dicts as in docs/internals.md) → patient impact and
    the time series of the charts.

    Phases by request start `t`: before t_fault; during = [t_fault, recovery] (open-ended when there
    was no recovery, i.e. to the end of the records); after recovery.
    Series: buckets of a round number of drill seconds from `origin` (T+0; the first record's time
    when None), sized for about TARGET_POINTS over `span` real seconds (when known), merged after the
    pass when the records reach much further. Latencies go into log-spaced histograms per bucket,
    so p50/p95 are exact to the bin (±5 %) and buckets can be merged.
    Records need not be in time order."""
    scale = float(scale)
    width_drill = bucket_for(span * scale if span else None) if span else 1.0 * scale
    width = width_drill / scale  # real seconds
    counts = [[0, 0], [0, 0], [0, 0]]  # before / during / after: [requests, failed]
    patients: set = set()
    active: set = set()
    affected: set = set()
    journeys: dict[str, list] = {}  # journey → [requests, failed, first_fail, last_fail, patients, affected]
    buckets: dict[int, list] = {}  # index → [requests, failed, acked writes, latency histogram]
    fail_since: dict[str, tuple] = {}  # patient → (first failure of the current streak, journey)
    best_out = None  # (seconds, patient, journey, since, ongoing)
    longest = None
    longest_ms = -1.0
    first, last = math.inf, -math.inf
    malformed = 0
    log, K, top = math.log, _HIST_K, HIST_BINS - 1
    tf = math.inf if t_fault is None else t_fault
    tr = math.inf if t_recovered is None else t_recovered
    nbins = HIST_BINS
    for rec in records:
        if rec.get("persona") == "attacker":
            continue  # bots of a flood are not patients
        t = rec.get("t")
        tc = t.__class__
        if tc is not float and tc is not int:
            malformed += 1
            continue
        if origin is None:
            origin = t
        ok = rec.get("ok") is True
        patient = rec.get("patient")
        if patient.__class__ is not str:  # a corrupt line must not crash the sets below
            patient = None
        if t < first:
            first = t
        if t > last:
            last = t
        patients.add(patient)
        i = int((t - origin) // width)
        b = buckets.get(i)
        if b is None:
            b = buckets[i] = [0, 0, 0, [0] * nbins]
        b[0] += 1
        ms = rec.get("ms")
        mc = ms.__class__
        if mc is float or mc is int:
            if ms > longest_ms:
                longest_ms = ms
                longest = rec
            b[3][0 if ms < 1 else min(top, int(log(ms) * K) + 1)] += 1
        if ok:
            if rec.get("write_id"):
                b[2] += 1
            if patient in fail_since:
                since, jn = fail_since.pop(patient)
                if t > since and (best_out is None or t - since > best_out[0]):
                    best_out = (t - since, patient, jn, since, False)
        else:
            b[1] += 1
            if patient is not None and patient not in fail_since:
                fail_since[patient] = (t, rec.get("journey"))
        if t < tf:
            phase = 0
        elif t <= tr:
            phase = 1
        else:
            phase = 2
        c = counts[phase]
        c[0] += 1
        if not ok:
            c[1] += 1
        if phase == 1:
            name = rec.get("journey") or rec.get("persona") or "unknown"
            j = journeys.get(name)
            if j is None:
                j = journeys[name] = [0, 0, None, None, set(), set()]
            j[0] += 1
            j[4].add(patient)
            active.add(patient)
            if not ok:
                j[1] += 1
                j[2] = t if j[2] is None or t < j[2] else j[2]
                j[3] = t if j[3] is None or t > j[3] else j[3]
                j[5].add(patient)
                affected.add(patient)
    for s in (patients, active, affected):
        s.discard(None)
    for patient, (since, jn) in fail_since.items():  # still failing when the records end
        if last > since and (best_out is None or last - since > best_out[0]):
            best_out = (last - since, patient, jn, since, True)
    if first == math.inf:
        first = last = None

    def rel(w: float | None) -> float | None:
        return None if w is None or t_fault is None else round((w - t_fault) * scale, 3)

    before, during, after = (PhaseCounts(requests=n, failed=f) for n, f in counts)
    rows = []
    for name, (n, f, a, z, ps, af) in sorted(journeys.items(), key=lambda kv: str(kv[0])):
        ps.discard(None)
        af.discard(None)
        rows.append(JourneyImpact(journey=str(name), requests=n, failed=f, patients=len(ps),
                                  affected=len(af), first_failure=rel(a), last_failure=rel(z),
                                  downtime=None if a is None else round((z - a) * scale, 3)))
    impact = PatientImpact(
        patients=len(patients), active=len(active), affected=len(affected),
        affected_share=len(affected) / len(active) if active else None,
        before=before, during=during, after=after, journeys=rows,
        recovered=t_recovered is not None,
        downtime=rel(t_recovered),
        longest_wait=None if longest is None else LongestWait(
            ms=longest_ms, patient=_str(longest.get("patient")), journey=_str(longest.get("journey")),
            name=_str(longest.get("name")), at=rel(longest.get("t"))),
        longest_outage=None if best_out is None else LongestOutage(
            seconds=round(best_out[0] * scale, 3), real_seconds=round(best_out[0], 3),
            patient=best_out[1], journey=_str(best_out[2]), since=rel(best_out[3]),
            ongoing=best_out[4]),
        error_rate_steady=before.error_rate, error_rate_after=after.error_rate,
        first_wall=first, last_wall=last, malformed=malformed)
    return impact, _series(buckets, origin, width, scale)


def tally_records(records: Iterable[dict], t_fault: float | None, t_recovered: float | None,
                  scale: float) -> PatientImpact:
    """Patient impact alone (see `tally`)."""
    return tally(records, t_fault, t_recovered, scale)[0]


def _str(x: Any) -> str | None:
    return x if isinstance(x, str) else None


def _series(buckets: dict[int, list], origin: float | None, width: float, scale: float) -> Series:
    if not buckets or origin is None:
        return Series(origin_wall=origin, bucket=round(width * scale, 6), bucket_real=round(width, 6))
    lo, hi = min(buckets), max(buckets)
    factor = max(1, math.ceil((hi - lo + 1) / MAX_POINTS))
    if factor > 1:  # records far beyond the journal's span: merge neighbours (histograms add up)
        merged: dict[int, list] = {}
        for i, (n, f, a, h) in buckets.items():
            m = merged.get(i // factor)
            if m is None:
                merged[i // factor] = [n, f, a, list(h)]
            else:
                m[0] += n
                m[1] += f
                m[2] += a
                m[3] = [x + y for x, y in zip(m[3], h)]
        buckets, width = merged, width * factor
        lo, hi = min(buckets), max(buckets)
    points = []
    for i in range(lo, hi + 1):
        n, f, a, h = buckets.get(i) or (0, 0, 0, None)
        timed = sum(h) if h else 0
        points.append(SeriesPoint(
            t=round(i * width * scale, 3), requests=n, failed=f,
            success_rate=round((n - f) / n, 4) if n else None, rps=round(n / width, 3),
            p50_ms=_percentile(h, timed, 0.5) if h else None,
            p95_ms=_percentile(h, timed, 0.95) if h else None, acked_writes=a))
    return Series(origin_wall=origin, bucket=round(width * scale, 6), bucket_real=round(width, 6),
                  points=points)


# --- journal → parts of the card -----------------------------------------------------------------

class _Facts:
    """The journal's key moments, and converters to drill seconds.

    Time model v2 (DESIGN.md: compress the plan's waits, never the machines' work): an event's figure
    is its own causal drill time (`drill`, stamped by the lane that did the work) minus the fault's.
    Journals of the v1 model (no `time_model` in run.started) keep v1's wall × scale reading."""

    def __init__(self, journal: JournalRead, scale: float):
        self.events = journal.events
        self.scale = scale
        started = journal.first("run.started") or {}
        self.time_model = str(started.get("time_model") or "v1")
        self.by_seq = {e["seq"]: e for e in self.events if isinstance(e.get("seq"), int)}
        fault = journal.first("fault.injected")
        self.fault = fault
        self.t_fault = _wall(fault)
        self.t0 = _wall(journal.first("scenario.started"))
        self.recovery = next((e for e in journal.of_type("recovery")
                              if self.t_fault is not None and (self._at(e) or 0) >= self.t_fault), None)
        self.t_recovered = self._at(self.recovery)
        self.finished = journal.first("run.finished")
        walls = [w for w in map(_wall, self.events) if w is not None]
        self.t_start = min(walls) if walls else None
        self.t_end = max(walls) if walls else None
        self.origin = self.t0 if self.t0 is not None else self.t_start

    @staticmethod
    def _at(e: dict | None) -> float | None:
        # the monitor journals recovery once it is sure; `at_wall` is when it really began
        if e and isinstance(e.get("at_wall"), (int, float)):
            return float(e["at_wall"])
        return _wall(e)

    def rel(self, wall: float | None) -> float | None:
        """Scenario-timeline drill seconds from t_fault (T+0 when no fault was injected): for what
        has no lane of its own, e.g. patients' requests."""
        ref = self.t_fault if self.t_fault is not None else self.t0
        # rounded to the ms: float noise of wall × scale must not show as '12.0s' for 12 s
        return None if wall is None or ref is None else round((wall - ref) * self.scale, 3)

    def since_fault(self, e: dict | None, *, drill_key: str = "drill",
                    wall_key: str = "wall") -> float | None:
        """An event's figure: its causal drill time minus the fault's (v2), else rel(wall)."""
        if e is None:
            return None
        d, ref = e.get(drill_key), (self.fault or {}).get("drill")
        if (self.time_model != "v1" and isinstance(d, (int, float)) and isinstance(ref, (int, float))
                and isinstance(e.get("chain" if drill_key == "drill" else "at_chain"), dict)):
            return round(d - ref, 3)
        w = e.get(wall_key)
        return self.rel(float(w) if isinstance(w, (int, float)) else None)

    def breakdown(self, e: dict | None, chain_key: str = "chain") -> dict[str, float] | None:
        """Declared waits and real work along the event's causal chain back to the fault: each
        event's `chain` names the event its lane was anchored at (`cause`)."""
        if e is None or self.fault is None or not isinstance(e.get(chain_key), dict):
            return None
        declared = real = 0.0
        links: list[str] = []
        fault_seq, node, seen = self.fault.get("seq"), e, set()
        chain = e.get(chain_key)
        while isinstance(chain, dict) and node.get("seq") not in seen:
            seen.add(node.get("seq"))
            declared += float(chain.get("declared") or 0.0)
            real += float(chain.get("real") or 0.0)
            links.append(str(node.get("step") or node.get("alert") or node.get("type")))
            cause = chain.get("cause")
            if cause is None or cause == fault_seq or cause not in self.by_seq:
                break
            node = self.by_seq[cause]
            chain = node.get("chain")
        return {"declared": round(declared, 3), "real": round(real, 3), "links": len(links)}

    def tplus(self, wall: float | None) -> float | None:
        return None if wall is None or self.origin is None else round((wall - self.origin) * self.scale, 3)

    def tplus_of_rel(self, at: float | None) -> float | None:
        """F+ drill s → T+ drill s."""
        ref = self.t_fault if self.t_fault is not None else self.t0
        if at is None or ref is None or self.origin is None:
            return None
        return round(at + (ref - self.origin) * self.scale, 3)


def _trigger(step) -> str:
    w = step.when
    parts = []
    if w.alert:
        parts.append(f"alert: {w.alert}")
    if w.after:
        parts.append(f"after: {w.after}")
    if w.level:
        parts.append("level: " + ", ".join(str(x) for x in w.level))
    return "; ".join(parts)


def _steps(drill: Drill, f: _Facts) -> list[StepResult]:
    by_id = {s.id: s for s in drill.runbook}
    out: list[StepResult] = []
    open_: dict[str, StepResult] = {}
    seen: set[str] = set()

    def new(sid: str, e: dict, status: str) -> StepResult:
        spec = by_id.get(sid)
        return StepResult(
            id=sid, title=(spec.title if spec else e.get("title")) or "",
            group=e.get("group") or (spec.group if spec else None),
            kind=e.get("kind") or (spec.kind if spec else None),
            action=e.get("action") or (spec.action if spec else None),
            trigger=_trigger(spec) if spec else "", params=dict(spec.with_) if spec else {},
            instructions=spec.manual.instructions if spec and spec.manual else "",
            deadline=spec.deadline if spec else _num(e.get("deadline")), status=status)

    for e in f.events:
        t, sid = e.get("type"), e.get("step")
        if t not in ("step.started", "step.finished", "step.skipped") or not isinstance(sid, str):
            continue
        seen.add(sid)
        if t == "step.skipped":
            r = new(sid, e, "skipped")
            r.deadline, r.detail = None, short(e.get("reason"))
            out.append(r)
            continue
        if t == "step.started":
            r = new(sid, e, "unfinished")
            r.started, r.started_wall = f.since_fault(e), _wall(e)
            open_[sid] = r
            out.append(r)
            continue
        r = open_.pop(sid, None)
        if r is None:  # finished without a start we could read (a torn line)
            r = new(sid, e, "unfinished")
            out.append(r)
        r.finished_wall, r.finished = _wall(e), f.since_fault(e)
        r.ok = e.get("ok") is True
        r.status = "ok" if r.ok else "failed"
        r.detail = short(e.get("detail")) or None
        if not r.ok:
            r.error = error_of(e.get("detail")) or None
        if r.started is not None and r.finished is not None:
            r.duration = round(r.finished - r.started, 3)
        if isinstance((e.get("detail") or {}), dict) and (e.get("detail") or {}).get("modeled"):
            r.modeled = True  # a simulated operator's declared duration, not a measured one
    for r in out:
        if r.deadline is None or r.started_wall is None:
            continue
        if r.duration is not None:
            r.deadline_met = r.duration <= r.deadline
        elif f.t_end is not None and (f.t_end - r.started_wall) * f.scale > r.deadline:
            r.deadline_met = False  # still running when the deadline passed
    for s in drill.runbook:
        if s.id not in seen:
            out.append(StepResult(id=s.id, title=s.title, group=s.group, kind=s.kind, action=s.action,
                                  trigger=_trigger(s), params=dict(s.with_),
                                  instructions=s.manual.instructions if s.manual else "",
                                  status="not run", deadline=s.deadline))
    return out


def _alerts(f: _Facts) -> list[AlertEntry]:
    out: list[AlertEntry] = []
    open_: dict[str, AlertEntry] = {}
    for e in f.events:
        t, w = e.get("type"), _wall(e)
        if t == "alert.raised" and w is not None:
            a = AlertEntry(alert=str(e.get("alert")), severity=_str(e.get("severity")),
                           describe=_str(e.get("describe")), raised=f.since_fault(e), raised_wall=w,
                           detail=short(e.get("detail")) or None)
            open_[a.alert] = a
            out.append(a)
        elif t == "alert.cleared" and (a := open_.pop(str(e.get("alert")), None)):
            a.cleared_wall, a.cleared = w, f.since_fault(e)
    return out


def _incident_shares(drill: Drill, f: _Facts, scale: float) -> IncidentShares | None:
    """The level rule's windows for this run: from the first fault, one observation window after
    another to the recovery (or the end), plus the window the runbook declared over."""
    if f.t_fault is None:
        return None
    declared = next((e.get("window_wall") for e in reversed(f.events)
                     if e.get("type") == "level.declared"), None)
    window = (float(declared[0]), float(declared[1])) if (
        isinstance(declared, list) and len(declared) == 2
        and all(isinstance(x, (int, float)) for x in declared)) else None
    end = f.t_recovered if f.t_recovered is not None else f.t_end
    return IncidentShares(f.t_fault, end, drill.levels.observe / scale, drill.levels.patient_slo,
                          declared=window)


def _level(drill: Drill, f: _Facts, impact: PatientImpact, shares: IncidentShares | None,
           lost_patients: list) -> LevelResult:
    """Declared versus implied, both by the one rule (score/level.py) over the same window (the one
    the runbook declared over, else the first from the fault), lost acknowledged writes included
    (ground truth the runbook lacks); a later window with a more severe level is `grew_to`."""
    declared = [e for e in f.events if e.get("type") == "level.declared"]
    last = declared[-1] if declared else None
    judged = shares.judged(lost_patients) if shares is not None else None
    worst = shares.worst(lost_patients) if shares is not None else None
    r = LevelResult(level1_above=drill.levels.level1_above, level2_above=drill.levels.level2_above,
                    observe=drill.levels.observe)
    if judged is not None:
        r.affected, r.active, r.share = judged.affected, judged.active, round(judged.share, 4)
        r.slowed, r.lost, r.window = judged.slow, judged.lost, [judged.start, judged.end]
        r.implied = level_of(judged.share, drill.levels)
    if worst is not None and r.implied is not None and level_of(worst.share, drill.levels) < r.implied:
        r.grew_to, r.grew_share = level_of(worst.share, drill.levels), round(worst.share, 4)
        r.grew_at = f.rel(worst.start)
    if last is not None:
        lv = last.get("level")
        r.declared = lv if isinstance(lv, int) and not isinstance(lv, bool) else None
        r.declared_at = f.since_fault(last)
        r.declared_share = _num(last.get("share"))
    if r.implied is not None:
        r.ok = r.declared == r.implied  # no declaration for a real incident is wrong too
    return r


def _rpo(journal: JournalRead) -> RpoResult | None:
    e = journal.of_type("rpo.measured")
    if not e:
        return None
    e = e[-1]
    sample = e.get("lost_sample") or []
    lost = e.get("lost_writes")
    return RpoResult(mode=_str(e.get("mode")), acked_writes=_int(e.get("acked_writes")),
                     lost_writes=_int(lost), lost_seconds=_num(e.get("lost_seconds")),
                     lost_sample=[str(x) for x in sample[:LOST_SAMPLE]] if isinstance(sample, list) else [],
                     crash_wall=_num(e.get("crash_wall")), replication_lag=_num(e.get("replication_lag")),
                     measured_on=_str(e.get("measured_on")), trigger=_str(e.get("trigger")),
                     error=short(e.get("error")) or None)


def _int(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def _measure_target(t: Target, f: _Facts, level: LevelResult, rpo: RpoResult | None,
                    na: NotApplicable | None = None) -> TargetResult:
    """One target → its result. Unmeasurable means missed, with the reason (English and Chinese),
    unless the target did not apply (`na`, applicability.py): then n/a, with why."""
    base = dict(id=t.id, title=t.title, measure=t.measure, critical=t.critical, step=t.step)
    if t.measure == "level":
        reason = reason_zh = None
        if level.implied is None:
            reason = "no patient requests during the incident: the level cannot be judged"
            reason_zh = "故障期间无患者请求，无法判断响应级别"
        elif level.declared is None:
            reason = f"no level was declared (level {level.implied} was implied)"
            reason_zh = f"未宣布响应级别（应为 {level.implied} 级）"
        elif not level.ok:
            reason = (f"declared level {level.declared}, but {level.share:.0%} of patients affected "
                      f"implies level {level.implied}")
            reason_zh = f"宣布 {level.declared} 级，但受影响患者占 {level.share:.0%}，应为 {level.implied} 级"
        r = TargetResult(**base, unit="level", target=level.implied, actual=level.declared,
                         met=bool(level.ok), reason=reason, reason_zh=reason_zh or "")
        r.rating = rate(r)
        return r

    within = t.within
    actual: float | None = None
    breakdown: dict[str, float] | None = None
    reason: str | None = None
    reason_zh = ""
    if t.measure == "rpo":
        if rpo is None:
            reason, reason_zh = "RPO was not measured (no rpo.measured event)", "未测量数据恢复点（日志无 rpo.measured）"
        elif not isinstance(rpo.lost_seconds, (int, float)):
            why = rpo.error or "no lost_seconds in rpo.measured"
            reason, reason_zh = f"RPO was not measured: {why}", f"未测得数据恢复点：{why}"
        else:
            actual = float(rpo.lost_seconds)
    elif f.t_fault is None:
        reason, reason_zh = "no fault was injected: nothing to time from", "未注入故障，无计时起点"
    elif t.measure == "detection":
        e = next((e for e in f.events if e.get("type") == "alert.raised"
                  and (_wall(e) or 0) >= f.t_fault), None)
        actual, breakdown = f.since_fault(e), f.breakdown(e)
        if e is None:
            reason, reason_zh = "no alert was raised after the fault", "故障后未触发告警"
    elif t.measure == "recovery":
        actual = f.since_fault(f.recovery, drill_key="at_drill", wall_key="at_wall")
        breakdown = f.breakdown(f.recovery, "at_chain")
        if actual is None:
            reason, reason_zh = "no recovery before the run ended", "演练结束前未恢复"
    elif t.measure == "step":
        fin = [e for e in f.events if e.get("type") == "step.finished" and e.get("step") == t.step
               and (_wall(e) or 0) >= f.t_fault]
        good = next((e for e in fin if e.get("ok") is True), None)
        if good is not None:
            actual, breakdown = f.since_fault(good), f.breakdown(good)
        elif fin:
            err = error_of(fin[-1].get("detail")) or "no detail"
            reason, reason_zh = f"step {t.step} failed: {err}", f"步骤 {t.step} 失败：{err}"
        elif any(e.get("type") == "step.started" and e.get("step") == t.step for e in f.events):
            reason, reason_zh = f"step {t.step} never finished", f"步骤 {t.step} 开始后未完成"
        else:
            reason, reason_zh = f"step {t.step} never started", f"步骤 {t.step} 未开始"
    if actual is None and na is not None:
        return TargetResult(**base, target=within, actual=None, status="n/a", rating="n/a",
                            reason=na.reason, reason_zh=na.reason_zh)
    met = actual is not None and within is not None and actual <= within
    margin = None if actual is None or within is None else round(within - actual, 3)
    if actual is not None and not met:
        shown, over = actual_text(actual, within), format_duration(actual - within)
        reason = f"{shown}, {over} over the {format_duration(within)} target"
        reason_zh = f"实际 {shown}，超出 {format_duration(within)} 的指标 {over}"
    r = TargetResult(**base, target=within, actual=actual, met=met, margin=margin,
                     headroom=None if margin is None or not within else round(margin / within, 4),
                     reason=reason, reason_zh=reason_zh, breakdown=breakdown)
    r.rating = rate(r)
    return r


def _links(journal: JournalRead, f: _Facts, bucket_real: float) -> list[LinkSeries]:
    """`link.sample` events (link, utilisation, bytes_per_s) → one series per link, bucketed like the
    patient series (peak utilisation and mean bytes/s per bucket)."""
    width = bucket_real if bucket_real > 0 else 1.0
    per: dict[str, dict[int, list]] = {}
    for e in journal.events:
        if e.get("type") != "link.sample":
            continue
        w, link = _wall(e), e.get("link")
        if w is None or link is None or f.origin is None:
            continue
        i = int((w - f.origin) // width)
        b = per.setdefault(str(link), {}).setdefault(i, [None, 0.0, 0])
        u, bps = _num(e.get("utilisation")), _num(e.get("bytes_per_s"))
        if u is not None:
            b[0] = u if b[0] is None else max(b[0], u)
        if bps is not None:
            b[1] += bps
            b[2] += 1
    out = []
    for link, buckets in sorted(per.items()):
        pts = [LinkPoint(t=round(i * width * f.scale, 3), utilisation=u,
                         bytes_per_s=round(s / n, 1) if n else None)
               for i, (u, s, n) in sorted(buckets.items())]
        peaks = [p.utilisation for p in pts if p.utilisation is not None]
        out.append(LinkSeries(link=link, points=pts, peak=max(peaks) if peaks else None))
    return out


def _replication(journal: JournalRead, f: _Facts) -> list[ReplicationSeries]:
    """`replication.sample` events (standby, lag_seconds and/or lag_bytes), when the journal has any."""
    per: dict[str, list[LagPoint]] = {}
    for e in journal.events:
        if e.get("type") != "replication.sample":
            continue
        t = f.tplus(_wall(e))
        if t is None:
            continue
        per.setdefault(str(e.get("standby") or e.get("node") or "standby"), []).append(
            LagPoint(t=t, lag_seconds=_num(e.get("lag_seconds")), lag_bytes=_num(e.get("lag_bytes"))))
    return [ReplicationSeries(standby=k, points=v) for k, v in sorted(per.items())]


def _date(wall: float | None) -> str | None:
    return None if wall is None else dt.datetime.fromtimestamp(wall).astimezone().date().isoformat()


def build_scorecard(drill: Drill, journal: JournalRead, records: Iterable[Any], *,
                    scenario: Scenario | None = None, problems: list[str] | None = None,
                    files: list[DataFile] | None = None) -> ScoreCard:
    """The whole card from parsed inputs. `records` is consumed once (streaming); `problems` is read
    after that, so a lazy reader may append to it while being consumed."""
    problems = problems if problems is not None else []
    started = journal.first("run.started") or {}
    scale = started.get("time_scale")
    scale = float(scale) if isinstance(scale, (int, float)) and scale > 0 else drill.time_scale
    f = _Facts(journal, scale)
    span = (f.t_end - f.origin) if f.t_end is not None and f.origin is not None else None
    shares = _incident_shares(drill, f, scale)
    if shares is not None:
        records = shares.feed(records)  # the level rule counts in the same single pass
    impact, series = tally(records, f.t_fault, f.t_recovered, scale, origin=f.origin,
                           span=span if span and span > 0 else None)
    if f.origin is None:  # no usable journal times: the series starts at the first record
        f.origin = series.origin_wall
    all_problems = list(journal.problems) + list(problems)
    if impact.malformed:
        all_problems.append(f"records: {impact.malformed} record(s) without a start time skipped")

    fin = f.finished or {}
    status = fin.get("status") if fin.get("status") in ("completed", "aborted") else "unknown"
    first_wall = _wall(started or None) or f.t_start or impact.first_wall
    overview = Overview(
        run_id=_str(started.get("run_id")), drill=drill.name, drill_title=drill.title,
        date=_date(first_wall),
        scenario=scenario.name if scenario else _str(started.get("scenario")),
        scenario_title=scenario.title if scenario else "",
        failure_class=scenario.failure_class if scenario else _str(started.get("failure_class")),
        description=scenario.description if scenario else "",
        time_scale=scale, time_model=str(started.get("time_model") or "v1"),
        backend=_str(started.get("backend")),
        live=started.get("live") if isinstance(started.get("live"), bool) else None,
        teams=[TeamInfo(group=g, title=GROUP_TITLES.get(g, g), core=t.core, backup=t.backup)
               for g, t in drill.teams.items()],
        objectives=[Objective(id=t.id, title=t.title, measure=t.measure, step=t.step, within=t.within,
                              critical=t.critical) for t in drill.targets],
        started_wall=_wall(started or None), t0_wall=f.t0, fault_wall=f.t_fault,
        recovery_wall=f.t_recovered, ended_wall=_wall(f.finished) or f.t_end, status=status,
        abort_reason={"completed": None, "aborted": short(fin.get("reason")) or "no reason given"}.get(
            status, "the journal has no run.finished event (the run did not end cleanly)"))

    rpo = _rpo(journal)
    rpo_event = (journal.of_type("rpo.measured") or [{}])[-1]
    lost_patients = rpo_event.get("lost_patients") if isinstance(rpo_event.get("lost_patients"), list) else []
    level = _level(drill, f, impact, shares, lost_patients)
    steps = _steps(drill, f)
    na = not_applicable(drill.targets, drill.runbook, journal.events, level, impact,
                        *([scenario.steady_state.max_error_rate] if scenario else []))
    targets = [_measure_target(t, f, level, rpo, na.get(t.id)) for t in drill.targets]
    verdict = verdict_of(targets, status)
    alerts = _alerts(f)
    steady = journal.of_type("steady_state")
    level_owner = next((s.group for s in drill.runbook if s.action == "declare_level"), "technical")
    findings = build_findings(Context(
        overview=overview, targets=targets, steps=steps, alerts=alerts, level=level, rpo=rpo,
        problems=all_problems, steady=steady[-1] if steady else None, level_owner=level_owner,
        tplus=f.tplus_of_rel))
    findings = with_response_findings(findings, journal.events, level, steps, overview)
    timeline = [TimelineEntry(seq=_int(e.get("seq")), type=str(e.get("type")),
                              subject=_str(e.get("step") or e.get("alert") or e.get("fault")
                                           or e.get("link")),
                              ok=e.get("ok") if isinstance(e.get("ok"), bool) else None,
                              wall=_wall(e), drill=_num(e.get("drill")),
                              since_fault=f.since_fault(e) if f.t_fault is not None else None,
                              text=describe(e), text_zh=describe_zh(e))
                for e in journal.events if e.get("type") != "link.sample"]
    notifications = [NotificationEntry(channel=_str(e.get("channel")), audience=_str(e.get("audience")),
                                       text=short(e.get("text"), 500), at=f.since_fault(e), wall=_wall(e))
                     for e in journal.of_type("notification.sent") if _wall(e) is not None]
    plan = check_plan(drill.levels.required, level, notifications, steps, incident=f.t_fault is not None)
    findings = merged(findings, plan_findings(plan, level, notifications, steps)
                      + split_brain_findings(journal.events, f.since_fault), overview)
    score, breakdown = overall_score(targets, level.ok, findings)
    scenario_info: dict[str, Any] = {}
    if scenario is not None:
        scenario_info = scenario.model_dump(mode="json", include={
            "load", "warmup", "faults", "observe", "max_duration", "steady_state"})
    config = started.get("config") if isinstance(started.get("config"), dict) else \
        drill.stack.model_dump(mode="json")
    appendix = Appendix(config=config, levels=drill.levels.model_dump(mode="json"), scenario=scenario_info,
                        files=files or [], records=impact.total.requests, events=len(journal.events))
    return ScoreCard(overview=overview, verdict=verdict, exit_code=EXIT_CODES[verdict], score=score,
                     breakdown=breakdown, targets=targets, level=level, impact=impact, rpo=rpo,
                     plan=plan, findings=findings, strengths=build_strengths(targets, level), steps=steps,
                     alerts=alerts, notifications=notifications, timeline=timeline, series=series,
                     links=_links(journal, f, series.bucket_real), replication=_replication(journal, f),
                     appendix=appendix, problems=all_problems)


# --- the one I/O wrapper -------------------------------------------------------------------------

DATA_FILES = {RunDir.JOURNAL: "journal: every event, wall and drill time",
              RunDir.PROBES: "the synthetic test-account patient's walks",
              RunDir.DRILL: "the drill as run", RunDir.SCENARIO: "the scenario as run",
              f"{RunDir.RECORDS}/": "patient request records", f"{RunDir.LOGS}/": "services' logs",
              f"{RunDir.CONFIG}/": "services' configs"}


def _data_files(run_dir: Path) -> list[DataFile]:
    out = []
    for name, what in DATA_FILES.items():
        p = run_dir / name.rstrip("/")
        try:
            if name.endswith("/"):
                if not p.is_dir():
                    continue
                size = sum(c.stat().st_size for c in p.iterdir() if c.is_file())
                n = sum(1 for c in p.iterdir() if c.is_file())
                out.append(DataFile(name=name, bytes=size, what=f"{what} ({n} files)"))
            elif p.is_file():
                out.append(DataFile(name=name, bytes=p.stat().st_size, what=what))
        except OSError:
            continue
    return out


def score_run(run_dir: RunDir | Path | str) -> ScoreCard:
    """Read RUN_DIR (drill.yaml, scenario.yaml, journal.jsonl, records/) and score it."""
    run_dir = RunDir.of(run_dir)
    drill = Document(run_dir.drill).parse(Drill)  # without the drill there are no targets
    problems: list[str] = []
    scenario = None
    try:
        scenario = Document(run_dir.scenario).parse(Scenario)
    except InputError as e:  # the overview loses a few words; the score does not depend on it
        problems.append(str(e))
    journal = read_journal(run_dir.journal)
    if not run_dir.records.is_dir():
        problems.append(f"{RunDir.RECORDS}/: missing (no patient load was recorded)")
    # streamed: a run can leave a million records; torn and corrupt lines are skipped and counted
    reader = RecordReader(run_dir.records)
    return build_scorecard(drill, journal, _then_problems(reader, problems), scenario=scenario,
                           problems=problems, files=_data_files(run_dir.path))


def _then_problems(reader: RecordReader, problems: list[str]):
    """The reader's records, then what it skipped appended to `problems` (read after the pass)."""
    yield from reader
    problems.extend(reader.problems)
