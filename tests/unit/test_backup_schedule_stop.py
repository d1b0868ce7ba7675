"""The backup schedule's thread (harness/stack/backups.py) ends when told, even when it runs behind."""
from __future__ import annotations

import time
from types import SimpleNamespace

from harness.clock import DrillClock
from harness.models import BackupPlan
from harness.stack.backups import BackupSchedule


def test_a_schedule_behind_its_interval_stops_when_told():
    """Backups longer than the (compressed) interval: the next is always due at once; a stop must
    still end the schedule after the backup in progress, not when it has caught up."""
    class SlowStack:
        backups: list = []

        def current_primary(self):
            return "pg-primary"

        def backup_db(self, node, label, since=None):
            time.sleep(0.05)  # 50 ms real against a 10 ms interval: always behind
            return SimpleNamespace(path=f"/nowhere/{label}", kind="incremental" if since else "full",
                                   seconds=0.05, size_bytes=1)

    journal = SimpleNamespace(record=lambda *a, **k: None)
    clock = DrillClock(3600 / 0.01)
    clock.start()
    schedule = BackupSchedule(SlowStack(), journal, clock,
                              BackupPlan(incremental_every="1h", offline_copy=False))
    schedule.start()
    while len(schedule.taken) < 2:
        time.sleep(0.01)
    t0 = time.monotonic()
    schedule.stop()
    assert not schedule.is_alive() and time.monotonic() - t0 < 0.5
    assert len(schedule.taken) <= 3  # the two asked for, and at most the one in progress
