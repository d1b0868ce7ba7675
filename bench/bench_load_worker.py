"""What one joined Locust worker costs: requests per worker CPU-second, and patients per worker core.

    python bench/bench_load_worker.py [--busy-users 40] [--users 1000] [--think 18,54] [--duration 30]

Brings the local stack up once, then runs the patient load as a drill with external workers does: the
drill's master here, one `hospital-drill load-worker` process joined to it (on 127.0.0.1), its request
records sent back through the master. Two steps:

1. busy: `--busy-users` patients with no think time; the worker's requests per CPU-second of its own
   (the cost of a request on the worker side, whatever the stack manages).
2. drill: `--users` patients thinking `--think` seconds between journeys (a live drill's think time,
   scale 1); the worker's share of a core and its memory, and from them the patients one worker core
   carries at 75 % busy.

Figures come from the worker's own CPU time (psutil) and the records it sent, after a warm-up.
The stack is always taken down.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.load.records import iter_records  # noqa: E402
from harness.load.runner import PatientLoad  # noqa: E402
from harness.models import StackConfig  # noqa: E402
from harness.stack import backends  # noqa: E402

CORE_BUSY = 0.75  # the share of a core a worker may take and still keep its timings honest


def worker_cpu(proc: psutil.Process) -> tuple[float, int]:
    """CPU seconds and RSS bytes of the load-worker's Locust process(es)."""
    cpu, rss = 0.0, 0
    for p in proc.children(recursive=True):
        try:
            t = p.cpu_times()
            cpu += t.user + t.system
            rss += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return cpu, rss


def step(url: str, work: Path, users: int, wait: list[float], warmup: float, duration: float) -> dict:
    work.mkdir(parents=True)
    with PatientLoad(url, work / "records", users=users, spawn_rate=max(users / 5, 1),
                     config={"wait": wait, "request_timeout_s": 5}, log_dir=work / "logs",
                     external_workers=1) as load:
        cmd = [sys.executable, "-m", "harness.cli", "load-worker", "--master",
               load.join_command.split()[-1], "--log-dir", str(work / "worker")]
        worker = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            load.wait_started(timeout=60)
            time.sleep(warmup)
            ps = psutil.Process(worker.pid)
            cpu0, _ = worker_cpu(ps)
            t0 = time.time()
            time.sleep(duration)
            cpu1, rss = worker_cpu(ps)
            t1 = time.time()
        finally:
            load.stop()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
    requests = sum(1 for r in iter_records(work / "records") if t0 <= r["t"] < t1)
    busy = (cpu1 - cpu0) / (t1 - t0)
    return {"users": users, "rps": requests / (t1 - t0), "core": busy,
            "per_cpu_s": requests / max(cpu1 - cpu0, 1e-9), "rss_mb": rss / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--busy-users", type=int, default=40)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--think", default="18,54", help="min,max real seconds between journeys")
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=10)
    args = ap.parse_args()
    think = [float(x) for x in args.think.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-load-worker-") as tmp:
        work = Path(tmp)
        stack = backends.get("local").up(work / "stack", StackConfig(), 60)
        try:
            busy = step(stack.vip_url, work / "busy", args.busy_users, [0, 0], 3, args.duration)
            drill = step(stack.vip_url, work / "drill", args.users, think, args.warmup, args.duration)
        finally:
            stack.down()
    print(f"busy : {busy['users']:>5} users, no think time: {busy['rps']:7.1f} req/s, worker "
          f"{busy['core']:.0%} of a core, {busy['per_cpu_s']:.0f} requests per worker CPU-second")
    per_user = drill["rps"] / drill["users"]
    print(f"drill: {drill['users']:>5} users, think {think[0]:g}-{think[1]:g}s: {drill['rps']:7.1f} req/s "
          f"({per_user:.3f} per patient), worker {drill['core']:.0%} of a core, RSS {drill['rss_mb']:.0f} MB")
    by_cpu = CORE_BUSY * busy["per_cpu_s"] / per_user if per_user else float("nan")
    by_drill = CORE_BUSY * drill["users"] / drill["core"] if drill["core"] else float("nan")
    print(f"patients per worker core at {CORE_BUSY:.0%} busy: ~{min(by_cpu, by_drill):,.0f} "
          f"(from the busy step's cost per request: {by_cpu:,.0f}; from the drill step: {by_drill:,.0f})")


if __name__ == "__main__":
    main()
