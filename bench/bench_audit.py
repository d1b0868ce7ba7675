"""Wall time of `hospital-drill audit` on the plan with the typo'd insurance backup address, bring-up
included (median of N runs), and that each run found the address and its refused connection.

    python bench/bench_audit.py [--runs 3] [--no-backups | --take-backups]

The backup stores are a fresh temporary data dir each run (XDG_DATA_HOME): by default the audit
judges them (empty: a finding, found in milliseconds); `--take-backups` takes a full and an
incremental first and puts them there, as before the audit read the stores.

Goal (local backend, this 2-core machine): under 10 s from the command to the verdict.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLAN = "hospital-wrong-backup-ip"
TYPO = "127.0.0.9:18090"


def one(extra: list[str]) -> tuple[float, float, bool]:
    """(wall s of the whole command, bring-up s, whether the typo was found refusing)."""
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        out = Path(tmp) / "audit"
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "harness.cli", "audit", PLAN, "--out", str(out),
                        "--quiet", *extra], cwd=ROOT, capture_output=True, timeout=300,
                       env={**os.environ, "XDG_DATA_HOME": str(Path(tmp) / "data")})
        wall = time.monotonic() - t0
        report = json.loads((out / "audit.json").read_text(encoding="utf-8"))
        found = any(f.get("evidence", {}).get("address") == TYPO
                    and f["evidence"].get("what") == "refused connection"
                    for c in report["checks"] for f in c["findings"])
        return wall, report["bring_up_seconds"] or 0.0, found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--no-backups", action="store_true")
    which.add_argument("--take-backups", action="store_true")
    args = p.parse_args()
    extra = ["--no-backups"] if args.no_backups else ["--take-backups"] if args.take_backups else []
    runs = [one(extra) for _ in range(args.runs)]
    for i, (wall, up, found) in enumerate(runs, 1):
        print(f"run {i}: {wall:.2f}s wall (bring-up {up:.2f}s), typo found refusing: {found}")
    median = statistics.median(r[0] for r in runs)
    print(f"audit {PLAN}: median {median:.2f}s wall over {len(runs)} runs "
          f"({'under' if median < 10 else 'OVER'} the 10 s goal)")
    return 0 if all(r[2] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
