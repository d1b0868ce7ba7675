"""Start, track and stop the stack's processes so that none outlives its run.

Each process gets its own session (so a signal reaches its children too) and its pid is written to
the run directory's `pids.json`, which lets `hospital-drill down` clean up after a run that was killed.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..errors import HarnessError
from ..rundir import RunDir


@dataclass
class Managed:
    name: str
    proc: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


def log_tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Supervisor:
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, Managed] = {}
        self.pid_file = RunDir(self.run_dir).pids

    def _save(self) -> None:
        record_pids(self.run_dir, {name: m.pid for name, m in self.procs.items()})

    def adopt(self, name: str, proc: subprocess.Popen, log: Path) -> Managed:
        """Track a process started elsewhere (PostgreSQL is started by its own module)."""
        m = self.procs[name] = Managed(name, proc, log)
        self._save()
        return m

    def start_python(self, name: str, module: str, *args: str, env: dict | None = None) -> Managed:
        log = RunDir(self.run_dir).log(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            proc = subprocess.Popen([sys.executable, "-m", module, *args], stdout=fh, stderr=fh,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    env={**os.environ, **(env or {})})
        return self.adopt(name, proc, log)

    def wait_ready(self, m: Managed, ready_file: Path, timeout: float = 15.0) -> dict:
        """Wait for a service's ready file ({"port", "pid"}); fail with its log if it died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready_file.exists():
                try:
                    return json.loads(ready_file.read_text())
                except ValueError:
                    pass
            if m.proc.poll() is not None:
                raise HarnessError(f"{m.name} exited with code {m.proc.returncode} while starting:\n"
                                   f"{log_tail(m.log)}")
            time.sleep(0.02)
        raise HarnessError(f"{m.name} not ready after {timeout:.0f}s:\n{log_tail(m.log)}")

    def stop(self, name: str, timeout: float = 5.0) -> None:
        m = self.procs.pop(name, None)
        if m is not None:
            terminate_group(m.proc.pid, timeout)
            m.proc.poll()

    def stop_all(self, timeout: float = 5.0) -> None:
        # reverse start order: load before apps, apps before the database and links
        for name in reversed(list(self.procs)):
            self.stop(name, timeout)


def terminate_group(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM the process and its group, then SIGKILL whatever is left after `timeout`."""
    try:
        proc = psutil.Process(pid)
        family = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in family:
            try:
                os.killpg(p.pid, sig) if p.pid == pid else p.send_signal(sig)
            except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
                try:
                    p.send_signal(sig)
                except psutil.NoSuchProcess:
                    pass
        _, alive = psutil.wait_procs(family, timeout=timeout if sig == signal.SIGTERM else 2)
        family = alive
        if not family:
            return


def record_pids(run_dir: Path, pids: dict[str, int]) -> None:
    """Add processes started outside a Supervisor (the patient load) to the run's pids.json."""
    path = RunDir.of(run_dir).pids
    merged = {**read_pids(run_dir), **pids}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(merged))
    tmp.replace(path)


def read_pids(run_dir: Path) -> dict[str, int]:
    try:
        return json.loads(RunDir.of(run_dir).pids.read_text())
    except (OSError, ValueError):
        return {}


def kill_recorded(run_dir: Path, timeout: float = 5.0) -> list[str]:
    """Stop every process a run directory recorded that is still alive; return their names.

    All are signalled at once and waited for together, so a dozen services take one timeout, not
    a dozen."""
    family: list[psutil.Process] = []
    stopped = []
    for name, pid in read_pids(run_dir).items():
        try:
            proc = psutil.Process(pid)
            cmd = " ".join(proc.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        # a recorded pid may have been reused since: only stop what is still ours
        if any(mark in cmd for mark in ("harness", "locust", "postgres")):
            family += [proc, *proc.children(recursive=True)]
            stopped.append(name)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in family:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        _, family = psutil.wait_procs(family, timeout=timeout if sig == signal.SIGTERM else 2)
        if not family:
            break
    return stopped
