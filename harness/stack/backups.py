"""The hospital's backup schedule (全量/增量备份), played in drill time against the running stack.

A `BackupSchedule` thread takes a real full backup (`pg_basebackup`) of the serving primary at the
plan's `full` time — T+0 by default, standing for the daily 01:00 full — and again every
`full_every`, and a real incremental one (`pg_basebackup --incremental`, based on the previous backup
of the chain) every `incremental_every` in between. Each backup lands on the backup disk
(`Stack.backup_db`: the local copy) and, with `offline_copy`, is copied to a second store standing
for the offline tape. Every backup is journalled (`backup.taken` / `backup.failed`) and appended to
`stack.backups`, the catalogue a restore picks its chain from (`chain_before`).

The thread is stopped by the run on every exit path (`stop()`); a backup already running is let
finish (it takes about a second), and one cut short by the stack going down is journalled as failed.
"""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..clock import DrillClock
    from ..journal import Journal
    from ..models import BackupPlan
    from .base import Stack
    from .pg_backup import Backup


@dataclass(frozen=True)
class TakenBackup:
    """One backup in the catalogue: where its copies are and when it was taken (wall seconds)."""
    label: str
    kind: str  # full | incremental
    node: str  # the database node it was taken from
    backup: "Backup"  # the local copy (path, seconds, size)
    started_wall: float
    finished_wall: float
    based_on: str | None  # label of the backup an incremental one needs
    offline: Path | None = None  # the offline (tape) copy

    def path(self, source: str = "local") -> Path:
        if source == "offline":
            if self.offline is None:
                raise ValueError(f"backup {self.label} has no offline copy")
            return self.offline
        return Path(self.backup.path)


def chain_before(catalogue: list[TakenBackup], wall: float) -> list[TakenBackup]:
    """The newest restorable chain whose last backup finished before `wall`: its full backup
    followed by the incrementals it needs, oldest first; [] when no backup finished in time.

    A backup is consistent as of its end, so one still running at `wall` (or started after it)
    already holds whatever happened at `wall` — after an accidental deletion, the deletion.
    """
    by_label = {b.label: b for b in catalogue}
    for last in sorted((b for b in catalogue if b.finished_wall < wall),
                       key=lambda b: b.finished_wall, reverse=True):
        chain, b = [last], last
        while b.based_on is not None and b.based_on in by_label:
            b = by_label[b.based_on]
            chain.append(b)
        if chain[-1].kind == "full":
            return list(reversed(chain))
    return []


class BackupSchedule(threading.Thread):
    def __init__(self, stack: "Stack", journal: "Journal", clock: "DrillClock", plan: "BackupPlan"):
        super().__init__(name="backup-schedule", daemon=True)
        self.stack, self.journal, self.clock, self.plan = stack, journal, clock, plan
        self._stop_evt = threading.Event()
        self.taken: list[TakenBackup] = []
        self.failed = 0

    # --- the schedule ---------------------------------------------------------------------------
    def due(self) -> Iterator[tuple[float, str]]:
        """(drill time, kind) of every backup the plan calls for, in order, without end."""
        p = self.plan
        t_full = p.full
        while True:
            yield t_full, "full"
            next_full = t_full + p.full_every
            if p.incremental_every:
                t = t_full + p.incremental_every
                while t < next_full - 1e-6:
                    yield t, "incremental"
                    t += p.incremental_every
            t_full = next_full

    def run(self) -> None:
        plan = self.due()
        at, kind = next(plan)
        while True:
            # a schedule running behind (backups longer than its interval) sleeps not at all, so
            # the stop is looked at here too, or it would take backups until it caught up
            if self._stop_evt.is_set() or not self.clock.sleep_until(at, stop=self._stop_evt):
                return
            nxt = next(plan)
            # a backup that overran a whole interval makes the missed ones due at once: take one
            while self.clock.drill() >= nxt[0]:
                at, kind = nxt[0], ("full" if "full" in (kind, nxt[1]) else nxt[1])
                nxt = next(plan)
            self._take(kind, at)
            at, kind = nxt

    def stop(self, timeout: float = 130.0) -> None:
        """Stop taking backups; wait for one in progress (bounded by pg_basebackup's own timeout)."""
        self._stop_evt.set()
        if self.is_alive():
            self.join(timeout)

    # --- one backup -----------------------------------------------------------------------------
    def _label(self, kind: str, at: float) -> str:
        if self.plan.clock_start:
            h, m = (int(x) for x in self.plan.clock_start.split(":"))
            minutes = h * 60 + m + int(at // 60)
            day, minute = divmod(minutes, 24 * 60)
            stamp = f"d{day + 1}-{minute // 60:02d}{minute % 60:02d}"
        else:
            stamp = f"t{int(at)}s"
        base = f"{'full' if kind == 'full' else 'incr'}-{stamp}"
        label, n = base, 1
        while any(b.label == label for b in self.stack.backups):
            n += 1
            label = f"{base}-{n}"
        return label

    def _take(self, kind: str, at: float) -> None:
        node = self.stack.current_primary()
        parent = self._chain_tip() if kind == "incremental" else None
        if kind == "incremental" and (parent is None or parent.node != node):
            kind = "full"  # nothing to build on (a failed full, or a new primary after failover)
        label = self._label(kind, at)
        started = time.time()
        if node is None:
            self._failed(kind, label, started, "no database primary is serving")
            return
        try:
            backup = self.stack.backup_db(node, label, since=parent.backup if parent else None)
        except Exception as e:  # journalled; the next one is tried on time all the same
            self._failed(kind, label, started, f"{e.__class__.__name__}: {str(e)[-400:]}", node)
            return
        finished = time.time()
        offline, offline_s = None, None
        if self.plan.offline_copy:
            t0 = time.monotonic()
            try:
                offline = _copy(Path(backup.path), Path(backup.path).parent.parent / "offline" / label)
                offline_s = round(time.monotonic() - t0, 3)
            except (OSError, subprocess.CalledProcessError) as e:
                self.journal.record("backup.copy_failed", label=label, copy="offline", error=str(e))
        taken = TakenBackup(label, backup.kind, node, backup, started, finished,
                            parent.label if parent else None, offline)
        self.stack.backups.append(taken)
        self.taken.append(taken)
        self.journal.record(
            "backup.taken", wall=finished, kind=backup.kind, label=label, node=node,
            based_on=taken.based_on, scheduled_at=at, started_wall=round(started, 6),
            size=backup.size_bytes, seconds=backup.seconds,
            drill_seconds=round(backup.seconds, 1),  # a machine's work: real time at any scale
            path=str(backup.path), offline=str(offline) if offline else None,
            offline_seconds=offline_s)

    def _chain_tip(self) -> TakenBackup | None:
        return self.stack.backups[-1] if self.stack.backups else None

    def _failed(self, kind: str, label: str, started: float, error: str, node: str | None = None) -> None:
        self.failed += 1
        self.journal.record("backup.failed", kind=kind, label=label, node=node,
                            started_wall=round(started, 6), error=error)


def _copy(src: Path, dest: Path) -> Path:
    """The offline copy: the same files, owners and modes, in a second store."""
    dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    if dest.exists():
        shutil.rmtree(dest)
    subprocess.run(["cp", "-a", str(src), str(dest)], check=True, capture_output=True, timeout=120)
    return dest


def describe_chain(chain: list[TakenBackup]) -> list[dict[str, Any]]:
    return [{"label": b.label, "kind": b.kind, "size": b.backup.size_bytes,
             "finished_wall": round(b.finished_wall, 6)} for b in chain]
