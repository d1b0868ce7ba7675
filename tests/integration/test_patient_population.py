"""The hospital's 10,000 registered patients, and a drill's load drawing distinct ones from them by its
seed, played through the morning-peak shape against the real local stack."""
from __future__ import annotations

import time
from collections import Counter

import psycopg
import pytest

from harness.load.population import POPULATION, PatientDraw
from harness.load.profile import load_config
from harness.load.records import iter_records
from harness.load.runner import PatientLoad
from harness.models import LoadProfile, StackConfig
from harness.stack import local
from tests.helpers import assert_nothing_left

pytestmark = pytest.mark.integration

USERS, SEED = 40, 20261129


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("population")
    s = local.up(run_dir, StackConfig(remote_dr=False), time_scale=60)
    addresses = [*s.addresses.values(), *s.link_listen.values()]
    yield s
    s.down()
    assert_nothing_left(run_dir, addresses)


def test_the_database_holds_the_registered_population(stack):
    with psycopg.connect(stack.pg["pg-primary"].dsn("hospital")) as conn:
        count, first, last = conn.execute("SELECT count(*), min(patient_id), max(patient_id) "
                                          "FROM patients WHERE patient_id LIKE 'P%'").fetchone()
    assert (count, first, last) == (POPULATION, "P00001", f"P{POPULATION:05d}")


def test_a_short_load_draws_distinct_patients_by_its_seed(stack, tmp_path):
    # the morning peak at ×600: a tenth of the users for 0.2 s, the ramp over 1 s, then all of them
    profile = LoadProfile(users=USERS, spawn_rate=USERS, mix=None, shape="morning_peak",
                          think_time=(60.0, 180.0))
    config = load_config(profile, time_scale=600, seed=SEED)
    with PatientLoad(stack.vip_url, tmp_path / "records", users=USERS, spawn_rate=USERS,
                     config=config, log_dir=tmp_path / "logs") as load:
        load.wait_started(timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and \
                len({r["patient"] for r in iter_records(tmp_path / "records")}) < USERS:
            time.sleep(0.2)
    records = [r for r in iter_records(tmp_path / "records") if r.get("journey") != "offline"]
    patients = {r["patient"] for r in records}
    # every user a distinct patient, exactly the first USERS of the seed's draw: not the range in order
    assert patients == set(PatientDraw(seed=SEED).first(USERS))
    assert patients != {f"P{n:05d}" for n in range(1, USERS + 1)}
    # each of them is registered: the app knows them and lets them in
    logins = Counter(r["ok"] for r in records if r["name"] == "POST /api/login")
    assert logins[True] >= USERS and not logins[False], logins
    assert len({r["persona"] for r in records}) > 1
