"""The egress lines on the board: utilisation from byte counters, the plan's network rule with its
hysteresis, line down and latency, and the gateway's shared line queue that makes a line fill."""
from __future__ import annotations

import time
from collections import deque
from types import SimpleNamespace

import pytest

from harness.models import StackConfig
from harness.monitor import network_rules as nr
from harness.monitor.monitor import RULES, Observation
from harness.stack.services.egress import Line, LineQueue


def samples(*utils: float | None, up: bool = True) -> list[dict]:
    return [{"t": float(i), "link": "egress-primary", "utilisation": u, "up": up, "capacity_kbps": 2000}
            for i, u in enumerate(utils)]


# --- pure pieces -----------------------------------------------------------------------------------

def test_utilisation_is_the_busier_direction_over_capacity():
    up, down, u = nr.utilisation(1_000, 3_000_000, 1.5, 2000)
    assert up == pytest.approx(666.67, abs=0.01) and down == 2_000_000 and u == pytest.approx(1.0)
    assert nr.utilisation(10, 10, 1.0, None)[2] is None  # no capacity: bytes/s only
    assert nr.utilisation(10, 10, 0.0, 2000) == (0.0, 0.0, None)
    assert nr.utilisation(-5, 0, 1.0, 1)[0] == 0.0  # counters reset (a new proxy): never negative


def test_three_consecutive_samples_above_95_percent():
    assert nr.above(samples(0.2, 0.96, 0.99, 1.01))
    assert not nr.above(samples(0.96, 0.95, 1.0))  # exactly 95% is not above
    assert not nr.above(samples(0.99, 1.0))  # only two
    assert not nr.above(samples(0.99, None, 1.0))  # a sample without a measurement breaks the run


def test_saturation_has_hysteresis():
    noisy = samples(1.0, 1.0, 1.0, 0.93, 1.0)
    assert not nr.saturated(noisy, raised=False)  # one dip: not yet three in a row again
    assert nr.saturated(noisy, raised=True)  # ... but a raised alert does not flap on it
    assert not nr.saturated(samples(0.9, 0.5, 0.1), raised=True)  # cooled for 3 samples: clears


def test_line_down_and_slow():
    assert nr.down(samples(1, 1, up=False)) and not nr.down(samples(1, up=False))
    assert not nr.down(samples(1, 1, up=False) + samples(1, up=True))
    pings = [{"rtt_ms": 4.0}, {"rtt_ms": None, "error": "timeout"}, {"rtt_ms": 2900.0}]
    assert nr.slow(pings) and not nr.slow(pings[:2])
    refused = [{"rtt_ms": None, "error": "ConnectionError"}] * 2
    assert not nr.slow(refused)  # a refused connection is a line down, not a slow one


def test_unreachable_needs_payments_failing_at_the_third_parties():
    assert nr.unreachable({"third_party_failed": 0}, None) is None
    assert nr.unreachable({"third_party_failed": 4}, None) == {"payments_failed": 4}
    probe = SimpleNamespace(ok=False, failed_step="payment", status=504, error="timed out after 2s")
    assert nr.unreachable({}, probe) == {"payments_failed": 0, "test_payment": "timed out after 2s"}
    db_down = SimpleNamespace(ok=False, failed_step="login", status=503, error="database")
    assert nr.unreachable({}, db_down) is None


# --- the sampler and the rules, on a fake stack ----------------------------------------------------

class FakeLinks:
    def __init__(self):
        self.counters = {link: {"upstream_bytes": 0, "downstream_bytes": 0} for link in nr.EGRESS_LINKS}

    def stats(self, link):
        return dict(self.counters[link])


class FakeJournal:
    def __init__(self):
        self.events = []

    def record(self, type_, **fields):
        self.events.append({"type": type_, **fields})
        return self.events[-1]


def fake_monitor(capacity_kbps: float | None = 2000):
    lines = {"primary": {"capacity_kbps": capacity_kbps}} if capacity_kbps else {}
    stack = SimpleNamespace(links=FakeLinks(), config=StackConfig.model_validate({"egress_lines": lines}),
                            link_listen={link: "127.0.0.1:1" for link in nr.EGRESS_LINKS})
    return SimpleNamespace(stack=stack, samples={}, journal=FakeJournal(), active={}, scale=60.0)


def test_sampler_turns_counters_into_journalled_samples(monkeypatch):
    monkeypatch.setattr(nr, "line_up", lambda address: (True, None))
    clock = iter([10.0, 10.0, 11.0, 11.0, 12.0, 12.0])
    monkeypatch.setattr(nr.time, "monotonic", lambda: next(clock))
    m = fake_monitor()
    sampler = nr.LineSampler(m)
    assert sampler.sample("egress-primary", 1000.0) is None  # the first reading only starts the count
    m.stack.links.counters["egress-primary"] = {"upstream_bytes": 500, "downstream_bytes": 1_990_000}
    s = sampler.sample("egress-primary", 1001.0)
    assert s["utilisation"] == pytest.approx(0.995) and s["bytes_per_s"] == 1_990_000
    assert s["up"] and s["capacity_kbps"] == 2000
    assert [e["type"] for e in m.journal.events] == ["link.sample"]
    assert m.journal.events[0]["link"] == "egress-primary" and m.journal.events[0]["utilisation"] == 0.995


def test_an_unmetered_line_is_sampled_but_not_journalled(monkeypatch):
    monkeypatch.setattr(nr, "line_up", lambda address: (False, "Connection refused"))
    m = fake_monitor(capacity_kbps=None)
    sampler = nr.LineSampler(m)
    sampler.sample("egress-backup", 1.0)
    s = sampler.sample("egress-backup", 2.0)
    assert s["utilisation"] is None and s["up"] is False and s["error"] == "Connection refused"
    assert not m.journal.events


def observe(m, stats=None, probe=None) -> Observation:
    return Observation(now=time.time(), stats={"third_party_failed": 0, **(stats or {})}, probe=probe,
                       monitor=m)


def test_the_plan_s_network_rule():
    m = fake_monitor()
    m.samples[nr.sample_key("egress-primary")] = deque(samples(0.01, 0.97, 1.0, 0.99))
    util, sat = RULES["egress_utilisation_high"], RULES["egress_saturated"]
    evidence = util.check(observe(m))
    assert evidence["link"] == "egress-primary" and evidence["utilisation"] == [0.97, 1.0, 0.99]
    assert evidence["capacity_kbps"] == 2000
    assert not sat.check(observe(m))  # full, but the third parties still answer: not the rule yet
    hit = sat.check(observe(m, {"third_party_failed": 3}))
    assert hit["link"] == "egress-primary" and hit["unreachable"] == {"payments_failed": 3}
    assert util.raise_after == sat.raise_after == 1  # the 3 samples are counted in the check


def test_line_down_and_latency_rules():
    m = fake_monitor()
    assert not RULES["egress_line_down"].check(observe(m))
    m.samples[nr.sample_key("egress-primary")] = deque(samples(0.0, 0.0, up=False))
    down = RULES["egress_line_down"].check(observe(m))
    assert down["link"] == "egress-primary" and down["address"] == "127.0.0.1:1"
    m.samples["ping:egress-backup"] = deque([{"rtt_ms": None, "error": "timeout"}] * 2)
    assert RULES["egress_latency_high"].check(observe(m))["link"] == "egress-backup"


def test_line_cadence_is_declared_drill_time_on_the_watchs_own_lane():
    """Round trips every PING_EVERY and samples every SAMPLE_EVERY drill seconds, at any scale, on a
    lane of the line watch's own: no real-second floor stretches them, and the board's slow
    test-account walks do not hold them up."""
    import threading
    from harness.clock import DrillClock
    for scale in (20, 120):
        now = [1000.0]
        advance = lambda s: now.__setitem__(0, now[0] + s)  # noqa: E731
        clock = DrillClock(scale, now=lambda: now[0], sleep=advance,
                           wait=lambda evt, s: (advance(s), evt.is_set())[1])
        m = fake_monitor()
        m._stop_evt, m.closers, m.lanes = threading.Event(), [], {}
        m.watch_lane = lambda name: m.lanes.setdefault(name, clock.lane(name, 0.0, now[0]))
        watch = nr.LineWatch(m)
        taken, pinged = [], []
        watch.sampler.sample = lambda link, wall, drill=None: taken.append(drill)

        def ping() -> None:
            pinged.append(watch.lane.now())
            if len(pinged) == 12:  # one minute of round trips
                m._stop_evt.set()
        watch._ping_all = ping
        watch.run()
        assert pinged == pytest.approx([5.0 * i for i in range(12)]), scale
        assert len(taken) == 4 * len(nr.EGRESS_LINKS) and taken[-1] == pytest.approx(45.0)
        watch.pings.shutdown()


# --- the gateway's line: one queue shared by every flow --------------------------------------------

def test_bulk_flows_fill_the_queue_and_wait_for_room():
    q = LineQueue(rate=1000.0, buffer=3000.0)
    first = q.admit(2000, bulk=True)
    assert first is not None and q.delay() == pytest.approx(2.0, abs=0.05)
    assert q.admit(1000, bulk=True) is not None  # exactly full
    assert q.admit(10, bulk=True) is None  # no room: a bulk sender waits
    assert q.room_at(1000) == pytest.approx(time.monotonic() + 1.0, abs=0.05)
    # a call's bytes queue at once, behind everything the bulk flows queued
    assert q.admit(10) - time.monotonic() == pytest.approx(3.01, abs=0.05)


def test_paced_sender_moves_at_the_line_rate():
    q = LineQueue(rate=1_000_000.0, buffer=50_000.0)
    t0 = time.monotonic()
    sent = sum(q.paced(200_000, 5_000))
    took = time.monotonic() - t0
    assert sent == 200_000 and 0.17 < took < 0.5  # 0.2 s at 1 MB/s, never faster
    assert q.bytes == 200_000


def test_line_config_is_checked():
    line = Line("primary", "127.0.0.1:4000", 2000)
    assert line.buffer_kb == 6000 and line.piece == 5000  # 3 s of capacity; 2.5 ms pieces
    for bad in ((None, None), (-1, None), (2000, 0)):
        with pytest.raises(SystemExit):
            Line("primary", "127.0.0.1:4000", *bad)
