"""A drill whose patients come from two `hospital-drill load-worker` processes that join its Locust
master through the line the run prints, against the same drill with its load on the drill's own
machine: the same verdict, and the joined workers' requests in the run's records."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness.journal import read_journal
from harness.load.records import iter_records
from tests.helpers import assert_nothing_left, start_drill

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DRILLS = Path(__file__).resolve().parent / "drills"
SCALE = "60"


def join_workers(drill: subprocess.Popen, log_root: Path) -> tuple[list[str], list[subprocess.Popen]]:
    """Read the run's output until its join line, then start two load-workers with it."""
    seen: list[str] = []
    for line in drill.stdout:
        seen.append(line)
        m = re.search(r"hospital-drill load-worker --master (\S+)", line)
        if m:
            break
    else:
        pytest.fail("the run never printed a load-worker line:\n" + "".join(seen[-40:]))
    master = m.group(1)
    assert master.startswith("127.0.0.1:")  # loopback unless --load-bind says otherwise
    workers = [subprocess.Popen([sys.executable, "-m", "harness.cli", "load-worker", "--master", master,
                                 "--log-dir", str(log_root / f"worker-{i}")], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for i in (1, 2)]
    # the rest of the run's output, read on so that its pipe never fills
    rest = threading.Thread(target=lambda: seen.extend(drill.stdout), daemon=True)
    rest.start()
    return seen, workers


def verdict(run_dir: Path) -> tuple[str, float, dict]:
    card = json.loads((run_dir / "score.json").read_text())
    return card["verdict"], card["score"], {t["id"]: t["met"] for t in card["targets"]}


def test_two_joined_workers_give_the_local_verdict(tmp_path):
    joined_dir = tmp_path / "joined"
    drill = start_drill(str(DRILLS / "db-crash-external-load.yaml"), "--out", str(joined_dir),
                        "--time-scale", SCALE)
    workers: list[subprocess.Popen] = []
    try:
        seen, workers = join_workers(drill, tmp_path)
        assert drill.wait(timeout=300) == 0, "".join(seen[-60:])
        outputs = [w.communicate(timeout=60)[0] for w in workers]
    finally:
        for p in (drill, *workers):
            if p.poll() is None:
                p.kill()
    for w, out in zip(workers, outputs):
        assert w.returncode == 0, out
        assert "ended by the drill" in out, out

    # each joined worker's requests reached the run's records through the master
    journal = read_journal(joined_dir / "journal.jsonl")
    started, stopped = journal.first("load.started"), journal.first("load.stopped")
    assert started["external_workers"] == 2 and started["master"].startswith("127.0.0.1:")
    remote = {name: n for name, n in stopped["requests"].items() if name.startswith("remote-")}
    assert len(remote) == 2 and all(n > 100 for n in remote.values()), stopped
    assert set(stopped["requests"]) == set(remote)  # no process of the drill's ran patients
    sent = sorted(int(n) for out in outputs for n in re.findall(r"(\d+) request records sent", out))
    assert len(sent) == 2 and sorted(remote.values()) == sent, (sent, remote)
    # the two workers split the patients between them: nobody is walked from both
    patients = [{r["patient"] for r in iter_records(joined_dir / "records" / f"{name}.jsonl")}
                for name in remote]
    assert patients[0] and patients[1] and not patients[0] & patients[1]
    assert_nothing_left(joined_dir)

    local_dir = tmp_path / "local"
    local = subprocess.run([sys.executable, "-m", "harness.cli", "run", "drills/db-crash-failover.yaml",
                            "--out", str(local_dir), "--time-scale", SCALE], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-2000:]
    joined_verdict, local_verdict = verdict(joined_dir), verdict(local_dir)
    print(f"joined workers: {joined_verdict} {remote}; local: {local_verdict}")
    assert joined_verdict[0] == local_verdict[0] == "pass"
    assert joined_verdict[2] == local_verdict[2]  # every target met or missed alike
