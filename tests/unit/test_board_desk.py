"""The board against the people's own desk (harness/people/desk.py), not a stand-in: a manual step
of the board-live drill opens, the absent nurse is refused with the desk's reason, her backup claims
and completes it through the board, and the desk's answer to the engine names her."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from harness.board.app import create_app
from harness.board.feed import BoardFeed
from harness.clock import DrillClock
from harness.journal import Journal
from harness.people.desk import Desk
from harness.validate import load_drill

ROOT = Path(__file__).resolve().parents[2]


def test_a_manual_step_claimed_and_done_on_the_board(tmp_path):
    drill = load_drill(ROOT / "tests" / "e2e" / "drills" / "board-live.yaml").drill
    clock = DrillClock(60)
    clock.start()
    journal = Journal(tmp_path / "journal.jsonl", clock)
    desk = Desk(clock)
    desk.attach(drill, journal)
    client = create_app(BoardFeed(journal, clock, drill_name=drill.name, desk=desk), desk, tmp_path).test_client()

    def card() -> dict:
        steps = client.get("/api/state").get_json()["steps"]
        return next(s for s in steps if s["id"] == "offline-reception")

    assert card()["status"] == "pending"
    assert client.post("/api/steps/offline-reception/claim", json={"person": "何护士"}).status_code == 409

    step = next(s for s in drill.runbook if s.id == "offline-reception")
    lane = clock.lane("step:offline-reception")
    journal.record("step.started", lane=lane, step=step.id, group=step.group, kind=step.kind, action=None,
                   title=step.title, deadline=step.deadline)
    stop, answer = threading.Event(), {}
    engine = threading.Thread(target=lambda: answer.update(out=desk.perform(step, stop, lane)))
    engine.start()
    try:
        deadline = time.monotonic() + 5
        while card()["status"] != "open" and time.monotonic() < deadline:
            time.sleep(0.02)
        opened = card()
        assert opened["status"] == "open" and opened["owner_candidates"][0] == "何护士"
        assert 599 <= opened["left_drill"] <= 600  # 10 min on the step's clock, just begun

        r = client.post("/api/steps/offline-reception/claim", json={"person": "吴护士长"})
        assert r.status_code == 409 and "absent" in r.get_json()["error"]
        roster = {p["name"]: p for p in client.get("/api/state").get_json()["roster"]}
        assert roster["吴护士长"]["absent"] and not roster["何护士"]["absent"]

        assert client.post("/api/steps/offline-reception/claim", json={"person": "何护士"}).status_code == 200
        assert card()["claimed_by"] == "何护士"
        r = client.post("/api/steps/offline-reception/done", json={"person": "何护士", "note": "desk open"})
        assert r.status_code == 200 and r.get_json()["note"] == "desk open"
        engine.join(5)
    finally:
        stop.set()
        engine.join(5)
    ok, detail = answer["out"]
    assert ok and detail["by"] == "何护士" and detail["modeled"] is False
    assert card()["status"] == "done"
    claimed = [e for e in journal.events if e["type"] == "person.claimed"]
    assert [(e["person"], e["tier"], e["modeled"]) for e in claimed] == [("何护士", "backup", False)]
    r = client.post("/api/notes", json={"by": "observer", "text": "the desk opened in time"})
    assert r.status_code == 200
    assert client.get("/api/state").get_json()["notes"][-1]["text"] == "the desk opened in time"
    journal.close()
