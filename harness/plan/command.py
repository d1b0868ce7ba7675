"""`hospital-drill audit [PLAN]`: the readiness audit from the command line; `hospital-drill backup
[PLAN]`: a full and an incremental backup of the plan's stack, put in the plan's backup stores.

Exit codes: 0 ready (backed up); 1 a critical finding (a backup failed); 2 bad input; 3 aborted
(the stack would not come up).
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


def cmd_backup(args) -> int:
    """The schedule's full and incremental taken on the plan's stack and copied into every store:
    what the next audit's `backups` check reads."""
    from ..clock import DrillClock
    from ..errors import HarnessError
    from ..journal import Journal
    from .audit import out_dir, plan_stores
    from .live import backups, plan_stack
    from .load import find_plan, load_plan
    loaded = load_plan(find_plan(args.plan))
    out = out_dir(f"{loaded.plan.name}-backup", args.out)
    stores = plan_stores(loaded)
    say = (lambda _: None) if args.quiet else (lambda line: print(line, flush=True))
    with Journal(out.journal, DrillClock(1.0)) as journal:
        try:
            with plan_stack(loaded.plan, out, journal, args.backend, say=say) as (stack, _):
                findings, evidence = backups(stack, journal, loaded.plan.backups, stores)
        except (HarnessError, OSError, RuntimeError) as e:
            print(f"backup aborted: {e.__class__.__name__}: {str(e).splitlines()[0]}", flush=True)
            return 3
    for taken in evidence["taken"]:
        for store, path in taken.get("stored", {}).items():
            print(f"{taken['kind']:11} {store:12} {path}", flush=True)
    for f in findings:
        print(f.line(), flush=True)
    return 1 if any(f.severity == "critical" for f in findings) else 0


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

    b = sub.add_parser("backup", help="take a full and an incremental backup of the plan's stack "
                                      "and put them in the plan's backup stores")
    b.add_argument("plan", nargs="?", help="a plan file, or the name of a shipped plan "
                                           "(default: hospital)")
    b.add_argument("--out", help="where the stack runs and journals (default "
                                 "reports/audit-<plan>-backup-<time>)")
    b.add_argument("--backend", default="local")
    b.add_argument("--quiet", action="store_true", help="only where each copy went")
    b.set_defaults(func=cmd_backup)

