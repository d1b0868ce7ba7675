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
