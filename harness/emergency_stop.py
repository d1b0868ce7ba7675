"""The emergency stop: `hospital-drill stop RUN_DIR`, from another shell, halts a running drill.

The request is a file in the run directory (`stop.request`: who, when, why), written atomically; the
run looks for it several times a second and halts as on any safeguard: every fault reverted at once,
`run.halted` journalled, the stack torn down, the report written, exit 3. While it runs, the run keeps
its pid in `run.pid`, so that `stop` can tell a running drill from one that ended or was killed
(whose leftovers `hospital-drill down RUN_DIR` stops).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psutil

from .whole_file import write_whole

REQUEST = "stop.request"
PID = "run.pid"


def mark_running(run_dir: Path) -> None:
    (Path(run_dir) / PID).write_text(str(os.getpid()))


def mark_ended(run_dir: Path) -> None:
    (Path(run_dir) / PID).unlink(missing_ok=True)


def running_pid(run_dir: Path) -> int | None:
    """The pid of the run still going in `run_dir`, else None (ended, or killed)."""
    try:
        pid = int((Path(run_dir) / PID).read_text().strip())
        proc = psutil.Process(pid)
        # pids are reused: the process must be the one that wrote the file, started before it
        if proc.status() == psutil.STATUS_ZOMBIE or proc.create_time() > (Path(run_dir) / PID).stat().st_mtime:
            return None
        return pid
    except (OSError, ValueError, psutil.Error):
        return None


def request(run_dir: Path, by: str, reason: str) -> Path:
    # the run never reads half a request
    return write_whole(Path(run_dir) / REQUEST, json.dumps(
        {"by": by, "reason": reason, "at_wall": round(time.time(), 3)}, ensure_ascii=False))


def requested(run_dir: Path) -> dict | None:
    """The stop request in `run_dir`, if one was made."""
    try:
        data = json.loads((Path(run_dir) / REQUEST).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        data = {}  # unreadable, yet there: a stop all the same
    return data if isinstance(data, dict) else {}
