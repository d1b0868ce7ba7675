"""The scenario's injects: validated with the scenario, played on their own lane at their drill times
(declared waits: the same drill time at any scale), each journalled as `inject.shown`; what was not
due when the run ends is never shown."""
from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from harness.board.injects import InjectPlayer
from harness.clock import DrillClock
from harness.journal import Journal
from harness.models import Inject, Scenario

BASE = {"name": "s", "failure_class": "database", "faults": [{"type": "db_crash", "at": "4m"}]}


def scenario(injects):
    return Scenario.model_validate({**BASE, "injects": injects})


def test_injects_are_validated():
    sc = scenario([{"id": "callers", "at": "5m", "text": "the hotline has 20 callers",
                    "to": "patient_communication"}, {"id": "dba", "at": 330, "text": "the DBA cannot be reached"}])
    assert [(i.id, i.at, i.to) for i in sc.injects] == [("callers", 300.0, "patient_communication"),
                                                        ("dba", 330.0, "all")]
    assert Scenario.model_validate(BASE).injects == []
    for bad, where in (([{"id": "a", "at": "1m", "text": "x"}, {"id": "a", "at": "2m", "text": "y"}],
                        "used twice"),
                       ([{"id": "a", "at": "1m", "text": "x", "to": "pharmacy"}], "to"),
                       ([{"id": "a", "at": "1m", "text": ""}], "text"),
                       ([{"id": "a", "at": "-1m", "text": "x"}], "at")):
        with pytest.raises(ValidationError) as e:
            scenario(bad)
        assert where in str(e.value)


@pytest.mark.parametrize("scale", [600.0, 1200.0])
def test_played_at_their_drill_times_on_their_lane(tmp_path, scale):
    clock = DrillClock(scale)
    journal = Journal(tmp_path / "journal.jsonl", clock)
    clock.start()
    injects = [Inject(id="dba", at=180, text="the DBA cannot be reached", to="technical"),
               Inject(id="callers", at=60, text="the hotline has 20 callers")]
    player = InjectPlayer(injects, journal, clock).start()
    deadline = time.monotonic() + 5
    while len(player.shown) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    player.stop()
    shown = [e for e in journal.events if e["type"] == "inject.shown"]
    assert [e["inject"] for e in shown] == ["callers", "dba"]  # by time, not as written
    assert [e["to"] for e in shown] == ["all", "technical"]
    for e, at in zip(shown, (60, 180)):
        assert e["chain"]["lane"] == "injects" and e["chain"]["cause"] is None
        # a declared wait: the drill time is the inject's, whatever the scale (a little real work aside)
        assert at <= e["drill"] <= at + 0.5
        assert e["chain"]["declared"] == pytest.approx(at, abs=0.5)
    journal.close()


def test_not_shown_after_the_run_ends(tmp_path):
    clock = DrillClock(60)
    journal = Journal(tmp_path / "journal.jsonl", clock)
    clock.start()
    player = InjectPlayer([Inject(id="late", at="1h", text="never")], journal, clock).start()
    t0 = time.monotonic()
    player.stop()
    assert time.monotonic() - t0 < 2 and player.shown == []
    assert not [e for e in journal.events if e["type"] == "inject.shown"]
    journal.close()
