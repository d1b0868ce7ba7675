"""Backups of a PostgreSQL node and the data directory a chain of them restores to.

A backup is a `pg_basebackup` (full, or incremental on an earlier one's manifest: PostgreSQL 17+,
needs summarize_wal = on); a restore combines a full backup and its incrementals with
`pg_combinebackup` (postgres.restore makes a node of the result).
"""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import HarnessError
from .pg_env import HOST, SUPERUSER, PgBinaries


class BackedUp(Protocol):
    """What a backup needs of a node: its programs and the port it serves on (at HOST)."""

    bins: PgBinaries
    port: int


@dataclass(frozen=True)
class Backup:
    path: Path
    kind: str  # full | incremental
    based_on: Path | None  # the backup an incremental one needs
    seconds: float
    size_bytes: int
    finished_wall: float


def base_backup(node: BackedUp, dest: Path, *, incremental_from: Backup | Path | None = None,
                timeout: float = 300.0) -> Backup:
    """A pg_basebackup of `node` into `dest`, self-contained (the WAL it needs is streamed along).

    With `incremental_from`, only blocks changed since that backup are copied (PostgreSQL 17+,
    needs summarize_wal = on, which init_primary sets); restore() combines the chain.
    """
    dest = Path(dest).resolve()
    if dest.exists() and any(dest.iterdir()):
        raise HarnessError(f"backup destination {dest} is not empty")
    if not node.bins.can_reach(dest):
        raise HarnessError(f"{dest.parent} is not traversable by {node.bins.user!r}")
    dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    node.bins.own(dest, 0o700)
    args: list[str | os.PathLike[str]] = ["-h", HOST, "-p", str(node.port), "-U", SUPERUSER, "-D", dest,
                                          "-X", "stream", "-c", "fast", "--no-sync"]
    based_on = None
    if incremental_from is not None:
        based_on = Path(incremental_from.path if isinstance(incremental_from, Backup) else incremental_from)
        args.append(f"--incremental={based_on.resolve() / 'backup_manifest'}")
    t0 = time.monotonic()
    node.bins.run("pg_basebackup", *args, timeout=timeout)
    return Backup(dest, "incremental" if based_on else "full", based_on, round(time.monotonic() - t0, 3),
                  tree_size(dest), time.time())


def incremental_backup(node: BackedUp, dest: Path, since: Backup | Path, *, timeout: float = 300.0) -> Backup:
    return base_backup(node, dest, incremental_from=since, timeout=timeout)


def chain_paths(backups: Backup | Path | Sequence[Backup | Path]) -> list[Path]:
    """The backups' directories, checked to be one full backup then its incrementals, oldest first."""
    chain = [backups] if isinstance(backups, (Backup, Path, str)) else list(backups)
    paths = [Path(b.path if isinstance(b, Backup) else b).resolve() for b in chain]
    if not paths:
        raise HarnessError("restore needs at least one backup")
    for i, path in enumerate(paths):
        incremental = "INCREMENTAL FROM LSN" in _read(path / "backup_label")
        if incremental != (i > 0):
            raise HarnessError(f"restore chain must be one full backup then its incrementals, oldest "
                               f"first; {path} is {'an incremental' if incremental else 'a full'} backup")
    return paths


def combine(paths: list[Path], datadir: Path, bins: PgBinaries) -> None:
    """Fill the (prepared, empty) `datadir` from a checked chain: a copy of a lone full backup, else
    `pg_combinebackup` of the chain. The manifest goes: the result is a data directory, not a backup."""
    if len(paths) == 1:
        shutil.copytree(paths[0], datadir, symlinks=True, dirs_exist_ok=True)
    else:
        bins.run("pg_combinebackup", "--no-sync", "-o", datadir, *paths, timeout=600)
    (datadir / "backup_manifest").unlink(missing_ok=True)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as e:
        raise HarnessError(f"not a backup: cannot read {path}: {e}") from e


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
