"""The real local stack: a crash must break patients' requests and the failover must bring them back;
lost rows are counted, sync loses none, async with a lagging link loses some."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests

from harness.models import Replication, StackConfig
from harness.monitor.probe import walk_journey
from harness.stack import local
from harness.stack.rpo import missing_write_ids
from tests.helpers import assert_nothing_left

pytestmark = pytest.mark.integration


def _write(url: str, session: requests.Session) -> tuple[str, bool]:
    wid = str(uuid.uuid4())
    try:
        r = session.post(url + "/api/consultations", timeout=3,
                         json={"patient_id": "P00042", "doctor_id": 3, "symptoms": "咳嗽", "write_id": wid})
        return wid, r.status_code == 201
    except requests.RequestException:
        return wid, False


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("stack")
    s = local.up(run_dir, StackConfig(), time_scale=60)
    addresses = [*s.addresses.values(), *s.link_listen.values()]
    yield s
    s.down()
    assert_nothing_left(run_dir, addresses)


def test_bring_up_wires_every_link(stack):
    proxies = stack.links.proxies()
    assert set(proxies) >= {"app-vip", "db", "repl-samecity", "repl-remote", "egress-primary",
                            "egress-backup", "insurance-primary", "insurance-backup", "payment-primary",
                            "payment-backup", "notification-primary", "notification-backup"}
    for tp in ("insurance", "payment", "notification"):  # each interface leads to its own service
        for which in ("primary", "backup"):
            assert proxies[f"{tp}-{which}"]["upstream"] == stack.addresses[f"{tp}-{which}"]
    assert proxies["db"]["upstream"] == stack.addresses["pg-primary"]
    assert proxies["app-vip"]["upstream"] == stack.addresses["app-primary"]
    assert stack.db_roles == {"pg-primary": "primary", "pg-samecity": "standby", "pg-remote": "standby"}


def test_patient_journeys_work_through_the_vip(stack):
    with requests.Session() as s:
        res = walk_journey(stack.vip_url, s)
        assert res.ok, res
        pay = s.post(stack.vip_url + "/api/payments", timeout=5, json={
            "patient_id": "P00007", "amount": 120.5, "insurance": True, "write_id": str(uuid.uuid4())})
        assert pay.status_code == 201, pay.text


def test_crash_breaks_patients_and_failover_brings_them_back(stack):
    session = requests.Session()
    assert walk_journey(stack.vip_url, session).ok
    stack.crash_db("pg-primary")
    broken = walk_journey(stack.vip_url, session)
    assert not broken.ok and broken.db not in (None, "ok"), broken  # patients see the outage
    detail = stack.promote_standby("pg-samecity")
    assert detail["followers"] == ["pg-remote"]
    deadline = time.monotonic() + 10
    while not walk_journey(stack.vip_url, session).ok:
        assert time.monotonic() < deadline, "patients did not come back after the failover"
        time.sleep(0.1)
    # the remote DR follows the new primary: a write made now reaches it
    wid, ok = _write(stack.vip_url, session)
    assert ok
    import psycopg
    deadline = time.monotonic() + 15
    while True:
        with psycopg.connect(stack.db_dsn("pg-remote"), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM consultations WHERE write_id = %s", (wid,)).fetchone():
                break
        assert time.monotonic() < deadline, "remote DR did not follow the promoted primary"
        time.sleep(0.2)


def _crash_under_load(s, writers: int = 4, before: float = 1.5) -> tuple[dict, set]:
    """Writers hammer the VIP; crash the primary mid-stream; fail over; return acked ids and lost."""
    acked: dict[str, float] = {}
    stop = threading.Event()

    def writer():
        with requests.Session() as sess:
            while not stop.is_set():
                wid, ok = _write(s.vip_url, sess)
                if ok:
                    acked[wid] = time.time()

    threads = [threading.Thread(target=writer) for _ in range(writers)]
    for t in threads:
        t.start()
    time.sleep(before)
    s.crash_db("pg-primary")
    stop.set()
    for t in threads:
        t.join()
    s.promote_standby("pg-samecity")
    return acked, missing_write_ids(s.db_dsn("pg-samecity"), list(acked))


@pytest.mark.parametrize("mode,lag", [("sync", 0.0), ("async", 60.0)])
def test_rpo_counts_lost_acknowledged_writes(tmp_path, mode, lag):
    # time scale 60: a 60 s drill lag is 1 real second of WAL in flight on the replication link
    s = local.up(tmp_path, StackConfig(replication=Replication(mode=mode, lag=lag)), time_scale=60)
    try:
        acked, lost = _crash_under_load(s)
    finally:
        s.down()
    assert len(acked) > 50
    if mode == "sync":
        assert lost == set(), f"sync replication lost {len(lost)} acknowledged writes"
    else:
        assert len(lost) > 0, "async replication with a lagging link lost nothing: lag not applied?"
        assert len(lost) < len(acked)
    assert_nothing_left(tmp_path)


def test_down_frees_everything(tmp_path):
    s = local.up(tmp_path, StackConfig(remote_dr=False), time_scale=60)
    addresses = [*s.addresses.values(), *s.link_listen.values()]
    assert "pg-remote" not in s.addresses
    s.down()
    s.down()  # twice is harmless
    assert_nothing_left(tmp_path, addresses)
