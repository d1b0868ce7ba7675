"""The command board's app through Flask's test client, against a desk that keeps to the desk's
contract (harness/people/desk.py): the state JSON, the moves reaching the desk, the desk's refusals
as 4xx with its one-line reason, a bad body as 400, the halt button writing the stop request."""
from __future__ import annotations

import json
import re

import pytest
import requests

from harness import emergency_stop
from harness.board.app import create_app
from harness.board.feed import BoardFeed, impact
from harness.board.server import BoardServer
from harness.clock import DrillClock
from harness.errors import InputError
from harness.journal import Journal


class Refused(InputError):
    """Stands for the desk's DeskError (an InputError: one line)."""


class FakeDesk:
    """The desk's board-facing half: one manual step, a roster of two, one absent."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.status = {"call-hotline": "open"}
        self.claimed_by: str | None = None
        self.notes: list[dict] = []

    def _check(self, step: str, person: str) -> None:
        if step not in self.status:
            raise Refused(f"no step {step!r} in this drill (steps: call-hotline)", field="step")
        if person == "Wang Wu":
            raise Refused("Wang Wu is absent in this drill (named); next in line: Li Si", field="person")
        if self.status[step] != "open" and self.claimed_by not in (None, person):
            raise Refused(f"step {step!r} is taken by {self.claimed_by}", field="step")

    def claim(self, step_id: str, person: str) -> dict:
        self._check(step_id, person)
        self.calls.append(("claim", step_id, person))
        self.status[step_id], self.claimed_by = "claimed", person
        return {"type": "person.claimed", "step": step_id, "person": person, "call_out": 12.0}

    def done(self, step_id: str, person: str, note: str = "") -> dict:
        self._check(step_id, person)
        self.calls.append(("done", step_id, person, note))
        self.status[step_id] = "done"
        return {"type": "person.done", "step": step_id, "person": person, "note": note}

    def block(self, step_id: str, person: str, reason: str) -> dict:
        self._check(step_id, person)
        self.calls.append(("block", step_id, person, reason))
        self.status[step_id] = "blocked"
        return {"type": "person.blocked", "step": step_id, "person": person, "reason": reason}

    def note(self, by: str, text: str) -> dict:
        self.calls.append(("note", by, text))
        self.notes.append({"by": by, "text": text, "drill": 61.0, "wall": 0.0})
        return {"type": "observer.note", "by": by, "text": text}

    def snapshot(self) -> dict:
        return {"steps": [{"id": "call-hotline", "title": "Open the hotline", "group": "patient_communication",
                           "kind": "manual", "needs": "hotline", "status": self.status["call-hotline"],
                           "claimed_by": self.claimed_by, "owner_candidates": ["Li Si"],
                           "opened_drill": 30.0, "deadline_drill": 330.0, "overdue": False}],
                "roster": [{"name": "Li Si", "group": "patient_communication", "tier": "core", "role": "lead",
                            "skills": ["hotline"], "location": "on site", "phone": "13800000001",
                            "absent": False},
                           {"name": "Wang Wu", "group": "patient_communication", "tier": "core", "role": "",
                            "skills": ["hotline"], "location": "home", "phone": "13800000002",
                            "absent": True}],
                "notes": list(self.notes)}


@pytest.fixture
def board(tmp_path):
    clock = DrillClock(30)
    clock.start()
    journal = Journal(tmp_path / "journal.jsonl", clock)
    desk = FakeDesk()
    records = [
        {"t": clock.wall() - 0.1, "ms": 40.0, "ok": True, "journey": "followup", "persona": "followup"},
        {"t": clock.wall() - 0.1, "ms": 900.0, "ok": False, "journey": "payment", "persona": "payment"},
        {"t": clock.wall() - 0.1, "ms": 5.0, "ok": False, "journey": "attack", "persona": "attacker"},
    ]
    feed = BoardFeed(journal, clock, drill_name="board-live", title="Live drill", records=lambda: records,
                     desk=desk)
    app = create_app(feed, desk, tmp_path)
    yield app.test_client(), desk, journal, feed, tmp_path
    journal.close()


def test_state_carries_clock_impact_alerts_steps_roster(board):
    client, desk, journal, feed, _ = board
    lane = journal.clock.lane("monitor")
    journal.record("alert.raised", lane=lane, alert="patient_errors", severity="critical",
                   detail={"error_rate": 0.5}, describe="patients failing")
    journal.record("step.started", lane=lane, step="call-hotline", group="patient_communication",
                   kind="manual", action=None, title="Open the hotline", deadline=300.0)
    r = client.get("/api/state")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    s = r.get_json()
    assert s["drill"]["name"] == "board-live" and s["drill"]["scale"] == 30.0
    assert s["drill"]["t"] is not None and s["drill"]["phase"] == "preparing"
    # the attacker's record is not a patient's: one of two patient requests succeeded
    assert s["impact"]["requests"] == 2 and s["impact"]["success_rate"] == 0.5
    assert s["impact"]["p95_ms"] == 40.0 and s["impact"]["history"]
    assert [a["alert"] for a in s["alerts"]] == ["patient_errors"] and s["alerts"][0]["active"]
    step = s["steps"][0]
    assert step["id"] == "call-hotline" and step["owner_candidates"] == ["Li Si"]
    # its lane started at the step.started's drill; the deadline is 330 on that lane
    started = journal.events[-1]["drill"]
    assert step["left_drill"] == pytest.approx(330.0 - started, abs=1.0)
    assert [p["absent"] for p in s["roster"]] == [False, True]
    assert [g["id"] for g in s["groups"]] == ["technical", "clinical_support", "patient_communication"]

    journal.record("alert.cleared", lane=lane, alert="patient_errors")
    assert client.get("/api/state").get_json()["alerts"][0]["active"] is False


def test_feed_follows_injects_phase_and_halt(board):
    client, _, _, feed, _ = board
    feed.on_event({"type": "fault.injected", "drill": 240.0})
    feed.on_event({"type": "inject.shown", "inject": "callers", "text": "the hotline has 20 callers",
                   "to": "patient_communication", "drill": 300.0})
    s = client.get("/api/state").get_json()
    assert s["drill"]["phase"] == "incident"
    assert s["injects"] == [{"inject": "callers", "text": "the hotline has 20 callers",
                             "to": "patient_communication", "drill": 300.0}]
    feed.on_event({"type": "run.halted", "safeguard": "stop", "reason": "halted by safeguard stop: Li Si"})
    feed.on_event({"type": "recovery", "drill": 400.0})  # a halt is not undone by later events
    assert client.get("/api/state").get_json()["drill"]["phase"] == "halted"
    feed.on_event({"type": "run.finished", "status": "aborted", "reason": "halted"})
    d = client.get("/api/state").get_json()["drill"]
    assert d["phase"] == "ended" and d["finished"]["status"] == "aborted" and d["halted"]["safeguard"] == "stop"


def test_moves_reach_the_desk(board):
    client, desk, *_ = board
    r = client.post("/api/steps/call-hotline/claim", json={"person": " Li Si "})
    assert r.status_code == 200 and r.get_json()["person"] == "Li Si"
    r = client.post("/api/steps/call-hotline/block", json={"person": "Li Si", "reason": "line busy"})
    assert r.status_code == 200
    r = client.post("/api/steps/call-hotline/done", json={"person": "Li Si", "note": "20 callers answered"})
    assert r.status_code == 200
    r = client.post("/api/notes", json={"by": "observer", "text": "hotline opened late"})
    assert r.status_code == 200
    assert desk.calls == [("claim", "call-hotline", "Li Si"), ("block", "call-hotline", "Li Si", "line busy"),
                          ("done", "call-hotline", "Li Si", "20 callers answered"),
                          ("note", "observer", "hotline opened late")]
    assert client.get("/api/state").get_json()["notes"][0]["text"] == "hotline opened late"


@pytest.mark.parametrize("url, body, reason", [
    ("/api/steps/nope/claim", {"person": "Li Si"}, "step: no step 'nope' in this drill"),
    ("/api/steps/call-hotline/claim", {"person": "Wang Wu"}, "person: Wang Wu is absent in this drill"),
])
def test_desk_refusals_are_409_with_one_line(board, url, body, reason):
    client, desk, *_ = board
    r = client.post(url, json=body)
    assert r.status_code == 409
    error = r.get_json()["error"]
    assert error.startswith(reason) and "\n" not in error
    assert desk.calls == []


def test_taken_step_refused_for_another_person(board):
    client, *_ = board
    assert client.post("/api/steps/call-hotline/claim", json={"person": "Li Si"}).status_code == 200
    r = client.post("/api/steps/call-hotline/done", json={"person": "Zhao Liu"})
    assert r.status_code == 409 and "taken by Li Si" in r.get_json()["error"]


@pytest.mark.parametrize("url, body, reason", [
    ("/api/steps/call-hotline/claim", {}, "person: Field required"),
    ("/api/steps/call-hotline/claim", {"person": ""}, "person: String should have at least 1 character"),
    ("/api/steps/call-hotline/block", {"person": "Li Si"}, "reason: Field required"),
    ("/api/steps/call-hotline/claim", {"person": "Li Si", "as": "x"}, "as: Extra inputs are not permitted"),
    ("/api/notes", {"by": "x", "text": "   "}, "text: String should have at least 1 character"),
    ("/api/halt", [], "body: a JSON object is required"),
])
def test_bad_body_is_400_one_line(board, url, body, reason):
    client, desk, *_ = board
    r = client.post(url, data=json.dumps(body), content_type="application/json")
    assert r.status_code == 400 and r.get_json()["error"] == reason
    assert desk.calls == []


def test_halt_writes_the_stop_request(board):
    client, _, _, _, run_dir = board
    assert emergency_stop.requested(run_dir) is None
    r = client.post("/api/halt", json={"by": "Li Si", "reason": "a patient safety concern"})
    assert r.status_code == 202 and r.get_json()["halt"] == "requested"
    request = emergency_stop.requested(run_dir)
    assert request["by"] == "Li Si" and request["reason"] == "a patient safety concern"
    client.post("/api/halt", json={"by": "board"})
    assert emergency_stop.requested(run_dir)["reason"] == "halt pressed on the command board"


def test_page_loads_nothing_from_the_network(board):
    client, *_ = board
    html = client.get("/").get_data(as_text=True)
    assert "Live drill" in html and 'id="halt"' in html and 'name="viewport"' in html
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs and all(ref.startswith("/static/") for ref in refs), refs
    for ref in refs:
        body = client.get(ref).get_data(as_text=True)
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", body), ref  # the SVG namespace is a name


def test_impact_window_and_empty():
    now = 1000.0
    recs = [{"t": now - 5, "ms": 100.0, "ok": True}, {"t": now - 0.5, "ms": 300.0, "ok": False},
            {"t": now - 0.4, "ms": 1.0, "ok": False, "journey": "offline"}]
    assert impact(recs, now, 1.0) == {"requests": 1, "success_rate": 0.0, "p50_ms": 300.0, "p95_ms": 300.0}
    assert impact(recs, now, 10.0)["success_rate"] == 0.5
    assert impact([], now, 1.0)["success_rate"] is None


def test_server_serves_on_loopback_and_stops(board):
    client, desk, journal, feed, run_dir = board
    server = BoardServer(create_app(feed, desk, run_dir), port=0).start()
    try:
        assert server.url.startswith("http://127.0.0.1:") and server.port > 0
        assert requests.get(server.url + "api/state", timeout=5).json()["drill"]["name"] == "board-live"
    finally:
        server.stop()
        server.stop()  # twice is harmless: every exit path of a run calls it
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "api/state", timeout=2)
