"""Shared checks for tests that run real processes: nothing may outlive its run."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil


def recorded_pids(run_dir: Path) -> dict[str, int]:
    try:
        return json.loads((Path(run_dir) / "pids.json").read_text())
    except OSError:
        return {}


def alive(pids, run_dir: Path | None = None) -> list[int]:
    """The pids still running. With `run_dir`, only those that belong to it: pids are reused fast
    here, so a recorded pid counts only if its command line or records dir names the run."""
    root = str(Path(run_dir).resolve()) if run_dir else None
    out = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            if root is not None:
                env = p.environ().get("HD_RECORDS_DIR", "")
                cmd = " ".join(p.cmdline())
                if root not in cmd and not str(Path(env).resolve() if env else "").startswith(root):
                    continue
            out.append(pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out


def postgres_under(path: Path) -> list[int]:
    """PostgreSQL processes whose data directory (their cwd) lies under `path`."""
    roots = {str(Path(path).resolve())}
    link = Path(path) / "pg"
    if link.is_symlink():
        roots.add(str(link.resolve()))
    found = []
    for p in psutil.process_iter(["name"]):
        if p.info["name"] != "postgres":
            continue
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue  # dead, waiting for its parent to reap it
            cwd = p.cwd()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(cwd == r or cwd.startswith(r + os.sep) for r in roots):
            found.append(p.pid)
    return found


def load_under(path: Path) -> list[int]:
    """Locust processes writing request records under `path`."""
    root = str(Path(path).resolve())
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if "locust" not in " ".join(p.info["cmdline"] or []):
            continue
        try:
            rec = p.environ().get("HD_RECORDS_DIR", "")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if rec and str(Path(rec).resolve()).startswith(root):
            found.append(p.pid)
    return found


def port_open(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port))) == 0


def assert_nothing_left(run_dir: Path, addresses: list[str] = ()) -> None:
    left = alive(recorded_pids(run_dir).values(), run_dir)
    assert not left, f"processes left running: {left}"
    assert not postgres_under(run_dir), "postgres left running"
    assert not load_under(run_dir), "patient load (locust) left running"
    still = [a for a in addresses if port_open(a)]
    assert not still, f"ports still listening: {still}"


ROOT = Path(__file__).resolve().parent.parent


def start_drill(*args: str) -> "subprocess.Popen":
    """`hospital-drill run ARGS…` in the background, output captured, from the project root."""
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "run", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_in_journal(proc: "subprocess.Popen", run_dir: Path, marker: str, never: str,
                    timeout: float = 120, poll: float = 0.05) -> None:
    """Until the run's journal mentions `marker`; fail with `never` (or the run's output if it ended)."""
    journal = Path(run_dir) / "journal.jsonl"
    deadline = time.monotonic() + timeout
    while not (journal.exists() and marker in journal.read_text()):
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else proc.returncode
        assert time.monotonic() < deadline, never
        time.sleep(poll)


def without_database(records: list[dict], journal, since: float,
                     step: str = "promote-same-city") -> list[dict]:
    """The patients' requests started after `since` (a crash) and before the standby's promotion
    (`step`) finished, or before the recovery if that came first: while there was no database.
    Not up to the recovery: that waits for patients' errors to settle (e.g. their reads of
    consultations the crash lost), and those served meanwhile are no measure of the outage."""
    promoted = next(e["wall"] for e in journal.of_type("step.finished") if e["step"] == step)
    until = min(promoted, journal.first("recovery")["at_wall"])
    return [r for r in records if since + 0.2 < r["t"] < until - 0.1]
