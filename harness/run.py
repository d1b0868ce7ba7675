"""One drill run, as a context manager: entering loads and checks the drill and opens the journal;
`execute()` brings the stack up and plays the scenario; leaving always reverts every fault, stops the
load, the monitor and the stack, closes the journal and writes the report — whatever happened.

    with DrillRun("drills/db-crash-failover.yaml", time_scale=60) as run:
        run.execute()
    run.card.exit_code  # 0 met, 1 missed, 3 aborted
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import yaml


from . import emergency_stop
from .clock import POLL_REAL, TIME_MODEL, DrillClock, Lane
from .control.server import ControlServer
from .errors import HarnessError
from .journal import Journal
from .load.master_address import LOOPBACK, is_loopback
from .load import profile as load_profile
from .load.runner import PatientLoad, check_config
from .monitor.monitor import Monitor
from .progress import Progress
from .rundir import RunDir, claim_run_dir
from .runbook.actions import ActionContext
from .board.injects import InjectPlayer
from .people.desk import Desk
from .runbook.engine import RunbookEngine, SimulatedOperator
from .safeguards import Breach, SafeguardWatch, emergency_stop as stop_breach, window_error_rate
from .stack import backends
from .stack.backups import BackupSchedule
from .stack.base import Stack
from .stack.process import record_pids
from .validate import load_drill


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: the run stops, cleans up and is reported as aborted."""


class Halted(HarnessError):
    """A safeguard held or the emergency stop was used: the run stops, cleans up, exits 3."""


# how often the run looks for an emergency stop and at its wall-clock budget (real seconds)
WATCH_EVERY = 5 * POLL_REAL


HALT_REVERT_WAIT = 60.0  # real s the teardown waits for a halt's reverts


class DrillRun:
    def __init__(self, drill_path: str | Path, *, out_dir: str | Path | None = None,
                 time_scale: float | None = None, backend: str = "local",
                 toxiproxy_url: str | None = None, live: bool = False,
                 backend_options: dict | None = None,
                 reports_root: str | Path = "reports",
                 progress: Callable[[str], None] | None = None, lang: str = "zh",
                 board_port: int = 0, load_bind: tuple[str, int] | None = None):
        # everything that can be wrong with the input is found here, before anything starts
        self.loaded = load_drill(Path(drill_path))
        self.drill, self.scenario = self.loaded.drill, self.loaded.scenario
        self.time_scale = float(time_scale or self.drill.time_scale)
        if self.time_scale <= 0:
            raise ValueError("time scale must be positive")
        self.backend_name = backend
        self.backend = backends.get(backend)  # unknown backend: InputError, nothing started
        lp = self.scenario.load
        # the plan's mix, the shape and the think times (declared: compressed), the patients' draw
        self.patient_seed = load_profile.patient_seed(lp, self.drill.name)
        self.load_config = load_profile.load_config(
            lp, time_scale=self.time_scale, seed=self.patient_seed,
            mixes=load_profile.plan_mixes(self.drill.plan) if lp.mix else None)
        self.lang = lang  # the report's language: zh (default) or en
        check_config(self.load_config)
        self.toxiproxy_url, self.live = toxiproxy_url, live
        self.backend_options = dict(backend_options or {})  # e.g. docker: base_image, toxiproxy_image
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        # a directory of its own, even for runs started together
        self.run_id, self.run_dir = claim_run_dir(reports_root, self.drill.name, stamp, out_dir)
        self.rd = RunDir.of(self.run_dir)
        self.say = progress or (lambda line: None)
        self.clock = DrillClock(self.time_scale)
        self.progress = Progress(self.say, self.clock)
        self.faults = self.loaded.faults
        self.stack: Stack | None = None
        self.load: PatientLoad | None = None
        self.monitor: Monitor | None = None
        self.engine: RunbookEngine | None = None
        self.backups: BackupSchedule | None = None
        self.control: ControlServer | None = None  # `hospital-drill ctl`: the scripts' moves
        self.board_port = board_port  # a live drill's command board (0: a free port)
        self.load_bind = load_bind or (LOOPBACK, 0)  # the Locust master's (host, port); 0: a free one
        self.board = None  # board.server.CommandBoard
        self.injects: InjectPlayer | None = None
        self.scenario_lane: Lane | None = None
        self.phase = "prepare"
        self.card = None
        self.reports: dict[str, Path] = {}
        self.abort_reason: str | None = None
        self.guard = SafeguardWatch(self.drill.safeguards)
        self.halted: Breach | None = None
        self.failed_step: dict | None = None  # a step.finished whose failure ends the incident
        self._halt_lock = threading.Lock()
        self._revert_lock = threading.Lock()  # one revert at a time: a halt's and the teardown's
        self._halt_reverted = threading.Event()  # a halt's reverts are done: the teardown may begin
        self._halt = threading.Event()  # a safeguard held: every wait of the run ends
        self._wake = threading.Event()  # halted, or the incident ended early
        self._closing = threading.Event()
        self._writes = None  # RecordTail of failed patient writes, for lost_writes without a ledger
        self._failed_writes = 0

    # --- context manager ------------------------------------------------------------------------
    def __enter__(self) -> "DrillRun":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.rd.records.mkdir(exist_ok=True)
        # the files as run (`extends` resolved), so the report can be rebuilt from this directory alone
        for path, data in ((self.rd.drill, self.loaded.drill_data),
                           (self.rd.scenario, self.loaded.scenario_data)):
            path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        self.journal = Journal(self.rd.journal, self.clock)
        self.journal.subscribe(self.progress.announce)
        self.journal.record("run.started", run_id=self.run_id, drill_name=self.drill.name,
                            scenario=self.scenario.name, failure_class=self.scenario.failure_class,
                            time_scale=self.time_scale, time_model=TIME_MODEL,
                            backend=self.backend_name,
                            live=self.live, drill_file=str(self.loaded.drill_path),
                            config=self.drill.stack.model_dump())
        self._started = time.monotonic()
        emergency_stop.mark_running(self.run_dir)
        threading.Thread(target=self._watch, daemon=True, name="safeguards").start()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        # a second Ctrl-C must not cut the cleanup short: it is bounded and it is the point
        sigs = (signal.SIGINT, signal.SIGTERM)
        old = [signal.signal(s, signal.SIG_IGN) for s in sigs] if _main_thread() else None
        try:
            self._closing.set()
            if self.halted is not None and self.abort_reason is None:
                self.abort_reason = self.halted.headline()  # a halt that met a run already ending
            if exc is not None and self.abort_reason is None:
                self.abort_reason = ("interrupted (Ctrl-C / SIGTERM)" if exc_type is Interrupted
                                     or exc_type is KeyboardInterrupt else f"{exc_type.__name__}: {exc}")
            self._teardown()
            status = "aborted" if self.abort_reason else "completed"
            self.journal.record("run.finished", status=status, reason=self.abort_reason)
            self.journal.close()
            emergency_stop.mark_ended(self.run_dir)
            self._report()
        finally:
            if old is not None:
                for s, handler in zip(sigs, old):
                    signal.signal(s, handler)
        # harness errors and interrupts become an aborted run with a report, not a traceback
        return exc_type is not None and issubclass(exc_type, (HarnessError, Interrupted,
                                                              KeyboardInterrupt))

    # --- the run --------------------------------------------------------------------------------
    def execute(self) -> None:
        """Bring-up (and the readiness checks, when the drill runs them), warm-up and steady state,
        then the incident: the faults at their times, and the run watches until patients are back
        (or the horizon, a halt, a failure that ends it)."""
        self._bring_up()
        self._readiness()
        self._prepare_response()
        lane = self._warm_up()
        self.phase = "incident"
        self.engine.arm()
        self._play_faults(lane)
        self._wait_for_end(lane)

    def _bring_up(self) -> None:
        self.phase = "bring-up"
        self.say(f"bringing up the mock hospital ({self.backend_name} backend) in {self.run_dir}")
        t0 = time.monotonic()
        try:
            self.stack = self.backend.up(self.run_dir, self.drill.stack, self.time_scale,
                                         toxiproxy_url=self.toxiproxy_url, **self.backend_options)
        except Exception as e:  # whatever failed the start, the run is aborted and reported (exit 3)
            what = str(e) if isinstance(e, HarnessError) else f"{e.__class__.__name__}: {e}"
            self.abort_reason = f"bring-up failed: {what}"
            raise HarnessError(self.abort_reason) from e
        self._check_health()
        self.journal.record("stack.up", seconds=round(time.monotonic() - t0, 2),
                            services=dict(self.stack.addresses), links=dict(self.stack.link_listen))
        self.say(f"stack up in {time.monotonic() - t0:.1f}s; patients enter at {self.stack.vip_url}")

    def _readiness(self) -> None:
        """The audit's live checks on the drill's own stack before warm-up and any fault
        (plan/readiness.py); a critical finding stops the drill when its `readiness` says so."""
        if not self.drill.readiness.runs(self.live):
            return
        from .plan.findings import headline
        from .plan.live import Basis
        from .plan.readiness import before_drill, drill_where
        self.phase = "readiness"
        basis = Basis.of_drill(self.drill, self.time_scale, drill_where(self.loaded.drill_path))
        outcome = before_drill(self.stack, self.journal, self.rd, self.drill, basis,
                               backend=self.backend_name, say=self.say)
        self._check_health()
        found = outcome.critical
        if found and self.drill.readiness.stop_on_critical:
            more = f" (and {len(found) - 1} more critical)" if len(found) > 1 else ""
            self.abort_reason = (f"stopped before any fault: found before the drill: "
                                 f"{headline(found[0].message)}{more}")
            raise HarnessError(self.abort_reason)

    def _prepare_response(self) -> None:
        """The board, and the runbook engine that follows it (both fail the run loudly)."""
        self.monitor = Monitor(self.journal, self.rd.records, self.stack.vip_url,
                               self.run_dir, self.scenario.steady_state, self.clock,
                               on_tick=self._tick, stack=self.stack, levels=self.drill.levels,
                               audit=self.drill.audit)
        # a fault that destroys data in place: the board reconciles acknowledged writes against the
        # database (monitor/data_rules.py)
        if any(f.loses_data for f in self.faults):
            from .monitor.data_rules import watch
            watch(self.monitor, self.rd.records, self.run_dir)
        ctx = ActionContext(self.stack, self.journal, self.monitor, self.drill, self.time_scale,
                            run_dir=self.rd)
        # a live drill's people claim and complete steps at the desk (the board, `ack`); an automatic
        # run's are modeled by the same roster rules
        operator = Desk(self.clock) if self.live else SimulatedOperator(self.clock)
        self.engine = RunbookEngine(self.drill.runbook, ctx, self.journal, operator, self.clock)
        self.journal.subscribe(self.engine.on_event, critical=True)
        self.journal.subscribe(self._on_step_failure)
        self.control = ControlServer(ctx, self.rd, self.clock, engine=self.engine,
                                     scenario_lane=lambda: self.scenario_lane).start()
        if self.live:
            from .board.server import CommandBoard  # Flask: only a live drill serves a page
            try:
                self.board = CommandBoard(self.journal, self.clock, operator, self.rd,
                                          drill_name=self.drill.name, title=self.drill.title,
                                          port=self.board_port,
                                          records=self.monitor.recent_records).start()
            except OSError as e:  # the port was taken after the command line checked it
                self.abort_reason = f"the command board could not listen on port {self.board_port}: {e}"
                raise HarnessError(self.abort_reason) from e
            # printed even with --quiet: the people need the address
            print(f"command board: {self.board.url}", flush=True)

    def _warm_up(self) -> Lane:
        """Patients in, T+0, faults prepared, backups on their schedule; the steady state judged over
        the second half of the warm-up. Returns the scenario's lane (its waits are the declared fault
        times, its work the injections)."""
        self.phase = "warm-up"
        lp = self.scenario.load
        self.load = PatientLoad.for_run(self.stack.vip_url, self.rd, users=lp.users,
                                        spawn_rate=lp.spawn_rate, workers=lp.workers,
                                        config=self.load_config, external_workers=lp.external_workers,
                                        expect_workers_max_wait=max(1, round(lp.wait_for_workers)),
                                        bind=self.load_bind)
        self.load.start()
        # recorded so that `hospital-drill down RUN_DIR` finds the load too if this process is killed
        record_pids(self.run_dir, {f"locust-{i}": pid for i, pid in enumerate(self.load.pids())})
        if self.load.join_command:
            self._announce_join(lp.external_workers, lp.wait_for_workers)
        self.load.wait_started(timeout=30)
        self._check_health()
        self.journal.record("load.started", users=lp.users, workers=lp.workers,
                            external_workers=lp.external_workers,
                            patient_seed=self.patient_seed, mix=lp.mix, shape=lp.shape,
                            master=(f"{self.load.bind_host}:{self.load.master_port}"
                                    if self.load.master_port else None))
        self.clock.start()
        self.load.mark_zero(self.clock.t0)
        self.monitor.lane.anchor(0.0, self.clock.t0)
        self.monitor.start()
        lane = self.scenario_lane = self.clock.lane("scenario", 0.0, self.clock.t0)
        self.injects = InjectPlayer(self.scenario.injects, self.journal, self.clock).start()
        self.journal.record("scenario.started")
        for fault in self.faults:  # what takes the harness time to start, started ahead of its time
            fault.prepare(self.stack, self.clock.wall_at(fault.spec.at))
        if self.drill.stack.backups is not None:
            self.backups = BackupSchedule(self.stack, self.journal, self.clock, self.drill.stack.backups)
            self.backups.start()
        lane.wait_until(self.scenario.warmup, self._halt)
        self._check_health()
        steady = self.monitor.steady_state(since=self.clock.wall_at(self.scenario.warmup / 2))
        self.journal.record("steady_state", **steady)
        if not steady["ok"]:
            self.abort_reason = f"no steady state before the faults: {steady}"
            raise HarnessError(self.abort_reason)
        return lane

    def _announce_join(self, count: int, wait: float) -> None:
        """Printed even with --quiet: the people starting the workers need the line."""
        print(f"patient load: waiting up to {wait:g}s (real) for {count} external worker(s); on each "
              f"worker machine run:\n  {self.load.join_command}", flush=True)
        if not is_loopback(self.load.bind_host):
            print(f"patient load: the Locust master listens on {self.load.bind_host}:"
                  f"{self.load.master_port} (--load-bind); open it to the worker machines only",
                  flush=True)

    def _play_faults(self, lane: Lane) -> None:
        for fault in sorted(self.faults, key=lambda f: f.spec.at):
            self._check_health()
            lane.wait_until(fault.spec.at, self._wake)
            self._check_health()
            if self.failed_step is not None:
                break  # the incident is over: no fault goes in after it
            wall = time.time()
            # the board follows the fault from its first moment: what it sees while the fault is
            # still going in (a container kill takes a while) is already the fault's
            self.monitor.follow(lane.at(wall), wall)
            detail = fault.inject(self.stack)
            if self.monitor.incident_start is None:
                # patients are judged from when the fault has taken hold, not from when it began
                self.monitor.begin_incident(time.time(), fault_wall=wall,
                                            fault_drill=lane.at(wall))
            self.journal.record("fault.injected", wall=wall, lane=lane, fault=fault.id,
                                fault_type=fault.type_name, target=fault.target, detail=detail)
            if fault.spec.duration is not None:
                self._revert_later(fault, lane)

    def _check_health(self) -> None:
        """A safeguard that held halts the run; a critical part (runbook engine, monitor) that failed
        ends it loudly."""
        if self.halted is not None:
            self.abort_reason = self.halted.headline()
            raise Halted(self.abort_reason)
        if self.journal.failure is not None:
            self.abort_reason = f"harness error: {self.journal.failure}"
            raise HarnessError(self.abort_reason)

    def _wait_for_end(self, lane: Lane) -> None:
        last_fault = max(f.spec.at for f in self.faults)
        horizon = self.scenario.max_duration or (
            last_fault + max((t.within or 0) for t in self.drill.targets if t.measure != "rpo")
            + self.scenario.observe)
        while lane.now() < horizon:
            self._check_health()
            if self.failed_step is not None:
                self._end_incident(lane, horizon)
                return
            rec = self.monitor.recovered_at
            if rec is not None:
                self.phase = "recovered"
                # keep watching for `observe` (declared) after patients were back
                if (self.engine.settled()
                        and time.time() >= rec + self.clock.real(self.scenario.observe)):
                    return
            lane.wait(min(5.0, horizon - lane.now()), self._wake)
        self.journal.record("run.horizon", drill_limit=horizon,
                            recovered=self.monitor.recovered_at is not None)

    def _on_step_failure(self, event: dict) -> None:
        """Journal listener: a failed step that the drill says ends the incident wakes the run."""
        if (event.get("type") == "step.finished" and not event.get("ok")
                and self.phase in ("incident", "recovered") and self.failed_step is None
                and self.drill.ends_incident(event.get("step", ""))):
            self.failed_step = event
            self._wake.set()

    def _end_incident(self, lane: Lane, horizon: float) -> None:
        """The incident phase ends early: the steps already running get up to `observe` (declared)
        to finish, then the run tears down and is scored as it stands."""
        failed = self.failed_step or {}
        error = (failed.get("detail") or {}).get("error")
        self.journal.record("incident.ended", step=failed.get("step", ""), error=error,
                            reason=f"step {failed.get('step')} failed and its failure ends the incident "
                                   f"(no later step can bring patients back)")
        self.phase = "incident ended"
        limit = min(horizon, lane.now() + self.scenario.observe)
        while lane.now() < limit and not self.engine.settled():
            self._check_health()
            lane.wait(min(1.0, limit - lane.now()), self._halt)

    # --- safeguards -----------------------------------------------------------------------------
    def halt(self, breach: Breach) -> None:
        """Stop the drill now: every fault reverted at once, the cause journalled, every wait ended.
        Safe from any thread; the first breach wins and a halt during teardown changes nothing."""
        with self._halt_lock:
            if self.halted is not None or self._closing.is_set():
                return
            self.halted = breach
        self.journal.record("run.halted", safeguard=breach.safeguard, reason=breach.reason,
                            evidence=breach.evidence, phase=self.phase)
        self._halt.set()
        self._wake.set()
        if (self.phase in ("prepare", "bring-up", "readiness")
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._halt_reverted.set()
            os.kill(os.getpid(), signal.SIGINT)  # cut the start short, as Ctrl-C would
            return
        try:
            for fault in self.faults:
                self._revert(fault)
        finally:
            self._halt_reverted.set()

    def _watch(self) -> None:
        """Several times a second: the emergency stop and the wall-clock budget."""
        while not self._closing.wait(WATCH_EVERY):
            request = emergency_stop.requested(self.run_dir)
            breach = (stop_breach(request) if request is not None
                      else self.guard.elapsed(time.monotonic() - self._started))
            if breach is not None:
                self.halt(breach)
                return

    def _look_at_board(self, monitor: Monitor) -> None:
        """At each look at the board: the error rate and the writes lost, against the safeguards."""
        if not self.guard.watches_board or self.halted is not None:
            return
        rate, requests = window_error_rate(monitor.recent_records())
        lost, counted = self._lost_writes(monitor)
        breach = self.guard.look(monitor.lane.now(), rate, requests, lost, counted)
        if breach is not None:
            self.halt(breach)

    def _lost_writes(self, monitor: Monitor) -> tuple[int | None, str]:
        if self.drill.safeguards.lost_writes is None:
            return None, ""
        ledger = monitor.ledger
        if ledger is not None and ledger.ok is not None:
            return len(ledger.missing), "acknowledged consultations missing from the database"
        if self._writes is None:
            from .load.records import RecordTail
            self._writes = RecordTail(self.rd.records)
        start = monitor.incident_start
        for rec in self._writes.poll():
            if (rec.get("write_id") and not rec.get("ok") and start is not None
                    and rec.get("t", 0) >= start and rec.get("persona") != "attacker"):
                self._failed_writes += 1
        return self._failed_writes, "patient writes that failed since the incident began"

    def _revert_later(self, fault, scenario: Lane) -> None:
        # on a lane of its own from where the scenario is now (anchored at T+0, the real seconds
        # since would count 1:1 and the revert would come minutes of drill time late)
        acc = scenario.account()
        lane = self.clock.lane(f"revert:{fault.id}", acc["t"], self.clock.wall(), acc["cause"])

        def revert() -> None:
            lane.wait_until(fault.spec.at + fault.spec.duration)
            self._revert(fault, lane)
        threading.Thread(target=revert, daemon=True, name=f"revert-{fault.id}").start()

    def _revert(self, fault, lane: Lane | None = None) -> None:
        # one at a time: the teardown's revert waits for a halt's still under way, then skips it
        # (side by side, a crashed primary being restarted was found "already running" by the other)
        with self._revert_lock:
            if not (fault.injected or fault.prepared) or self.stack is None:
                return
            try:
                detail = fault.revert(self.stack)
                fault.injected = fault.prepared = False
                self.journal.record("fault.reverted", lane=lane, fault=fault.id,
                                    fault_type=fault.type_name, target=fault.target, detail=detail)
            except Exception as e:  # keep reverting the others; say loudly what stayed behind
                self.journal.record("fault.revert_failed", fault=fault.id, error=str(e))

    def _teardown(self) -> None:
        self.phase = "teardown"
        if self.halted is not None:
            # the halt's reverts run on the thread that halted: the faults are out before the rest
            # of the drill is taken down (bounded: a revert that hangs must not keep the stack up)
            self._halt_reverted.wait(HALT_REVERT_WAIT)
        steps = [
            ("backups", lambda: self.backups and self.backups.stop()),
            ("runbook", lambda: self.engine and self.engine.stop()),
            # after the steps' stop (it ends their moves' waits), before anything a move touches
            ("control", lambda: self.control and self.control.stop()),
            ("injects", lambda: self.injects and self.injects.stop()),
            ("faults", lambda: [self._revert(f) for f in self.faults]),
            ("load", self._stop_load),
            ("monitor", lambda: self.monitor and self.monitor.stop()),
            ("rpo", self._measure_rpo),
            ("stack", lambda: self.stack and self.stack.down()),
            # last: the people watching see the halt and the end on it while the rest comes down
            ("board", lambda: self.board and self.board.stop()),
        ]
        for name, step in steps:
            try:
                step()
            except BaseException as e:  # every part gets its turn, whatever the one before did
                self.journal.record("teardown.error", part=name, error=f"{e.__class__.__name__}: {e}")
        self.say("stack down; every fault reverted")

    def _stop_load(self) -> None:
        if self.load is None:
            return
        exits = self.load.stop()
        self.journal.record("load.stopped", exits=exits, requests=self.load.requests_by_process())

    def _measure_rpo(self) -> None:
        """After a crash, a data-loss fault or any promotion: lost acknowledged writes (rpo.measured)
        and, after a promotion, a former primary still taking writes (db.split_brain)."""
        from .stack.fencing import split_brain
        from .stack.rpo import measure_rpo
        if self.stack is None:
            return
        events = list(self.journal.events)
        two = split_brain(events, self.stack)
        if two is not None:
            self.journal.record("db.split_brain", **two)
        fields = measure_rpo(events, self.stack, self.rd.records, self.drill)
        if fields is not None:
            self.journal.record("rpo.measured", **fields)

    def _report(self) -> None:
        from .report.render import summary_line, write_reports
        from .score.scorecard import score_run
        try:
            self.card = score_run(self.run_dir)
            self.reports = write_reports(self.run_dir, self.card, lang=self.lang)
            self.say(summary_line(self.card))
        except Exception as e:
            self.say(f"report could not be written: {e.__class__.__name__}: {e}")
            raise

    # --- progress -------------------------------------------------------------------------------
    def _tick(self, monitor: Monitor) -> None:
        """At each look at the board: the safeguards, then the status line."""
        try:
            self._look_at_board(monitor)
        except Exception as e:  # the board must go on; a safeguard that cannot judge says so
            self.journal.record("harness.error", part="safeguards", error=f"{e.__class__.__name__}: {e}")
        self.progress.status(self.phase, monitor, self.engine)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
