"""Offline reception in the score: receipts from the records, back-entry from the journal, lost."""
import json

from harness.journal import JournalRead
from harness.load.records import RecordTail
from harness.score.offline import OfflineTally, offline_result
from harness.score.tallies import tally


def receipt(oid, t, ok=True):
    return {"t": t, "ms": 5.0, "patient": "P00001", "persona": "followup", "journey": "offline",
            "name": "POST /records (offline reception)", "ok": ok, "status": 201 if ok else None,
            "error": None, "write_id": None, "choice": "offline", "offline_id": oid}


def page(choice, t):
    return {"t": t, "ms": 2.0, "patient": "P00002", "persona": "exam", "journey": "offline",
            "name": "GET /api/notice", "ok": True, "status": 200, "error": None, "write_id": None,
            "choice": choice}


def back_entered(wall, seconds, landed, **counts):
    return {"type": "offline.back_entered", "wall": wall, "seconds": seconds, "landed_ids": landed,
            "read": len(landed), "conflict_list": [], **counts}


def score(records, events):
    t = OfflineTally()
    passed = list(t.watch(records))
    assert passed == records  # the stream goes on unchanged to the other tallies
    return offline_result(JournalRead(events=events), t)


def test_receipt_missing_from_main_db_after_back_entry_is_lost():
    records = [receipt("a", 100.0), receipt("b", 101.0), receipt("c", 102.0), receipt("x", 103.0, ok=False),
               page("offline", 99.0), page("retry", 99.5), page("give_up", 99.7), page("give_up", 99.8)]
    events = [back_entered(200.0, 1.0, ["a", "b"], entered=2, duplicates_refused=0, conflicts=0)]
    r = score(records, events)
    assert (r.taken, r.back_entered, r.lost, r.lost_sample, r.taken_after) == (3, 2, 1, ["c"], 0)
    assert r.choices == {"offline": 1, "retry": 1, "give_up": 2}
    assert r.to_contact == ["P00001"]  # the holder of the lost receipt


def test_patients_to_contact_join_lost_writes_and_lost_receipts():
    rpo = {"type": "rpo.measured", "wall": 150.0, "lost_patients": ["P00007", "P00003"]}
    r = score([receipt("a", 100.0)], [rpo, back_entered(200.0, 1.0, ["a"], entered=1)])
    assert (r.lost, r.to_contact) == (0, ["P00003", "P00007"])
    r = score([receipt("a", 100.0)], [rpo])
    assert r.to_contact == ["P00001", "P00003", "P00007"]


def test_second_run_refuses_duplicates_and_later_receipts_are_counted_apart():
    records = [receipt("a", 100.0), receipt("b", 101.0), receipt("late", 250.0)]
    events = [back_entered(200.0, 1.0, ["a", "b"], entered=2, duplicates_refused=0, conflicts=1),
              back_entered(230.0, 0.5, ["a", "b"], entered=0, duplicates_refused=2, conflicts=0)]
    r = score(records, events)
    assert (r.back_entry_runs, r.back_entered, r.duplicates_refused, r.conflicts) == (2, 3, 2, 1)
    assert (r.lost, r.taken_after) == (0, 1)


def test_no_back_entry_loses_every_receipt_and_no_offline_means_no_section():
    r = score([receipt("a", 100.0), receipt("b", 101.0)], [])
    assert (r.taken, r.lost, r.back_entry_runs) == (2, 2, 0)
    assert score([], []) is None


def test_offline_requests_are_not_the_hospital_serving(tmp_path):
    failed = {"t": 100.0, "ms": 3000.0, "patient": "P00001", "persona": "followup",
              "journey": "followup", "name": "POST /api/appointments", "ok": False, "status": 500,
              "error": "HTTP 500", "write_id": "w1"}
    records = [failed, receipt("a", 100.5)]
    (tmp_path / "local.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert [r["journey"] for r in RecordTail(tmp_path).poll()] == ["followup"]  # the monitor's view
    impact, _ = tally(records, 50.0, 200.0, 60.0, origin=0.0)
    assert impact.during.requests == 1 and impact.during.failed == 1
