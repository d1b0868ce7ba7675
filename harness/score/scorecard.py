"""The score card: pure functions of the journal and the request records → per-target results, the
response level, patient impact, RPO, findings, an overall score and a CI verdict.

Only `score_run` touches files. Conventions:
- drill time = real seconds × time_scale (the effective scale of the journal's `run.started`);
- t_fault = the wall time of the first `fault.injected`; every measured time is counted from it;
- patient measures (shares, error rates, waits) are real and do not depend on the scale.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..clock import format_duration
from ..errors import InputError
from ..journal import JournalRead, read_journal
from ..load.records import iter_records
from ..loader import Document
from ..models import GROUP_TITLES, Drill, Levels, Member, Scenario, Target

Verdict = Literal["pass", "fail", "aborted"]
EXIT_CODES: dict[str, int] = {"pass": 0, "fail": 1, "aborted": 3}
LEVEL_SHARE = 0.2  # share of the overall score for declaring the right response level
LOST_SAMPLE = 10


# --- the card ------------------------------------------------------------------------------------

class TargetResult(BaseModel):
    id: str
    title: str = ""
    measure: str
    unit: Literal["s", "level"] = "s"
    target: float | None = Field(description="drill s; for measure 'level': the implied level")
    actual: float | None = Field(description="drill s from t_fault; for 'level': the declared level")
    met: bool
    margin: float | None = Field(None, description="target − actual, drill s; > 0 is headroom")
    critical: bool = True
    reason: str | None = None


class LevelResult(BaseModel):
    declared: int | None = None
    declared_at: float | None = Field(None, description="drill s from t_fault")
    declared_share: float | None = Field(None, description="the share the runbook saw when declaring")
    implied: int | None = None
    share: float | None = Field(None, description="affected ÷ active patients over the incident")
    affected: int = 0
    active: int = 0
    level1_above: float = 0.5
    level2_above: float = 0.2
    ok: bool | None = None


class PhaseCounts(BaseModel):
    requests: int = 0
    failed: int = 0

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.requests if self.requests else None


class JourneyImpact(BaseModel):
    journey: str
    requests: int = 0  # during the incident
    failed: int = 0
    first_failure: float | None = Field(None, description="drill s from t_fault")
    last_failure: float | None = None
    downtime: float | None = Field(None, description="first to last failure, drill s")


class LongestWait(BaseModel):
    ms: float
    patient: str | None = None
    journey: str | None = None
    name: str | None = None
    at: float | None = Field(None, description="drill s from t_fault")


class PatientImpact(BaseModel):
    patients: int = 0  # distinct patients in all records
    active: int = 0  # with a request during the incident
    affected: int = 0  # with a failed request during the incident
    affected_share: float | None = None
    before: PhaseCounts = Field(default_factory=PhaseCounts)
    during: PhaseCounts = Field(default_factory=PhaseCounts)
    after: PhaseCounts = Field(default_factory=PhaseCounts)
    journeys: list[JourneyImpact] = Field(default_factory=list)
    recovered: bool = False
    downtime: float | None = Field(None, description="recovery − t_fault, drill s")
    longest_wait: LongestWait | None = None
    error_rate_steady: float | None = None  # before t_fault
    error_rate_after: float | None = None  # after recovery
    first_wall: float | None = None
    last_wall: float | None = None
    malformed: int = 0  # records without a usable time

    @property
    def total(self) -> PhaseCounts:
        return PhaseCounts(requests=self.before.requests + self.during.requests + self.after.requests,
                           failed=self.before.failed + self.during.failed + self.after.failed)


class RpoResult(BaseModel):
    mode: str | None = None
    acked_writes: int | None = None
    lost_writes: int | None = None
    lost_seconds: float | None = None
    lost_sample: list[str] = Field(default_factory=list)
    crash_wall: float | None = None


class StepResult(BaseModel):
    id: str
    title: str = ""
    group: str | None = None
    kind: str | None = None
    action: str | None = None
    status: Literal["ok", "failed", "unfinished", "skipped", "not run"]
    started: float | None = Field(None, description="drill s from t_fault")
    finished: float | None = None
    started_wall: float | None = None
    finished_wall: float | None = None
    ok: bool | None = None
    duration: float | None = Field(None, description="drill s")
    deadline: float | None = None
    deadline_met: bool | None = None
    detail: str | None = None


class AlertEntry(BaseModel):
    alert: str
    severity: str | None = None
    raised: float | None = None  # drill s from t_fault
    raised_wall: float
    cleared: float | None = None
    cleared_wall: float | None = None
    detail: str | None = None


class NotificationEntry(BaseModel):
    channel: str | None = None
    audience: str | None = None
    text: str | None = None
    at: float | None = None
    wall: float


class TimelineEntry(BaseModel):
    seq: int | None = None
    type: str
    wall: float | None = None
    drill: float | None = Field(None, description="T+ drill s, as journalled")
    since_fault: float | None = None
    text: str


class Finding(BaseModel):
    severity: Literal["high", "medium", "low"]
    text: str
    evidence: str = ""


class TeamInfo(BaseModel):
    group: str
    title: str
    core: list[Member]
    backup: list[Member]


class Overview(BaseModel):
    run_id: str | None = None
    drill: str
    drill_title: str = ""
    scenario: str | None = None
    scenario_title: str = ""
    failure_class: str | None = None
    description: str = ""
    time_scale: float
    backend: str | None = None
    teams: list[TeamInfo] = Field(default_factory=list)
    started_wall: float | None = None
    t0_wall: float | None = None
    fault_wall: float | None = None
    recovery_wall: float | None = None
    ended_wall: float | None = None
    status: str = "unknown"  # completed / aborted / unknown (no run.finished)
    abort_reason: str | None = None


class ScoreCard(BaseModel):
    version: int = 1
    overview: Overview
    verdict: Verdict
    exit_code: int
    score: int
    breakdown: dict[str, Any]
    targets: list[TargetResult]
    level: LevelResult
    impact: PatientImpact
    rpo: RpoResult | None = None
    findings: list[Finding]
    steps: list[StepResult]
    alerts: list[AlertEntry]
    notifications: list[NotificationEntry]
    timeline: list[TimelineEntry]
    problems: list[str] = Field(default_factory=list)  # journal / records / file read problems


# --- small pure pieces ---------------------------------------------------------------------------

def implied_level(share: float, levels: Levels) -> int:
    """The plan's classification: share > level1_above → 1, > level2_above → 2, else 3.
    Exactly at a threshold is the milder level (the plan says "more than 50%")."""
    if share > levels.level1_above:
        return 1
    if share > levels.level2_above:
        return 2
    return 3


def overall_score(results: list[TargetResult], level_ok: bool | None,
                  *, level_share: float = LEVEL_SHARE) -> tuple[int, dict[str, Any]]:
    """Score 0–100 and its breakdown.

    Rule:
    - each time target (measure ≠ 'level') has a weight: critical 2, others 1;
    - credit: met → 1; missed but measured → 0.5 at the target, falling linearly to 0 at 2× the
      target (a miss always costs at least half its weight); unmeasured (actual None) → 0;
    - the targets share 100 × (1 − level_share) points in proportion to weight × credit;
    - the response level is worth level_share × 100 points: right (True) → all, wrong (False) → 0.

    Edge cases:
    - level_ok None (nothing to judge it on) → its points go to the targets;
    - no time targets → the level is worth all 100; neither → 0 (nothing measured, nothing earned);
    - a missed target with within 0 (e.g. RPO 0 s) gets 0: there is no room to scale an overshoot;
    - 'level' targets are not weighed here (they are the level_ok part), so they never count twice.
    """
    weighed = [r for r in results if r.unit != "level"]
    total_weight = sum(2 if r.critical else 1 for r in weighed)
    level_points = 0.0 if level_ok is None else (100.0 if not weighed else 100.0 * level_share)
    target_points = (100.0 - level_points) if weighed else 0.0
    rows, points = [], 0.0
    for r in weighed:
        weight = 2 if r.critical else 1
        if r.met:
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
    score = max(0, min(100, round(points)))
    return score, {"targets": rows, "target_points": round(target_points, 2),
                   "level": {"ok": level_ok, "max": round(level_points, 2), "points": round(lp, 2)},
                   "score": score}


def verdict_of(results: list[TargetResult], status: str) -> Verdict:
    """aborted when the run did not complete (status aborted, or no run.finished at all);
    else pass when every critical target is met, fail otherwise."""
    if status != "completed":
        return "aborted"
    return "pass" if all(r.met for r in results if r.critical) else "fail"


def _short(value: Any, limit: int = 200) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(e: dict) -> str:
    """One human line for a journal event."""
    g = e.get
    t = g("type")
    detail = f": {_short(g('detail'))}" if g("detail") not in (None, "", {}) else ""
    if t == "run.started":
        return (f"run {g('run_id')} started: drill {g('drill_name')}, scenario {g('scenario')}, "
                f"time scale ×{g('time_scale')}, backend {g('backend')}")
    if t == "stack.up":
        n = len(g("services") or {})
        return f"stack up in {g('seconds')} real s ({n} services)"
    if t == "load.started":
        return f"patient load started: {g('users')} users, {g('workers')} workers"
    if t == "scenario.started":
        return "T+0: scenario started (load running, timeline begins)"
    if t == "steady_state":
        rate = g("error_rate")
        facts = [f"error rate {rate:.2%}" if isinstance(rate, (int, float)) else None,
                 f"{g('rps')} req/s" if g("rps") is not None else None,
                 f"p95 {g('p95_ms')} ms" if g("p95_ms") is not None else None,
                 f"{g('requests')} requests" if g("requests") is not None else None]
        return f"steady state {'reached' if g('ok') else 'NOT reached'}: " + \
            ", ".join(x for x in facts if x)
    if t in ("fault.injected", "fault.reverted"):
        verb = "injected" if t == "fault.injected" else "reverted"
        on = f" on {g('target')}" if g("target") else ""
        return f"fault {g('fault')} {verb} ({g('fault_type')}{on}){detail}"
    if t == "alert.raised":
        return f"alert {g('alert')} raised ({g('severity')}){detail}"
    if t == "alert.cleared":
        return f"alert {g('alert')} cleared"
    if t == "check.finished":
        return f"three-step check: {g('verdict')} — {_short(g('items'))}"
    if t == "level.declared":
        share = g("share")
        share = f"{share:.0%}" if isinstance(share, (int, float)) else share
        return (f"level {g('level')} response declared "
                f"({g('affected')}/{g('active')} patients affected, {share})")
    if t == "step.started":
        what = f", action {g('action')}" if g("action") else ""
        return f"step {g('step')} started ({g('group')}, {g('kind')}{what})"
    if t == "step.finished":
        return f"step {g('step')} {'finished ok' if g('ok') else 'FAILED'}{detail}"
    if t == "step.skipped":
        return f"step {g('step')} skipped: {_short(g('reason'))}"
    if t == "notification.sent":
        return f"notification via {g('channel')} to {g('audience')}: {_short(g('text'))}"
    if t == "recovery":
        return f"recovery: patients served again{detail}"
    if t == "rpo.measured":
        return (f"RPO measured: {g('lost_writes')} of {g('acked_writes')} acknowledged writes lost "
                f"({g('lost_seconds')} drill s, {g('mode')})")
    if t == "run.finished":
        reason = f": {_short(g('reason'))}" if g("reason") else ""
        return f"run {g('status')}{reason}"
    rest = {k: v for k, v in e.items() if k not in ("seq", "wall", "drill", "type")}
    return f"{t} {_short(rest)}".strip()


def _wall(e: dict | None) -> float | None:
    w = e.get("wall") if e else None
    return float(w) if isinstance(w, (int, float)) else None


# --- request records -----------------------------------------------------------------------------

def tally_records(records: Iterable[dict], t_fault: float | None, t_recovered: float | None,
                  scale: float) -> PatientImpact:
    """One streaming pass over request records (dicts as in docs/internals.md).

    Phases by request start `t`: before t_fault; during = [t_fault, recovery] (open-ended when there
    was no recovery, i.e. to the end of the records); after recovery."""
    counts = [[0, 0], [0, 0], [0, 0]]  # before / during / after: [requests, failed]; plain ints, hot loop
    patients: set[str] = set()
    active: set[str] = set()
    affected: set[str] = set()
    journeys: dict[str, list] = {}  # journey → [requests, failed, first_fail, last_fail]
    longest: dict | None = None
    first = last = None
    malformed = 0
    for rec in records:
        t = rec.get("t")
        if not isinstance(t, (int, float)) or isinstance(t, bool):
            malformed += 1
            continue
        ok = rec.get("ok") is True
        patient = rec.get("patient")
        if not isinstance(patient, str):  # a corrupt line must not crash the set below
            patient = None
        ms = rec.get("ms")
        first = t if first is None or t < first else first
        last = t if last is None or t > last else last
        if patient is not None:
            patients.add(patient)
        if isinstance(ms, (int, float)) and (longest is None or ms > longest["ms"]):
            longest = {"ms": ms, "t": t, "patient": patient, "journey": rec.get("journey"),
                       "name": rec.get("name")}
        if t_fault is None or t < t_fault:
            phase = 0
        elif t_recovered is None or t <= t_recovered:
            phase = 1
        else:
            phase = 2
        c = counts[phase]
        c[0] += 1
        if not ok:
            c[1] += 1
        if phase == 1:
            j = journeys.setdefault(str(rec.get("journey") or rec.get("persona") or "unknown"),
                                    [0, 0, None, None])
            j[0] += 1
            if patient is not None:
                active.add(patient)
            if not ok:
                j[1] += 1
                j[2] = t if j[2] is None else min(j[2], t)
                j[3] = t if j[3] is None else max(j[3], t)
                if patient is not None:
                    affected.add(patient)

    def rel(w: float | None) -> float | None:
        return None if w is None or t_fault is None else round((w - t_fault) * scale, 3)

    before, during, after = (PhaseCounts(requests=n, failed=f) for n, f in counts)
    rows = [JourneyImpact(journey=name, requests=n, failed=f, first_failure=rel(a), last_failure=rel(b),
                          downtime=None if a is None else round((b - a) * scale, 3))
            for name, (n, f, a, b) in sorted(journeys.items())]
    return PatientImpact(
        patients=len(patients), active=len(active), affected=len(affected),
        affected_share=len(affected) / len(active) if active else None,
        before=before, during=during, after=after, journeys=rows,
        recovered=t_recovered is not None,
        downtime=rel(t_recovered),
        longest_wait=None if longest is None else LongestWait(
            ms=longest["ms"], patient=longest["patient"], journey=longest["journey"],
            name=longest["name"], at=rel(longest["t"])),
        error_rate_steady=before.error_rate, error_rate_after=after.error_rate,
        first_wall=first, last_wall=last, malformed=malformed)


# --- journal → parts of the card -----------------------------------------------------------------

class _Facts:
    """The journal's key moments, and a converter of wall times to drill seconds from t_fault."""

    def __init__(self, journal: JournalRead, scale: float):
        self.events = journal.events
        self.scale = scale
        fault = journal.first("fault.injected")
        self.t_fault = _wall(fault)
        self.t0 = _wall(journal.first("scenario.started"))
        self.recovery = next((e for e in journal.of_type("recovery")
                              if self.t_fault is not None and (self._at(e) or 0) >= self.t_fault), None)
        self.t_recovered = self._at(self.recovery)
        self.finished = journal.first("run.finished")
        walls = [w for w in map(_wall, self.events) if w is not None]
        self.t_end = max(walls) if walls else None

    @staticmethod
    def _at(e: dict | None) -> float | None:
        # the monitor journals recovery once it is sure; `at_wall` is when it really began
        if e and isinstance(e.get("at_wall"), (int, float)):
            return float(e["at_wall"])
        return _wall(e)

    def rel(self, wall: float | None) -> float | None:
        # drill seconds from t_fault; from T+0 when no fault was injected (no incident to time)
        ref = self.t_fault if self.t_fault is not None else self.t0
        # rounded to the ms: float noise of wall × scale must not show as '12.0s' for 12 s
        return None if wall is None or ref is None else round((wall - ref) * self.scale, 3)


def _steps(drill: Drill, f: _Facts) -> list[StepResult]:
    by_id = {s.id: s for s in drill.runbook}
    out: list[StepResult] = []
    open_: dict[str, StepResult] = {}
    seen: set[str] = set()
    for e in f.events:
        t, sid = e.get("type"), e.get("step")
        if t not in ("step.started", "step.finished", "step.skipped") or not isinstance(sid, str):
            continue
        seen.add(sid)
        spec = by_id.get(sid)
        if t == "step.skipped":
            out.append(StepResult(id=sid, title=spec.title if spec else "", group=e.get("group"),
                                  status="skipped", detail=_short(e.get("reason"))))
            continue
        if t == "step.started":
            deadline = spec.deadline if spec else e.get("deadline")
            r = StepResult(id=sid, title=(spec.title if spec else e.get("title")) or "",
                           group=e.get("group"), kind=e.get("kind"), action=e.get("action"),
                           status="unfinished", started=f.rel(_wall(e)), started_wall=_wall(e),
                           deadline=deadline)
            open_[sid] = r
            out.append(r)
            continue
        r = open_.pop(sid, None)
        if r is None:  # finished without a start we could read (a torn line)
            r = StepResult(id=sid, title=spec.title if spec else "", group=e.get("group"),
                           kind=e.get("kind"), action=e.get("action"), status="unfinished")
            out.append(r)
        r.finished_wall, r.finished = _wall(e), f.rel(_wall(e))
        r.ok = e.get("ok") is True
        r.status = "ok" if r.ok else "failed"
        r.detail = _short(e.get("detail")) or None
        if r.started_wall is not None and r.finished_wall is not None:
            r.duration = round((r.finished_wall - r.started_wall) * f.scale, 3)
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
                                  status="not run", deadline=s.deadline))
    return out


def _alerts(f: _Facts) -> list[AlertEntry]:
    out: list[AlertEntry] = []
    open_: dict[str, AlertEntry] = {}
    for e in f.events:
        t, w = e.get("type"), _wall(e)
        if t == "alert.raised" and w is not None:
            a = AlertEntry(alert=str(e.get("alert")), severity=e.get("severity"), raised=f.rel(w),
                           raised_wall=w, detail=_short(e.get("detail")) or None)
            open_[a.alert] = a
            out.append(a)
        elif t == "alert.cleared" and (a := open_.pop(str(e.get("alert")), None)):
            a.cleared_wall, a.cleared = w, f.rel(w)
    return out


def _level(drill: Drill, f: _Facts, impact: PatientImpact) -> LevelResult:
    declared = [e for e in f.events if e.get("type") == "level.declared"]
    last = declared[-1] if declared else None
    r = LevelResult(level1_above=drill.levels.level1_above, level2_above=drill.levels.level2_above,
                    affected=impact.affected, active=impact.active, share=impact.affected_share)
    if last is not None:
        r.declared = last.get("level")
        r.declared_at = f.rel(_wall(last))
        r.declared_share = last.get("share")
    if impact.affected_share is not None:
        r.implied = implied_level(impact.affected_share, drill.levels)
    if r.implied is not None:
        r.ok = r.declared == r.implied  # no declaration for a real incident is wrong too
    return r


def _rpo(journal: JournalRead) -> RpoResult | None:
    e = journal.of_type("rpo.measured")
    if not e:
        return None
    e = e[-1]
    sample = e.get("lost_sample") or []
    return RpoResult(mode=e.get("mode"), acked_writes=e.get("acked_writes"),
                     lost_writes=e.get("lost_writes"), lost_seconds=e.get("lost_seconds"),
                     lost_sample=[str(x) for x in sample[:LOST_SAMPLE]], crash_wall=e.get("crash_wall"))


def _measure_target(t: Target, f: _Facts, level: LevelResult, rpo: RpoResult | None) -> TargetResult:
    """One target → its result. Unmeasurable means missed, with the reason."""
    base = dict(id=t.id, title=t.title, measure=t.measure, critical=t.critical)
    if t.measure == "level":
        reason = None
        if level.implied is None:
            reason = "no patient requests during the incident: the level cannot be judged"
        elif level.declared is None:
            reason = f"no level was declared (level {level.implied} was implied)"
        elif not level.ok:
            reason = (f"declared level {level.declared}, but {level.share:.0%} of patients affected "
                      f"implies level {level.implied}")
        return TargetResult(**base, unit="level", target=level.implied, actual=level.declared,
                            met=bool(level.ok), reason=reason)

    within = t.within
    actual: float | None = None
    reason: str | None = None
    if t.measure == "rpo":
        if rpo is None or not isinstance(rpo.lost_seconds, (int, float)):
            reason = "RPO was not measured (no rpo.measured event)"
        else:
            actual = float(rpo.lost_seconds)
    elif f.t_fault is None:
        reason = "no fault was injected: nothing to time from"
    elif t.measure == "detection":
        e = next((e for e in f.events if e.get("type") == "alert.raised"
                  and (_wall(e) or 0) >= f.t_fault), None)
        actual = f.rel(_wall(e)) if e else None
        reason = None if e else "no alert was raised after the fault"
    elif t.measure == "recovery":
        actual = f.rel(f.t_recovered)
        reason = None if actual is not None else "no recovery before the run ended"
    elif t.measure == "step":
        fin = [e for e in f.events if e.get("type") == "step.finished" and e.get("step") == t.step
               and (_wall(e) or 0) >= f.t_fault]
        good = next((e for e in fin if e.get("ok") is True), None)
        if good is not None:
            actual = f.rel(_wall(good))
        elif fin:
            reason = f"step {t.step} failed: {_short(fin[-1].get('detail')) or 'no detail'}"
        elif any(e.get("type") == "step.started" and e.get("step") == t.step for e in f.events):
            reason = f"step {t.step} never finished"
        else:
            reason = f"step {t.step} never started"
    met = actual is not None and within is not None and actual <= within
    margin = None if actual is None or within is None else within - actual
    if actual is not None and not met:
        reason = f"{format_duration(actual)}, {format_duration(actual - within)} over the " \
                 f"{format_duration(within)} target"
    return TargetResult(**base, target=within, actual=actual, met=met, margin=margin, reason=reason)


def _findings(card: dict, journal: JournalRead) -> list[Finding]:
    out: list[Finding] = []
    for r in card["targets"]:
        if not r.met:
            out.append(Finding(severity="high" if r.critical else "medium",
                               text=f"target {r.id} missed" + (f" ({r.title})" if r.title else ""),
                               evidence=r.reason or ""))
    for s in card["steps"]:
        if s.status == "failed":
            out.append(Finding(severity="high", text=f"step {s.id} failed",
                               evidence=s.detail or "step.finished ok=false"))
        elif s.status == "unfinished":
            out.append(Finding(severity="medium", text=f"step {s.id} never finished",
                               evidence=f"step.started at F+{format_duration(s.started)}, no step.finished"))
        if s.deadline_met is False:
            took = format_duration(s.duration) if s.duration is not None else "still running"
            out.append(Finding(severity="medium", text=f"step {s.id} missed its deadline",
                               evidence=f"{took} against a {format_duration(s.deadline)} deadline"))
    lv: LevelResult = card["level"]
    if lv.ok is False:
        # declaring a milder level (higher number) than the facts imply under-reacts
        under = lv.declared is None or lv.declared > (lv.implied or 3)
        out.append(Finding(
            severity="high" if under else "medium",
            text=f"response level declared {lv.declared or 'never'}, implied {lv.implied}",
            evidence=f"{lv.affected} of {lv.active} active patients affected ({lv.share:.1%}); "
                     f"thresholds >{lv.level1_above:.0%} → 1, >{lv.level2_above:.0%} → 2"))
    rpo: RpoResult | None = card["rpo"]
    if rpo and (rpo.lost_writes or 0) > 0:
        sample = ", ".join(rpo.lost_sample[:3])
        out.append(Finding(severity="high",
                           text=f"{rpo.lost_writes} acknowledged patient writes lost",
                           evidence=f"{rpo.lost_writes} of {rpo.acked_writes} acked writes missing "
                                    f"after recovery ({rpo.mode}); e.g. {sample}"))
    steady = journal.of_type("steady_state")
    if not steady:
        out.append(Finding(severity="medium", text="steady state was never checked",
                           evidence="no steady_state event in the journal"))
    elif not steady[-1].get("ok"):
        s = steady[-1]
        out.append(Finding(severity="medium", text="steady state not reached before the fault",
                           evidence=f"error rate {s.get('error_rate')}, {s.get('requests')} requests, "
                                    f"p95 {s.get('p95_ms')} ms"))
    ov: Overview = card["overview"]
    if ov.status != "completed":
        out.append(Finding(severity="high", text="the run aborted",
                           evidence=ov.abort_reason or "no run.finished event"))
    for p in card["problems"]:
        if ov.status == "unknown" and "no run.finished" in p:
            continue  # already the 'run aborted' finding
        out.append(Finding(severity="low", text="evidence incomplete", evidence=p))
    order = {"high": 0, "medium": 1, "low": 2}
    return sorted(out, key=lambda x: order[x.severity])


def build_scorecard(drill: Drill, journal: JournalRead, records: Iterable[Any], *,
                    scenario: Scenario | None = None, problems: list[str] | None = None) -> ScoreCard:
    """The whole card from parsed inputs. `records` is consumed once (streaming); `problems` is read
    after that, so a lazy reader may append to it while being consumed."""
    problems = problems if problems is not None else []
    started = journal.first("run.started") or {}
    scale = started.get("time_scale")
    scale = float(scale) if isinstance(scale, (int, float)) and scale > 0 else drill.time_scale
    f = _Facts(journal, scale)
    impact = tally_records(records, f.t_fault, f.t_recovered, scale)
    all_problems = list(journal.problems) + list(problems)
    if impact.malformed:
        all_problems.append(f"records: {impact.malformed} record(s) without a start time skipped")

    fin = f.finished or {}
    status = fin.get("status") if fin.get("status") in ("completed", "aborted") else "unknown"
    overview = Overview(
        run_id=started.get("run_id"), drill=drill.name, drill_title=drill.title,
        scenario=scenario.name if scenario else started.get("scenario"),
        scenario_title=scenario.title if scenario else "",
        failure_class=scenario.failure_class if scenario else None,
        description=scenario.description if scenario else "",
        time_scale=scale, backend=started.get("backend"),
        teams=[TeamInfo(group=g, title=GROUP_TITLES.get(g, g), core=t.core, backup=t.backup)
               for g, t in drill.teams.items()],
        started_wall=_wall(started or None), t0_wall=f.t0, fault_wall=f.t_fault,
        recovery_wall=f.t_recovered, ended_wall=_wall(f.finished) or f.t_end, status=status,
        abort_reason={"completed": None, "aborted": _short(fin.get("reason")) or "no reason given"}.get(
            status, "the journal has no run.finished event (the run did not end cleanly)"))

    level = _level(drill, f, impact)
    rpo = _rpo(journal)
    targets = [_measure_target(t, f, level, rpo) for t in drill.targets]
    score, breakdown = overall_score(targets, level.ok)
    verdict = verdict_of(targets, status)
    parts = {"targets": targets, "steps": _steps(drill, f), "level": level, "rpo": rpo,
             "overview": overview, "problems": all_problems}
    timeline = [TimelineEntry(seq=e.get("seq"), type=str(e.get("type")), wall=_wall(e),
                              drill=e.get("drill") if isinstance(e.get("drill"), (int, float)) else None,
                              since_fault=f.rel(_wall(e)) if f.t_fault is not None else None,
                              text=describe(e))
                for e in journal.events]
    notifications = [NotificationEntry(channel=e.get("channel"), audience=e.get("audience"),
                                       text=_short(e.get("text"), 500), at=f.rel(_wall(e)), wall=_wall(e))
                     for e in journal.of_type("notification.sent") if _wall(e) is not None]
    return ScoreCard(overview=overview, verdict=verdict, exit_code=EXIT_CODES[verdict], score=score,
                     breakdown=breakdown, targets=targets, level=level, impact=impact, rpo=rpo,
                     findings=_findings(parts, journal), steps=parts["steps"], alerts=_alerts(f),
                     notifications=notifications, timeline=timeline, problems=all_problems)


# --- the one I/O wrapper -------------------------------------------------------------------------

def score_run(run_dir: Path | str) -> ScoreCard:
    """Read RUN_DIR (drill.yaml, scenario.yaml, journal.jsonl, records/) and score it."""
    run_dir = Path(run_dir)
    drill = Document(run_dir / "drill.yaml").parse(Drill)  # without the drill there are no targets
    problems: list[str] = []
    scenario = None
    try:
        scenario = Document(run_dir / "scenario.yaml").parse(Scenario)
    except InputError as e:  # the overview loses a few words; the score does not depend on it
        problems.append(str(e))
    journal = read_journal(run_dir / "journal.jsonl")
    if not (run_dir / "records").is_dir():
        problems.append("records/: missing (no patient load was recorded)")
    # streamed: a run can leave a million records; torn lines are skipped by the reader
    return build_scorecard(drill, journal, iter_records(run_dir / "records"),
                           scenario=scenario, problems=problems)
