"""The draw of a drill's patients from the hospital's registered population (harness.load.population)
and the seed it is drawn by (harness.load.profile.patient_seed)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.load.load_config import LoadConfigError, load_config
from harness.load.population import POPULATION, PatientDraw, patient_id
from harness.load.profile import patient_seed
from harness.models import LoadProfile


def test_the_whole_population_is_drawn_once_each_before_any_repeats():
    draw = PatientDraw(seed=7)
    everyone = draw.first(POPULATION)
    assert len(set(everyone)) == POPULATION
    assert set(everyone) == {patient_id(n) for n in range(1, POPULATION + 1)}
    assert not draw.wraps(POPULATION - 1) and draw.wraps(POPULATION)
    assert draw.patient(POPULATION) == everyone[0]  # past the population the draw wraps around


def test_the_same_seed_draws_the_same_patients_and_another_seed_others():
    assert PatientDraw(seed=11).first(200) == PatientDraw(seed=11).first(200)
    assert PatientDraw(seed=11).first(200) != PatientDraw(seed=12).first(200)
    # a shuffle, not the range in order: patients from all over the population come
    numbers = [PatientDraw(seed=11).number(k) for k in range(200)]
    assert numbers != sorted(numbers) and max(numbers) > 5000


def test_without_a_seed_patients_come_in_order_after_the_offset():
    assert PatientDraw(count=5, offset=100).first(6) == ["P00101", "P00102", "P00103", "P00104",
                                                        "P00105", "P00101"]


def test_workers_interleaving_the_draw_get_distinct_patients():
    """What the locustfile does: user n of worker w is patient n * workers + w of the draw."""
    draw, workers = PatientDraw(seed=3), 3
    per_worker = [{draw.patient(n * workers + w) for n in range(50)} for w in range(workers)]
    assert sum(len(p) for p in per_worker) == len(set().union(*per_worker)) == 150


def test_the_drill_s_seed_is_its_own_or_one_from_its_name_stable_across_processes():
    assert patient_seed(LoadProfile(seed=5), "db-crash-failover") == 5
    mine = patient_seed(LoadProfile(), "morning-peak-db-crash")
    assert mine != patient_seed(LoadProfile(), "db-crash-failover")
    # Python's own hash() of a string changes with PYTHONHASHSEED; the draw's seed must not
    code = ("from harness.load.profile import patient_seed; from harness.models import LoadProfile; "
            "print(patient_seed(LoadProfile(), 'morning-peak-db-crash'))")
    for hash_seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": hash_seed}).stdout
        assert int(out) == mine


def test_the_load_config_knows_the_population_and_checks_the_seed():
    cfg = load_config('{"patient_seed": 9}')
    assert cfg["patient_count"] == POPULATION and cfg["patient_seed"] == 9
    assert load_config("{}")["patient_seed"] is None
    with pytest.raises(LoadConfigError, match="patient_seed"):
        load_config('{"patient_seed": "nine"}')
