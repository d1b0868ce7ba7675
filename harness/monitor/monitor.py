"""The monitoring board: patient request records + the synthetic patient → alerts and recovery.

Time: the board samples every SAMPLE_EVERY drill seconds (a declared interval, compressed by the
scale) and walks the test account in each sample, in its own thread, so the walk's real duration
counts 1:1. Its alerts and the recovery are stamped with the board's own lane (clock.Lane), anchored
at whatever last changed the world (a fault injected or reverted, a runbook action finished): a
harness's real overhead elsewhere is never multiplied by the scale into a figure.

Windows of patient records are drill time too (the steady-state window, the plan's observation
window): patients' think times are declared, so a window holds as many journeys at any scale.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..clock import DrillClock, Lane
from ..journal import Journal
from ..load.records import RecordTail
from ..models import Audit, Levels, SteadyState
from ..registry import Registry
from .probe import ProbeResult, SyntheticPatient

SAMPLE_EVERY = 5.0  # drill seconds between two looks at the board


def observes_only(action: str | None) -> bool:
    """An action that only looks (the three-step check, declaring the level): it changes nothing."""
    if not action:
        return False
    from ..runbook.actions import ACTIONS  # at call time: the runbook's registry, no cycle
    return action in ACTIONS and ACTIONS[action].changes_stack is False
PROBE_TIMEOUT = 2.0  # real seconds a test-account request may take (a machine's time, never scaled)
# events after which the world may have changed: the board's lane is re-anchored at each
CAUSES = ("fault.injected", "fault.reverted", "step.finished", "control.move")


def changes_world(event: dict) -> bool:
    """Whether a journal event may have changed what the board sees: a fault injected or reverted,
    a finished step (but neither a modeled manual step nor one that only looks), or a script's move
    (`hospital-drill ctl`) that ran an action changing the stack (not a `wait`, not `status`)."""
    kind = event.get("type")
    if kind not in CAUSES:
        return False
    if kind == "step.finished":
        return event.get("kind") != "manual" and not observes_only(event.get("action"))
    if kind == "control.move":
        return event.get("action") is not None and not observes_only(event.get("action"))
    return True

@dataclass
class Observation:
    """What one evaluation of the alert rules sees."""
    now: float
    stats: dict  # the recent window: requests, failed, error_rate, p95_ms, third_party_failed
    probe: ProbeResult | None  # the synthetic patient's latest walk
    monitor: "Monitor"  # for rules that read samples (e.g. link utilisation)


@dataclass(frozen=True)
class Rule:
    """An alert: raised after `raise_after` bad evaluations in a row, cleared after `clear_after` good."""
    name: str
    severity: str
    describe: str
    check: Callable[[Observation], bool]
    raise_after: int = 2
    clear_after: int = 3
    blocks_recovery: bool = False  # while raised, patients are not back (e.g. their data is missing)
    patient_facing: bool = True  # raised during an incident, patients must be seen to recover
    # ground truth only the harness has (e.g. the load's acknowledged write ids): it may hold back
    # recovery, but it is journaled as `truth.*`, never as an alert — it is not detection
    ground_truth: bool = False


# the board's own rules (below), then the modules that register the rules and samplers of the plan's
# other failure classes when the board is first asked for them; the board evaluates in this order
BUILTIN = (__name__, *(f"{__package__}.{m}" for m in ("data_rules", "network_rules",
                                                       "redundancy_rules", "service_rules")))
RULES: Registry[Rule] = Registry("alert rule", group="hospital_drill.rules", builtin=BUILTIN)
Sampler = Callable[["Monitor", float], None]
# run each tick before the rules, e.g. to read link byte counters: `SAMPLERS.add(name, sampler)`
SAMPLERS: Registry[Sampler] = Registry("sampler", group="hospital_drill.samplers", builtin=BUILTIN)


def rule(name: str, severity: str, describe: str, *, raise_after: int = 2, clear_after: int = 3,
         blocks_recovery: bool = False, patient_facing: bool = True, ground_truth: bool = False):
    """Register an alert rule: the decorated function says whether the condition is bad now."""
    def deco(check: Callable[[Observation], bool]):
        RULES.add(name, Rule(name, severity, describe, check, raise_after, clear_after,
                             blocks_recovery, patient_facing, ground_truth),
                  origin=f"{check.__module__}.{check.__qualname__}")
        return check
    return deco


def db_state(health_db: str | None) -> str | None:
    """What the app's health check says of its database: None (no answer), ok, slow or down. A
    database that answers late is degraded, not unreachable."""
    if health_db in (None, "ok"):
        return health_db
    text = str(health_db).lower()
    return "slow" if any(w in text for w in ("timeout", "timed out", "canceling statement",
                                              "connections busy")) else "down"


@rule("synthetic_journey_failed", "critical", "test-account patient journey fails")
def _journey_failed(o: Observation) -> bool:
    return bool(o.probe and not o.probe.ok)


@rule("db_unreachable", "critical", "the app reports its database unreachable")
def _db_unreachable(o: Observation) -> bool:
    return bool(o.probe and db_state(o.probe.db) == "down")


@rule("db_slow", "warning", "the app's database answers too late: degraded, not down")
def _db_slow(o: Observation) -> bool:
    return bool(o.probe and db_state(o.probe.db) == "slow")


@rule("patient_latency", "warning",
      "patients' requests slower than the patient SLO (p95 over the window): service degraded")
def _patient_latency(o: Observation) -> dict | bool:
    limit_ms = o.monitor.levels.patient_slo.latency * 1000
    if o.stats["requests"] >= 10 and o.stats["p95_ms"] > limit_ms:
        return {"p95_ms": round(o.stats["p95_ms"], 1), "slo_ms": limit_ms}
    return False


@rule("app_unreachable", "critical", "the patient entry point does not answer")
def _app_unreachable(o: Observation) -> bool:
    return bool(o.probe and not o.probe.ok and o.probe.failed_step == "health"
                and o.probe.status is None)


@rule("patient_error_rate", "critical", "patients' error rate far above steady state")
def _patient_errors(o: Observation) -> bool:
    threshold = max(0.25, 5 * o.monitor.steady.max_error_rate)
    return o.stats["requests"] >= 10 and o.stats["error_rate"] > threshold


HOTLINE_STREAK = 3  # failed requests in a row after which a patient picks up the phone
HOTLINE_CALLERS = 3  # this many callers is a signal, not one unlucky patient


@rule("hotline_calls", "warning",
      "patients whose journeys keep failing are calling the hotline", raise_after=1)
def _hotline_calls(o: Observation) -> dict | bool:
    callers = o.monitor.callers()
    return {"callers": len(callers), "sample": sorted(callers)[:5]} \
        if len(callers) >= HOTLINE_CALLERS else False


@rule("third_party_errors", "warning", "payments failing on third-party interfaces")
def _third_party(o: Observation) -> bool:
    return o.stats["third_party_failed"] >= 3


class Window:
    """Recent request records (end time, ok, patient, journey, status) within `span` real seconds."""

    def __init__(self, span: float):
        self.span = span
        self.items: deque[dict] = deque()

    def add(self, rec: dict) -> None:
        self.items.append(rec)

    def trim(self, now: float) -> None:
        # by end time: a request that timed out after `span` seconds must still be seen once
        while self.items and self.items[0]["t"] + self.items[0].get("ms", 0) / 1000 < now - self.span:
            self.items.popleft()

    def stats(self, since: float | None = None) -> dict:
        items = [r for r in self.items if since is None or r["t"] >= since]
        n = len(items)
        failed = sum(1 for r in items if not r.get("ok"))
        ms = sorted(r.get("ms", 0.0) for r in items)
        return {"requests": n, "failed": failed, "error_rate": failed / n if n else 0.0,
                "p95_ms": ms[int(0.95 * (n - 1))] if n else 0.0,
                "third_party_failed": sum(1 for r in items if not r.get("ok")
                                          and r.get("journey") == "payment"
                                          and r.get("status") in (502, 504))}


class Monitor(threading.Thread):
    def __init__(self, journal: Journal, records_dir: Path, vip_url: str, run_dir: Path,
                 steady: SteadyState, clock: DrillClock,
                 on_tick: Callable[["Monitor"], None] | None = None, stack=None,
                 levels: Levels | None = None, probe: SyntheticPatient | None = None,
                 audit: Audit | None = None):
        super().__init__(name="monitor", daemon=True)
        self.journal, self.steady, self.clock, self.scale = journal, steady, clock, clock.scale
        self.levels = levels or Levels()
        self.audit = audit  # the plan's scheduled data audit, if it has one (data_rules.py)
        self.stack = stack  # samplers read link counters through it
        self.samples: dict[str, deque] = {}  # sampler name -> recent samples
        self.interval = SAMPLE_EVERY / clock.scale  # real seconds, for samplers that rate per second
        self.window = Window(span=steady.window / clock.scale)
        self.tail = RecordTail(Path(records_dir))
        # injectable: a test walks a scripted test account
        self.probe = probe or SyntheticPatient(vip_url, Path(run_dir) / "probes.jsonl",
                                               timeout=PROBE_TIMEOUT, pay=steady.probe_payment)
        self.lane: Lane = clock.lane("monitor")
        self.lanes: dict[str, Lane] = {}  # watchers beside the board, each on a lane of its own
        self.on_tick = on_tick
        self._stop_evt = threading.Event()
        self._lock = threading.Lock()
        self.totals = {"requests": 0, "failed": 0}
        self.active: dict[str, dict] = {}  # alerts on the board
        self.truth: dict[str, dict] = {}  # ground truth the board cannot see (Rule.ground_truth)
        self._streak: dict[str, int] = {}
        self._onset: dict[str, tuple[dict, dict]] = {}  # rule → (onset account, lane account then)
        self._seen_down = float("-inf")  # drill time of the latest patient-facing alert raised
        self.baseline_error_rate = 0.0
        # incident bookkeeping (set by the run when the first fault goes in)
        self.incident_start: float | None = None
        self.degraded = False
        self.recovered_at: float | None = None
        self._candidate: float | None = None
        self.incident_patients: set[str] = set()
        self.incident_failed: set[str] = set()
        self.ledger = None  # data_rules.ConsultationLedger when the run reconciles patient data
        self._unblocked_at = 0.0
        self._failed_step: str | None = None  # where the test journey failed last
        self.closers: list[Callable[[], None]] = []  # what samplers opened, closed on stop
        self.incident_drill: float | None = None  # drill time of the first fault
        self._incident: list[tuple] = []  # (t, patient, ok, ms, journey) for the level rule
        self._newest_record = 0.0  # wall start of the newest record ingested
        self._fail_streak: dict[str, int] = {}  # patient → failed requests in a row
        journal.subscribe(self._on_event, critical=True)

    # --- lifecycle ------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop_evt.set()
        if self.is_alive():
            self.join(timeout=PROBE_TIMEOUT * 8)
        self.probe.close()
        for close in self.closers:
            close()
        if self.ledger is not None:
            self.ledger.close()

    def run(self) -> None:
        while self.lane.wait(SAMPLE_EVERY, self._stop_evt):
            self.sample()

    def sample(self) -> None:
        """One look at the board: walk the test account (its real time counts), then evaluate."""
        self.probe.walk()
        self.tick()

    def _on_event(self, event: dict) -> None:
        """The board's time follows the world's: re-anchor at faults, at finished actions and at
        scripts' moves that change the stack (a modeled manual step, the plan's check and
        classification, a script's wait, change nothing the board can see)."""
        if changes_world(event):
            for lane in (self.lane, *list(self.lanes.values())):
                lane.anchor_to(event)

    def follow(self, t: float, wall: float) -> None:
        """Anchor the board and its watchers at a cause that is about to be journaled (a fault being
        injected): its journal event re-anchors them again, with its seq, once it is written."""
        for lane in (self.lane, *list(self.lanes.values())):
            lane.anchor(t, wall)

    def watch_lane(self, name: str) -> Lane:
        """A lane for a watcher that runs beside the board (e.g. the egress lines'), anchored where
        the board is and re-anchored with it. Rules whose evidence comes from it name it in their
        evidence (`"lane": name`), and their alerts are stamped no earlier than its time."""
        acc = self.lane.account()
        lane = self.lanes[name] = self.clock.lane(f"monitor:{name}", acc["t"], self.clock.wall(),
                                                  acc["cause"])
        return lane

    # --- evaluation -----------------------------------------------------------------------------
    def ingest(self) -> None:
        keep_until = (None if self.incident_start is None
                      else self.incident_start + 4 * self.levels.observe / self.scale)
        for rec in self.tail.poll():
            if rec.get("persona") == "attacker":
                continue  # bots of a flood are not patients
            with self._lock:
                self.window.add(rec)
                self.totals["requests"] += 1
                self.totals["failed"] += 0 if rec.get("ok") else 1
                self._newest_record = max(self._newest_record, rec["t"])
                who = rec.get("patient")
                self._fail_streak[who] = 0 if rec.get("ok") else self._fail_streak.get(who, 0) + 1
                if self.incident_start is not None and rec["t"] >= self.incident_start:
                    self.incident_patients.add(rec.get("patient"))
                    if not rec.get("ok"):
                        self.incident_failed.add(rec.get("patient"))
                    if rec["t"] < keep_until:
                        self._incident.append(rec)

    def tick(self) -> None:
        now = self.clock.wall()
        self.ingest()
        with self._lock:
            self.window.trim(now)
            stats = self.window.stats()
        for sample in SAMPLERS.values():
            try:
                sample(self, now)
            except Exception:  # a sampler that cannot read this tick must not stop the board
                pass
        probes = self.probe.latest(1)
        last = probes[0] if probes else None
        obs = Observation(now, stats, last, self)
        for r in list(RULES.values()):
            bad = r.check(obs)  # a rule may answer a dict of evidence: it goes into the alert
            self._evaluate(r, bool(bad), stats, last, bad if isinstance(bad, dict) else None)
        if self.incident_start is not None:
            self._check_recovery(now, last)
        if self.on_tick:
            self.on_tick(self)

    def _evaluate(self, rule: Rule, is_bad: bool, stats: dict, probe: ProbeResult | None,
                  evidence: dict | None = None) -> None:
        streak = self._streak.get(rule.name, 0)
        streak = max(1, streak + 1) if is_bad else min(-1, streak - 1)
        self._streak[rule.name] = streak
        held = self.truth if rule.ground_truth else self.active
        kind = "truth" if rule.ground_truth else "alert"
        now = self.clock.wall()
        where = {k: evidence.pop(k) for k in ("lane", "since_wall", "every")
                 if evidence and k in evidence}
        if is_bad and streak == 1:  # first seen now: the onset its alert is reckoned from
            self._onset[rule.name] = (self.lane.observed(now, SAMPLE_EVERY), self.lane.account(now))
        if is_bad and streak >= rule.raise_after and rule.name not in held:
            lane, account = self._stamp(rule.name, now, where)
            detail = {"error_rate": round(stats["error_rate"], 3), "requests": stats["requests"]}
            if probe is not None and not probe.ok:
                detail.update(probe_step=probe.failed_step, probe_error=probe.error)
            detail.update(evidence or {})
            held[rule.name] = self.journal.record(
                f"{kind}.raised", lane=lane, account=account, alert=rule.name,
                severity=rule.severity, detail=detail, describe=rule.describe)
            if not rule.ground_truth and rule.patient_facing:
                self._seen_down = max(self._seen_down, held[rule.name]["drill"] or 0.0)
            if self.incident_start is not None and rule.patient_facing and not rule.ground_truth:
                self.degraded = True
        elif not is_bad and -streak >= rule.clear_after and rule.name in held:
            del held[rule.name]
            cleared = self.journal.record(f"{kind}.cleared", lane=self.lane, alert=rule.name)
            if rule.blocks_recovery:
                self._unblocked_at = cleared["wall"]  # recovery cannot have begun before this

    def _stamp(self, alert: str, now: float, where: dict) -> tuple[Lane, dict]:
        """The lane and account an alert is journaled with: the board's, from the onset of its
        streak (waits before the onset overlapped the machines' work: clock.Lane.observed), or a
        watcher's, from the onset it names (`since_wall`, sampled `every` drill s), whichever is
        later — an alert is no earlier than the evidence it stands on."""
        end = self.lane.account(now)
        base, start = self._onset.get(alert, (end, end))
        lane, account = self.lane, self.lane.since(start, base, now)
        other = self.lanes.get(where.get("lane"))
        if other is not None:
            since = where.get("since_wall")
            o_acc = other.account(now) if since is None else other.since(
                other.account(since), other.observed(since, where.get("every", SAMPLE_EVERY)), now)
            if o_acc["t"] > account["t"]:
                lane, account = other, o_acc
        return lane, account

    def _check_recovery(self, now: float, last: ProbeResult | None) -> None:
        """Back = the test journey succeeds and patients' error rate is at steady state again,
        both holding since the same moment (which is the recovery time reported)."""
        if self.recovered_at is not None or not self.degraded:
            return
        if last is None:
            return
        if any(RULES[a].blocks_recovery for a in (*self.active, *self.truth) if a in RULES):
            self._candidate = None  # e.g. patients' records still missing: not back yet
            return
        if not last.ok:
            self._candidate = None
            self._failed_step = last.failed_step
            return
        if self._candidate is None:
            # back from when the step that failed worked again: a walk started before a failover
            # may only reach that step (e.g. its payment) after it
            passed = last.at.get(self._failed_step, last.t) if self._failed_step else last.t
            self._candidate = max(passed, self._unblocked_at)
            return
        probes = self.probe.since(self._candidate)
        with self._lock:
            after = self.window.stats(since=self._candidate)
        limit = max(2 * self.baseline_error_rate, self.steady.max_error_rate)
        if after["requests"] >= 10 and after["error_rate"] > limit:
            self._candidate = None  # patients still failing: not back yet
            return
        if len(probes) >= 2 and all(p.ok for p in probes) and after["requests"] >= 10:
            self.recovered_at = self._candidate
            # journaled once sure; it began at the candidate moment, on the board's lane
            began = self.lane.observed(self._candidate, SAMPLE_EVERY)
            if began["t"] < self._seen_down:
                # the board saw patients failing later than the cap would put their return: back is
                # after that, as the board counted it
                began = self.lane.account(self._candidate)
            self.journal.record("recovery", lane=self.lane, at_wall=self._candidate,
                                at_drill=round(began.pop("t"), 3), at_chain=began,
                                detail={"probes_ok": len(probes),
                                        "error_rate": round(after["error_rate"], 4),
                                        "requests": after["requests"]})

    # --- questions the run and the runbook ask --------------------------------------------------
    def begin_incident(self, wall: float, fault_wall: float | None = None,
                       fault_drill: float | None = None) -> None:
        with self._lock:
            self.incident_start = wall
            self.incident_drill = fault_drill
        # an alert raised while the fault was still being injected (`fault_wall` on) is the incident's
        if fault_wall is not None and any(e["wall"] >= fault_wall and RULES[a].patient_facing
                                          for a, e in list(self.active.items()) if a in RULES):
            self.degraded = True

    def steady_state(self, since: float) -> dict:
        self.ingest()
        with self._lock:
            stats = self.window.stats(since=since)
        probes = self.probe.since(since)
        ok = (stats["requests"] >= 10 and stats["error_rate"] <= self.steady.max_error_rate
              and bool(probes) and probes[-1].ok)
        self.baseline_error_rate = stats["error_rate"]
        return {"ok": ok, "error_rate": round(stats["error_rate"], 4),
                "requests": stats["requests"], "p95_ms": round(stats["p95_ms"], 1),
                "probe_ok": bool(probes) and probes[-1].ok}

    def observed_share(self, levels: Levels, lane: Lane, stop: threading.Event | None = None) -> dict:
        """The level rule's share over the plan's observation window from the incident's start, as
        the board shows it (no ground truth): wait, on the caller's lane, until the window has
        passed (declared) and its records have arrived (real), then judge."""
        from ..score.level import affected_share
        start = self.incident_start if self.incident_start is not None else self.clock.wall()
        t_start = self.incident_drill if self.incident_drill is not None else lane.now()
        lane.wait_until(t_start + levels.observe, stop)
        end = start + levels.observe / self.scale

        def arrived() -> bool:
            self.ingest()
            with self._lock:
                return self._newest_record >= end
        lane.poll(arrived, budget=levels.observe, stop=stop)
        with self._lock:
            records = list(self._incident)
        seen = affected_share(records, start, end, levels.patient_slo).as_dict()
        seen["basis"] = (f"share of patients affected (failed, or slower than "
                        f"{levels.patient_slo.latency:g}s) over the {levels.observe:g}s observation "
                        f"window from the incident's start")
        return seen

    def callers(self) -> set:
        """Patients whose last HOTLINE_STREAK requests all failed: the ones calling the hotline."""
        with self._lock:
            return {p for p, n in self._fail_streak.items() if n >= HOTLINE_STREAK and p is not None}

    def affected(self) -> dict:
        """Patients with a failed request since the incident began, of those active since then."""
        self.ingest()
        with self._lock:
            active, failed = len(self.incident_patients), len(self.incident_failed)
        return {"affected": failed, "active": active, "share": failed / active if active else 0.0}

    def recent_records(self) -> list[dict]:
        """A copy of the recent patient records (runbook threads read while the monitor ingests)."""
        with self._lock:
            return list(self.window.items)

    def snapshot(self) -> dict:
        with self._lock:
            stats = self.window.stats()
            totals = dict(self.totals)
        return {**totals, "window_error_rate": stats["error_rate"], "alerts": sorted(self.active)}
