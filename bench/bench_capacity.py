"""Capacity of the mock hospital: a zero-think-time sweep of patients, and where the knee is.

    python bench/bench_capacity.py [--target vip|direct] [--users 10,20,40,60,100] [--duration 20]
                                   [--warmup 3] [--repeat 1] [--workers 0]
                                   [--personas followup=3,payment=1]

Brings the local stack up once, then for each number of users runs the project's patient load
(harness/load/locustfile.py through `PatientLoad`, request records on, as in a drill) with no think
time, and prints per step: requests/s, p50/p95/p99 (ms) and errors, measured from the request records
after a warm-up. With `--repeat N` each step runs N times (a fresh Locust each time) and the run
with the median requests/s is the one shown, with the range of all N: one 20-second window on a
shared machine can be off by a fifth. `--target vip` goes through the patient entry (the `app-vip` link, our proxy);
`--target direct` straight at app-primary's port. The knee: the highest requests/s with p95 under
100 ms, or else the last step before requests/s stopped growing. The stack is always taken down, on
Ctrl-C and SIGTERM too.

Goal (this 2-core machine, Locust on the same cores): at least 1,500 requests/s with p95
under 100 ms through the patient entry.

Figures through the patient entry, each the median of 3 runs taken in turn (before, after the
services' change, after the patients' client) so that the machine's drift hits all three alike:

    users | before: rps, p95, CPU ms/request | + services (orjson, routes) | + patients' own client
    14    | 1,291   19 ms  1.36              | 1,430   17 ms  1.21        | 1,634   17 ms  1.07
    20    | 1,183   32 ms  1.50              | 1,340   27 ms  1.32        | 1,648   26 ms  1.07
    40    | 1,276   57 ms  1.43              | 1,410   50 ms  1.27        | 1,656   50 ms  1.11

Locust's CPU per request went 0.47-0.50 -> 0.27-0.28 ms, the app's 0.42-0.46 -> 0.35-0.38 ms with
the services' change (0.37-0.40 at the higher rate the client's change brings).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.load.load_config import PERSONAS  # noqa: E402
from harness.load.records import OFFLINE_JOURNEY, iter_records  # noqa: E402
from harness.load.runner import PatientLoad  # noqa: E402
from harness.models import StackConfig  # noqa: E402
from harness.stack import backends  # noqa: E402

P95_GOAL_MS = 100.0
GROWTH = 1.03  # a step that adds less than 3% requests/s has stopped growing


# what a process is: told by its log (where its stdout goes: services forked from one preloaded
# interpreter all share its command line), else by its command line; CPU is summed per part
BY_LOG = (("locust", "locust"), ("/pg-", "postgres"), ("toxiproxy", "proxy"), ("/app-", "app"),
          ("egress", "egress"), ("/insurance-", "third parties"), ("/payment-", "third parties"),
          ("/notification-", "third parties"), ("offline", "offline"))
BY_COMMAND = (("locust", "locust"), ("postgres", "postgres"), ("harness.stack.prefork", "other"),
              ("harness.netfault.server", "proxy"), ("services.app", "app"), ("services.egress", "egress"),
              ("services.thirdparty", "third parties"), ("services.offline", "offline"))
TICK = os.sysconf("SC_CLK_TCK")


def part_of(pid: str, command: str) -> str:
    try:
        log = os.readlink(f"/proc/{pid}/fd/1")
    except OSError:
        log = ""
    for table, text in ((BY_LOG, log), (BY_COMMAND, command)):
        for key, part in table:
            if key in text:
                return part
    return "other"


def cpu_by_part(root: int) -> dict[str, float]:
    """CPU seconds used so far by each part of the stack among `root`'s descendants (live ones)."""
    procs: dict[int, tuple[int, float, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        procs[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, cmd)
    out: dict[str, float] = {}
    for pid, (ppid, cpu, cmd) in procs.items():
        while ppid not in (0, 1, root):  # only ours: other stacks may be running on the machine
            ppid = procs.get(ppid, (0,))[0]
        if ppid != root:
            continue
        part = part_of(str(pid), cmd)
        out[part] = out.get(part, 0.0) + cpu
    return out


@dataclass
class Step:
    users: int
    rps: float
    p50: float
    p95: float
    p99: float
    requests: int
    errors: int
    cpu_ms: dict[str, float]  # CPU ms per request, by part of the stack, over the measured window
    rps_range: tuple[float, float] | None = None  # lowest and highest requests/s of the repeats


def percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


def measure(records_dir: Path, window: tuple[float, float]) -> tuple[float, list[float], int]:
    """requests/s, sorted latencies (ms) and errors of the patient requests started in `window`."""
    start, end = window
    times, errors = [], 0
    for rec in iter_records(records_dir):
        if rec.get("journey") == OFFLINE_JOURNEY or not start <= rec["t"] < end:
            continue
        times.append(rec["ms"])
        errors += not rec["ok"]
    times.sort()
    return len(times) / (end - start), times, errors


def median_step(runs: list[Step]) -> Step:
    """The run with the median requests/s (the lower middle one of an even count), with the range."""
    ranked = sorted(runs, key=lambda s: s.rps)
    mid = ranked[(len(ranked) - 1) // 2]
    if len(runs) > 1:
        mid.rps_range = (ranked[0].rps, ranked[-1].rps)
    return mid


def run_step(url: str, users: int, duration: float, warmup: float, workers: int,
             personas: dict[str, int] | None, work: Path) -> Step:
    step_dir = work / f"users-{users}-{len(list(work.glob(f'users-{users}-*')))}"
    config: dict = {"wait": 0, "request_timeout_s": 5}
    if personas:
        config["personas"] = personas
    load = PatientLoad(url, step_dir / "records", users, spawn_rate=users, config=config,
                       workers=workers, log_dir=step_dir, run_time=int(warmup + duration + 30))
    with load:
        load.wait_started(timeout=60)
        t0 = time.time()
        time.sleep(warmup)
        cpu0 = cpu_by_part(os.getpid())
        time.sleep(duration)
        cpu1 = cpu_by_part(os.getpid())
    rps, times, errors = measure(step_dir / "records", (t0 + warmup, t0 + warmup + duration))
    per_request = {part: 1000 * (cpu1[part] - cpu0.get(part, 0.0)) / max(len(times), 1) for part in cpu1}
    return Step(users, rps, percentile(times, .50), percentile(times, .95), percentile(times, .99),
                len(times), errors, per_request)


def knee(steps: list[Step]) -> tuple[Step | None, str]:
    """The step to quote, and why it is the knee."""
    within = [s for s in steps if s.p95 < P95_GOAL_MS and s.errors == 0]
    if within:
        best = max(within, key=lambda s: s.rps)
        return best, f"highest requests/s with p95 < {P95_GOAL_MS:g} ms and no errors"
    for prev, cur in zip(steps, steps[1:]):
        if cur.rps < prev.rps * GROWTH:
            return prev, "requests/s stopped growing after it"
    return (steps[-1] if steps else None), "requests/s still growing at the last step"


def print_table(target: str, steps: list[Step]) -> None:
    print(f"\ntarget {target}: zero think time")
    ranged = any(s.rps_range for s in steps)
    print("| users | requests/s |" + (" range |" if ranged else "") + " p50 ms | p95 ms | p99 ms | requests "
          "| errors |")
    print("|---:|---:|" + ("---|" if ranged else "") + "---:|---:|---:|---:|---:|")
    for s in steps:
        span = f" {s.rps_range[0]:.0f}–{s.rps_range[1]:.0f} |" if s.rps_range else (" |" if ranged else "")
        print(f"| {s.users} | {s.rps:.0f} |{span} {s.p50:.0f} | {s.p95:.0f} | {s.p99:.0f} | {s.requests} "
              f"| {s.errors} |")
    best, why = knee(steps)
    if best is not None:
        print(f"knee: {best.rps:.0f} requests/s at {best.users} users (p95 {best.p95:.0f} ms): {why}")


def parse_personas(text: str | None) -> dict[str, int] | None:
    if not text:
        return None
    out = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if name not in PERSONAS or not weight.isdigit():
            raise SystemExit(f"--personas: {part!r} is not PERSONA=WEIGHT (personas: {', '.join(PERSONAS)})")
        out[name] = int(weight)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", choices=("vip", "direct"), default="vip",
                    help="vip: through the app-vip link (the patient entry); direct: app-primary's port")
    ap.add_argument("--users", default="10,20,40,60,100", help="comma-separated user counts")
    ap.add_argument("--duration", type=float, default=20, help="measured seconds per step")
    ap.add_argument("--warmup", type=float, default=3, help="seconds left out at the start of a step")
    ap.add_argument("--repeat", type=int, default=1, help="runs per step; the median run is shown")
    ap.add_argument("--workers", type=int, default=0, help="Locust workers (0: one local process)")
    ap.add_argument("--personas", help="persona weights, e.g. followup=3,payment=1 (default: the drill mix)")
    a = ap.parse_args()
    users = [int(u) for u in a.users.split(",")]
    personas = parse_personas(a.personas)
    # SIGTERM as Ctrl-C: both unwind through the `finally` that takes the stack down
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as d:
        work = Path(d)
        t0 = time.perf_counter()
        stack = backends.get("local").up(work / "stack", StackConfig(), 60)
        steps: list[Step] = []
        try:
            url = stack.vip_url if a.target == "vip" else stack.url("app-primary")
            print(f"stack up in {time.perf_counter() - t0:.1f} s; target {a.target} = {url}; "
                  f"{a.duration:g} s per step after {a.warmup:g} s warm-up; "
                  f"Locust {'local' if a.workers == 0 else f'{a.workers} workers'}", flush=True)
            for n in users:
                step = median_step([run_step(url, n, a.duration, a.warmup, a.workers, personas, work)
                                    for _ in range(max(1, a.repeat))])
                steps.append(step)
                cpu = ", ".join(f"{part} {ms:.2f}" for part, ms in
                                sorted(step.cpu_ms.items(), key=lambda kv: -kv[1]))
                span = f" ({step.rps_range[0]:.0f}–{step.rps_range[1]:.0f})" if step.rps_range else ""
                print(f"  {n} users: {step.rps:.0f} requests/s{span}, p50 {step.p50:.0f} ms, "
                      f"p95 {step.p95:.0f} ms, p99 {step.p99:.0f} ms, {step.errors} errors; "
                      f"CPU ms per request: {cpu} (total {sum(step.cpu_ms.values()):.2f})", flush=True)
        except KeyboardInterrupt:
            print("interrupted: taking the stack down", file=sys.stderr)
        finally:
            stack.down()
        print_table(a.target, steps)


if __name__ == "__main__":
    main()
