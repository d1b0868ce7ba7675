"""Backups on a schedule against the real local stack, an accidental deletion, and the restore: full +
incremental combined by pg_combinebackup into a new node, the deleted rows copied back to the live
primary (test_postgres.py covers the bare pg_basebackup / pg_combinebackup chain)."""
from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.clock import DrillClock
from harness.faults import base as faults
from harness.journal import Journal, read_journal
from harness.models import BackupPlan, FaultSpec, StackConfig
from harness.runbook.actions import ActionContext
from harness.runbook.data_actions import RestoreParams, restore_from_backup
from harness.stack import local
from harness.stack.backups import BackupSchedule, TakenBackup, chain_before
from tests.helpers import assert_nothing_left, port_open


def _taken(label, kind, finished, based_on=None):
    return TakenBackup(label, kind, "pg-primary", SimpleNamespace(path=Path("/x") / label), finished - 1,
                       finished, based_on)


def test_chain_before_picks_the_newest_chain_finished_in_time():
    cat = [_taken("full-1", "full", 10), _taken("incr-2", "incremental", 20, "full-1"),
           _taken("incr-3", "incremental", 30, "incr-2"), _taken("full-4", "full", 40),
           _taken("incr-5", "incremental", 50, "full-4")]
    assert [b.label for b in chain_before(cat, 35)] == ["full-1", "incr-2", "incr-3"]
    assert [b.label for b in chain_before(cat, 30)] == ["full-1", "incr-2"]  # still being taken
    assert [b.label for b in chain_before(cat, 99)] == ["full-4", "incr-5"]
    assert chain_before(cat, 10) == []
    # an incremental whose full is not in the catalogue is no chain at all
    assert [b.label for b in chain_before(cat[1:3], 99)] == []


def test_schedule_is_a_daily_full_with_hourly_incrementals():
    s = BackupSchedule.__new__(BackupSchedule)
    s.plan = BackupPlan(full="at start", full_every="24h", incremental_every="1h")
    due = s.due()
    first = [next(due) for _ in range(25)]
    assert first[0] == (0.0, "full") and first[24] == (86400.0, "full")
    assert all(k == "incremental" for _, k in first[1:24])
    assert [t for t, _ in first[:3]] == [0.0, 3600.0, 7200.0]


@pytest.fixture
def stack(tmp_path):
    s = local.up(tmp_path / "run", StackConfig(remote_dr=False), time_scale=3600)
    addresses = [*s.addresses.values(), *s.link_listen.values()]
    yield s
    addresses += [a for n, a in s.addresses.items() if n.startswith("pg-restore")]
    s.down()
    assert_nothing_left(tmp_path / "run", addresses)


def _wait(cond, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.integration
def test_scheduled_backups_restore_what_an_accidental_delete_removed(stack, tmp_path):
    primary = stack.pg["pg-primary"]

    def add(prefix: str, n: int) -> None:
        primary.query("INSERT INTO consultations (write_id, patient_id, doctor_id, symptoms) "
                      "SELECT %s || g, 'P00042', 3, 'cough' FROM generate_series(1, %s) g",
                      (prefix, n), dbname="hospital")

    def write_ids(prefix: str) -> set[str]:
        return {r[0] for r in primary.query("SELECT write_id FROM consultations WHERE write_id LIKE %s",
                                            (prefix + "%",), dbname="hospital")}

    clock = DrillClock(3600)  # an hour of drill time per real second
    journal = Journal(tmp_path / "journal.jsonl", clock)
    add("night-", 100)
    clock.start()
    schedule = BackupSchedule(stack, journal, clock, BackupPlan(incremental_every="1h"))
    schedule.start()
    try:
        _wait(lambda: len(stack.backups) >= 1)
        add("morning-", 50)
        primary.query("INSERT INTO prescriptions (write_id, patient_id, consultation_id, drug) "
                      "SELECT 'rx-' || id, patient_id, id, 'ibuprofen' FROM consultations "
                      "WHERE write_id LIKE 'morning-%'", dbname="hospital")
        n = len(stack.backups)
        _wait(lambda: len(stack.backups) > n)
    finally:
        t0 = time.monotonic()
        schedule.stop()
    assert not schedule.is_alive() and time.monotonic() - t0 < 30
    add("lost-", 20)  # after the last backup: beyond any restore

    taken = read_journal(tmp_path / "journal.jsonl").of_type("backup.taken")
    assert [e["kind"] for e in taken][:2] == ["full", "incremental"]
    assert taken[0]["label"] == "full-d1-0100" and taken[1]["based_on"] == "full-d1-0100"
    for e in taken:
        assert e["size"] > 0 and Path(e["path"], "backup_manifest").is_file()
        assert Path(e["offline"], "backup_manifest").is_file()  # the tape copy

    fault = faults.build(FaultSpec(at=0, type="data_deletion", params={"scope": "today"}))
    detail = fault.inject(stack)
    assert detail["rows_deleted"] == 170 and detail["deleted"]["prescriptions"] == 50
    assert all(r["status"] == 404 for r in detail["patient_view"])
    assert write_ids("night-") == set()
    add("after-", 5)  # the hospital keeps serving while the data is restored

    ctx = ActionContext(stack, journal, SimpleNamespace(ledger=None, incident_start=time.time()),
                        drill=None, time_scale=3600)
    out = restore_from_backup(ctx, RestoreParams())
    assert [b["label"] for b in out["backups"]] == [b.label for b in stack.backups]
    assert out["rows_in_backup"]["consultations"] == 150
    assert out["copied_back"] == {"consultations": 150, "prescriptions": 50}
    assert out["patient_view"]["status"] == 200
    assert len(write_ids("night-")) == 100 and len(write_ids("morning-")) == 50
    assert len(write_ids("after-")) == 5  # kept: copied back, not switched back
    assert write_ids("lost-") == set()  # the RPO: written after the last backup
    assert stack.db_role("pg-restore") == "restored" and stack.current_primary() == "pg-primary"
    assert port_open(out["restored_address"])
    # the offline (tape) copies restore just the same
    offline = [b.path("offline") for b in chain_before(stack.backups, time.time())]
    node = stack.restore_db(offline, name="pg-restore-offline")
    rows = stack.pg[node].query("SELECT count(*) FROM consultations WHERE write_id NOT LIKE 'lost-%'",
                                dbname="hospital")
    assert rows == [(150,)]
    journal.close()
