"""The whole score card from a run: `build_scorecard` from parsed inputs (pure), `score_run` from a
run directory (the one function here that reads files)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..journal import JournalRead, read_journal
from ..loader import Document
from ..models import GROUP_TITLES, Drill, Scenario
from ..rundir import RunDir
from . import parts
from .applicability import judge as not_applicable
from .card import (Appendix, DataFile, NotificationEntry, Objective, OfflineResult, Overview,
                   PatientImpact, ScoreCard, TeamInfo, TimelineEntry)
from .facts import Facts
from .findings import Context, build_findings, build_strengths, merged
from .offline import OfflineTally, offline_findings, offline_result
from .people import golden_hour_findings, people_result
from .plan_steps import check_plan, plan_findings
from .policy import EXIT_CODES, overall_score, verdict_of
from .reading import RecordReader
from .readiness import readiness_findings, readiness_result
from .response import with_response_findings
from .split_brain import split_brain_findings
from .tallies import tally
from .targets import measure_target
from .texts import describe, describe_zh, short
from .values import integer, num, text, wall_of


def _scale(drill: Drill, started: dict) -> float:
    """The effective time scale: run.started's (the CLI may have overridden the drill's)."""
    scale = started.get("time_scale")
    return float(scale) if isinstance(scale, (int, float)) and scale > 0 else drill.time_scale


def _date(wall: float | None) -> str | None:
    return None if wall is None else dt.datetime.fromtimestamp(wall).astimezone().date().isoformat()


def _overview(drill: Drill, scenario: Scenario | None, started: dict, f: Facts,
              impact: PatientImpact) -> Overview:
    fin = f.finished or {}
    status = fin.get("status") if fin.get("status") in ("completed", "aborted") else "unknown"
    first_wall = wall_of(started or None) or f.t_start or impact.first_wall
    return Overview(
        run_id=text(started.get("run_id")), drill=drill.name, drill_title=drill.title,
        date=_date(first_wall),
        scenario=scenario.name if scenario else text(started.get("scenario")),
        scenario_title=scenario.title if scenario else "",
        failure_class=scenario.failure_class if scenario else text(started.get("failure_class")),
        description=scenario.description if scenario else "",
        time_scale=f.scale, time_model=str(started.get("time_model") or "v1"),
        backend=text(started.get("backend")),
        live=started.get("live") if isinstance(started.get("live"), bool) else None,
        teams=[TeamInfo(group=g, title=GROUP_TITLES.get(g, g), core=t.core, backup=t.backup)
               for g, t in drill.teams.items()],
        objectives=[Objective(id=t.id, title=t.title, measure=t.measure, step=t.step, within=t.within,
                              critical=t.critical) for t in drill.targets],
        started_wall=wall_of(started or None), t0_wall=f.t0, fault_wall=f.t_fault,
        recovery_wall=f.t_recovered, ended_wall=wall_of(f.finished) or f.t_end, status=status,
        abort_reason={"completed": None, "aborted": short(fin.get("reason")) or "no reason given"}.get(
            status, "the journal has no run.finished event (the run did not end cleanly)"))


def _timeline(journal: JournalRead, f: Facts) -> list[TimelineEntry]:
    """Every event but the link samples (the links chart shows those), in journal order."""
    return [TimelineEntry(seq=integer(e.get("seq")), type=str(e.get("type")),
                          subject=text(e.get("step") or e.get("alert") or e.get("fault") or e.get("link")),
                          ok=e.get("ok") if isinstance(e.get("ok"), bool) else None,
                          wall=wall_of(e), drill=num(e.get("drill")),
                          since_fault=f.since_fault(e) if f.t_fault is not None else None,
                          text=describe(e), text_zh=describe_zh(e))
            for e in journal.events if e.get("type") != "link.sample"]


def _notifications(journal: JournalRead, f: Facts) -> list[NotificationEntry]:
    return [NotificationEntry(channel=text(e.get("channel")), audience=text(e.get("audience")),
                              text=short(e.get("text"), 500), at=f.since_fault(e), wall=wall_of(e))
            for e in journal.of_type("notification.sent") if wall_of(e) is not None]


def _appendix(drill: Drill, scenario: Scenario | None, started: dict, journal: JournalRead,
              impact: PatientImpact, files: list[DataFile] | None) -> Appendix:
    scenario_info: dict[str, Any] = {}
    if scenario is not None:
        scenario_info = scenario.model_dump(mode="json", include={
            "load", "warmup", "faults", "observe", "max_duration", "steady_state"})
    config = started.get("config") if isinstance(started.get("config"), dict) else \
        drill.stack.model_dump(mode="json")
    return Appendix(config=config, levels=drill.levels.model_dump(mode="json"), scenario=scenario_info,
                    files=files or [], records=impact.total.requests, events=len(journal.events))


def build_scorecard(drill: Drill, journal: JournalRead, records: Iterable[Any], *,
                    scenario: Scenario | None = None, problems: list[str] | None = None,
                    files: list[DataFile] | None = None) -> ScoreCard:
    """The whole card from parsed inputs. `records` is consumed once (streaming); `problems` is read
    after that, so a lazy reader may append to it while being consumed."""
    problems = problems if problems is not None else []
    started = journal.first("run.started") or {}
    f = Facts(journal, _scale(drill, started))
    span = (f.t_end - f.origin) if f.t_end is not None and f.origin is not None else None
    offline = OfflineTally()
    records = offline.watch(records)
    shares = parts.incident_shares(drill, f, f.scale)
    if shares is not None:
        records = shares.feed(records)  # the level rule counts in the same single pass
    impact, series = tally(records, f.t_fault, f.t_recovered, f.scale, origin=f.origin,
                           span=span if span and span > 0 else None)
    if f.origin is None:  # no usable journal times: the series starts at the first record
        f.origin = series.origin_wall
    all_problems = list(journal.problems) + list(problems)
    if impact.malformed:
        all_problems.append(f"records: {impact.malformed} record(s) without a start time skipped")
    overview = _overview(drill, scenario, started, f, impact)
    rpo = parts.rpo(journal)
    lost_patients = (journal.of_type("rpo.measured") or [{}])[-1].get("lost_patients")
    level = parts.level(drill, f, impact, shares, lost_patients if isinstance(lost_patients, list) else [])
    steps = parts.steps(drill, f)
    offline_card = offline_result(journal, offline)
    na = not_applicable(drill.targets, drill.runbook, journal.events, level, impact,
                        *([scenario.steady_state.max_error_rate] if scenario else []),
                        offline_taken=_offline_known(offline_card, journal))
    targets = [measure_target(t, f, level, rpo, na.get(t.id), offline_card) for t in drill.targets]
    alerts = parts.alerts(f)
    steady = journal.of_type("steady_state")
    level_owner = _group_of(drill, "declare_level", "technical")
    findings = build_findings(Context(
        overview=overview, targets=targets, steps=steps, alerts=alerts, level=level, rpo=rpo,
        problems=all_problems, steady=steady[-1] if steady else None, level_owner=level_owner,
        tplus=f.tplus_of_rel))
    findings = with_response_findings(findings, journal.events, level, steps, overview)
    notifications = _notifications(journal, f)
    plan = check_plan(drill.levels.required, level, notifications, steps, incident=f.t_fault is not None)
    readiness = readiness_result(journal)
    people = people_result(drill, f, live=started.get("live") is True)
    findings = merged(findings, readiness_findings(readiness)
                      + golden_hour_findings(drill, people.golden_hour if people else [])
                      + plan_findings(plan, level, notifications, steps)
                      + split_brain_findings(journal.events, f.since_fault)
                      + offline_findings(offline_card, _group_of(drill, "back_entry", "clinical_support")),
                      overview)
    score, breakdown = overall_score(targets, level.ok, findings)
    verdict = verdict_of(targets, overview.status)
    return ScoreCard(overview=overview, verdict=verdict, exit_code=EXIT_CODES[verdict], score=score,
                     breakdown=breakdown, targets=targets, level=level, impact=impact, rpo=rpo,
                     offline=offline_card,
                     plan=plan, readiness=readiness, people=people, findings=findings, strengths=build_strengths(targets, level), steps=steps,
                     alerts=alerts, notifications=notifications, timeline=_timeline(journal, f),
                     series=series, links=parts.links(journal, f, series.bucket_real),
                     replication=parts.replication(journal, f),
                     appendix=_appendix(drill, scenario, started, journal, impact, files),
                     problems=all_problems)


def _group_of(drill: Drill, action: str, default: str) -> str:
    """The team group whose step runs `action`: it owns that part's findings."""
    return next((s.group for s in drill.runbook if s.action == action), default)


def _offline_known(card: OfflineResult | None, journal: JournalRead) -> int:
    """Offline records the run knows of: the patients' receipts, or what a back-entry read."""
    if card is None:
        return 0
    read = [e.get("read") for e in journal.of_type("offline.back_entered")]
    return max([card.taken, *(n for n in read if isinstance(n, int))])


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


def _then_problems(reader: RecordReader, problems: list[str]) -> Iterator[dict]:
    """The reader's records, then what it skipped appended to `problems` (read after the pass)."""
    yield from reader
    problems.extend(reader.problems)
