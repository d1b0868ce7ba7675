import pytest

from harness.clock import DrillClock, format_duration, parse_duration


@pytest.mark.parametrize("text,seconds", [
    ("90s", 90), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("250ms", 0.25), ("1m30s", 90),
    (42, 42), (1.5, 1.5), ("0s", 0), ("12", 12),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["-5m", "5 minutes", "m5", "", "5x", -3, True])
def test_parse_duration_refuses(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration():
    assert format_duration(None) == "—"
    assert format_duration(12) == "12s"
    assert format_duration(250) == "4m10s"
    assert format_duration(3600) == "1h"
    assert format_duration(0.5) == "0.5s"


def test_clock_scales_both_ways():
    now = [1000.0]
    clock = DrillClock(60, now=lambda: now[0])
    assert clock.drill() is None  # before T+0 there is no drill time
    clock.start()
    now[0] += 2.5
    assert clock.drill() == pytest.approx(150)
    assert clock.wall_at(180) == pytest.approx(1003.0)
    assert clock.real(1800) == pytest.approx(30)


def test_clock_refuses_nonpositive_scale():
    with pytest.raises(ValueError):
        DrillClock(0)


def test_sleep_until_returns_early_on_stop():
    import threading
    clock = DrillClock(1)
    clock.start()
    stop = threading.Event()
    stop.set()
    assert clock.sleep_until(3600, stop) is False


def fake_clock(scale: float):
    """A clock whose sleeps advance a fake wall instantly."""
    now = [1000.0]
    clock = DrillClock(scale, now=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    clock.start()
    return clock, now


@pytest.mark.parametrize("scale", [1, 20, 60, 120])
def test_lane_counts_declared_waits_at_their_length_and_work_1_to_1(scale):
    clock, now = fake_clock(scale)
    lane = clock.lane("step", 240.0, now[0], cause=7)
    lane.wait(30.0)  # the plan's observation window
    now[0] += 0.13  # a promotion: real work
    acc = lane.account()
    assert acc["t"] == pytest.approx(240 + 30 + 0.13)
    assert (acc["cause"], acc["declared"], acc["real"]) == (7, 30.0, pytest.approx(0.13))


def test_lane_answers_for_past_moments_across_anchors():
    clock, now = fake_clock(60)
    lane = clock.lane("monitor", 0.0, now[0])
    start = now[0]
    lane.wait(5.0)
    mid = now[0]
    lane.anchor(100.0, now[0] + 1.0, cause=3)  # the world changed; the board follows
    now[0] += 1.5
    assert lane.at(start + 5 / 120) == pytest.approx(2.5)  # halfway through the 5 s wait
    assert lane.at(mid) == pytest.approx(5.0)
    assert lane.now() == pytest.approx(100.5)
    assert lane.anchor_to({"drill": 50.0, "wall": mid - 1, "seq": 2}) is False  # older: ignored


def test_lane_wait_cut_short_counts_only_what_was_waited():
    import threading
    clock = DrillClock(60)
    lane = clock.lane("x", 0.0)
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    assert lane.wait(60.0, stop) is False  # 1 real s declared, cut after ~0.1 s
    assert 3.0 < lane.account()["declared"] < 15.0


def test_lane_poll_is_real_work_with_a_compressed_budget():
    clock = DrillClock(3600)
    lane = clock.lane("x", 0.0)
    calls = []
    assert lane.poll(lambda: calls.append(1) or len(calls) >= 3, budget=60.0) is True
    acc = lane.account()
    assert acc["declared"] == 0.0 and acc["real"] < 1.0
    # a machine that never answers is given the floor, not 60/3600 s
    import harness.clock as hc
    old, hc.GIVE_UP_FLOOR_REAL = hc.GIVE_UP_FLOOR_REAL, 0.1
    try:
        assert lane.poll(lambda: False, budget=60.0) is None
    finally:
        hc.GIVE_UP_FLOOR_REAL = old


def test_anchor_in_the_past_keeps_the_waits_since_it():
    """An event is journaled after its work: waits the lane did since the event's wall still count
    as waiting once the lane is anchored there, not as real work."""
    clock, now = fake_clock(60)
    lane = clock.lane("monitor", 0.0, now[0])
    fault_wall = now[0]
    lane.wait(5.0)
    lane.wait(5.0)  # two samples while the fault was still being injected
    lane.anchor(240.0, fault_wall, cause=4)
    assert lane.now() == pytest.approx(250.0)
    assert lane.account()["declared"] == pytest.approx(10.0)


def test_an_onset_is_reckoned_across_a_later_anchor_unless_the_new_cause_is_later():
    clock, now = fake_clock(60)
    lane = clock.lane("lines", 0.0, now[0], cause=1)
    lane.wait(5.0)
    onset_wall = now[0]
    start = lane.account(onset_wall)
    base = lane.observed(onset_wall, 15.0)
    lane.wait(15.0)
    lane.anchor(1.0, now[0], cause=2)  # a step that changed nothing patients see finished early on
    lane.wait(15.0)
    moved = lane.since(start, base)
    assert moved["t"] == pytest.approx(base["t"] + 30.0) and moved["cause"] == 1
    lane.anchor(500.0, now[0], cause=3)  # a fault reverted at T+500: the newer cause wins
    assert lane.since(start, base)["t"] == pytest.approx(500.0)


def test_a_lane_anchored_ahead_of_its_event_takes_the_events_seq():
    clock, now = fake_clock(60)
    lane = clock.lane("monitor", 0.0, now[0])
    fault_wall = now[0] + 0.1234567
    now[0] = fault_wall
    lane.anchor(240.1234, fault_wall)  # ahead of the journal event, while the fault goes in
    lane.wait(5.0)
    assert lane.anchor_to({"drill": 240.123, "wall": round(fault_wall, 6), "seq": 9}) is True
    acc = lane.account()
    assert acc["cause"] == 9 and acc["declared"] == pytest.approx(5.0)  # the wait still counts
