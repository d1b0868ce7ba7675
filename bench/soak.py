"""Soak: interrupts and hard kills at random moments of a drill, then what is left behind, by kind.

    python bench/soak.py [--interrupts 50] [--kills 10] [--drill drills/db-crash-failover.yaml]
                         [--seed N] [--latest 45]

Each interrupt sends SIGINT (Ctrl-C) to `hospital-drill run` at a random moment between its start
and `--latest` real seconds (a drill that ends first is a clean finish, and counted as one). Each
kill sends SIGKILL at such a moment and then runs `hospital-drill down RUN_DIR`. Afterwards every
run is checked for leftovers of its own:
- processes: PostgreSQL whose data directory is the run's, Locust writing the run's records, and
  the processes the run recorded in pids.json;
- ports: every service and link address the run journalled at `stack.up`;
- shared memory: every /dev/shm segment and System V segment that the run's PostgreSQL servers
  were seen mapping while the drill ran (their /proc/<pid>/maps, sampled several times a second);
- temp dirs: the run's data root (RUN_DIR/pg, or where its symlink led).
Goal: 0 of every kind.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
SHM = re.compile(r"\s(/dev/shm/PostgreSQL\.\d+)$")
SYSV = re.compile(r"\s(\d+)\s+/SYSV([0-9a-f]{8})")


class Trial:
    """One drill, watched from outside while it runs."""

    def __init__(self, out: Path, drill: Path):
        self.out, self.drill = out, drill
        self.files: set[str] = set()
        self.sysv: set[tuple[int, int]] = set()  # (shmid, key)
        self.data_roots: set[str] = set()
        self._stop = threading.Event()

    def roots(self) -> list[str]:
        link = self.out / "pg"
        found = {str(self.out.resolve())}
        if link.is_symlink():
            found.add(str(link.resolve()))
        self.data_roots |= {r for r in found if r != str(self.out.resolve())} | {str(link)}
        return sorted(found)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            roots = self.roots()
            for p in psutil.process_iter(["name"]):
                if p.info["name"] != "postgres":
                    continue
                try:
                    cwd = p.cwd()
                    if not any(cwd == r or cwd.startswith(r + os.sep) for r in roots):
                        continue
                    maps = Path(f"/proc/{p.pid}/maps").read_text()
                except (psutil.Error, OSError):
                    continue
                for line in maps.splitlines():
                    if m := SHM.search(line):
                        self.files.add(m.group(1))
                    elif m := SYSV.search(line):
                        self.sysv.add((int(m.group(1)), int(m.group(2), 16)))

    def run(self, action: str, at: float) -> str:
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(self.drill), "--out",
                                 str(self.out), "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        watcher = threading.Thread(target=self._sample, daemon=True)
        watcher.start()
        try:
            proc.wait(timeout=at)
            outcome = "finished"
        except subprocess.TimeoutExpired:
            if action == "interrupt":
                proc.send_signal(signal.SIGINT)
                outcome = "interrupted"
            else:
                proc.kill()
                outcome = "killed"
            proc.wait(timeout=180)
        if outcome == "killed":
            subprocess.run([sys.executable, "-m", "harness.cli", "down", str(self.out)], cwd=ROOT,
                           capture_output=True, timeout=180)
        self._stop.set()
        watcher.join()
        return outcome

    def leftovers(self) -> dict[str, list[str]]:
        out = str(self.out.resolve())
        roots = [out, *(r for r in self.data_roots if r.startswith("/"))]
        left: dict[str, list[str]] = {"processes": [], "ports": [], "shared memory": [], "temp dirs": []}
        for p in psutil.process_iter(["name", "cmdline"]):
            try:
                if p.status() == psutil.STATUS_ZOMBIE:
                    continue
                cmd = " ".join(p.info["cmdline"] or [])
                if p.info["name"] == "postgres":
                    cwd = p.cwd()
                    if any(cwd == r or cwd.startswith(r + os.sep) for r in roots):
                        left["processes"].append(f"postgres {p.pid} in {cwd}")
                elif out in cmd or p.environ().get("HD_RECORDS_DIR", "").startswith(out):
                    left["processes"].append(f"{p.pid} {cmd[:80]}")
            except (psutil.Error, OSError):
                continue
        journal = self.out / "journal.jsonl"
        up = {}
        if journal.exists():
            for line in journal.read_text().splitlines():
                if '"stack.up"' in line:
                    up = json.loads(line)
        for addr in [*up.get("services", {}).values(), *up.get("links", {}).values()]:
            host, port = addr.rsplit(":", 1)
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex((host, int(port))) == 0:
                    left["ports"].append(addr)
        left["shared memory"] += [f for f in sorted(self.files) if os.path.exists(f)]
        table = {}
        for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]:
            cols = line.split()
            table[int(cols[1])] = int(cols[0])
        left["shared memory"] += [f"SysV id {i}" for i, key in sorted(self.sysv) if table.get(i) == key]
        for r in sorted(self.data_roots):
            if os.path.lexists(r) and (r != str(self.out / "pg") or os.path.exists(r)):
                left["temp dirs"].append(r)
        return left


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--interrupts", type=int, default=50)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--drill", default=str(ROOT / "drills" / "db-crash-failover.yaml"))
    ap.add_argument("--latest", type=float, default=45.0,
                    help="the latest moment of an interrupt or kill, real seconds after the start")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    plan = ["interrupt"] * args.interrupts + ["kill"] * args.kills
    rng.shuffle(plan)
    totals: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="soak-", dir=ROOT / "reports") as tmp:
        for n, action in enumerate(plan, 1):
            trial = Trial(Path(tmp) / f"run-{n:03d}", Path(args.drill))
            at = rng.uniform(1.0, args.latest)
            t0 = time.monotonic()
            outcome = trial.run(action, at)
            left = trial.leftovers()
            outcomes[outcome] += 1
            for kind, items in left.items():
                totals[kind] += len(items)
            seen = len(trial.files) + len(trial.sysv)
            print(f"{n:3d} {action:<9} at {at:5.1f}s → {outcome:<11} {time.monotonic() - t0:5.1f}s; "
                  f"shm seen {seen}; left: " + (", ".join(f"{k} {len(v)}" for k, v in left.items() if v)
                                               or "nothing"), flush=True)
            for kind, items in left.items():
                for item in items:
                    print(f"      {kind}: {item}")
    print(f"runs: {sum(outcomes.values())} ({', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))})")
    print("leftovers: " + ", ".join(f"{k} {totals[k]}" for k in
                                    ("processes", "ports", "shared memory", "temp dirs")))
    return 0 if not sum(totals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
