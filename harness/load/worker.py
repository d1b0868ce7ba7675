"""`hospital-drill load-worker --master HOST:PORT`: patients from this machine for a drill elsewhere.

A drill whose scenario asks for ``load.external_workers`` prints the line to run. This command checks
that a Locust master answers there, then starts ``--processes`` Locust workers (one per core is the
rule) with ``-f -``: each takes the drill's locustfile and load configuration from the master, and
sends its request records back to it (``remote.py``). It ends when the drill ends the load, when the
workers lose their master (they quit after ``LOST_MASTER_S`` without a heartbeat), or on
Ctrl-C / SIGTERM, which stops the workers cleanly (their last records are sent first).

Exit codes: 0 the drill ended the load, or stopped here; 2 bad usage, or no master at the address;
3 a worker lost its master or failed.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .master_address import parse_master
from .runner import with_package_on_path

CONNECT_WAIT_S = 5.0
GREETING_WAIT_S = 3.0
STOP_WAIT_S = 15.0
# a ZeroMQ peer opens with this signature (ZMTP 3): 0xFF, eight padding bytes, 0x7F
ZMTP_FIRST, ZMTP_LAST, ZMTP_SIGNATURE_LEN = 0xFF, 0x7F, 10

# what a worker's log says about how it ended (remote.py writes SENT_LINE, Locust the others)
SENT_LINE = "request records sent to the master:"
LOST_MASTER_S = 15  # a worker that hears no heartbeat for this long quits (Locust's default: 60 s)
ENDED_BY_MASTER = "Got quit message from master"
LOST_MASTER = "Didn't get heartbeat from master"


def probe_master(host: str, port: int) -> None:
    """InputError (exit 2) unless something at host:port greets as a ZeroMQ peer, as a Locust
    master does: an address nobody listens on, and a port of another service, fail here in one line."""
    address = f"{host}:{port}"
    try:
        conn = socket.create_connection((host, port), timeout=CONNECT_WAIT_S)
    except socket.gaierror as e:
        raise InputError(f"cannot resolve {host!r} ({e.strerror})", field="--master") from None
    except OSError as e:
        why = e.strerror or e.__class__.__name__
        raise InputError(f"no Locust master reachable at {address} ({why}): is the drill running, "
                         f"and is this the address its 'load-worker --master' line gives?",
                         field="--master") from None
    greeting = b""
    with conn:
        conn.settimeout(GREETING_WAIT_S)
        try:
            while len(greeting) < ZMTP_SIGNATURE_LEN:
                chunk = conn.recv(ZMTP_SIGNATURE_LEN - len(greeting))
                if not chunk:
                    break
                greeting += chunk
        except OSError:
            pass
    if (len(greeting) < ZMTP_SIGNATURE_LEN or greeting[0] != ZMTP_FIRST
            or greeting[-1] != ZMTP_LAST):
        raise InputError(f"{address} answers, but not as a Locust master: give the port of the "
                         f"drill's 'load-worker --master' line", field="--master")


@dataclass
class WorkerProcess:
    index: int
    proc: subprocess.Popen
    log: Path

    def outcome(self) -> tuple[str, int | None]:
        """(how it ended, request records it sent) from its log."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            text = ""
        sent = None
        for line in text.splitlines():
            if SENT_LINE in line:
                tail = line.split(SENT_LINE, 1)[1].strip()
                sent = int(tail) if tail.isdigit() else sent
        if ENDED_BY_MASTER in text:
            return "ended by the drill", sent
        if LOST_MASTER in text:
            return "lost its master", sent
        return "exited", sent

    def log_tail(self, lines: int = 8) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _env(tmp: Path) -> dict[str, str]:
    # nothing of this shell's load settings: the drill's master sends the configuration; a private
    # TMPDIR because Locust writes the shipped locustfile there under the master's file name
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LOCUST_") and k not in ("HD_RECORDS_DIR", "HD_LOAD_CONFIG")}
    env["TMPDIR"] = str(tmp)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return with_package_on_path(env)


def start_workers(host: str, port: int, processes: int, log_dir: Path) -> list[WorkerProcess]:
    log_dir.mkdir(parents=True, exist_ok=True)
    workers = []
    for i in range(1, processes + 1):
        tmp = Path(tempfile.mkdtemp(prefix=f"worker-{i}-", dir=log_dir))
        log = log_dir / f"load-worker-{i}.log"
        cmd = [sys.executable, "-m", "locust", "--worker", "-f", "-",
               "--master-host", host, "--master-port", str(port)]
        with open(log, "ab") as fh:
            fh.write(("$ " + " ".join(cmd) + "\n").encode())
            fh.flush()
            # cwd: Locust reads a locust.conf from its working directory; there is none there
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=tmp, env=_env(tmp), start_new_session=True)
        workers.append(WorkerProcess(i, proc, log))
    return workers


def stop_workers(workers: list[WorkerProcess], timeout: float = STOP_WAIT_S) -> None:
    """SIGTERM (a worker sends its last records and tells the master it quits), then SIGKILL."""
    for w in workers:
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for w in workers:
        try:
            w.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            pass
    for w in workers:
        try:
            os.killpg(w.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            w.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def run_workers(host: str, port: int, processes: int, log_dir: Path, say=print) -> int:
    """Join the master with ``processes`` workers until they end; the exit code of the command."""
    stop = threading.Event()
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            handlers[sig] = signal.signal(sig, lambda *_: stop.set())
    workers: list[WorkerProcess] = []
    try:
        workers = start_workers(host, port, processes, log_dir)
        say(f"joined the drill's Locust master at {host}:{port} with {processes} worker "
            f"process(es) (logs: {log_dir}); Ctrl-C stops them")
        while not stop.is_set() and any(w.proc.poll() is None for w in workers):
            stop.wait(0.2)
        stopped_here = stop.is_set()
    finally:
        stop_workers(workers)
        for sig, old in handlers.items():
            signal.signal(sig, old)
    failed = False
    for w in workers:
        how, sent = w.outcome()
        if stopped_here and how == "exited":
            how = "stopped here"
        records = "" if sent is None else f", {sent} request records sent to the master"
        # Locust's own exit code says whether any request failed: a drill's faults make them fail
        say(f"worker {w.index} (pid {w.proc.pid}): {how}{records}")
        if how in ("lost its master", "exited"):
            failed = True
            say(f"  exit {w.proc.returncode}; its log ({w.log}):\n{w.log_tail()}")
    return 3 if failed else 0


def cmd_load_worker(args) -> int:
    try:
        host, port = parse_master(args.master)
    except ValueError as e:
        raise InputError(str(e), field="--master") from None
    if not 1 <= args.processes <= 64:
        raise InputError(f"{args.processes} is not a number of worker processes (1-64; one per core)",
                         field="--processes")
    probe_master(host, port)
    log_dir = Path(args.log_dir) if args.log_dir else Path(tempfile.mkdtemp(prefix="hospital-drill-worker-"))
    return run_workers(host, port, args.processes, log_dir,
                       say=lambda line: print(line, flush=True))


def add_parser(sub) -> None:
    w = sub.add_parser("load-worker", help="add Locust workers on this machine to a running drill's "
                                           "patient load",
                       description=__doc__.split("\n\n")[1])
    w.add_argument("--master", required=True, metavar="HOST:PORT",
                   help="the drill's Locust master, as the drill printed it")
    w.add_argument("--processes", type=int, default=1,
                   help="worker processes to start (default 1; one per core of this machine)")
    w.add_argument("--log-dir", help="where the workers' logs go (default: a new temporary directory)")
    w.set_defaults(func=cmd_load_worker)
