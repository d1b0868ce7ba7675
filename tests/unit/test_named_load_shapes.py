"""Named load shapes (harness.load.named_shapes): written in drill time and shares of the users,
played as Locust stages in real time, so the patients over drill time are the same at any scale."""
from __future__ import annotations

import time

import pytest

from harness.load.named_shapes import SHAPES, NamedShape, Step, stages, users_at
from harness.load.profile import load_config
from harness.load.runner import PatientLoad
from harness.load.stage_clock import StageClock
from harness.rundir import RunDir
from harness.models import LoadProfile

MORNING = SHAPES["morning_peak"]


@pytest.mark.parametrize("scale", [20, 60])
def test_morning_peak_over_drill_time(scale):
    plan = stages(MORNING, users=30, spawn_rate=30, time_scale=scale)
    at = lambda drill_s: users_at(plan, drill_s / scale)  # noqa: E731
    assert at(60) == 3                      # the night: a tenth of the users
    assert at(120) == 3                     # still the night when the ramp begins
    assert at(120 + 300) == pytest.approx(16.5)  # half-way up the 10-minute ramp
    assert at(720) == pytest.approx(30)     # the peak at the ramp's end ...
    assert at(3600) == 30                   # ... held to the end of the run


def test_the_same_drill_minute_sees_the_same_patients_at_x20_and_x120():
    slow, fast = (stages(MORNING, 40, 40, s) for s in (20, 120))
    for drill_s in (30, 150, 240, 400, 600, 700, 1000):
        assert users_at(slow, drill_s / 20) == pytest.approx(users_at(fast, drill_s / 120))
    # and the real time it takes shrinks with the scale
    assert sum(s[0] for s in slow[:2]) == pytest.approx(6 * sum(s[0] for s in fast[:2]))


@pytest.mark.parametrize("users", [1, 2, 7, 30, 2000])
def test_a_shape_never_asks_for_more_than_the_users_nor_for_none(users):
    plan = stages(MORNING, users=users, spawn_rate=10, time_scale=60)
    assert all(1 <= s[1] <= users for s in plan)
    assert max(users_at(plan, t / 10) for t in range(0, 2000)) <= users


def test_a_jump_goes_at_the_spawn_rate_a_ramp_evenly():
    shape = NamedShape("test", (Step(0.5, hold=60), Step(1.0, ramp=120, hold=60), Step(0.25)))
    plan = stages(shape, users=20, spawn_rate=10, time_scale=60)
    assert plan == [[1.0, 10, 10], [2.0, 20, 5.0], [1.0, 20, 10], [pytest.approx(1 / 60, abs=1e-6), 5, 10]]
    assert [users_at(plan, t) for t in (0.5, 1.0, 2.0, 3.0)] == [5, 10, 15, 20]
    assert [users_at(plan, t) for t in (4.5, 5.0, 9.0)] == [15, 10, 5]  # down at the spawn rate


def test_the_run_plays_the_shape_only_when_a_scenario_names_one():
    plain = load_config(LoadProfile(users=30), time_scale=60, seed=1)
    assert "stages" not in plain
    shaped = load_config(LoadProfile(users=30, shape="morning_peak"), time_scale=60, seed=1)
    assert shaped["stages"] == stages(MORNING, 30, 10, 60)
    # think times are declared: compressed like the shape
    assert shaped["wait"] == [0.5, 1.5]


def test_an_unknown_shape_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown shape 'lunch' \(known: morning_peak\)"):
        LoadProfile(shape="lunch")


def test_a_drills_shape_counts_from_t0_not_from_the_loads_start(tmp_path):
    run_dir = RunDir(tmp_path / "run")
    config = {"stages": [[60, 3, 3], [60, 30, 1]]}
    load = PatientLoad.for_run("http://127.0.0.1:1", run_dir, 30, 3, config=config)
    clock = StageClock(load._worker_config())
    # Locust started 100 s ago: before T+0 the first stage's patients are held all the same
    assert clock.stage(100.0) == (3, 3.0)
    load.mark_zero(time.time() - 61)
    assert clock.stage(100.0) == (30, 1.0)  # 61 s after T+0
    assert clock.stage(0.0) == (30, 1.0)
    # a load that is no drill's (no T+0 to wait for) counts from its own start
    assert StageClock(config).stage(59.0) == (3, 3.0) and StageClock(config).stage(61.0) == (30, 1.0)
    assert "zero_file" not in PatientLoad.for_run("http://127.0.0.1:1", run_dir, 30, 3, config={}).config
