"""Start, track and stop the stack's processes so that none outlives its run.

Each process gets its own session (so a signal reaches its children too) and its pid is written to
the run directory's `pids.json`, which lets `hospital-drill down` clean up after a run that was killed.
Services whose modules were preloaded (`Supervisor.preload`) are forked from a forkserver
(prefork.py) instead of paying a fresh interpreter each.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..errors import HarnessError
from ..rundir import RunDir
from .prefork import Forked, Forkserver

FORKSERVER = "forkserver"  # its name among the supervised processes


@dataclass
class Managed:
    name: str
    proc: subprocess.Popen | Forked
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
        self.forkserver: Forkserver | None = None
        self._lock = threading.Lock()

    def _save(self) -> None:
        record_pids(self.run_dir, {name: m.pid for name, m in self.procs.items()})

    def adopt(self, name: str, proc: subprocess.Popen | Forked, log: Path) -> Managed:
        """Track a process started elsewhere (PostgreSQL is started by its own module)."""
        with self._lock:  # the bring-up starts parts from several threads
            m = self.procs[name] = Managed(name, proc, log)
            self._save()
        return m

    def preload(self, modules: list[str]) -> None:
        """Start a forkserver importing `modules` (in the background); start_python forks them."""
        log = RunDir(self.run_dir).log(FORKSERVER)
        log.parent.mkdir(parents=True, exist_ok=True)
        self.forkserver = Forkserver(modules, log)
        self.adopt(FORKSERVER, self.forkserver.proc, log)

    def start_python(self, name: str, module: str, *args: str, env: dict | None = None) -> Managed:
        log = RunDir(self.run_dir).log(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        fs = self.forkserver
        if fs is not None and module in fs.modules and fs.alive():
            try:
                proc = fs.spawn(module, list(args), log, {**os.environ, **(env or {})})
            except RuntimeError as e:
                raise HarnessError(f"{name}: the forkserver could not start it: {e}\n"
                                   f"{log_tail(fs.log)}") from None
            return self.adopt(name, proc, log)
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
                code = m.proc.returncode
                how = f"exited with code {code}" if code is not None and code >= 0 else "died"
                raise HarnessError(f"{m.name} {how} while starting:\n{log_tail(m.log)}")
            time.sleep(0.005)  # a service is ready in tens of milliseconds: poll finely
        raise HarnessError(f"{m.name} not ready after {timeout:.0f}s:\n{log_tail(m.log)}")

    def stop(self, name: str, timeout: float = 5.0) -> None:
        m = self.procs.pop(name, None)
        if m is not None:
            terminate_group(m.proc.pid, timeout)
            m.proc.poll()

    def stop_all(self, timeout: float = 5.0) -> None:
        """Every process at once (each exits on SIGTERM in well under a second), waited together;
        the forkserver after its services, so that it reaps them."""
        fs = self.procs.pop(FORKSERVER, None)
        if self.forkserver is not None:
            self.forkserver.close()
            self.forkserver = None
        procs, self.procs = list(self.procs.values()), {}
        terminate_groups([m.pid for m in procs], timeout)
        if fs is not None:
            terminate_group(fs.pid, timeout)
        for m in (*procs, *([fs] if fs else [])):
            m.proc.poll()


def terminate_group(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM the process and its group, then SIGKILL whatever is left after `timeout`."""
    terminate_groups([pid], timeout)


def terminate_groups(pids: list[int], timeout: float = 5.0) -> None:
    """terminate_group for several processes at once: one timeout for all, not one each."""
    leaders, family = set(), []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            family += [proc, *proc.children(recursive=True)]
            leaders.add(pid)
        except psutil.NoSuchProcess:
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not family:
            return
        for p in family:
            try:
                os.killpg(p.pid, sig) if p.pid in leaders else p.send_signal(sig)
            except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
                try:
                    p.send_signal(sig)
                except psutil.NoSuchProcess:
                    pass
        _, family = psutil.wait_procs(family, timeout=timeout if sig == signal.SIGTERM else 2)


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
