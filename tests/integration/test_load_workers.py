"""Workers joined through `hospital-drill load-worker` (separate processes, 127.0.0.1 only) against
the stub of the patient API: their records reach the master's records/, Ctrl-C stops them cleanly,
a worker whose master dies exits by itself, and a master nobody joins gives up with the join line."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.load.records import iter_records
from harness.load.runner import PatientLoad
from harness.load.worker import LOST_MASTER_S
from tests.integration.test_load import StubHospital, assert_gone

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CONFIG = {"wait": [0.05, 0.2], "request_timeout_s": 2}


@pytest.fixture
def stub():
    with StubHospital() as s:
        yield s


def load_worker(master: str, log_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "load-worker", "--master", master,
                             "--log-dir", str(log_dir)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def external_load(stub, tmp_path, count: int, wait: int = 60) -> PatientLoad:
    return PatientLoad(stub.url, tmp_path / "records", users=10, spawn_rate=30, config=CONFIG,
                       log_dir=tmp_path / "logs", external_workers=count, expect_workers_max_wait=wait)


def test_joined_workers_records_reach_the_master(stub, tmp_path):
    with external_load(stub, tmp_path, 2) as load:
        master = load.join_command.split()[-1]
        workers = [load_worker(master, tmp_path / f"w{i}") for i in (1, 2)]
        try:
            load.wait_started(timeout=60)
            time.sleep(3)
            load.stop()
            outputs = [w.communicate(timeout=60)[0] for w in workers]
        finally:
            for w in workers:
                w.kill()
    counts = load.requests_by_process()
    assert len(counts) == 2 and all(name.startswith("remote-") for name in counts), counts
    sent = sorted(int(re.search(r"(\d+) request records sent", out).group(1)) for out in outputs)
    assert sorted(counts.values()) == sent and sent[0] > 50, (counts, outputs)
    for w, out in zip(workers, outputs):
        assert w.returncode == 0 and "ended by the drill" in out, out
    # the patients are shared out between the workers as between the drill's own
    files = sorted((tmp_path / "records").glob("remote-*.jsonl"))
    a, b = ({r["patient"] for r in iter_records(f)} for f in files)
    assert a and b and not a & b
    assert_gone(load.pids() + [w.pid for w in workers])


def test_ctrl_c_stops_a_worker_cleanly(stub, tmp_path):
    with external_load(stub, tmp_path, 1) as load:
        worker = load_worker(load.join_command.split()[-1], tmp_path / "w")
        try:
            load.wait_started(timeout=60)
            time.sleep(1)
            worker.send_signal(signal.SIGINT)
            out = worker.communicate(timeout=30)[0]
        finally:
            worker.kill()
    assert worker.returncode == 0, out
    assert re.search(r"worker 1 \(pid \d+\): stopped here, \d+ request records sent", out), out
    assert_gone([worker.pid])


def test_a_worker_that_loses_its_master_exits_by_itself(stub, tmp_path):
    with external_load(stub, tmp_path, 1) as load:
        worker = load_worker(load.join_command.split()[-1], tmp_path / "w")
        try:
            load.wait_started(timeout=60)
            os.killpg(load.pids()[0], signal.SIGKILL)  # the drill's machine gone: no quit message
            t0 = time.monotonic()
            out = worker.communicate(timeout=LOST_MASTER_S + 30)[0]
            took = time.monotonic() - t0
        finally:
            worker.kill()
    assert worker.returncode == 3, out
    assert "lost its master" in out and took < LOST_MASTER_S + 20, (took, out)
    assert_gone([worker.pid])


def test_a_master_nobody_joins_gives_up_with_the_join_line(stub, tmp_path):
    with external_load(stub, tmp_path, 2, wait=6) as load:
        with pytest.raises(HarnessError) as e:
            load.wait_started(timeout=30)
    message = str(e.value)
    assert message.startswith("0 of 2 workers joined within 6s (load.wait_for_workers)"), message
    assert f"hospital-drill load-worker --master 127.0.0.1:{load.master_port}" in message


def test_the_drills_own_workers_and_joined_ones_share_the_patients(stub, tmp_path):
    load = PatientLoad(stub.url, tmp_path / "records", users=12, spawn_rate=30, config=CONFIG,
                       log_dir=tmp_path / "logs", workers=1, external_workers=1,
                       bind=("127.0.0.1", 0))
    with load:
        worker = load_worker(load.join_command.split()[-1], tmp_path / "w")
        try:
            load.wait_started(timeout=60)
            time.sleep(3)
            load.stop()
            out = worker.communicate(timeout=60)[0]
        finally:
            worker.kill()
    assert "ended by the drill" in out, out
    files = {f.name.split("-")[0]: f for f in (tmp_path / "records").glob("*.jsonl")}
    assert set(files) == {"worker", "remote"}, files  # the drill's worker writes its own file
    own, joined = ({r["patient"] for r in iter_records(files[k])} for k in ("worker", "remote"))
    assert own and joined and not own & joined
