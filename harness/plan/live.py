"""The audit's live checks: the plan's stack brought up with no fault, and what a drill would find
out the hard way asked of it directly, in seconds:

- `interfaces`: each third party's backup interface, and the backup egress line, answers a test
  call. The runbook's own verified switch (`switch_and_verify`: switch, walk a test payment or
  message, name the culprit and switch back) does it, one route at a time, and the route is put back
  to primary after a switch that worked.
- `standbys`: each DR standby streams, and a WAL record written on the primary is replayed there
  within the plan's `standbys.max_lag` (real time: a machine's work).
- `backups_taken` (optional, `--take-backups`): the schedule's kinds (a full, then an incremental
  on it) taken now through the backup schedule's own code; each must finish, and be copied, well
  within its interval; they are then put in every store of the plan, for the next audit to find.
- `backups`: the hospital's existing backups, in the plan's stores (backup_stores.py): the newest
  full and incremental as fresh as the schedule allows, chained onto a full, in every store.
- `restore` (optional): the newest chain in the stores fetched and restored into a scratch node,
  timed against the plan's data-restore target.

What the checks need besides the stack is a `Basis`: from the plan (`Basis.of_plan`), or from a
drill's own stack config and replication settings (`Basis.of_drill`), so that a drill can run them
on its own stack as its first phase (harness/plan/readiness.py). `run_live` brings the plan's stack
up for them and takes it down on every exit path (`with stack`); a backend's failed start cleans up
itself.
"""
from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import psycopg

from ..clock import DrillClock, format_duration
from ..journal import Journal
from ..loader import Loc
from ..rundir import RunDir
from ..runbook.actions import ACTIONS, ActionContext, ActionFailed
from ..runbook.network_actions import VerifiedSwitchParams, _routes_now
from ..stack import backends, topology
from ..stack.backups import BackupSchedule
from ..stack.base import Stack
from ..stack.postgres import replication_status
from ..monitor.redundancy_rules import standby_state
from ..stack.pg_backup import Backup, tree_size
from . import backup_stores
from .findings import CheckResult, Finding
from .models import BackupSchedule as PlanBackups, Plan, StandbyPlan

if TYPE_CHECKING:
    from ..models import BackupPlan, Drill

ROUTE_SCALE = 60.0  # the verified switch's declared retry waits (drill s) pass at CI speed
BACKUP_TICK = 1.0  # real seconds from one scheduled backup to the next: the schedule compressed
TAKEN = "backups_taken"  # the check that takes backups now (the `backups` check reads the stores)
LAG_MARK = "hospital-drill audit: replication lag mark"
DEFAULT_RESTORE_WITHIN = 30 * 60.0  # the plan: data restored from the hourly incremental in 30 min

Say = Callable[[str], None]
Where = Callable[[Loc], "str | None"]  # a field of the checked file → 'file:line'


@dataclass(frozen=True)
class Basis:
    """What the live checks judge the stack against, and where the file being checked sets it."""
    max_lag: float  # how far behind (real s) a standby may replay a fresh WAL record
    remote_dr: bool  # the remote DR standby is expected too
    sync: bool  # commits wait for a synchronous standby
    backups: "BackupPlan | None"  # the schedule whose backups the backups check takes
    restore_within: float  # the bound on a restore from them
    address_field: Callable[[str], Loc]  # where a third party's backup address is configured
    where: Where = lambda _: None
    document: str = "plan"  # what to correct: the plan, or the drill
    stores: dict[str, Path] | None = None  # the backup stores the hospital's backups are kept in

    @classmethod
    def of_plan(cls, plan: Plan, where: Where = lambda _: None,
                stores: dict[str, Path] | None = None) -> "Basis":
        return cls(max_lag=plan.standbys.max_lag, remote_dr=plan.standbys.remote_dr,
                   sync=plan.standbys.mode == "sync", backups=plan.backups,
                   restore_within=restore_within(plan),
                   address_field=lambda kind: ("endpoints", "third_parties", kind, "backup"),
                   where=where, stores=stores)

    @classmethod
    def of_drill(cls, drill: "Drill", time_scale: float, where: Where = lambda _: None) -> "Basis":
        """From the drill's own stack: the plan's default bound on a standby's lag plus the delay
        the drill's lag knob puts on the replication links on purpose (the remote DR gets twice
        the same-city delay, Stack.apply_replication_lag), real seconds at the drill's scale."""
        repl = drill.stack.replication
        return cls(max_lag=StandbyPlan().max_lag + 2 * repl.lag / time_scale,
                   remote_dr=drill.stack.remote_dr, sync=repl.mode == "sync",
                   backups=drill.stack.backups, restore_within=DEFAULT_RESTORE_WITHIN,
                   address_field=lambda kind: tuple(drill.stack.backup_address_field(kind).split(".")),
                   where=where, document="drill")


class _Dsn:
    """A database reached by its DSN, with the one method `replication_status` asks of a node."""

    def __init__(self, dsn: str):
        self.dsn = dsn

    def query(self, query: str, params: Any = None) -> list[tuple]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()


def _timed(name: str, title: str, run: Callable[[], tuple[list[Finding], dict]]) -> CheckResult:
    t0 = time.monotonic()
    findings, evidence = run()
    return CheckResult(name, title, "live", findings, evidence, time.monotonic() - t0)


# --- backup interfaces and the backup line -----------------------------------------------------------

def _verify_route(ctx: ActionContext, route: str, basis: Basis) -> tuple[Finding | None, dict[str, Any]]:
    """Switch `route` to its backup and walk a test call through it, as the runbook would, then put
    the route back as it was. A finding on an address the checked file configured points at the
    line that sets it."""
    params = VerifiedSwitchParams.model_validate({route: "backup", "attempts": 1})
    component = "egress-backup" if route == "egress" else topology.interface(route, "backup")
    before = _routes_now(ctx, ctx.stack.http).get(route, "primary")
    try:
        detail = ACTIONS["switch_and_verify"].run(ctx, params)
    except ActionFailed as e:
        event = next((e for e in reversed(ctx.journal.events) if e.get("type") == "route.verified"), {})
        culprit = event.get("culprit") or {}
        evidence = {"route": route, "component": component, "ok": False,
                    "address": culprit.get("address"), "what": culprit.get("what"),
                    "culprit": culprit, "found": event.get("found")}
        configured = route != "egress" and ctx.stack.config.backup_address(route)
        at, fix = None, event.get("corrective_action") or ""
        if configured and culprit.get("address") == configured:
            field = basis.address_field(route)
            at = basis.where(field)
            fix = f"correct {'.'.join(field)} ({configured}) in the {basis.document} and check again"
        _route_back(ctx, {route: before})  # the switch rolls back itself; a rollback may fail
        said = str(e)  # the action's message names the interface itself when it is the culprit
        if not said.startswith(topology.describe(component)):
            said = f"{topology.describe(component)}: {said}"
        return Finding("interfaces", "critical", said, at, evidence, fix), evidence
    _route_back(ctx, {route: before})  # the check leaves production as it found it
    test = detail.get("test_message") or detail.get("test_payment") or {}
    return None, {"route": route, "component": component, "ok": True,
                  "address": (detail.get("addresses") or {}).get(route), "ms": test.get("ms")}


def _route_back(ctx: ActionContext, before: dict[str, str]) -> None:
    """Routes as they were in `before`: only those that differ now are switched back."""
    now = _routes_now(ctx, ctx.stack.http)
    changed = {k: v for k, v in before.items() if now.get(k) != v}
    if changed:
        ctx.stack.post_apps("/admin/route", changed)


def interfaces(ctx: ActionContext, basis: Basis) -> tuple[list[Finding], dict]:
    findings, seen = [], {}
    for route in (*topology.THIRD_PARTY_KINDS, "egress"):
        found, evidence = _verify_route(ctx, route, basis)
        seen[route] = evidence
        if found is not None:
            findings.append(found)
    return findings, {"routes": seen}


# --- standbys ----------------------------------------------------------------------------------------

def standbys(stack: Stack, basis: Basis) -> tuple[list[Finding], dict]:
    """Each standby streams and replays a fresh WAL record within the bound; in sync mode, one of
    them acknowledges commits."""
    bound = basis.max_lag
    primary = stack.current_primary()
    names = [n.name for n in topology.DB_NODES if stack.db_role(n.name) == "standby"]
    expected = ["pg-samecity"] + (["pg-remote"] if basis.remote_dr else [])
    findings: list[Finding] = []
    seen: dict[str, Any] = {}
    for name in expected:
        if name not in names:
            findings.append(Finding("standbys", "critical", f"{name} is not running as a standby",
                                    evidence={"standby": name, "role": stack.db_role(name)}))
    if primary is None:
        return findings + [Finding("standbys", "critical", "no database primary is serving")], seen
    source = _Dsn(stack.db_dsn(primary, "postgres"))
    streaming = {r.app_name: r for r in replication_status(source)}
    lsn = source.query("SELECT pg_logical_emit_message(false, 'audit', %s)::text", (LAG_MARK,))[0][0]
    t0 = time.monotonic()
    for name in names:
        wrong = standby_state(stack.db_dsn(name, "postgres"))
        row = streaming.get(name)
        lag = None if wrong else _replayed_within(stack.db_dsn(name, "postgres"), lsn, t0, bound)
        seen[name] = {"state": wrong or "streaming", "sync_state": row.sync_state if row else None,
                      "replay_lag_bytes": row.replay_lag_bytes if row else None,
                      "lag_seconds": None if lag is None else round(lag, 3), "max_lag": round(bound, 3)}
        if wrong:
            findings.append(Finding("standbys", "critical", f"{name} does not stream: {wrong}",
                                    evidence={"standby": name, **seen[name]}))
        elif lag is None:
            findings.append(Finding("standbys", "high", f"{name} had not replayed a fresh WAL record "
                                    f"after {format_duration(bound)} (the {basis.document}'s bound)",
                                    evidence={"standby": name, **seen[name]},
                                    fix="find what holds replication back (the link, the standby's "
                                        "disk) before a failover has to rely on it"))
    if basis.sync and not any(r.sync_state == "sync" for r in streaming.values()):
        findings.append(Finding("standbys", "high", "replication is configured synchronous but no "
                                "standby acknowledges commits: a failover may lose acknowledged writes",
                                evidence={"sync_states": {n: r.sync_state for n, r in streaming.items()}},
                                fix="name the same-city standby in synchronous_standby_names"))
    return findings, {"primary": primary, "standbys": seen, "mark_lsn": lsn}


def _replayed_within(dsn: str, lsn: str, t0: float, bound: float) -> float | None:
    """Real seconds from `t0` until the standby has replayed past `lsn`; None past `bound`."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
        while True:
            done = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]
            waited = time.monotonic() - t0
            if done:
                return waited
            if waited > bound:
                return None
            time.sleep(0.01)


# --- backups and restore -----------------------------------------------------------------------------

def backups(stack: Stack, journal: Journal, b: "BackupPlan",
            stores: dict[str, Path] | None = None) -> tuple[list[Finding], dict]:
    """A full and (when the schedule has incrementals) an incremental on it, taken by the schedule,
    then put in every store."""
    want = 2 if b.incremental_every else 1
    # the schedule's declared times compressed so that its next backup is due BACKUP_TICK later
    clock = DrillClock((b.incremental_every or b.full_every) / BACKUP_TICK)
    clock.start()
    schedule = BackupSchedule(stack, journal, clock, b.model_copy(update={"full": 0.0}))
    schedule.start()
    try:
        deadline = time.monotonic() + 60.0 * want
        while len(schedule.taken) + schedule.failed < want and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        schedule.stop()
    findings: list[Finding] = []
    taken = [{"label": t.label, "kind": t.kind, "seconds": round(t.backup.seconds, 3),
              "size": t.backup.size_bytes, "offline": t.offline is not None} for t in schedule.taken]
    for e in journal.events:
        if e.get("type") == "backup.failed":
            findings.append(Finding(TAKEN, "critical", f"the {e['kind']} backup failed: {e['error']}",
                                    evidence={"label": e["label"], "error": e["error"]}))
        elif e.get("type") == "backup.copy_failed":
            findings.append(Finding(TAKEN, "high", f"backup {e['label']}: the offline copy failed",
                                    evidence={"label": e["label"], "error": e["error"]}))
    kinds = {t["kind"] for t in taken}
    for kind, every in (("full", b.full_every), ("incremental", b.incremental_every)):
        if every is None:
            continue
        if kind not in kinds and not findings:
            findings.append(Finding(TAKEN, "critical", f"no {kind} backup could be taken",
                                    evidence={"taken": taken}))
        slow = [t for t in taken if t["kind"] == kind and t["seconds"] > every]
        for t in slow:  # a backup longer than its interval: the next one is late every time
            findings.append(Finding(TAKEN, "high", f"the {kind} backup took "
                                    f"{format_duration(t['seconds'])}, longer than its interval "
                                    f"{format_duration(every)}", evidence=t))
    for t, row in zip(schedule.taken, taken):
        try:
            row["stored"] = {k: str(v) for k, v in
                             backup_stores.deposit(t.path(), t.label, stores or {}).items()}
        except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            findings.append(Finding(TAKEN, "high", f"backup {t.label} could not be put in the "
                                    f"stores: {e}", evidence={"label": t.label}))
    return findings, {"taken": taken, "schedule": {"full_every": b.full_every,
                                                   "incremental_every": b.incremental_every}}


def stored(basis: Basis, now: datetime | None = None) -> tuple[list[Finding], dict]:
    """The hospital's existing backups in the plan's stores, judged against its schedule."""
    schedule = basis.backups if isinstance(basis.backups, PlanBackups) else PlanBackups()
    return backup_stores.judge(schedule, basis.stores or {}, now or datetime.now(timezone.utc),
                               basis.where(("backups",)))


def restore_within(plan: Plan) -> float:
    """The plan's bound on a restore from the backups: the target on its restore step, else 30 min."""
    for fc in plan.failure_classes:
        restores = {s.id for s in fc.runbook if s.action == "restore_from_backup"}
        for t in fc.targets:
            if t.measure == "step" and t.step in restores and t.within is not None:
                return t.within
    return DEFAULT_RESTORE_WITHIN


def newest_chain(stores: dict[str, Path]) -> list[backup_stores.StoredBackup]:
    """The newest restorable chain in the stores, from the first store (local disk first) that
    has one; [] when none has."""
    found = backup_stores.scan(stores)
    for store in stores:
        for last in sorted((b for b in found if b.store == store), key=lambda b: b.started,
                           reverse=True):
            chain = backup_stores.chain_of(last, found)
            if chain:
                return chain
    return []


def _fetch(chain: list[backup_stores.StoredBackup], into: Path) -> list[Backup]:
    """The chain copied from its store to where the database's own user can read it, as backups."""
    into.mkdir(mode=0o755, parents=True, exist_ok=True)
    fetched: list[Backup] = []
    for b in chain:
        dest = into / b.name
        if not dest.exists():
            subprocess.run(["cp", "-a", str(b.path), str(dest)], check=True, capture_output=True,
                           timeout=300)
        fetched.append(Backup(dest, b.kind, fetched[-1].path if fetched else None, 0.0,
                              tree_size(dest), b.started.timestamp()))
    return fetched


def restore(stack: Stack, within: float, stores: dict[str, Path]) -> tuple[list[Finding], dict]:
    """The newest chain in the stores fetched and restored into a scratch node, timed (it answers
    queries when done)."""
    chain = newest_chain(stores)
    if not chain:
        return [Finding("restore", "critical", "no backup chain in the stores to restore",
                        evidence={"stores": {s: str(p) for s, p in stores.items()}})], {}
    described = [{"label": b.name, "kind": b.kind, "store": b.store, "path": str(b.path)}
                 for b in chain]
    t0 = time.monotonic()
    try:
        fetched = _fetch(chain, Path(getattr(stack, "state_dir", stack.run_dir)) / "backups" / "fetched")
        node = stack.restore_db(fetched, name="pg-audit-restore")
    except Exception as e:
        return [Finding("restore", "critical", f"the restore failed: {e.__class__.__name__}: "
                        f"{str(e)[-300:]}", evidence={"chain": described})], {}
    seconds = time.monotonic() - t0
    evidence = {"chain": described, "node": node, "seconds": round(seconds, 3), "within": within}
    if seconds > within:
        return [Finding("restore", "critical", f"the restore took {format_duration(seconds)}, the "
                        f"plan allows {format_duration(within)}", evidence=evidence)], evidence
    return [], evidence


# --- the whole live part -----------------------------------------------------------------------------

LIVE_CHECKS = {
    "interfaces": "each backup interface and the backup line answer a test call",
    "standbys": "standbys stream with lag under the plan's bound",
    TAKEN: "a full and an incremental backup taken now in time, and put in every store",
    "backups": "the newest full and incremental backups in the stores are as fresh as the schedule "
               "allows, chained, and in every store",
    "restore": "a timed restore of the newest chain in the stores into a scratch instance",
}


def _no_stores(basis: Basis) -> str | None:
    """Why there are no backups to judge, if there are none."""
    if basis.backups is None:
        return f"the {basis.document} has no backup schedule"
    if basis.stores is None:
        return f"the {basis.document} keeps no backup stores"
    return None


def without_stack(basis: Basis) -> list[CheckResult]:
    """`audit --static`: of the live checks, the one that needs no stack (the backups in the stores,
    read where they lie); the others are skipped."""
    why = _no_stores(basis)
    return [_timed(name, title, lambda: stored(basis)) if name == "backups" and why is None else
            CheckResult(name, title, "live", skipped=why if name == "backups" else
                        "static audit only (--static)")
            for name, title in LIVE_CHECKS.items()]


def check_stack(stack: Stack, journal: Journal, out: RunDir, basis: Basis, *,
                skip_backups: str | None = None, take_backups: bool = False,
                test_restore: bool = False) -> list[CheckResult]:
    """The live checks against a stack that is up and has no fault: each backup interface and the
    backup line, the standbys, then (unless `skip_backups` says why not) the backups: taken now
    and put in the stores when asked, those in the stores judged, and, asked, the newest chain
    restored. What a check switches it puts back; it journals as the runbook would."""
    clock = DrillClock(ROUTE_SCALE)
    clock.start()
    ctx = ActionContext(stack, journal, None, None, ROUTE_SCALE,  # type: ignore[arg-type]
                        lane=clock.lane("audit"), stop=threading.Event(), run_dir=out, step="audit")
    routes = _routes_now(ctx, stack.http)
    try:
        results = [_timed("interfaces", LIVE_CHECKS["interfaces"], lambda: interfaces(ctx, basis)),
                   _timed("standbys", LIVE_CHECKS["standbys"], lambda: standbys(stack, basis))]
    finally:  # whatever broke a check, no route stays switched
        _route_back(ctx, routes)
    skip_backups = skip_backups or _no_stores(basis)
    stores = basis.stores or {}
    checks: list[tuple[str, Callable[[], tuple[list[Finding], dict]] | None, str]] = [
        (TAKEN, (lambda: backups(stack, journal, basis.backups, stores)) if take_backups else None,
         "not asked (--take-backups)"),
        ("backups", lambda: stored(basis), ""),
        ("restore", (lambda: restore(stack, basis.restore_within, stores)) if test_restore else None,
         "not asked (--restore)")]
    for name, run, why_not in checks:
        if skip_backups is None and run is not None:
            results.append(_timed(name, LIVE_CHECKS[name], run))
        else:
            results.append(CheckResult(name, LIVE_CHECKS[name], "live",
                                       skipped=skip_backups if skip_backups is not None else why_not))
    return results


def run_live(plan: Plan, out: RunDir, journal: Journal, *, where: Where = lambda _: None,
             backend: str = "local",
             toxiproxy_url: str | None = None, backups_checked: bool = True,
             take_backups: bool = False, test_restore: bool = False,
             stores: dict[str, Path] | None = None, say: Say = lambda _: None) -> list[CheckResult]:
    """Bring the plan's stack up with no fault, run the live checks, take it down (always)."""
    with plan_stack(plan, out, journal, backend, toxiproxy_url, say) as (stack, bring_up):
        results = check_stack(stack, journal, out, Basis.of_plan(plan, where, stores or {}),
                              skip_backups=None if backups_checked else "not asked (--no-backups)",
                              take_backups=take_backups, test_restore=test_restore)
    results[0].evidence["bring_up_seconds"] = round(bring_up, 2)
    return results


@contextmanager
def plan_stack(plan: Plan, out: RunDir, journal: Journal, backend: str = "local",
               toxiproxy_url: str | None = None, say: Say = lambda _: None
               ) -> Iterator[tuple[Stack, float]]:
    """The plan's stack up with no fault (and its bring-up time, real s); down on every exit path."""
    t0 = time.monotonic()
    say(f"bringing up the plan's stack ({backend} backend)")
    stack = backends.get(backend).up(out.path, plan.stack_config(), ROUTE_SCALE,
                                     toxiproxy_url=toxiproxy_url)
    with stack:
        stack.wait_entry(30)
        bring_up = time.monotonic() - t0
        journal.record("stack.up", seconds=round(bring_up, 2), services=dict(stack.addresses),
                       links=dict(stack.link_listen))
        say(f"stack up in {bring_up:.1f}s")
        yield stack, bring_up


def bring_up_seconds(results: list[CheckResult]) -> float | None:
    return next((r.evidence.get("bring_up_seconds") for r in results if r.name == "interfaces"), None)

