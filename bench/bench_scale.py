"""Figures against the time scale: the same drill must give the same figures at any scale.

    python bench/bench_scale.py [--runs 2] [--only db-crash-failover,egress-saturation] [--keep DIR]

Runs the db-crash drill at ×20, ×60 and ×120 and egress-saturation at ×30, ×60 and ×120, `--runs`
times each, and prints detect / takeover (the drill's step target) / recovery / RPO per run in drill
seconds, then each figure's spread against its ×60 median. The goal (DESIGN.md's time rule): every
figure within 15 % (or 5 drill s, whichever is larger) of its ×60 median, and the same verdict at
every scale. Exit 0 when the goal holds, 1 when it does not.
"""
from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.run import DrillRun, Interrupted  # noqa: E402

PLAN = {"db-crash-failover": (20, 60, 120), "egress-saturation": (30, 60, 120)}
FIGURES = ("detect", "takeover", "recovery", "rpo")
REL, ABS = 0.15, 5.0


def figures(card) -> dict[str, float | None]:
    """Map a score card's targets onto the four figures (the takeover is the drill's step target)."""
    out: dict[str, float | None] = dict.fromkeys(FIGURES)
    for t in card.targets:
        key = {"detection": "detect", "recovery": "recovery", "rpo": "rpo", "step": "takeover"}.get(t.measure)
        if key and out[key] is None:
            out[key] = t.actual
    return out


def run_once(drill: str, scale: float, keep: Path | None = None) -> dict:
    """One run; its run directory kept under `keep` (DRILL-xSCALE-N), else thrown away."""
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as d:
        out = Path(d) / "run"
        if keep is not None:
            out = keep / f"{drill}-x{scale:g}-{len(list(keep.glob(f'{drill}-x{scale:g}-*'))) + 1}"
        t0 = time.perf_counter()
        with DrillRun(ROOT / "drills" / f"{drill}.yaml", out_dir=out, time_scale=scale,
                      reports_root=d) as run:
            run.execute()
        card = run.card
        wall = time.perf_counter() - t0
        chains = {t.id: t.breakdown for t in card.targets if t.breakdown}
        return {"drill": drill, "scale": scale, "verdict": card.verdict, "wall": round(wall, 1),
                **figures(card), "chains": chains}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--only", default=",".join(PLAN))
    ap.add_argument("--json", type=Path, help="also write every run's figures here")
    ap.add_argument("--keep", type=Path, help="keep each run's directory here (to read an outlier's journal)")
    ap.add_argument("--scales", help="only these scales, e.g. 30,60 (default: each drill's three)")
    args = ap.parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)

    def interrupted(signum, frame):  # a SIGTERM cleans the running drill up, as Ctrl-C does
        raise Interrupted(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupted)
    rows = []
    for drill in args.only.split(","):
        scales = [float(x) for x in args.scales.split(",")] if args.scales else PLAN[drill]
        for scale in scales:
            for i in range(args.runs):
                row = run_once(drill, scale, args.keep)
                rows.append(row)
                print(f"{drill:<20} ×{scale:<4g} run {i + 1}: " + "  ".join(
                    f"{k} {'—' if row[k] is None else f'{row[k]:.1f}'}" for k in FIGURES)
                    + f"  verdict {row['verdict']}  ({row['wall']} s wall)", flush=True)
    ok = True
    print("\nspread against the ×60 median (goal: within 15 % or 5 drill s; one verdict per drill)")
    for drill in args.only.split(","):
        mine = [r for r in rows if r["drill"] == drill]
        verdicts = {r["verdict"] for r in mine}
        if len(verdicts) != 1:
            ok = False
        print(f"{drill}: verdicts {sorted(verdicts)}")
        for k in FIGURES:
            ref = [r[k] for r in mine if r["scale"] == 60 and r[k] is not None]
            if not ref:
                continue
            med = statistics.median(ref)
            allowed = max(REL * med, ABS)
            worst = max((abs(r[k] - med) for r in mine if r[k] is not None), default=0.0)
            missing = sum(1 for r in mine if r[k] is None)
            good = worst <= allowed and not missing
            ok &= good
            print(f"  {k:<9} ×60 median {med:7.1f}  worst deviation {worst:6.1f}  allowed {allowed:5.1f}"
                  f"{'' if not missing else f'  missing in {missing} run(s)'}  {'ok' if good else 'OUT'}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print("\nscale-independent:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
