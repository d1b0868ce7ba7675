"""Runbook actions for data faults: restore deleted patient records from the backups."""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Literal

import psycopg
import requests
from psycopg import sql
from pydantic import Field, field_validator

from ..stack.backups import chain_before, describe_chain
from ..stack.rpo import WRITE_TABLES
from .actions import ActionContext, ActionFailed, Params, action

# parents before the rows that reference them, so the copy satisfies every foreign key
_COPY_ORDER = ("appointments", "consultations", "prescriptions", "exam_bookings", "payments")


class RestoreParams(Params):
    tables: list[str] = Field(default_factory=lambda: ["consultations", "prescriptions"],
                              description="the tables whose deleted rows are copied back")
    source: Literal["local", "offline"] = Field("local", description="which copy of the backups")
    node: str = Field("pg-restore", description="name of the restored (staging) database node")

    @field_validator("tables")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if t not in WRITE_TABLES]
        if bad or not v:
            raise ValueError(f"tables must be some of {', '.join(WRITE_TABLES)}"
                             + (f" (not {bad[0]!r})" if bad else ""))
        return v


@action("restore_from_backup", RestoreParams,
        "restore the latest full + hourly incrementals and copy the deleted rows back to the primary")
def restore_from_backup(ctx: ActionContext, p: RestoreParams) -> dict[str, Any]:
    """Restore the newest backup chain taken before the data went missing (the daily full and its
    hourly incrementals, combined by `pg_combinebackup`) into a staging node `pg-restore`, then copy
    the rows it holds that the live primary lacks back into the live primary.

    Why copy back, not restore and switch: pointing the app's `db` link at the restored node would
    put the whole hospital back at the restore point, throwing away every consultation, payment and
    booking patients made since — after the deletion too, while the hospital kept serving. Copying
    the deleted rows back keeps all of that, loses only what was written between the last backup
    and the deletion (the RPO, counted from the patients' acknowledged writes and back-entered by
    clinical support), and never moves patients to another server. Ids come back as they were: the
    live sequences are already past them, so nothing written since can collide.

    The chain is picked by when the data was last seen intact (the monitor's reconciliation), or
    else when the incident began: a backup finished after the deletion already holds it.
    """
    stack = ctx.stack
    ledger = getattr(ctx.monitor, "ledger", None)
    cutoff = ((ledger.last_intact_wall if ledger is not None and ledger.first_missing_wall else None)
              or ctx.monitor.incident_start or time.time())
    chain = chain_before(stack.backups, cutoff)
    if not chain:
        raise ActionFailed(f"no backup finished before the data went missing "
                           f"({len(stack.backups)} taken in all)")
    primary = stack.current_primary()
    if primary is None:
        raise ActionFailed("no database primary to restore into")
    try:
        paths = [dataclasses.replace(b.backup, path=b.path(p.source)) for b in chain]
    except ValueError as e:
        raise ActionFailed(str(e)) from e

    t0 = time.monotonic()
    try:
        node = stack.restore_db(paths, name=p.node)
    except Exception as e:
        raise ActionFailed(f"restore of {', '.join(b.label for b in chain)}: "
                           f"{e.__class__.__name__}: {str(e)[-300:]}") from e
    restore_s = time.monotonic() - t0

    t1 = time.monotonic()
    try:
        copied, in_backup, live_after = copy_back(stack.db_dsn(node), stack.db_dsn(primary), p.tables)
    except psycopg.Error as e:
        raise ActionFailed(f"copying rows back from {node} to {primary}: {e}") from e
    copy_s = time.monotonic() - t1

    point = chain[-1].started_wall  # everything committed before this is in the chain
    detail = {
        "backups": describe_chain(chain), "source": p.source, "restored_node": node,
        "restored_address": stack.addresses.get(node),
        "restored_into": primary, "restore_point_wall": round(point, 6),
        "rows_in_backup": in_backup, "copied_back": copied, "live_after": live_after,
        "restore_seconds": round(restore_s, 3), "copy_seconds": round(copy_s, 3),
        "drill_seconds": round(restore_s + copy_s, 1),  # a machine's work: real time, at any scale
        "patient_view": _patient_read(stack, stack.db_dsn(primary)),
    }
    ctx.record("data.restored", **detail)
    return detail


def copy_back(src_dsn: str, dst_dsn: str, tables: list[str]) -> tuple[dict, dict, dict]:
    """Copy every row of `tables` that `src` holds and `dst` lacks into `dst`, in one transaction.

    Rows are matched on every unique key (id, write_id): what `dst` already has is left alone.
    Returns (rows copied, rows in src, rows in dst afterwards), per table.
    """
    order = [t for t in _COPY_ORDER if t in tables]
    copied, in_src, after = {}, {}, {}
    with psycopg.connect(src_dsn, autocommit=True) as src, psycopg.connect(dst_dsn) as dst:
        with dst.transaction():
            for table in order:
                name, tmp = sql.Identifier(table), sql.Identifier(f"restore_{table}")
                dst.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(tmp, name))
                with src.cursor().copy(sql.SQL("COPY {} TO STDOUT (FORMAT binary)").format(name)) as out, \
                        dst.cursor().copy(sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(tmp)) as into:
                    for block in out:
                        into.write(block)
                in_src[table] = dst.execute(sql.SQL("SELECT count(*) FROM {}").format(tmp)).fetchone()[0]
                cur = dst.execute(sql.SQL("INSERT INTO {} SELECT * FROM {} ON CONFLICT DO NOTHING")
                                  .format(name, tmp))
                copied[table] = cur.rowcount
            for table in order:
                after[table] = dst.execute(sql.SQL("SELECT count(*) FROM {}")
                                           .format(sql.Identifier(table))).fetchone()[0]
    return copied, in_src, after


def _patient_read(stack, dsn: str) -> dict[str, Any] | None:
    """A patient reading the reply of their oldest consultation of today, after the restore."""
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT id, patient_id FROM consultations WHERE patient_id <> 'T00001' "
                               "AND created_at >= current_date ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return None
        r = requests.get(f"{stack.vip_url}/api/consultations/{row[0]}",
                         headers={"X-Patient-Id": row[1]}, timeout=2)
        return {"consultation": row[0], "patient": row[1], "status": r.status_code}
    except (psycopg.Error, requests.RequestException) as e:
        return {"error": f"{e.__class__.__name__}: {str(e)[:120]}"}
