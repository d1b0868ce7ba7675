"""The hospital's backup stores (本地磁盘、云端、离线磁带) as directories, and what is in them.

Each store is a directory (the plan's `backups.stores`, else one under the user's data dir) that holds
one directory per backup, as `pg_basebackup` wrote it: `backup_label` (its start time, start WAL
location and, for an incremental one, the LSN of the backup it builds on) and `backup_manifest`
(the cluster's system identifier). The audit reads those, never file times: a copy made later keeps
the backup's own time.

`judge` says whether the newest backups are as fresh as the schedule promises (real time: the
hospital's own schedule, not a compressed drill), whether the newest incremental chains back to a
full one in its store, and whether every store has its copy. `deposit` puts a backup just taken
into every store, named by its start time and label, so the next audit finds it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..clock import format_duration
from .findings import Finding
from .models import BackupSchedule

CHECK = "backups"
_LINE = re.compile(r"^(?P<key>[A-Z][A-Z ]+): (?P<value>.*)$", re.M)
_LSN = re.compile(r"^[0-9A-F]+/[0-9A-F]+", re.I)


def data_dir() -> Path:
    """Where a user's data lives (XDG), for stores the plan does not place."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "hospital-drill"


def store_dirs(schedule: BackupSchedule, plan_name: str, plan_dir: Path) -> dict[str, Path]:
    """Each store the schedule copies to → its directory."""
    return {store: (plan_dir / schedule.stores[store]) if store in schedule.stores
            else data_dir() / "backups" / plan_name / store for store in schedule.copies}


@dataclass(frozen=True)
class StoredBackup:
    store: str
    path: Path
    kind: str  # full | incremental
    started: datetime  # the backup's START TIME, aware
    start_lsn: str
    incremental_from: str | None  # the start LSN of the backup it builds on
    system: str | None  # the cluster's system identifier (manifest)

    @property
    def name(self) -> str:
        return self.path.name

    def evidence(self, now: datetime) -> dict[str, Any]:
        return {"store": self.store, "path": str(self.path), "label": self.name, "kind": self.kind,
                "started": self.started.isoformat(), "age_seconds": round(_age(self, now), 1)}


def _age(b: StoredBackup, now: datetime) -> float:
    return (now - b.started).total_seconds()


def _time(text: str) -> datetime | None:
    """backup_label's START TIME ('2026-11-28 23:41:28 UTC', or a numeric zone) as an aware time."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s*(UTC|GMT|Z|[+-]\d\d(?::?\d\d)?)?", text.strip())
    if not m:
        return None
    zone = m[2] or "UTC"
    if zone in ("UTC", "GMT", "Z"):
        zone = "+00:00"
    elif len(zone) == 3:
        zone += ":00"
    try:
        return datetime.fromisoformat(f"{m[1]}{zone}")
    except ValueError:
        return None


def read_backup(path: Path, store: str) -> StoredBackup | None:
    """The backup in directory `path`, or None when it holds no readable backup_label."""
    try:
        label = (path / "backup_label").read_text(errors="replace")
    except OSError:
        return None
    fields = {m["key"]: m["value"].strip() for m in _LINE.finditer(label)}
    started = _time(fields.get("START TIME", ""))
    start = _LSN.match(fields.get("START WAL LOCATION", ""))
    if started is None or start is None:
        return None
    system = None
    try:
        system = str(json.loads((path / "backup_manifest").read_text()).get("System-Identifier"))
    except (OSError, ValueError, AttributeError):
        pass
    since = fields.get("INCREMENTAL FROM LSN")
    return StoredBackup(store, path, "incremental" if since else "full", started, start[0].upper(),
                        since.upper() if since else None, system)


def scan(stores: dict[str, Path]) -> list[StoredBackup]:
    """Every backup in every store, oldest first; copies of one time in the stores' order last to
    first, so that the newest is the first store's."""
    found = []
    for store, folder in stores.items():
        if folder.is_dir():
            found += [b for p in sorted(folder.iterdir()) if p.is_dir()
                      and (b := read_backup(p, store)) is not None]
    order = list(stores)
    return sorted(found, key=lambda b: (b.started, -order.index(b.store)))


def chain_of(last: StoredBackup, backups: list[StoredBackup]) -> list[StoredBackup] | None:
    """`last` and the backups it builds on in its own store, full first; None when the chain breaks
    (an incremental whose predecessor is in no backup of that store and cluster)."""
    chain = [last]
    same = [b for b in backups if b.store == last.store and b.system == last.system]
    while chain[-1].incremental_from is not None:
        before = [b for b in same if b.start_lsn == chain[-1].incremental_from and b not in chain]
        if not before:
            return None
        chain.append(max(before, key=lambda b: b.started))
    return list(reversed(chain))


def judge(schedule: BackupSchedule, stores: dict[str, Path], now: datetime,
          where: str | None = None) -> tuple[list[Finding], dict[str, Any]]:
    """The stores' newest full and incremental backups against the schedule (see the module doc).

    Severities: no full (or, with incrementals scheduled, no backup since the full's interval) in
    any store is high; the newest full older than `full_every` + grace is high; the newest restore
    point (a full is one too) older than `incremental_every` + grace is medium; an incremental
    whose chain breaks is high; a store without a copy of the newest full or incremental, medium.
    """
    backups = scan(stores)
    fulls = [b for b in backups if b.kind == "full"]
    incrementals = [b for b in backups if b.kind == "incremental"]
    evidence: dict[str, Any] = {"stores": {s: str(p) for s, p in stores.items()},
                                "found": len(backups), "now": now.isoformat(),
                                "grace_seconds": schedule.grace}
    findings: list[Finding] = []
    looked = ", ".join(f"{s} ({p})" for s, p in stores.items())
    if not fulls:
        findings.append(Finding(CHECK, "high", f"no full backup in any store (looked in {looked})",
                                where, evidence={"stores": evidence["stores"]},
                                fix="take one: hospital-drill audit --take-backups, or the "
                                    "hospital's own backup job into these directories"))
        return findings, evidence
    full = fulls[-1]
    evidence["newest_full"] = full.evidence(now)
    allowed = schedule.full_every + schedule.grace
    if _age(full, now) > allowed:
        findings.append(_too_old("high", full, now, allowed, "full", schedule.full_every, schedule.grace,
                                 where))
    newest = [full]
    if schedule.incremental_every:
        allowed = schedule.incremental_every + schedule.grace
        if incrementals:
            incr = incrementals[-1]
            evidence["newest_incremental"] = incr.evidence(now)
            chain = chain_of(incr, backups)
            if chain is None:
                findings.append(Finding(
                    CHECK, "high", f"incremental {incr.name} in {incr.store} builds on LSN "
                    f"{incr.incremental_from}, and no backup in that store starts there: it cannot "
                    "be restored", where, evidence=incr.evidence(now),
                    fix="take a new full backup, and keep every backup a chain needs in each store"))
            else:
                evidence["newest_chain"] = [b.name for b in chain]
            newest.append(incr)
        point = max(newest, key=lambda b: b.started)  # a full is a restore point too
        if _age(point, now) > allowed:
            findings.append(_too_old("medium", point, now, allowed, "incremental",
                                     schedule.incremental_every, schedule.grace, where))
    for b in newest:
        missing = [s for s in stores if not any(o.name == b.name and o.store == s for o in backups)]
        for store in missing:
            findings.append(Finding(CHECK, "medium", f"{store} has no copy of the newest {b.kind} "
                                    f"backup {b.name} (it is in {b.store})", where,
                                    evidence={"store": store, "path": str(stores[store]),
                                              "label": b.name, "found_in": str(b.path)},
                                    fix=f"copy it to {stores[store]}"))
    return findings, evidence


def _too_old(severity: str, b: StoredBackup, now: datetime, allowed: float, kind: str,
             every: float, grace: float, where: str | None) -> Finding:
    what = "full backup" if kind == "full" else f"backup ({b.kind}; a full one is a restore point too)"
    return Finding(CHECK, severity,  # type: ignore[arg-type]
                   f"the newest {what} {b.name} ({b.store}) is {format_duration(_age(b, now))} "
                   f"old; the {kind} schedule allows {format_duration(every)} + "
                   f"{format_duration(grace)} grace",
                   where, evidence={**b.evidence(now), "allowed_seconds": allowed},
                   fix=f"see why the {kind} backups stopped (the backup job, its disk, its schedule)")


def deposit(backup: Path, label: str, stores: dict[str, Path]) -> dict[str, Path]:
    """Copy the backup directory `backup` into every store, named '<start time>-<label>' (its own
    start time: labels repeat from day to day); an existing copy is replaced."""
    found = read_backup(backup, "taken")
    stamp = (found.started if found else datetime.now(timezone.utc)).astimezone(timezone.utc)
    name = f"{stamp:%Y%m%dT%H%M%SZ}-{label}"
    copies = {}
    for store, folder in stores.items():
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        dest = folder / name
        if dest.exists():
            shutil.rmtree(dest)
        subprocess.run(["cp", "-a", str(backup), str(dest)], check=True, capture_output=True,
                       timeout=300)
        copies[store] = dest
    return copies

