"""Benchmark: building the after-action report of a run with 1,000,000 request records.

Generates a run directory synthetically (the default drill's files, a journal of a one-hour live
drill with a database crash at T+10m and recovery at T+25m, and four Locust-worker record files),
then scores it and writes every report format in a fresh process, and prints the wall time of each
phase and that process's peak memory (ru_maxrss). The bar: under 10 s and 1 GB.

    python bench/bench_report.py [--records N] [--dir DIR] [--keep] [--lang zh|en]
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
T0 = 1767225600.0  # 2026-01-01 00:00 UTC: T+0 of the synthetic drill
SPAN = 3600.0  # real seconds of patient load after T+0 (time scale 1: a live drill)
FAULT, RECOVERED = 600.0, 1500.0
JOURNEYS = {"followup": ("POST /api/appointments", True), "consultation": ("POST /api/consultations", True),
            "prescription": ("POST /api/prescriptions", True), "exam": ("POST /api/exam-bookings", True),
            "payment": ("POST /api/payments", True)}


def write_run(run_dir: Path, n_records: int, workers: int = 4, seed: int = 7) -> None:
    sys.path.insert(0, str(ROOT))
    from harness.validate import load_drill
    loaded = load_drill(ROOT / "drills" / "db-crash-failover.yaml")
    data = dict(loaded.drill_data, time_scale=1)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "drill.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                                        encoding="utf-8")
    (run_dir / "scenario.yaml").write_text(
        yaml.safe_dump(loaded.scenario_data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    events = [
        (-5.0, "run.started", {"run_id": "bench", "drill_name": data["name"], "scenario": "db-crash",
                               "failure_class": "database", "time_scale": 1.0, "backend": "local",
                               "live": True, "config": data.get("stack", {})}),
        (-3.0, "stack.up", {"seconds": 2.0, "services": {}}),
        (-1.0, "load.started", {"users": 300, "workers": workers}),
        (0.0, "scenario.started", {}),
        (FAULT - 1, "steady_state", {"ok": True, "error_rate": 0.001, "requests": 100000, "p95_ms": 40}),
        (FAULT, "fault.injected", {"fault": "primary-db-crash", "fault_type": "db_crash", "target": "pg-primary",
                                   "detail": {"node": "pg-primary"}}),
        (FAULT + 20, "alert.raised", {"alert": "db_unreachable", "severity": "critical",
                                      "detail": {"probe_error": "HTTP 503"}}),
        (FAULT + 21, "step.started", {"step": "three-step-check", "group": "technical", "kind": "auto",
                                      "action": "three_step_check"}),
        (FAULT + 50, "step.finished", {"step": "three-step-check", "group": "technical", "kind": "auto",
                                       "action": "three_step_check", "ok": True, "detail": {}}),
        (FAULT + 51, "step.started", {"step": "declare-level", "group": "technical", "kind": "auto",
                                      "action": "declare_level"}),
        (FAULT + 80, "level.declared", {"level": 1, "affected": 4000, "active": 5000, "share": 0.8}),
        (FAULT + 81, "step.finished", {"step": "declare-level", "group": "technical", "kind": "auto",
                                       "action": "declare_level", "ok": True, "detail": {"level": 1}}),
        (FAULT + 82, "step.started", {"step": "promote-same-city", "group": "technical", "kind": "auto",
                                      "action": "promote_standby"}),
        (FAULT + 90, "notification.sent", {"channel": "app_banner", "audience": "patients", "text": "维护中"}),
        (FAULT + 400, "step.finished", {"step": "promote-same-city", "group": "technical", "kind": "auto",
                                        "action": "promote_standby", "ok": False,
                                        "detail": {"error": "standby 127.0.0.1:5433 refused connection"}}),
        (RECOVERED, "recovery", {"at_wall": T0 + RECOVERED, "detail": {}}),
        (RECOVERED + 30, "alert.cleared", {"alert": "db_unreachable"}),
        (SPAN + 5, "rpo.measured", {"mode": "async", "acked_writes": 300000, "lost_writes": 120,
                                    "lost_sample": ["w1"], "lost_seconds": 28.0, "crash_wall": T0 + FAULT}),
        (SPAN + 10, "run.finished", {"status": "completed", "reason": None}),
    ]
    with open(run_dir / "journal.jsonl", "w", encoding="utf-8") as fh:
        for seq, (at, type_, fields) in enumerate(events, 1):
            fh.write(json.dumps({"seq": seq, "wall": T0 + at, "drill": at if at >= 0 else None,
                                 "type": type_, **fields}, ensure_ascii=False) + "\n")
    rnd = random.Random(seed)
    rec_dir = run_dir / "records"
    rec_dir.mkdir(exist_ok=True)
    per = n_records // workers
    names = list(JOURNEYS)
    for w in range(workers):
        n = per if w < workers - 1 else n_records - per * (workers - 1)
        step = SPAN / n
        with open(rec_dir / f"worker-{w + 1}.jsonl", "w", encoding="utf-8", buffering=1 << 20) as fh:
            lines = []
            for i in range(n):
                t = T0 + i * step + rnd.random() * step
                rel = t - T0
                down = FAULT <= rel <= RECOVERED
                ok = rnd.random() > (0.85 if down else 0.002)
                journey = names[i % 5]
                write = i % 3 == 0
                patient = f"P{(w * 1250 + i % 1250) + 1:05d}"
                ms = rnd.lognormvariate(3.2, 0.5) if ok else (1000.0 + rnd.random() * 2000 if down else 30.0)
                lines.append(
                    f'{{"t":{t:.6f},"ms":{ms:.3f},"patient":"{patient}","persona":"{journey}",'
                    f'"journey":"{journey}","name":"{JOURNEYS[journey][0] if write else "GET /api/doctors"}",'
                    f'"ok":{"true" if ok else "false"},"status":{201 if ok else 503},'
                    f'"error":{"null" if ok else chr(34) + "HTTP 503" + chr(34)},'
                    f'"write_id":{(chr(34) + f"w{w}-{i}" + chr(34)) if write else "null"}}}\n')
                if len(lines) >= 50000:
                    fh.write("".join(lines))
                    lines.clear()
            fh.write("".join(lines))


def measure(run_dir: Path, lang: str) -> dict:
    """In this process: score and write the reports; time each phase; peak memory."""
    sys.path.insert(0, str(ROOT))
    t0 = time.perf_counter()
    from harness.report.render import write_reports
    from harness.score.scorecard import score_run
    t1 = time.perf_counter()
    card = score_run(run_dir)
    t2 = time.perf_counter()
    write_reports(run_dir, card, lang=lang)
    t3 = time.perf_counter()
    return {"records": card.impact.total.requests, "import_s": round(t1 - t0, 2),
            "score_s": round(t2 - t1, 2), "render_s": round(t3 - t2, 2), "total_s": round(t3 - t0, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "verdict": card.verdict, "points": len(card.series.points)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--dir", help="run directory to write (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the generated run directory")
    p.add_argument("--lang", default="zh", choices=["zh", "en"])
    p.add_argument("--measure", help=argparse.SUPPRESS)  # the child process: measure this run dir
    args = p.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(Path(args.measure), args.lang)))
        return 0
    run_dir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        t = time.perf_counter()
        write_run(run_dir, args.records)
        size = sum(f.stat().st_size for f in (run_dir / "records").iterdir())
        print(f"generated {args.records:,} records ({size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f}s "
              f"→ {run_dir}")
        out = subprocess.run([sys.executable, __file__, "--measure", str(run_dir), "--lang", args.lang],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"report of {r['records']:,} records: score {r['score_s']}s + render {r['render_s']}s "
              f"(+ import {r['import_s']}s) = {r['total_s']}s; peak memory {r['peak_rss_mb']} MB "
              f"(ru_maxrss); verdict {r['verdict']}, {r['points']} chart points")
        ok = r["total_s"] < 10 and r["peak_rss_mb"] < 1024
        print("within the bar (< 10 s, < 1 GB)" if ok else "OVER the bar (10 s, 1 GB)")
        return 0 if ok else 1
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
