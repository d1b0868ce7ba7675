"""PostgreSQL server processes seen from outside: which are alive, which belong to a data directory,
and stopping whatever a run left running.

Every server process has its data directory as its working directory, which is how processes are
tied to a run even after their postmaster was killed.
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil


def kill_leftovers(run_dir: Path, timeout: float = 5.0) -> list[int]:
    """Stop every PostgreSQL process whose data directory is under `run_dir`; their pids.

    Postmasters found via postmaster.pid get a fast (then immediate) shutdown; then anything still
    running there (including backends orphaned by a killed postmaster: every server process has its
    data directory as its working directory) is SIGKILLed.
    """
    roots = _real_roots(Path(run_dir))
    if not roots:
        return []

    def under(p: str | None) -> bool:
        return p is not None and any(p == r or p.startswith(r + os.sep) for r in roots)

    # standbys first: a primary's fast shutdown waits until its standbys have the final WAL
    standbys: list[int] = []
    others: list[int] = []
    for root in roots:
        for pidfile in _find_pidfiles(Path(root)):
            datadir = pidfile.parent
            pid = postmaster_pid(datadir)
            if pid is not None and alive(pid) and cwd_of(pid) == str(datadir.resolve()):
                (standbys if (datadir / "standby.signal").exists() else others).append(pid)
    for group in (standbys, others):
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 3.0)):
            for pid in group:
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            if wait_gone(group, wait):
                break
    postmasters = standbys + others
    stragglers = [p.pid for p in psutil.process_iter(["name"])
                  if p.info["name"] == "postgres" and alive(p.pid) and under(cwd_of(p.pid))]
    for pid in stragglers:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    wait_gone(stragglers, 5.0)
    return sorted(set(postmasters) | set(stragglers))


def postmaster_pid(datadir: Path) -> int | None:
    try:
        first = (Path(datadir) / "postmaster.pid").read_text().split("\n", 1)[0]
        return int(first.strip())
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def process_family(pid: int) -> list[psutil.Process]:
    try:
        p = psutil.Process(pid)
        return [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def wait_gone(pids: Sequence[int], timeout: float) -> bool:
    """Until none of `pids` runs (zombies count as gone: they hold no port, lock or file)."""
    deadline = time.monotonic() + timeout
    while True:
        if not any(alive(p) for p in pids):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def cwd_of(pid: int) -> str | None:
    try:
        return psutil.Process(pid).cwd()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def _real_roots(run_dir: Path) -> list[str]:
    """run_dir and the real directories its symlinks lead to (data relocated by data_root)."""
    if not run_dir.exists():
        return []
    roots = {str(run_dir.resolve())}
    for root, dirs, _ in os.walk(run_dir):
        for d in dirs:
            p = Path(root) / d
            if p.is_symlink():
                roots.add(str(p.resolve()))
        if len(Path(root).relative_to(run_dir).parts) >= 2:
            dirs[:] = []  # data_root links sit at run_dir/pg; no need to walk whole data dirs
    return sorted(roots)


def _find_pidfiles(root: Path, depth: int = 3) -> Iterator[Path]:
    for dirpath, dirs, files in os.walk(root):
        if "postmaster.pid" in files:
            yield Path(dirpath) / "postmaster.pid"
            dirs[:] = []  # inside a data directory
        elif len(Path(dirpath).relative_to(root).parts) >= depth:
            dirs[:] = []
