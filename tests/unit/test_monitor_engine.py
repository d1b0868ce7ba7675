"""The monitor and the runbook engine on a fake clock with a scripted test account: no stack, no
threads of their own for the monitor (its samples are driven here), and drill times that must come
out the same at any scale."""
from __future__ import annotations

import json
import threading
import time

import pytest

from harness.clock import DrillClock
from harness.journal import Journal
from harness.models import Levels, RunbookStep, SteadyState
from harness.monitor.monitor import SAMPLE_EVERY, Monitor
from harness.monitor.probe import ProbeResult
from harness.runbook.actions import ActionContext
from harness.runbook.engine import RunbookEngine, SimulatedOperator


class FakeTime:
    """Wall time that moves only when the code under test sleeps or works (`work`)."""

    def __init__(self, start: float = 1_000_000.0):
        self.t = start
        self.lock = threading.Lock()

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.t += seconds

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        self.sleep(seconds)
        return event.is_set()

    def clock(self, scale: float) -> DrillClock:
        return DrillClock(scale, now=self.now, sleep=self.sleep, wait=self.wait)


class ScriptedProbe:
    """The test account: walks succeed until `fail_from`, fail until `ok_from` (fake wall), each walk
    taking `walk_s` real seconds of the fake time."""

    def __init__(self, ft: FakeTime, walk_s: float = 0.05):
        self.ft, self.walk_s = ft, walk_s
        self.fail_from = self.ok_from = float("inf")
        self.results: list[ProbeResult] = []

    def walk(self) -> ProbeResult:
        t = self.ft.now()
        self.ft.sleep(self.walk_s)
        ok = not (self.fail_from <= t < self.ok_from)
        res = ProbeResult(t=t, ok=ok, ms=self.walk_s * 1000, failed_step=None if ok else "health",
                          status=200 if ok else 503, db="ok" if ok else "database unavailable: refused",
                          error=None if ok else "HTTP 503")
        self.results.append(res)
        return res

    walk_now = walk

    def since(self, wall: float) -> list[ProbeResult]:
        return [r for r in self.results if r.t >= wall]

    def latest(self, n: int = 1) -> list[ProbeResult]:
        return self.results[-n:]

    def close(self) -> None:
        pass


def board(tmp_path, scale: float):
    ft = FakeTime()
    clock = ft.clock(scale)
    (tmp_path / "records").mkdir(exist_ok=True)
    journal = Journal(tmp_path / "journal.jsonl", clock)
    probe = ScriptedProbe(ft)
    m = Monitor(journal, tmp_path / "records", "http://127.0.0.1:9", tmp_path, SteadyState(), clock,
                levels=Levels(), probe=probe)
    clock.start()
    m.lane.anchor(0.0, clock.t0)
    return ft, clock, journal, probe, m


def write_records(tmp_path, recs: list[dict]) -> None:
    with open(tmp_path / "records" / "local.jsonl", "a") as fh:
        for r in recs:
            fh.write(json.dumps(r) + "\n")


def finished(step: str, kind: str) -> dict:
    """A step.finished event's fields."""
    return {"step": step, "group": "technical", "kind": kind, "action": None, "ok": True, "detail": {},
            "real_seconds": 0.1}


def samples(m: Monitor, n: int) -> None:
    for _ in range(n):
        m.lane.wait(SAMPLE_EVERY)
        m.sample()


@pytest.mark.parametrize("scale", [20, 60, 120])
def test_detection_and_recovery_are_drill_time_at_any_scale(tmp_path, scale):
    ft, clock, journal, probe, m = board(tmp_path, scale)
    samples(m, 6)  # a healthy half minute
    assert not m.active
    fault_wall = ft.now()
    probe.fail_from = fault_wall
    fault = journal.record("fault.injected", wall=fault_wall, lane=clock.lane("scenario", 30.0, fault_wall),
                           fault="db", fault_type="db_crash", target="pg-primary", detail={})
    m.begin_incident(fault_wall, fault_wall=fault_wall, fault_drill=fault["drill"])
    samples(m, 3)
    raised = journal.events[-1] if journal.events[-1]["type"] == "alert.raised" else next(
        e for e in journal.events if e["type"] == "alert.raised")
    # two bad looks in a row: one declared interval after the first, plus the walks' real time
    since = raised["drill"] - fault["drill"]
    assert since == pytest.approx(2 * SAMPLE_EVERY + 2 * probe.walk_s, abs=0.01)
    assert raised["chain"]["cause"] == fault["seq"]
    assert raised["chain"]["declared"] == pytest.approx(2 * SAMPLE_EVERY)
    # the runbook's fix: 0.13 s of real work, journaled on its own lane; the board follows it
    fix_wall = ft.now()
    ft.sleep(0.13)
    journal.record("step.finished", wall=ft.now(), lane=clock.lane("step:fix", raised["drill"] + 30,
                                                                   fix_wall),
                   **finished("fix", "auto"))
    probe.ok_from = ft.now()
    samples(m, 1)  # the first good look: recovery's candidate moment
    write_records(tmp_path, [{"t": ft.now() + i * 0.001, "ms": 5, "ok": True, "patient": f"P{i}"}
                             for i in range(12)])  # and patients served after it
    ft.sleep(0.02)
    samples(m, 5)
    back = next(e for e in journal.events if e["type"] == "recovery")
    fixed = next(e for e in journal.events if e["type"] == "step.finished")
    assert fixed["drill"] == pytest.approx(raised["drill"] + 30.13, abs=0.01)
    # back = the first good look after the fix, on the board's lane anchored at the fix
    assert back["at_drill"] - fixed["drill"] == pytest.approx(SAMPLE_EVERY, abs=0.2)
    journal.close()


def test_monitor_anchors_only_at_what_changes_the_world(tmp_path):
    ft, clock, journal, probe, m = board(tmp_path, 60)
    lane = clock.lane("step:x", 500.0, ft.now())
    journal.record("step.finished", lane=lane, **finished("notice", "manual"))
    assert m.lane.now() < 100  # a modeled manual step changes nothing the board sees
    journal.record("step.finished", lane=lane, **finished("promote", "auto"))
    assert m.lane.now() == pytest.approx(500.0, abs=0.01)
    journal.close()


def steps(*specs: dict) -> list[RunbookStep]:
    return [RunbookStep.model_validate(s) for s in specs]


def test_engine_runs_steps_on_lanes_anchored_at_their_trigger(tmp_path):
    ft = FakeTime()
    clock = ft.clock(60)
    clock.start()
    journal = Journal(tmp_path / "journal.jsonl", clock)
    runbook = steps(
        {"id": "call-dba", "group": "technical", "when": {"alert": "any"},
         "manual": {"duration": "2m"}},
        {"id": "reception", "group": "clinical_support", "when": {"after": "call-dba"},
         "manual": {"duration": "30s"}})
    ctx = ActionContext(None, journal, None, None, 60)
    engine = RunbookEngine(runbook, ctx, journal, SimulatedOperator(clock), clock)
    journal.subscribe(engine.on_event, critical=True)
    engine.arm()
    alert = journal.record("alert.raised", lane=clock.lane("monitor", 250.0, ft.now()), alert="x",
                           severity="critical", detail={}, describe="a test alert")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(journal.of_type("step.finished")
                                              if hasattr(journal, "of_type") else
                                              [e for e in journal.events if e["type"] == "step.finished"]) < 2:
        time.sleep(0.01)
    engine.stop()
    done = {e["step"]: e for e in journal.events if e["type"] == "step.finished"}
    assert set(done) == {"call-dba", "reception"}
    assert done["call-dba"]["drill"] == pytest.approx(alert["drill"] + 120, abs=0.5)
    assert done["reception"]["drill"] == pytest.approx(alert["drill"] + 150, abs=0.5)
    assert done["call-dba"]["detail"]["modeled"] is True  # a modeled duration says so
    journal.close()


def test_a_failing_critical_listener_fails_the_run_loudly(tmp_path):
    clock = DrillClock(60)
    journal = Journal(tmp_path / "journal.jsonl", clock)

    def broken(event: dict) -> None:
        if event["type"] == "alert.raised":
            raise RuntimeError("engine bug")

    journal.subscribe(lambda e: 1 / 0)  # a display listener may fail quietly
    journal.subscribe(broken, critical=True)
    journal.record("scenario.started")
    assert journal.failure is None
    journal.record("alert.raised", alert="x", severity="critical", detail={}, describe="a test alert")
    assert "engine bug" in journal.failure
    assert any(e["type"] == "harness.error" for e in journal.events)
    journal.close()
