"""A figure's breakdown: declared waits plus real work along its causal chain add up to the figure."""
from __future__ import annotations

import pytest

from harness.journal import JournalRead
from harness.score.facts import Facts


def _chain(lane, cause, declared, real):
    return {"lane": lane, "cause": cause, "declared": declared, "real": real}


def _journal(alert_cause: int) -> JournalRead:
    """Two faults at T+4m on the scenario lane (the second 0.05 s of real work later), an alert
    anchored at one of them, and a step anchored at the alert."""
    alert = {3: 240.1, 4: 240.15}[alert_cause] + 5.02
    return JournalRead(events=[
        {"seq": 1, "wall": 100.0, "drill": None, "type": "run.started", "time_scale": 60, "time_model": "v2"},
        {"seq": 2, "wall": 101.0, "drill": 0.0, "type": "scenario.started"},
        {"seq": 3, "wall": 105.0, "drill": 240.1, "type": "fault.injected", "fault": "db",
         "chain": _chain("scenario", None, 240.0, 0.1)},
        {"seq": 4, "wall": 105.05, "drill": 240.15, "type": "fault.injected", "fault": "app",
         "chain": _chain("scenario", None, 240.0, 0.15)},
        {"seq": 5, "wall": 105.2, "drill": alert, "type": "alert.raised", "alert": "down",
         "chain": _chain("monitor", alert_cause, 5.0, 0.02)},
        {"seq": 6, "wall": 106.0, "drill": alert + 30.3, "type": "step.finished", "step": "promote",
         "ok": True, "chain": _chain("step:promote", 5, 30.0, 0.3)},
    ])


@pytest.mark.parametrize("alert_cause", [3, 4])
def test_the_parts_add_up_to_the_figure_whichever_fault_the_alert_was_anchored_at(alert_cause):
    j = _journal(alert_cause)
    f = Facts(j, 60.0)
    step = j.events[-1]
    parts = f.breakdown(step)
    assert parts["declared"] == pytest.approx(35.0)  # 30 s window + 5 s of samples; not T+0's 4 min
    figure = f.since_fault(step)
    assert parts["declared"] + parts["real"] == pytest.approx(figure, abs=0.01)
    assert parts["links"] == (2 if alert_cause == 3 else 3)


def test_no_chain_no_breakdown():
    j = _journal(3)
    event = dict(j.events[-1])
    del event["chain"]
    assert Facts(j, 60.0).breakdown(event) is None
