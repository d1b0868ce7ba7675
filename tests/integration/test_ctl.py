"""`hospital-drill ctl` against a real local stack: the moves change the real PostgreSQL, links and
apps, the way a hospital's script would; and against a real run, whose control file goes with it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests

from harness.clock import DrillClock
from harness.control.server import ControlServer
from harness.journal import Journal, read_journal
from harness.models import StackConfig
from harness.runbook.actions import ActionContext
from harness.rundir import RunDir
from harness.stack import local
from tests.helpers import assert_nothing_left, start_drill, wait_in_journal

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def ctl(run_dir, *args: str, step: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HD_STEP"}
    if step:
        env["HD_STEP"] = step
    return subprocess.run([sys.executable, "-m", "harness.cli", "ctl", str(run_dir), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def drill(tmp_path_factory):
    """A real stack with a control server over it; yields (stack, run dir, journal)."""
    run_dir = tmp_path_factory.mktemp("ctl")
    stack = local.up(run_dir, StackConfig(), time_scale=60)
    addresses = [*stack.addresses.values(), *stack.link_listen.values()]
    clock = DrillClock(60)
    clock.start()
    journal = Journal(RunDir(run_dir).journal, clock)
    server = ControlServer(ActionContext(stack, journal, None, None, 60, run_dir=RunDir(run_dir)),
                           RunDir(run_dir), clock).start()
    try:
        yield stack, run_dir, journal
    finally:
        server.stop()
        journal.close()
        stack.down()
    assert_nothing_left(run_dir, addresses)


def _in_recovery(stack, node: str) -> bool:
    with psycopg.connect(stack.db_dsn(node), autocommit=True) as conn:
        return conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]


def _write(stack) -> tuple[str, int | None]:
    wid = str(uuid.uuid4())
    try:
        r = requests.post(stack.vip_url + "/api/consultations", timeout=5, json={
            "patient_id": "P00042", "doctor_id": 3, "symptoms": "发热", "write_id": wid})
        return wid, r.status_code
    except requests.RequestException:
        return wid, None


def _write_until(stack, want: int, seconds: float = 10.0) -> str:
    """A write through the patients' entry that answers `want` (the app reconnects in its time)."""
    deadline = time.monotonic() + seconds
    while True:
        wid, status = _write(stack)
        if status == want:
            return wid
        assert time.monotonic() < deadline, f"writes answer {status}, not {want}"
        time.sleep(0.1)


def test_promote_then_repoint_the_db_address(drill):
    stack, run_dir, journal = drill
    stack.crash_db("pg-primary")
    p = ctl(run_dir, "promote", "pg-samecity", step="failover")
    assert p.returncode == 0, p.stderr
    assert "promoted=pg-samecity" in p.stdout
    assert _in_recovery(stack, "pg-samecity") is False  # the real server was promoted
    status = ctl(run_dir, "status", "--json")
    assert status.returncode == 0, status.stderr
    got = json.loads(status.stdout)["detail"]
    assert got["primary"] == "pg-samecity" and got["links"]["db"] == "pg-samecity"
    assert got["databases"]["pg-samecity"]["in_recovery"] is False
    assert got["databases"]["pg-remote"]["in_recovery"] is True

    # a script that left the app's DB address on the dead primary: patients' writes fail ...
    stack.links.repoint("db", stack.addresses["pg-primary"])
    _write_until(stack, 503)
    p = ctl(run_dir, "repoint", "db", "pg-samecity", step="failover")
    assert p.returncode == 0, p.stderr
    # ... until `repoint` points it at the new primary, where they land
    wid = _write_until(stack, 201)
    with psycopg.connect(stack.db_dsn("pg-samecity"), autocommit=True) as conn:
        assert conn.execute("SELECT 1 FROM consultations WHERE write_id = %s", (wid,)).fetchone()
    moves = [e for e in journal.events if e["type"] == "control.move"]
    assert [(m["verb"], m["ok"], m["step"]) for m in moves] == [
        ("promote", True, "failover"), ("status", True, None), ("repoint", True, "failover")]


def test_notice_and_notify_reach_patients(drill):
    stack, run_dir, _ = drill
    text = f"系统切换中，请稍候 {uuid.uuid4().hex[:6]}"
    assert ctl(run_dir, "notice", "set", text).returncode == 0
    assert requests.get(stack.vip_url + "/api/notice", timeout=5).json()["notice"] == text
    assert ctl(run_dir, "notify", "hotline", "staff", text).returncode == 0
    sent = requests.get(stack.url("notification-primary") + "/sent", timeout=5).json()
    assert any(m.get("text") == text and m.get("channel") == "hotline" for m in sent)
    assert ctl(run_dir, "notice", "clear").returncode == 0
    assert requests.get(stack.vip_url + "/api/notice", timeout=5).json()["notice"] is None


def test_refused_with_exit_2(drill, tmp_path):
    stack, run_dir, journal = drill
    before = len(journal.events)
    p = ctl(run_dir, "reboot", "pg-samecity")
    assert p.returncode == 2 and "unknown verb 'reboot'" in p.stderr
    p = ctl(run_dir, "promote", "pg-nowhere")
    assert p.returncode == 2 and "promote NODE: unknown postgres 'pg-nowhere'" in p.stderr
    p = ctl(tmp_path, "status")
    assert p.returncode == 2 and "no drill is running here" in p.stderr
    # a copy of the control file with another token: the drill refuses, nothing moves
    forged = tmp_path / "forged"
    forged.mkdir()
    data = json.loads(RunDir(run_dir).control.read_text())
    (forged / RunDir.CONTROL).write_text(json.dumps({**data, "token": "x" * 43}))
    p = ctl(forged, "line", "backup")
    assert p.returncode == 2 and "HTTP 401" in p.stderr
    assert len(journal.events) == before


def test_a_runs_control_surface_goes_with_the_run(tmp_path):
    out = tmp_path / "run"
    proc = start_drill("drills/db-crash-failover.yaml", "--out", str(out), "--quiet")
    try:
        wait_in_journal(proc, out, '"load.started"', "the run did not start its load")
        p = ctl(out, "status")
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith("primary pg-primary;"), p.stdout
        assert RunDir(out).control.exists()
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the run cleans up, the control file with it
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not RunDir(out).control.exists()
    p = ctl(out, "status")
    assert p.returncode == 2 and "no drill is running here" in p.stderr
    [move] = read_journal(RunDir(out).journal).of_type("control.move")
    assert (move["verb"], move["context"], move["ok"]) == ("status", "run", True)
    assert_nothing_left(out)
