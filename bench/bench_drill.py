"""Bring-up time of the mock hospital and wall time of the whole default drill (medians).

    python bench/bench_drill.py [--runs N] [--drill-runs N] [--backend local|docker|local,docker]
                                [--base-image IMAGE] [--time-scale 60]

Goals (local backend, this 2-core machine): bring-up under 1.5 s, the drill at time scale 60 under
90 s and no slower than before the bring-up was made fast.

Figures (local, --runs 5 --drill-runs 2; the machine was shared with other work, load 5-9):
  before (standbys from pg_basebackup, an interpreter per service, links created one by one):
    bring-up median 4.05 s and 3.25 s (two measurements), teardown 2.26 / 3.21 s,
    drill x60 wall 24.8 / 21.3 s, exit 0
  after (services forked from one forkserver, every node a copy of the template, data on tmpfs):
    bring-up median 0.99 s (min 0.59, max 1.17), teardown 0.37 s, drill x60 wall 17.9 s, exit 0
The docker backend's images are built (or found cached) before anything is timed; that build is
reported on its own line. Several backends, comma-separated, are measured one after the other.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_UP_S = 1.5
sys.path.insert(0, str(ROOT))

from harness.models import StackConfig  # noqa: E402
from harness.stack import backends  # noqa: E402


def bring_up_times(backend: str, runs: int, options: dict) -> tuple[list[float], list[float]]:
    ups, downs = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-stack-") as d:
            t0 = time.perf_counter()
            stack = backends.get(backend).up(Path(d), StackConfig(), 60, **options)
            ups.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            stack.down()
            downs.append(time.perf_counter() - t0)
    return ups, downs


def drill_times(backend: str, runs: int, scale: float, drill: str, options: dict) -> list[tuple[float, int]]:
    extra = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    out = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-drill-") as d:
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "harness.cli", "run", drill, "--out", f"{d}/run",
                                "--quiet", "--time-scale", str(scale), "--backend", backend, *extra],
                               cwd=ROOT, capture_output=True, text=True)
            out.append((time.perf_counter() - t0, p.returncode))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="bring-up samples")
    ap.add_argument("--drill-runs", type=int, default=3)
    ap.add_argument("--backend", default="local", help="local, docker, or both: local,docker")
    ap.add_argument("--base-image", help="docker: the base image (default $HOSPITAL_DRILL_BASE_IMAGE "
                    "or python:3.11-slim)")
    ap.add_argument("--time-scale", type=float, default=60)
    ap.add_argument("--drill", default="drills/db-crash-failover.yaml")
    a = ap.parse_args()
    for backend in a.backend.split(","):
        options = {}
        if backend == "docker":
            from harness.stack.docker import engine, images
            image = (a.base_image or os.environ.get(images.BASE_IMAGE_ENV)
                     or images.DEFAULT_BASE_IMAGE)
            options["base_image"] = image
            t0 = time.perf_counter()
            docker_engine = engine.client()
            tags = images.ensure_images(docker_engine, image)
            docker_engine.close()
            print(f"backend docker: images {', '.join(tags.values())} from {image} ready in "
                  f"{time.perf_counter() - t0:.1f} s (built once, then cached)")
        ups, downs = bring_up_times(backend, a.runs, options)
        print(f"backend {backend}: bring-up median {statistics.median(ups):.2f} s "
              f"(min {min(ups):.2f}, max {max(ups):.2f}, n={len(ups)}; goal < {GOAL_UP_S:g} s); "
              f"teardown median {statistics.median(downs):.2f} s")
        if a.drill_runs <= 0:
            continue
        drills = drill_times(backend, a.drill_runs, a.time_scale, a.drill, options)
        walls = [w for w, _ in drills]
        print(f"backend {backend}: drill {a.drill} at time scale {a.time_scale:g}: wall median "
              f"{statistics.median(walls):.1f} s (min {min(walls):.1f}, max {max(walls):.1f}, "
              f"n={len(walls)}; goal < 90 s); exit codes {[rc for _, rc in drills]}")


if __name__ == "__main__":
    main()
