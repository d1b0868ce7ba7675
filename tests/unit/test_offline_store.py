"""The offline reception's store: one row per offline id, the first receipt on a repeat."""
import pytest

from harness.stack.services.offline_store import OfflineStore, RecordConflict


@pytest.fixture
def store(tmp_path):
    s = OfflineStore(tmp_path / "reception.sqlite")
    yield s
    s.close()


def test_repeat_returns_first_receipt_and_keeps_one_row(store):
    first = store.take("o-1", "P00001", "refill", {"drug": "amlodipine 5mg"})
    again = store.take("o-1", "P00001", "refill", {"drug": "amlodipine 5mg"})
    assert not first.duplicate and again.duplicate
    assert (again.seq, again.taken_at) == (first.seq, first.taken_at)
    assert store.count() == 1


def test_same_id_with_another_record_is_refused(store):
    store.take("o-1", "P00001", "refill", {"drug": "amlodipine 5mg"})
    with pytest.raises(RecordConflict):
        store.take("o-1", "P00002", "refill", {"drug": "amlodipine 5mg"})
    with pytest.raises(RecordConflict):
        store.take("o-1", "P00001", "refill", {"drug": "metformin 500mg"})
    assert store.count() == 1


def test_unknown_kind_is_refused(store):
    with pytest.raises(ValueError):
        store.take("o-1", "P00001", "surgery", {})
    assert store.count() == 0


def test_since_pages_in_order_and_survives_reopen(tmp_path):
    path = tmp_path / "reception.sqlite"
    s = OfflineStore(path)
    seqs = [s.take(f"o-{i}", f"P{i:05d}", "registration", {"slot": i}).seq for i in range(5)]
    s.close()
    again = OfflineStore(path)
    try:
        page = again.since(seqs[1], limit=2)
        assert [r["seq"] for r in page] == seqs[2:4]
        assert page[0]["detail"] == {"slot": 2} and page[0]["offline_id"] == "o-2"
        assert again.take("o-0", "P00000", "registration", {"slot": 0}).duplicate
    finally:
        again.close()


def test_store_is_in_wal_mode(store):
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_docker_plan_gives_offline_reception_its_own_container_behind_its_link():
    import json

    from harness.models import StackConfig
    from harness.stack.docker.plan import make_plan
    plan = make_plan("hd-test", "10.213.5.0/24", StackConfig())
    box = plan.boxes["offline-reception"]
    assert box.command == ["hd-run", "harness.stack.services.offline"]
    assert json.loads(box.env["HD_CONFIG"])["store"]  # a store of its own, not the main database
    assert plan.wiring["offline"] == box.address
    app = json.loads(plan.boxes["app-primary"].env["HD_CONFIG"])
    assert app["offline_url"] == plan.link_url("offline")  # the QR code the app shows
