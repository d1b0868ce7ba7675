"""The live desk: claims, completions, blocks and notes by named people, and its refusals."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from harness.clock import DrillClock
from harness.journal import Journal
from harness.models import People, RunbookStep
from harness.people.desk import Desk, DeskError
from harness.validate import load_drill

SHIPPED = Path(__file__).resolve().parents[2] / "harness" / "catalog" / "drills" / "db-crash-failover.yaml"


class Wall:
    """Wall time that moves only when the test says (a person taking their time)."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def now(self) -> float:
        return self.t


def _steps() -> list[RunbookStep]:
    return [RunbookStep.model_validate(s) for s in (
        {"id": "promote", "group": "technical", "when": {"alert": "any"}, "needs": "PostgreSQL",
         "action": "promote_standby", "deadline": "3m"},
        {"id": "reception", "group": "clinical_support", "when": {"alert": "any"},
         "manual": {"duration": "5m"}, "needs": "线下扫码接诊", "deadline": "10m"},
        {"id": "later", "group": "technical", "when": {"after": "promote"}, "manual": {"duration": "1m"}})]


@pytest.fixture
def desk(tmp_path):
    wall = Wall()
    clock = DrillClock(1, now=wall.now)
    clock.start()
    drill = load_drill(SHIPPED).drill.model_copy(
        update={"runbook": _steps(), "people": People(absent=["李娜"])})
    journal = Journal(tmp_path / "journal.jsonl", clock)
    d = Desk(clock)
    d.attach(drill, journal)
    d.wall, d.drill_, d.stops = wall, drill, []
    yield d
    for stop in d.stops:  # the engine's waits end before the journal closes, as in a run
        stop.set()
    time.sleep(0.3)
    journal.close()


def opened(desk: Desk, step_id: str, how: str):
    """The engine opening the step in its own thread, as it does; returns (thread, its result)."""
    step = next(s for s in desk.drill_.runbook if s.id == step_id)
    lane = desk.clock.lane(f"step:{step_id}")
    stop, out = threading.Event(), {}
    desk.stops.append(stop)
    run = getattr(desk, how)
    t = threading.Thread(target=lambda: out.update(result=run(step, stop, lane)), daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while desk.steps[step_id].status != "open" and time.monotonic() < deadline:
        time.sleep(0.01)
    return t, out, stop


def events(desk: Desk, kind: str) -> list[dict]:
    return [e for e in desk.journal.events if e["type"] == kind]


def test_the_absent_dba_is_journalled_once_attached(desk):
    assert [(e["person"], e["why"], e["tier"]) for e in events(desk, "person.absent")] == [
        ("李娜", "named", "core")]


def test_a_claim_opens_the_machine_part_and_measures_the_call_out(desk):
    t, out, _ = opened(desk, "promote", "wait_for_claim")
    desk.wall.t += 95  # the backup DBA takes 95 s to answer (scale 1)
    record = desk.claim("promote", "杨帆")
    t.join(5)
    assert out["result"] is record
    assert (record["person"], record["tier"], record["modeled"]) == ("杨帆", "backup", False)
    assert record["call_out"] == pytest.approx(95, abs=0.01)
    assert desk.steps["promote"].status == "running"


def test_refusals_are_one_line_and_journal_nothing(desk):
    before = len(desk.journal.events)
    with pytest.raises(DeskError, match="step: 'promote' is not open"):
        desk.claim("promote", "杨帆")  # its trigger has not held yet
    opened(desk, "promote", "wait_for_claim")
    with pytest.raises(DeskError, match=r"no step 'promte' in this drill \(steps: promote, reception, later\)"):
        desk.claim("promte", "杨帆")
    with pytest.raises(DeskError, match="'杨凡' is not on the roster"):
        desk.claim("promote", "杨凡")
    with pytest.raises(DeskError, match="李娜 is absent in this drill .named.; next in line: 杨帆") as absent:
        desk.claim("promote", "李娜")
    assert absent.value.exit_code == 2 and "\n" not in str(absent.value)
    with pytest.raises(DeskError, match="张伟 lacks 'PostgreSQL'"):
        desk.claim("promote", "张伟")
    with pytest.raises(DeskError, match="done by its auto part once claimed"):
        desk.done("promote", "杨帆")
    assert len(desk.journal.events) == before


def test_a_step_taken_is_refused_to_another_until_blocked(desk):
    opened(desk, "reception", "perform")
    desk.claim("reception", "吴护士长")
    with pytest.raises(DeskError, match="taken by 吴护士长"):
        desk.claim("reception", "何护士")
    assert desk.claim("reception", "吴护士长")["person"] == "吴护士长"  # the same claim again
    desk.block("reception", "吴护士长", "the QR printer is down")
    assert desk.snapshot()["steps"][1]["status"] == "blocked"
    assert desk.claim("reception", "何护士")["person"] == "何护士"  # open again for the next in line
    assert [e["person"] for e in events(desk, "person.claimed")] == ["吴护士长", "何护士"]
    assert events(desk, "person.blocked")[0]["reason"] == "the QR printer is down"


def test_a_manual_step_is_done_by_a_person_with_a_note(desk):
    t, out, _ = opened(desk, "reception", "perform")
    desk.wall.t += 40
    record = desk.done("reception", "何护士", note="offline desk open at gate 2")
    t.join(5)
    ok, detail = out["result"]
    assert ok and detail["by"] == "何护士" and detail["modeled"] is False
    assert detail["call_out"] == pytest.approx(40, abs=0.01)  # done unclaimed: claimed at once
    assert record["note"] == "offline desk open at gate 2" and record["chain"]["lane"] == "step:reception"
    with pytest.raises(DeskError, match="not open"):
        desk.done("reception", "何护士")


def test_the_run_ending_ends_the_wait(desk):
    t, out, stop = opened(desk, "reception", "perform")
    stop.set()
    t.join(5)
    ok, detail = out["result"]
    assert not ok and "ended before" in detail["error"]


def test_the_snapshot_shows_next_in_line_and_what_is_overdue(desk):
    opened(desk, "promote", "wait_for_claim")
    snap = desk.snapshot()
    promote = snap["steps"][0]
    assert (promote["status"], promote["owner_candidates"], promote["overdue"]) == ("open", ["杨帆"], False)
    assert promote["deadline_drill"] == pytest.approx(promote["opened_drill"] + 180)
    assert snap["steps"][2]["status"] == "pending"
    assert next(p for p in snap["roster"] if p["name"] == "李娜")["absent"] is True
    desk.wall.t += 181
    assert desk.snapshot()["steps"][0]["overdue"] is True
    desk.note("观察员", "the DBA's phone went to voicemail")
    assert desk.snapshot()["notes"][0]["text"] == "the DBA's phone went to voicemail"
    with pytest.raises(DeskError):
        desk.note("观察员", "  ")


def test_ack_completes_a_manual_step_and_claims_any_other(desk):
    opened(desk, "promote", "wait_for_claim")
    opened(desk, "reception", "perform")
    assert desk.ack("promote", "杨帆")["type"] == "person.claimed"
    assert desk.ack("reception", "吴护士长")["type"] == "person.done"


def test_a_step_past_its_deadline_pushes_one_reminder_naming_whom_to_call(desk):
    t, out, stop = opened(desk, "promote", "wait_for_claim")
    desk.wall.t += 170  # within the 3 min deadline: no reminder
    time.sleep(0.5)
    assert events(desk, "step.overdue") == []
    desk.wall.t += 20  # 3m10s: past it
    limit = time.monotonic() + 5
    while not events(desk, "step.overdue") and time.monotonic() < limit:
        time.sleep(0.05)
    time.sleep(0.5)  # the engine keeps waiting: still one reminder
    reminders = events(desk, "step.overdue")
    assert len(reminders) == 1
    r = reminders[0]
    assert (r["step"], r["group"], r["waiting"], r["claimed_by"], r["deadline"]) == (
        "promote", "technical", "claim", None, 180.0)
    # the absent DBA is not called; the backup DBA with the skill is
    assert "李娜" not in r["call"] and "杨帆" in r["call"]
    assert r["chain"]["lane"] == "step:promote" and r["drill"] >= 180.0
    # the board lists it with the alerts, whom to call included
    from harness.board.feed import BoardFeed
    shown = BoardFeed(desk.journal, desk.clock, drill_name="d", desk=desk).state()["reminders"]
    assert [(x["step"], x["call"]) for x in shown] == [("promote", r["call"])]
    desk.claim("promote", "杨帆")
    t.join(5)
    assert out["result"]["person"] == "杨帆"
