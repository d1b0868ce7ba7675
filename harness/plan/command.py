"""`hospital-drill audit [PLAN]`: the readiness audit from the command line.

Exit codes: 0 ready; 1 a critical finding; 2 bad input; 3 aborted (the stack would not come up).
"""
from __future__ import annotations

import os

TOXIPROXY_ENV = "HOSPITAL_DRILL_TOXIPROXY_URL"


def cmd_audit(args) -> int:
    from .audit import audit, out_dir
    from .load import find_plan, load_plan
    from ..errors import InputError
    from ..rundir import RunDir
    loaded = load_plan(find_plan(args.plan))  # bad input: file:line: field: why, exit 2
    if args.out and RunDir(args.out).holds_run():
        raise InputError(f"already holds a run ({RunDir.JOURNAL}): give a new directory",
                         file=args.out, field="--out")
    out = out_dir(loaded.plan.name, args.out)
    say = (lambda _: None) if args.quiet else (lambda line: print(line, flush=True))
    say(f"audit of plan {loaded.plan.name} ({loaded.path}) into {out}")
    outcome = audit(loaded, out, live=not args.static, backend=args.backend,
                    toxiproxy_url=args.toxiproxy, backups_checked=not args.no_backups,
                    take_backups=args.take_backups, test_restore=args.restore, say=say)
    up = next((r.evidence.get("bring_up_seconds") for r in outcome.results
               if r.evidence.get("bring_up_seconds") is not None), None)
    print(f"audit {outcome.verdict}: readiness {outcome.score:.0f}/100, "
          f"{len([f for r in outcome.results for f in r.findings])} finding(s), "
          f"{outcome.seconds:.1f}s wall" + (f" (bring-up {up:.1f}s)" if up is not None else "")
          + f"; report {outcome.reports['html']}", flush=True)
    return outcome.exit_code


def add_parser(sub) -> None:
    a = sub.add_parser("audit", help="readiness audit of the emergency plan: static checks, then "
                                     "live checks against its stack brought up with no fault")
    a.add_argument("plan", nargs="?", help="a plan file, or the name of a shipped plan "
                                           "(default: hospital)")
    a.add_argument("--out", help="output directory (default reports/audit-<plan>-<time>)")
    a.add_argument("--static", action="store_true", help="static checks only: bring nothing up")
    a.add_argument("--backend", default="local")
    a.add_argument("--toxiproxy", default=os.environ.get(TOXIPROXY_ENV),
                   help=f"use this Toxiproxy API instead of starting ours (env {TOXIPROXY_ENV})")
    a.add_argument("--take-backups", action="store_true",
                   help="also take a full and an incremental backup now (the schedule's own code) "
                        "and put them in the plan's backup stores before they are judged")
    a.add_argument("--no-backups", action="store_true",
                   help="leave the backups alone: neither judge the stores nor take any")
    a.add_argument("--restore", action="store_true",
                   help="also restore the newest chain in the stores into a scratch node, timed")
    a.add_argument("--quiet", action="store_true", help="only the verdict line")
    a.set_defaults(func=cmd_audit)

