"""Database data faults (accidental deletion, 误操作).

`data_deletion` is an operator's mistake made through the database itself: a clean-up meant for the
test account's consultations runs without its patient filter, so a real
`DELETE FROM consultations WHERE created_at >= current_date` (or every row, with `scope: all`) hits
the serving primary, deleting the rows that reference them first (prescriptions), as the clean-up
script does. The standbys replicate the deletion within the second: only a backup has the rows.

What patients get changes: reading a deleted consultation's doctor reply answers 404. The fault
checks that through the patient entry point and says so in its detail, with the rows deleted.

Nothing can be reverted by the harness: the data comes back only by the runbook's restore
(`restore_from_backup`), which is what the drill measures.
"""
from __future__ import annotations

import time
from typing import Literal

import psycopg
import requests
from pydantic import BaseModel, ConfigDict

from .base import Fault, register

# table -> (table, column) rows that reference it and must go first (foreign keys without cascade)
DEPENDENTS = {"consultations": [("prescriptions", "consultation_id")]}


class DeletionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    table: Literal["consultations", "appointments", "prescriptions", "exam_bookings",
                   "payments"] = "consultations"
    scope: Literal["today", "all"] = "today"  # today: WHERE created_at >= current_date


@register
class DataDeletion(Fault):
    type_name = "data_deletion"
    description = "an operator's DELETE of today's patient records on the primary (误操作)"
    Params = DeletionParams
    target_kinds = ("postgres",)
    default_target = "pg-primary"
    loses_data = True

    def inject(self, stack):
        p = self.params
        # the mistake is made on whichever server is the primary: that is where writes go
        node = self.target if stack.db_role(self.target) == "primary" else stack.current_primary()
        if node is None:
            raise RuntimeError("no database primary to delete from")
        where = "created_at >= current_date" if p.scope == "today" else "true"
        deleted: dict[str, int] = {}
        t0 = time.monotonic()
        with psycopg.connect(stack.db_dsn(node), autocommit=False) as conn:
            with conn.transaction():
                conn.execute("SET LOCAL lock_timeout = '5s'")
                # writes wait the few milliseconds this takes, so no new prescription can slip in
                # between the two deletions and fail the second on its foreign key
                tables = [p.table] + [t for t, _ in DEPENDENTS.get(p.table, [])]
                conn.execute(f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE")
                for dep, col in DEPENDENTS.get(p.table, []):
                    cur = conn.execute(f"DELETE FROM {dep} WHERE {col} IN "
                                       f"(SELECT id FROM {p.table} WHERE {where})")
                    deleted[dep] = cur.rowcount
                rows = conn.execute(f"DELETE FROM {p.table} WHERE {where} "
                                    f"RETURNING id, patient_id").fetchall()
                deleted[p.table] = len(rows)
        committed_s = time.monotonic() - t0
        self.injected = True
        sql = f"DELETE FROM {p.table} WHERE {where}"
        detail = {"node": node, "statement": sql, "table": p.table, "scope": p.scope,
                  "rows_deleted": deleted[p.table], "deleted": deleted,
                  "committed_seconds": round(committed_s, 3),
                  "ids": [min(r[0] for r in rows), max(r[0] for r in rows)] if rows else None}
        if p.table == "consultations" and rows:
            detail["patient_view"] = _patient_reads(stack, rows[-3:])
        return detail

    def revert(self, stack):
        return {"reverted": False,
                "reason": "a deletion cannot be undone by the harness; the data is restored by the "
                          "runbook from the backups (restore_from_backup), or not at all"}


def _patient_reads(stack, rows) -> list[dict]:
    """Each patient reading the reply of a consultation just deleted, through the entry point."""
    out = []
    with requests.Session() as s:
        for cid, patient in rows:
            try:
                r = s.get(f"{stack.vip_url}/api/consultations/{cid}",
                          headers={"X-Patient-Id": patient}, timeout=2)
                out.append({"consultation": cid, "patient": patient, "status": r.status_code})
            except requests.RequestException as e:
                out.append({"consultation": cid, "patient": patient,
                            "error": e.__class__.__name__})
    return out
