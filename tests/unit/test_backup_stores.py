"""The audit's look at the hospital's existing backups (harness/plan/backup_stores.py), over store
directories laid out as pg_basebackup writes a backup: backup_label and backup_manifest."""
from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness.plan import backup_stores as bs
from harness.plan.models import BackupSchedule

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=timezone.utc)
SCHEDULE = BackupSchedule(full_every="24h", incremental_every="1h", grace="15m")
SYSTEM = 7441234567890123456


def _lsn(n: int) -> str:
    return f"0/{n:X}000028"


def _backup(store: Path, name: str, started: datetime, lsn: int, since: int | None = None,
            zone: str = "UTC", system: int = SYSTEM) -> Path:
    """A backup directory as pg_basebackup leaves it (only the files the audit reads)."""
    path = store / name
    path.mkdir(parents=True)
    lines = [f"START WAL LOCATION: {_lsn(lsn)} (file 0000000100000000000000{lsn:02X})",
             f"CHECKPOINT LOCATION: 0/{lsn:X}000080", "BACKUP METHOD: streamed",
             "BACKUP FROM: primary", f"START TIME: {started:%Y-%m-%d %H:%M:%S} {zone}",
             "LABEL: pg_basebackup base backup", "START TIMELINE: 1"]
    if since is not None:
        lines += [f"INCREMENTAL FROM LSN: {_lsn(since)}", "INCREMENTAL FROM TLI: 1"]
    (path / "backup_label").write_text("\n".join(lines) + "\n")
    (path / "backup_manifest").write_text(json.dumps(
        {"PostgreSQL-Backup-Manifest-Version": 2, "System-Identifier": system, "Files": []}))
    return path


@pytest.fixture
def stores(tmp_path) -> dict[str, Path]:
    return {s: tmp_path / s for s in ("local_disk", "cloud", "offline_tape")}


def _everywhere(stores, name, started, lsn, since=None):
    for folder in stores.values():
        _backup(folder, name, started, lsn, since)


def _judge(stores, schedule=SCHEDULE):
    return bs.judge(schedule, stores, NOW, "plans/h.yaml:99")


def test_a_fresh_chain_in_every_store_is_no_finding(stores):
    _everywhere(stores, "full-0100", NOW - timedelta(hours=8, minutes=30), 3)
    _everywhere(stores, "incr-0900", NOW - timedelta(minutes=30), 4, since=3)
    findings, evidence = _judge(stores)
    assert findings == []
    assert evidence["newest_full"]["label"] == "full-0100"
    assert evidence["newest_full"]["store"] == "local_disk"  # the first store's copy
    assert evidence["newest_incremental"]["age_seconds"] == 1800.0
    assert evidence["newest_chain"] == ["full-0100", "incr-0900"]


def test_no_backup_anywhere_is_high_and_names_where_it_looked(stores):
    [f] = _judge(stores)[0]
    assert (f.severity, f.where) == ("high", "plans/h.yaml:99")
    assert "no full backup in any store" in f.message and str(stores["cloud"]) in f.message


def test_a_full_older_than_its_interval_and_grace_is_high(stores):
    _everywhere(stores, "full-old", NOW - timedelta(hours=24, minutes=16), 3)
    _everywhere(stores, "incr-0900", NOW - timedelta(minutes=20), 4, since=3)
    [f] = _judge(stores)[0]
    assert f.severity == "high" and "newest full backup full-old" in f.message
    assert f.evidence["age_seconds"] == 24 * 3600 + 16 * 60
    assert f.evidence["allowed_seconds"] == 24 * 3600 + 15 * 60
    # within the grace it is still on time
    assert _judge(stores, SCHEDULE.model_copy(update={"grace": 20 * 60.0}))[0] == []


def test_incrementals_that_stopped_are_medium_a_fresh_full_counts_as_a_restore_point(stores):
    _everywhere(stores, "full-0100", NOW - timedelta(hours=8), 3)
    _everywhere(stores, "incr-0400", NOW - timedelta(hours=5), 4, since=3)
    [f] = _judge(stores)[0]
    assert f.severity == "medium" and "incr-0400" in f.message and "5h" in f.message
    _everywhere(stores, "full-0900", NOW - timedelta(minutes=10), 5)  # a new full since
    assert _judge(stores)[0] == []


def test_an_incremental_without_its_base_cannot_be_restored(stores):
    _everywhere(stores, "full-0100", NOW - timedelta(hours=2), 3)
    _everywhere(stores, "incr-0900", NOW - timedelta(minutes=10), 6, since=5)  # 5: gone
    [f] = _judge(stores)[0]
    assert f.severity == "high" and "builds on LSN 0/5000028" in f.message
    assert "cannot be restored" in f.message
    # a chain through an earlier incremental to the full is whole
    _everywhere(stores, "incr-0800", NOW - timedelta(minutes=70), 5, since=3)
    findings, evidence = _judge(stores)
    assert findings == [] and evidence["newest_chain"] == ["full-0100", "incr-0800", "incr-0900"]


def test_another_clusters_backup_is_no_base(stores):
    _backup(stores["local_disk"], "full-other", NOW - timedelta(hours=1), 3, system=1)
    _backup(stores["local_disk"], "incr", NOW - timedelta(minutes=5), 4, since=3)
    assert bs.chain_of(bs.scan(stores)[-1], bs.scan(stores)) is None


def test_a_store_without_the_newest_copy_is_medium(stores):
    _everywhere(stores, "full-0100", NOW - timedelta(hours=8), 3)
    for s in ("local_disk", "cloud"):  # the tape missed the last incremental
        _backup(stores[s], "incr-0900", NOW - timedelta(minutes=30), 4, since=3)
    [f] = _judge(stores)[0]
    assert f.severity == "medium" and f.evidence["store"] == "offline_tape"
    assert "offline_tape has no copy of the newest incremental backup incr-0900" in f.message


def test_the_backups_own_time_counts_not_the_files(stores):
    old = _backup(stores["local_disk"], "full-old", NOW - timedelta(days=3), 3)
    os.utime(old / "backup_label")  # copied just now: a fresh mtime
    findings, evidence = _judge({"local_disk": stores["local_disk"]},
                                SCHEDULE.model_copy(update={"incremental_every": None}))
    assert [f.severity for f in findings] == ["high"]
    assert evidence["newest_full"]["age_seconds"] == 3 * 86400


def test_label_times_in_another_zone(stores):
    here = NOW.astimezone(timezone(timedelta(hours=8)))
    b = bs.read_backup(_backup(stores["cloud"], "x", here.replace(tzinfo=None), 3, zone="+08"),
                       "cloud")
    assert b is not None and b.started == NOW and b.kind == "full" and b.system == str(SYSTEM)
    assert bs.read_backup(stores["cloud"], "cloud") is None  # a folder with no backup_label


def test_deposit_names_a_copy_by_its_start_time(tmp_path, stores):
    taken = _backup(tmp_path / "run", "full-d1-0100", NOW, 3)
    copies = bs.deposit(taken, "full-d1-0100", stores)
    assert {p.name for p in copies.values()} == {"20261129T093000Z-full-d1-0100"}
    assert all((p / "backup_label").is_file() for p in copies.values())
    bs.deposit(taken, "full-d1-0100", stores)  # the same backup again: replaced, not doubled
    assert len(bs.scan(stores)) == 3


def test_where_the_stores_are(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    schedule = BackupSchedule(copies=["local_disk", "cloud"], stores={"cloud": "../mnt/oss"})
    dirs = bs.store_dirs(schedule, "county", tmp_path / "plans")
    assert dirs == {"local_disk": tmp_path / "data" / "hospital-drill" / "backups" / "county" / "local_disk",
                    "cloud": tmp_path / "plans" / "../mnt/oss"}

