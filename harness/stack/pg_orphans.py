"""Data a killed run left outside its run directory, found and removed by the next local bring-up.

A run's data directories live under /dev/shm (or /var/tmp) when `data_root` relocates them, with
`RUN_DIR/pg` a symlink there. A run that ends in any normal way removes them; one that is SIGKILLed
(or whose machine lost power mid-drill) leaves them in memory, with the shared memory of its servers.
Each relocated root names its run in `.owner`; a root is an orphan when its run no longer points at
it, or when nothing of that run is alive and the root is older than a bring-up could be.
"""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from ..rundir import RunDir
from . import pg_shm
from .pg_processes import _find_pidfiles, alive, kill_leftovers, postmaster_pid
from .process import read_pids

log = logging.getLogger("harness.stack")

OWNER = ".owner"  # in a relocated data root: the run directory it belongs to
QUIET_FOR = 120.0  # s: a root with nothing alive younger than this may be a bring-up under way


def claim(root: Path, run_dir: Path) -> None:
    """Write down which run a relocated data root belongs to."""
    (root / OWNER).write_text(str(run_dir))


def _servers_alive(root: Path) -> bool:
    return any((pid := postmaster_pid(f.parent)) is not None and alive(pid) for f in _find_pidfiles(root))


def _run_alive(run_dir: Path, root: Path) -> bool:
    return _servers_alive(root) or any(alive(pid) for pid in read_pids(run_dir).values()
                                       if isinstance(pid, int))


def orphaned(base: Path, now: float | None = None) -> list[Path]:
    """The relocated data roots under `base`/runs whose run is gone."""
    now = time.time() if now is None else now
    runs = base / "runs"
    if not runs.is_dir():
        return []
    out = []
    for root in sorted(p for p in runs.iterdir() if p.is_dir() and not p.is_symlink()):
        try:
            owner = Path((root / OWNER).read_text().strip())
            age = now - (root / OWNER).stat().st_mtime
        except OSError:  # not claimed: by an older version, or a bring-up a moment ago
            try:
                age = now - root.stat().st_mtime
            except OSError:
                continue
            if age > QUIET_FOR and not _servers_alive(root):
                out.append(root)
            continue
        link = RunDir(owner).pg
        pointed = link.is_symlink() and link.resolve() == root.resolve()
        if not pointed or (age > QUIET_FOR and not _run_alive(owner, root)):
            out.append(root)
    return out


def sweep(bases: tuple[Path, ...]) -> list[str]:
    """Stop what still runs from each orphaned root, release its shared memory, delete it."""
    removed = []
    for base in bases:
        for root in orphaned(base):
            kill_leftovers(root)
            pg_shm.release_under(root)
            shutil.rmtree(root, ignore_errors=True)
            removed.append(str(root))
            log.warning("removed the data a killed run left: %s", root)
    return removed
