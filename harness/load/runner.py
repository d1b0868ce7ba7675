"""Start and stop the patient load: Locust as subprocesses, local or distributed (master + workers).

The harness side never imports locust (it monkey-patches with gevent); it runs the ``locust`` CLI::

    with PatientLoad.for_run("http://127.0.0.1:8080", RunDir(path), users=50, spawn_rate=10,
                             config={"personas": {"followup": 3, "payment": 1}}, workers=2) as load:
        load.wait_started(timeout=30)
        ...                                   # records flow into run_dir/records/*.jsonl
    # on exit: SIGTERM (Locust flushes its records and quits), then SIGKILL of what is left

The locustfile gets its configuration from the environment: ``HD_LOAD_CONFIG`` (JSON; see
``locustfile.py``) and ``HD_RECORDS_DIR``.

With ``external_workers`` the master also waits for workers that people start elsewhere with
``hospital-drill load-worker --master HOST:PORT`` (:attr:`PatientLoad.join_command`). It then runs a
generated locustfile in the log directory (:func:`shipped_locustfile`) that Locust ships to them:
the drill's configuration travels with it, and their records come back through the master
(``remote.py``). The master listens on loopback unless ``bind`` names another address.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .. import __version__
from ..errors import HarnessError, InputError
from ..rundir import RunDir
from ..whole_file import write_whole
from .load_config import LoadConfigError, load_config
from .master_address import LOOPBACK, WILDCARDS, join_host
from .population import POPULATION

LOAD_DIR = Path(__file__).resolve().parent
LOCUSTFILE = LOAD_DIR / "locustfile.py"
SHAPESFILE = LOAD_DIR / "shapes.py"
SHIPPED_NAME = "hospital_patients.py"  # the file Locust ships to external workers (its basename)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _records_size(records_dir: Path) -> dict[str, int]:
    sizes = {}
    try:
        for entry in os.scandir(records_dir):
            if entry.name.endswith(".jsonl"):
                sizes[entry.name] = entry.stat().st_size
    except OSError:
        pass
    return sizes


def with_package_on_path(env: dict[str, str]) -> dict[str, str]:
    """``env`` with this hospital-drill on PYTHONPATH: Locust runs in another directory, and the
    shipped locustfile imports the package from there whatever way it was installed."""
    root = str(LOAD_DIR.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def shipped_locustfile(config: dict) -> str:
    """The locustfile a master with external workers runs and ships: the drill's HD_LOAD_CONFIG
    fixed in it, the personas from the hospital-drill package installed where it runs."""
    return (f'''"""The patient load of one drill, shipped by its Locust master to the workers that join it with
`hospital-drill load-worker`. Generated: do not edit."""
import os

import harness

if harness.__version__ != {__version__!r}:
    raise SystemExit(f"this drill's patient load needs hospital-drill {__version__}; "
                     f"this machine has {{harness.__version__}}")
os.environ["HD_LOAD_CONFIG"] = {json.dumps(config)!r}

from harness.load.remote import *  # noqa: E402,F401,F403  (the personas, the records' way back)
''')


def check_config(config: dict) -> None:
    """The locustfile's own checks of its configuration (load_config.py), done before anything
    starts so that a bad drill fails with a clear error instead of a Locust that will not come up."""
    if not isinstance(config, dict):
        raise InputError("load config must be a mapping", field="load")
    try:
        load_config(json.dumps(config))
    except (LoadConfigError, TypeError, ValueError) as e:
        raise InputError(str(e).replace("HD_LOAD_CONFIG.", "").replace("HD_LOAD_CONFIG", "load"),
                         field="load") from None


class PatientLoad:
    """The patient load of one run: one Locust process, or a master and ``workers`` workers.

    Every process runs in its own session. :meth:`stop` is idempotent and runs on every exit of the
    ``with`` block, also when start-up failed half way.

    ``run_time`` bounds the run even if nobody stops it (Locust's ``--run-time``; seconds or a
    Locust duration such as ``"1h"``).
    """

    def __init__(self, host_url: str, records_dir: str | os.PathLike, users: int, spawn_rate: float,
                 config: dict | None = None, workers: int = 0, log_dir: str | os.PathLike | None = None,
                 *, run_time: str | int = "1h", stop_timeout: float = 10.0,
                 expect_workers_max_wait: int = 60, external_workers: int = 0,
                 bind: tuple[str, int] = (LOOPBACK, 0)):
        config = dict(config or {})
        check_config(config)
        if users < 1:
            raise InputError(f"users must be at least 1, not {users}", field="load.users")
        if spawn_rate <= 0:
            raise InputError(f"spawn_rate must be above 0, not {spawn_rate}", field="load.spawn_rate")
        if workers < 0:
            raise InputError(f"workers must be 0 (local) or more, not {workers}", field="load.workers")
        if external_workers < 0:
            raise InputError(f"external_workers must be 0 or more, not {external_workers}",
                             field="load.external_workers")
        count = config.get("patient_count", POPULATION)
        if "stages" not in config and users > count:
            raise InputError(f"{users} users but only {count} patients: each user is a distinct patient",
                             field="load.users")
        self.host_url = host_url.rstrip("/")
        self.records_dir = Path(records_dir)
        self.users = int(users)
        self.spawn_rate = spawn_rate
        self.config = config
        self.workers = int(workers)
        # without one, the logs sit beside the records as in a run directory
        self.log_dir = Path(log_dir) if log_dir is not None else RunDir(self.records_dir.parent).logs
        self.run_time = run_time
        self.stop_timeout = stop_timeout
        self.expect_workers_max_wait = expect_workers_max_wait
        self.external_workers = int(external_workers)
        self.bind_host, self.bind_port = bind
        self.master_port: int | None = None
        self._procs: list[tuple[str, subprocess.Popen, Path]] = []
        self._sizes_at_start: dict[str, int] = {}
        self._stopped = False

    # --- life cycle -------------------------------------------------------------------------------


    @classmethod
    def for_run(cls, host_url: str, run_dir: RunDir, users: int, spawn_rate: float,
                **options) -> "PatientLoad":
        """The run's patients: records into RUN_DIR/records, Locust's output into RUN_DIR/logs; a
        shape counts from T+0 (`mark_zero`)."""
        config = dict(options.pop("config", None) or {})
        if config.get("stages"):
            config["zero_file"] = str(run_dir.logs / "load-zero")
        return cls(host_url, run_dir.records, users, spawn_rate, log_dir=run_dir.logs, config=config,
                   **options)

    def mark_zero(self, wall: float) -> None:
        """T+0 (epoch seconds) for the shape to count from; nothing without a shape."""
        if self.config.get("zero_file"):
            write_whole(self.config["zero_file"], repr(wall))

    def __enter__(self) -> "PatientLoad":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _env(self) -> dict[str, str]:
        # Locust reads LOCUST_* variables as options: keep the run independent of the caller's shell
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
        env["HD_LOAD_CONFIG"] = json.dumps(self._worker_config())
        env["HD_RECORDS_DIR"] = str(self.records_dir.resolve())
        env.setdefault("PYTHONUNBUFFERED", "1")
        return with_package_on_path(env)

    def _worker_config(self) -> dict:
        # every worker, the drill's and the joined ones, takes its own share of the patient ids
        return {**self.config, "workers": max(self.workers + self.external_workers, 1)}

    @property
    def join_command(self) -> str | None:
        """What a person runs on another machine to add a worker; None without external workers."""
        if not self.external_workers or self.master_port is None:
            return None
        return f"hospital-drill load-worker --master {join_host(self.bind_host)}:{self.master_port}"

    def _locustfiles(self) -> str:
        if self.external_workers:
            shipped = self.log_dir / SHIPPED_NAME
            shipped.write_text(shipped_locustfile(self._worker_config()), encoding="utf-8")
            return str(shipped)
        files = [str(LOCUSTFILE)]
        if self.config.get("stages"):
            files.append(str(SHAPESFILE))
        return ",".join(files)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = self.log_dir / f"{name}.log"
        cmd = [sys.executable, "-m", "locust", "-f", self._locustfiles(), *args]
        with open(log, "ab") as fh:
            fh.write(("$ " + " ".join(cmd) + "\n").encode())
            fh.flush()
            # cwd = log dir: Locust looks for locust.conf / pyproject.toml in its working directory
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.log_dir, env=self._env(), start_new_session=True)
        self._procs.append((name, proc, log))
        return proc

    def start(self) -> "PatientLoad":
        if self._procs:
            raise HarnessError("patient load already started")
        self.records_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._sizes_at_start = _records_size(self.records_dir)
        self._stopped = False
        common = ["--headless", "--only-summary", "-u", str(self.users), "-r", str(self.spawn_rate),
                  "--host", self.host_url, "--run-time", str(self.run_time)]
        if self.workers == 0 and self.external_workers == 0:
            self._spawn("locust", common)
            return self
        self.master_port = self.bind_port or free_port(self.bind_host)
        self._spawn("locust-master", [*common, "--master",
                                      "--expect-workers", str(self.workers + self.external_workers),
                                      "--expect-workers-max-wait", str(self.expect_workers_max_wait),
                                      "--master-bind-host", self.bind_host,
                                      "--master-bind-port", str(self.master_port)])
        for i in range(1, self.workers + 1):
            self._spawn(f"locust-worker-{i}", ["--worker", "--master-host", self._master_here,
                                              "--master-port", str(self.master_port)])
        if self.external_workers:
            self._wait_master_listening()  # the join line is good from the moment it is printed
        return self

    @property
    def _master_here(self) -> str:
        """The master's address from this machine (a wildcard bind answers on loopback too)."""
        return LOOPBACK if self.bind_host in WILDCARDS else self.bind_host

    def _wait_master_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection((self._master_here, self.master_port), timeout=1).close()
                return
            except OSError:
                pass
            if "locust-master" in self.exited() or time.monotonic() >= deadline:
                raise HarnessError(f"the Locust master is not listening on {self.bind_host}:"
                                   f"{self.master_port}:\n{self.log_tail()}")
            time.sleep(0.05)

    def pids(self) -> list[int]:
        """Every process started (master first), alive or not."""
        return [proc.pid for _, proc, _ in self._procs]

    def exited(self) -> dict[str, int]:
        """Processes that have exited so far: name -> exit code."""
        return {name: proc.returncode for name, proc, _ in self._procs if proc.poll() is not None}

    def log_paths(self) -> dict[str, Path]:
        return {name: log for name, _, log in self._procs}

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(f"--- {name} ({log}):\n{_tail(log, lines)}" for name, _, log in self._procs)

    def records_flowing(self) -> bool:
        """Whether a complete record line has been written since :meth:`start`."""
        for name, size in _records_size(self.records_dir).items():
            if size > self._sizes_at_start.get(name, 0):
                path = self.records_dir / name
                try:
                    with open(path, "rb") as fh:
                        fh.seek(self._sizes_at_start.get(name, 0))
                        if b"\n" in fh.read(size - self._sizes_at_start.get(name, 0)):
                            return True
                except OSError:
                    continue
        return False

    def requests_by_process(self) -> dict[str, int]:
        """Request records written since :meth:`start`, per records file (one per Locust process
        that ran patients: ``local``, ``worker-<pid>``, ``remote-<worker>`` for the joined ones)."""
        counts = {}
        for name, size in _records_size(self.records_dir).items():
            start = self._sizes_at_start.get(name, 0)
            with open(self.records_dir / name, "rb") as fh:
                fh.seek(start)
                counts[name.removesuffix(".jsonl")] = sum(chunk.count(b"\n")
                                                          for chunk in iter(lambda: fh.read(1 << 20), b""))
        return counts

    def wait_started(self, timeout: float = 30.0) -> None:
        """Return once request records flow; raise HarnessError (with the log tails) otherwise.
        With external workers the master's own wait for them comes on top of ``timeout``."""
        if not self._procs:
            raise HarnessError("patient load not started")
        if self.external_workers:
            timeout += self.expect_workers_max_wait
        deadline = time.monotonic() + timeout
        while True:
            if self.records_flowing():
                return
            dead = self.exited()
            if dead and self.external_workers and "locust-master" in dead:
                raise HarnessError(self._workers_missing())
            if dead:
                raise HarnessError(f"Locust exited while starting ({dead}):\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise HarnessError(f"no request records in {self.records_dir} after {timeout:g}s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.1)

    def _workers_missing(self) -> str:
        """Why a master with external workers quit before the load began, in one line."""
        log = self.log_paths()["locust-master"]
        text = _tail(log, 40)
        if "Gave up waiting for workers" in text:
            counts = re.findall(r"(\d+) of (\d+) connected", text)
            joined = f"{counts[-1][0]} of {counts[-1][1]} workers" if counts else "not every worker"
            return (f"{joined} joined within {self.expect_workers_max_wait}s "
                    f"(load.wait_for_workers); {self.external_workers} external worker(s) join with: "
                    f"{self.join_command}  (master log: {log})")
        return f"the Locust master exited before the load began (log: {log}):\n{text}"

    def stop(self, timeout: float | None = None) -> dict[str, int]:
        """SIGTERM (master first: it tells the workers to quit), wait, then SIGKILL each session.

        Returns the exit codes by process name; -9 and the like for those that had to be killed.
        Safe to call again and before :meth:`start`.
        """
        timeout = self.stop_timeout if timeout is None else timeout
        if not self._stopped:
            self._stopped = True
            deadline = time.monotonic() + timeout
            procs = [p for _, p, _ in self._procs]
            if procs:
                master, rest = procs[0], procs[1:]
                self._signal(master, signal.SIGTERM)
                # give a master the chance to quit its workers, then ask them directly
                self._wait([master], min(deadline, time.monotonic() + timeout / 2))
                if rest:
                    self._wait(rest, min(deadline, time.monotonic() + 2.0))
                    for p in rest:
                        self._signal(p, signal.SIGTERM)
                    self._wait(rest, deadline)
            for p in procs:
                # the whole session: whatever a Locust process may have started goes too
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        return {name: proc.returncode for name, proc, _ in self._procs}

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        if proc.poll() is None:
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass

    @staticmethod
    def _wait(procs: list[subprocess.Popen], deadline: float) -> None:
        for p in procs:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                p.wait(timeout=left)
            except subprocess.TimeoutExpired:
                return
