"""Every shipped drill's verdict, level and score, to hold a change against: the same drill must keep
its verdict (a change of score is shown, a change of verdict or level fails).

    python bench/bench_verdicts.py [--only a,b] [--time-scale 60] [--save FILE] [--compare FILE]
                                   [--tree DIR]

Runs each drill of `hospital-drill list` on the local backend, one after the other, and prints a
line per drill: verdict, declared level, score, exit code and wall time. `--save` writes them as JSON;
`--compare` reads such a file (e.g. saved from the commit before a change, `--tree` pointing at a
checkout of it) and marks each drill kept or CHANGED. Exit 0 when every compared drill kept its
verdict and level, 1 otherwise. Drills that need people (`--live`) run with the simulated operator.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shipped(tree: Path) -> list[str]:
    """The drills `hospital-drill list` names, from the tree's own package."""
    out = subprocess.run([sys.executable, "-m", "harness.cli", "list"], cwd=tree, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(tree)}, check=True).stdout
    drills, inside = [], False
    for line in out.splitlines():
        if line.startswith("drills"):
            inside = True
        elif inside and line.startswith("  ") and not line.startswith("   ") and line.split():
            drills.append(line.split()[0])
        elif inside and line and not line.startswith(" "):
            inside = False
    return drills


def run_one(tree: Path, drill: str, scale: float | None, out: Path) -> dict:
    cmd = [sys.executable, "-m", "harness.cli", "run", drill, "--out", str(out), "--quiet", "--lang", "en"]
    if scale:
        cmd += ["--time-scale", f"{scale:g}"]
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, timeout=900,
                       env={**os.environ, "PYTHONPATH": str(tree)})
    wall = time.monotonic() - t0
    row = {"drill": drill, "exit": p.returncode, "wall": round(wall, 1), "verdict": None, "level": None,
           "score": None}
    card_file = out / "score.json"
    if card_file.exists():
        card = json.loads(card_file.read_text())
        row.update(verdict=card.get("verdict"), score=card.get("score"),
                   level=(card.get("level") or {}).get("declared"))
        if card.get("verdict") == "aborted":
            row["error"] = (card.get("overview") or {}).get("abort_reason")
    else:
        row["error"] = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["no score.json"]
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated drill names (default: every shipped drill)")
    ap.add_argument("--time-scale", type=float, default=None, help="default: each drill's own")
    ap.add_argument("--tree", type=Path, default=ROOT, help="the checkout to run (default: this one)")
    ap.add_argument("--save", type=Path)
    ap.add_argument("--compare", type=Path)
    ap.add_argument("--keep", type=Path, help="keep the run directories here (default: thrown away)")
    a = ap.parse_args(argv)
    drills = a.only.split(",") if a.only else shipped(a.tree)
    before = {r["drill"]: r for r in json.loads(a.compare.read_text())} if a.compare else {}
    rows, changed = [], 0
    print(f"{'drill':<36} {'verdict':<8} {'level':>5} {'score':>6} {'exit':>4} {'wall s':>7}  vs before")
    with tempfile.TemporaryDirectory(prefix="hd-verdicts-") as tmp:
        for drill in drills:
            r = run_one(a.tree, drill, a.time_scale, (a.keep or Path(tmp)) / drill)
            rows.append(r)
            was = before.get(drill)
            mark = ""
            if was:
                same = (was["verdict"], was["level"]) == (r["verdict"], r["level"])
                changed += not same
                mark = ("kept" if same else "CHANGED") + f" (was {was['verdict']}, L{was['level']}, {was['score']})"
            level = "—" if r["level"] is None else f"L{r['level']}"
            score = "—" if r["score"] is None else f"{r['score']:g}"
            print(f"{drill:<36} {str(r['verdict']):<8} {level:>5} {score:>6} {r['exit']:>4} {r['wall']:>7.1f}  "
                  f"{mark}{'  ' + str(r.get('error')) if r.get('error') else ''}", flush=True)
    if a.save:
        a.save.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    if before:
        print(f"{len(rows) - changed} of {len(rows)} kept their verdict and level")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
