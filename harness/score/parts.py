"""Journal → the card's parts that are read straight off the events: the runbook's steps, the alerts,
the response level, RPO, and the link and replication series."""
from __future__ import annotations

from ..journal import JournalRead
from ..models import Drill, RunbookStep
from .card import (AlertEntry, LagPoint, LevelResult, LinkPoint, LinkSeries, PatientImpact,
                   ReplicationSeries, RpoResult, StepResult)
from .facts import Facts
from .level import IncidentShares, level_of
from .texts import error_of, short, step_detail
from .values import integer, num, text, wall_of

LOST_SAMPLE = 10  # lost write ids shown on the card
STEP_EVENTS = ("step.started", "step.finished", "step.skipped")


def trigger_text(step: RunbookStep) -> str:
    w = step.when
    parts = []
    if w.alert:
        parts.append(f"alert: {w.alert}")
    if w.after:
        parts.append(f"after: {w.after}")
    if w.level:
        parts.append("level: " + ", ".join(str(x) for x in w.level))
    return "; ".join(parts)


def step_params(step: RunbookStep) -> dict:
    """What the step runs with, for the report: an action's parameters, or what an exec step runs
    (command, working directory, timeout) and what an http step calls."""
    if step.exec_ is not None:
        return {"run": step.exec_.command(), **step.exec_.model_dump(
            include={"env", "cwd", "timeout"}, exclude_defaults=True)}
    if step.http is not None:
        return step.http.model_dump(by_alias=True, exclude_defaults=True, include={
            "method", "url", "json_", "body", "expect", "timeout"}) | {"method": step.http.method}
    return dict(step.with_)


def _new_step(spec: RunbookStep | None, sid: str, e: dict, status: str) -> StepResult:
    """A step's row from its runbook entry (`spec`), else from what the event says of it."""
    return StepResult(
        id=sid, title=(spec.title if spec else e.get("title")) or "",
        group=e.get("group") or (spec.group if spec else None),
        kind=e.get("kind") or (spec.kind if spec else None),
        action=e.get("action") or (spec.action if spec else None),
        trigger=trigger_text(spec) if spec else "", params=step_params(spec) if spec else {},
        instructions=spec.manual.instructions if spec and spec.manual else "",
        deadline=spec.deadline if spec else num(e.get("deadline")), status=status)


def _finish(r: StepResult, e: dict, f: Facts) -> None:
    """A step.finished event onto its row."""
    detail = e.get("detail")
    r.finished_wall, r.finished = wall_of(e), f.since_fault(e)
    r.ok = e.get("ok") is True
    r.status = "ok" if r.ok else "failed"
    r.detail = short(step_detail(detail)) or None
    if not r.ok:
        r.error = error_of(detail) or None
    if isinstance(detail, dict) and r.kind == "exec":  # the program's own words, for its finding
        r.output = text(detail.get("output")) or None
        r.stderr_tail = [str(x) for x in detail.get("stderr_tail") or [] if isinstance(x, str)]
    if r.started is not None and r.finished is not None:
        r.duration = round(r.finished - r.started, 3)
    if isinstance(detail or {}, dict) and (detail or {}).get("modeled"):
        r.modeled = True  # a simulated operator's declared duration, not a measured one


def _judge_deadlines(rows: list[StepResult], f: Facts) -> None:
    for r in rows:
        if r.deadline is None or r.started_wall is None:
            continue
        if r.duration is not None:
            r.deadline_met = r.duration <= r.deadline
        elif f.t_end is not None and (f.t_end - r.started_wall) * f.scale > r.deadline:
            r.deadline_met = False  # still running when the deadline passed


def steps(drill: Drill, f: Facts) -> list[StepResult]:
    """Every runbook step: as the journal saw it run (a step run twice is two rows), then the ones
    that never ran."""
    by_id = {s.id: s for s in drill.runbook}
    out: list[StepResult] = []
    open_: dict[str, StepResult] = {}
    for e in f.events:
        t, sid = e.get("type"), e.get("step")
        if t not in STEP_EVENTS or not isinstance(sid, str):
            continue
        if t == "step.skipped":
            r = _new_step(by_id.get(sid), sid, e, "skipped")
            r.deadline, r.detail = None, short(e.get("reason"))
            out.append(r)
        elif t == "step.started":
            r = _new_step(by_id.get(sid), sid, e, "unfinished")
            r.started, r.started_wall = f.since_fault(e), wall_of(e)
            open_[sid] = r
            out.append(r)
        else:
            r = open_.pop(sid, None)
            if r is None:  # finished without a start we could read (a torn line)
                r = _new_step(by_id.get(sid), sid, e, "unfinished")
                out.append(r)
            _finish(r, e, f)
    _judge_deadlines(out, f)
    seen = {r.id for r in out}
    return out + [_new_step(s, s.id, {}, "not run") for s in drill.runbook if s.id not in seen]


def alerts(f: Facts) -> list[AlertEntry]:
    out: list[AlertEntry] = []
    open_: dict[str, AlertEntry] = {}
    for e in f.events:
        t, w = e.get("type"), wall_of(e)
        if t == "alert.raised" and w is not None:
            a = AlertEntry(alert=str(e.get("alert")), severity=text(e.get("severity")),
                           describe=text(e.get("describe")), raised=f.since_fault(e), raised_wall=w,
                           detail=short(e.get("detail")) or None)
            open_[a.alert] = a
            out.append(a)
        elif t == "alert.cleared" and (a := open_.pop(str(e.get("alert")), None)):
            a.cleared_wall, a.cleared = w, f.since_fault(e)
    return out


def incident_shares(drill: Drill, f: Facts, scale: float) -> IncidentShares | None:
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


def level(drill: Drill, f: Facts, impact: PatientImpact, shares: IncidentShares | None,
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
        r.declared_share = num(last.get("share"))
    if r.implied is not None:
        r.ok = r.declared == r.implied  # no declaration for a real incident is wrong too
    return r


def rpo(journal: JournalRead) -> RpoResult | None:
    """The last `rpo.measured`, when there is one."""
    e = journal.of_type("rpo.measured")
    if not e:
        return None
    e = e[-1]
    sample = e.get("lost_sample") or []
    return RpoResult(mode=text(e.get("mode")), acked_writes=integer(e.get("acked_writes")),
                     lost_writes=integer(e.get("lost_writes")), lost_seconds=num(e.get("lost_seconds")),
                     lost_sample=[str(x) for x in sample[:LOST_SAMPLE]] if isinstance(sample, list) else [],
                     crash_wall=num(e.get("crash_wall")), replication_lag=num(e.get("replication_lag")),
                     measured_on=text(e.get("measured_on")), trigger=text(e.get("trigger")),
                     error=short(e.get("error")) or None)


def links(journal: JournalRead, f: Facts, bucket_real: float) -> list[LinkSeries]:
    """`link.sample` events (link, utilisation, bytes_per_s) → one series per link, bucketed like the
    patient series (peak utilisation and mean bytes/s per bucket)."""
    width = bucket_real if bucket_real > 0 else 1.0
    per: dict[str, dict[int, list]] = {}
    for e in journal.events:
        if e.get("type") != "link.sample":
            continue
        w, link = wall_of(e), e.get("link")
        if w is None or link is None or f.origin is None:
            continue
        i = int((w - f.origin) // width)
        b = per.setdefault(str(link), {}).setdefault(i, [None, 0.0, 0])
        u, bps = num(e.get("utilisation")), num(e.get("bytes_per_s"))
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


def replication(journal: JournalRead, f: Facts) -> list[ReplicationSeries]:
    """`replication.sample` events (standby, lag_seconds and/or lag_bytes), when the journal has any."""
    per: dict[str, list[LagPoint]] = {}
    for e in journal.events:
        if e.get("type") != "replication.sample":
            continue
        t = f.tplus(wall_of(e))
        if t is None:
            continue
        per.setdefault(str(e.get("standby") or e.get("node") or "standby"), []).append(
            LagPoint(t=t, lag_seconds=num(e.get("lag_seconds")), lag_bytes=num(e.get("lag_bytes"))))
    return [ReplicationSeries(standby=k, points=v) for k, v in sorted(per.items())]
