"""`hospital-drill up | status | down`, `list`, and cleaning up after a run that was killed outright."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import alive, assert_nothing_left, recorded_pids

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_up_status_down(tmp_path):
    d = tmp_path / "stack"
    p = cli("up", "--dir", str(d))
    assert p.returncode == 0, p.stderr
    state = json.loads((d / "state.json").read_text())
    assert "patients enter at" in p.stdout
    try:
        s = cli("status", "--dir", str(d))
        assert s.returncode == 0 and "HTTP 200" in s.stdout, s.stdout
        again = cli("up", "--dir", str(d))
        assert again.returncode == 2 and "already recorded" in again.stderr
    finally:
        down = cli("down", "--dir", str(d))
    assert down.returncode == 0
    assert_nothing_left(d, [*state["services"].values(), *state["links"].values()])
    assert cli("status", "--dir", str(d)).returncode == 1


def test_down_cleans_up_after_a_killed_run(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "drills/db-crash-failover.yaml",
                             "--out", str(out), "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while not ((out / "journal.jsonl").exists() and "load.started" in (out / "journal.jsonl").read_text()):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)  # no cleanup can run: the case `down` exists for
    proc.wait()
    assert alive(recorded_pids(out).values()), "expected leftovers to clean"
    down = cli("down", str(out))
    assert down.returncode == 0 and "stopped" in down.stdout
    assert_nothing_left(out)
    # the journal of the killed run still yields a report that says the run did not finish
    rep = cli("report", str(out))
    assert rep.returncode == 0, rep.stderr
    assert json.loads((out / "score.json").read_text())["verdict"] == "aborted"


def test_list_shows_scenarios_and_drills():
    p = cli("list")
    assert p.returncode == 0
    assert "db-crash" in p.stdout and "database" in p.stdout and "dr-takeover 3m" in p.stdout
    assert "INVALID" not in p.stdout


def _kill_outright(run_dir: Path) -> Path:
    """SIGKILL everything a stack runs, as a power cut of the harness would leave it; its data root."""
    from harness.stack.pg_processes import _find_pidfiles, postmaster_pid
    root = (run_dir / "pg").resolve()
    pids = [*recorded_pids(run_dir).values(),
            *(postmaster_pid(f.parent) for f in _find_pidfiles(root))]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, TypeError):
            pass
    deadline = time.monotonic() + 10
    while alive(p for p in pids if p) and time.monotonic() < deadline:
        time.sleep(0.05)
    return root


def test_the_next_bring_up_removes_what_a_killed_run_left_in_memory(tmp_path):
    import shutil
    from harness.stack.pg_orphans import OWNER
    gone, idle = tmp_path / "gone", tmp_path / "idle"
    for d in (gone, idle):
        assert cli("up", "--dir", str(d)).returncode == 0
    left = {d: _kill_outright(d) for d in (gone, idle)}
    assert all(root.is_dir() and not root.is_relative_to(tmp_path) for root in left.values())
    shutil.rmtree(gone)  # its run directory deleted: nothing points at its data any more
    old = time.time() - 600  # the other's run dir is there, but nothing of it has lived for 10 min
    os.utime(left[idle] / OWNER, (old, old))
    fresh = tmp_path / "fresh"
    try:
        assert cli("up", "--dir", str(fresh)).returncode == 0
        assert not left[gone].exists() and not left[idle].exists()
        assert (fresh / "pg").resolve().is_dir()  # and its own data is where it should be
    finally:
        assert cli("down", "--dir", str(fresh)).returncode == 0
    assert_nothing_left(fresh)
