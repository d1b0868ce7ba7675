"""`hospital-drill ack` through the running drill's control server to its desk: a manual step done
or a step claimed by a named person; an unknown step or person, or a step not open yet, exit 2."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from harness import cli
from harness.clock import DrillClock
from harness.control.server import ControlServer
from harness.journal import Journal
from harness.models import People, RunbookStep
from harness.people.desk import Desk
from harness.runbook.actions import ActionContext
from harness.rundir import RunDir
from harness.validate import load_drill

SHIPPED = Path(__file__).resolve().parents[2] / "harness" / "catalog" / "drills" / "db-crash-failover.yaml"


class LiveEngine:
    """What the server asks of the engine: its operator (the desk) and a step's context."""

    def __init__(self, desk: Desk):
        self.operator = desk

    def running_context(self, step_id):
        return None


@pytest.fixture
def live(tmp_path):
    clock = DrillClock(1)
    clock.start()
    steps = [RunbookStep.model_validate(
        {"id": "offline-reception", "group": "clinical_support", "when": {"alert": "any"},
         "manual": {"duration": "5m"}, "needs": "线下扫码接诊"})]
    drill = load_drill(SHIPPED).drill.model_copy(update={"runbook": steps,
                                                         "people": People(absent=["吴护士长"])})
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    journal = Journal(rd.journal, clock)
    desk = Desk(clock)
    desk.attach(drill, journal)
    ctx = ActionContext(None, journal, None, drill, 1, run_dir=rd)
    server = ControlServer(ctx, rd, clock, engine=LiveEngine(desk)).start()
    yield rd, desk, steps[0], clock
    server.stop()
    journal.close()


def ack(capsys, rd: RunDir, step: str, by: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main(["ack", str(rd.path), step, "--by", by])
    out = capsys.readouterr()
    return code, (out.out + out.err).strip()


def test_ack_before_the_step_is_open_is_refused_then_done_once_open(live, capsys):
    rd, desk, step, clock = live
    code, said = ack(capsys, rd, "offline-reception", "何护士")
    assert code == 2 and "step: 'offline-reception' is not open (it is pending)" in said
    stop, out = threading.Event(), {}
    t = threading.Thread(target=lambda: out.update(r=desk.perform(step, stop, clock.lane("step:x"))))
    t.start()
    deadline = time.monotonic() + 5
    while desk.steps[step.id].status != "open" and time.monotonic() < deadline:
        time.sleep(0.01)
    code, said = ack(capsys, rd, "offline-reception", "何护士")
    t.join(5)
    assert code == 0 and "offline-reception: done by 何护士" in said
    assert out["r"][0] is True and out["r"][1]["by"] == "何护士"


@pytest.mark.parametrize("step, by, why", [
    ("offline-reciption", "何护士", "no step 'offline-reciption' in this drill"),
    ("offline-reception", "何护土", "'何护土' is not on the roster"),
])
def test_a_misspelt_step_or_person_is_exit_2(live, capsys, step, by, why):
    rd, *_ = live
    code, said = ack(capsys, rd, step, by)
    assert code == 2 and why in said and len(said.splitlines()) == 1
    assert said.startswith(f"hospital-drill: error: {rd.path}: ")
