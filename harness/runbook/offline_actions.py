"""Back-entry (补录): what offline reception took while the site was down, into the main database.

Each offline record lands once in `offline_entries`, keyed on its `offline_id`: a second run (after
one interrupted halfway, or by mistake) finds what already landed and refuses it as a duplicate. A
registration whose slot another patient holds by now is entered as a conflict for clinical review,
never dropped: losing it is the failure the plan's back-entry exists to prevent.
"""
from __future__ import annotations

import json
import time
from typing import Any

import psycopg
import requests
from pydantic import Field

from ..models import Duration
from ..stack import topology
from .actions import ActionContext, ActionFailed, Params, action

HTTP_TIMEOUT = 5.0


class BackEntryParams(Params):
    page: int = Field(500, ge=1, le=10000, description="offline records read and entered per batch")
    desk_closes: Duration = Field(120.0, description="declared wait before reading: the offline desk "
                                                    "closes once the banner is gone, so patients "
                                                    "already on their way there are served first")
    reach_within: Duration = Field(600.0, description="how long the clerk keeps trying to reach an "
                                                      "offline reception that is down (restarting)")


@action("back_entry", BackEntryParams,
        "enter every offline-reception record into the main database once, conflicts for review")
def back_entry(ctx: ActionContext, p: BackEntryParams) -> dict[str, Any]:
    stack = ctx.stack
    primary = stack.current_primary()
    if primary is None:
        raise ActionFailed("no database primary to enter the offline records into")
    if topology.OFFLINE.name not in stack.addresses:
        raise ActionFailed("this stack has no offline reception")
    if p.desk_closes > 0:
        ctx.lane.wait(p.desk_closes, ctx.stop)
    desk = stack.url(topology.OFFLINE.name)
    if not _reachable(desk) and not ctx.lane.poll(lambda: _reachable(desk), p.reach_within, ctx.stop):
        raise ActionFailed(f"offline reception at {desk} did not answer within "
                           f"{p.reach_within:g} drill s")
    t0 = time.monotonic()
    counts = {"read": 0, "entered": 0, "duplicates_refused": 0, "conflicts": 0}
    conflicts: list[dict[str, Any]] = []
    seen: list[str] = []
    since = 0
    try:
        with psycopg.connect(stack.db_dsn(primary)) as conn:
            while True:
                page = _read_page(desk, since, p.page)
                if not page:
                    break
                with conn.transaction():  # a batch lands whole or not at all
                    for rec in page:
                        outcome, why = enter(conn, rec)
                        counts[outcome] += 1
                        if outcome == "conflicts":
                            conflicts.append({"offline_id": rec["offline_id"],
                                              "patient": rec["patient_id"], "why": why})
                counts["read"] += len(page)
                seen += [r["offline_id"] for r in page]
                since = page[-1]["seq"]
            landed = _landed(conn, seen)
    except psycopg.Error as e:
        raise ActionFailed(f"entering offline records into {primary}: {e}") from e
    except requests.RequestException as e:
        raise ActionFailed(f"reading offline reception: {e.__class__.__name__}: {e}") from e
    seconds = time.monotonic() - t0
    detail = {**counts, "in_main_db": len(landed), "lost": len(set(seen) - landed),
              "landed_ids": sorted(landed), "conflict_list": conflicts[:50], "into": primary,
              "seconds": round(seconds, 3)}
    ctx.record("offline.back_entered", **detail)
    return {k: v for k, v in detail.items() if k != "landed_ids"}


def _reachable(base_url: str) -> bool:
    try:
        return requests.get(f"{base_url}/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _read_page(base_url: str, since: int, limit: int) -> list[dict[str, Any]]:
    r = requests.get(f"{base_url}/records", params={"since": since, "limit": limit},
                     timeout=HTTP_TIMEOUT)
    r.raise_for_status()
    return r.json()["records"]


def enter(conn: psycopg.Connection, rec: dict[str, Any]) -> tuple[str, str | None]:
    """One offline record into `offline_entries`: (outcome, why) with outcome entered,
    duplicates_refused (already there, the same record) or conflicts (held for clinical review)."""
    detail = json.dumps(rec["detail"], sort_keys=True, ensure_ascii=False)
    why = _slot_taken(conn, rec) if rec["kind"] == "registration" else None
    row = conn.execute(
        "INSERT INTO offline_entries (offline_id, patient_id, kind, detail, taken_at, status, conflict) "
        "VALUES (%s, %s, %s, %s::jsonb, to_timestamp(%s), %s, %s) "
        "ON CONFLICT (offline_id) DO NOTHING RETURNING id",
        (rec["offline_id"], rec["patient_id"], rec["kind"], detail, rec["taken_at"],
         "conflict" if why else "entered", why)).fetchone()
    if row is not None:
        return ("conflicts", why) if why else ("entered", None)
    held = conn.execute("SELECT patient_id, kind, detail = %s::jsonb FROM offline_entries "
                        "WHERE offline_id = %s", (detail, rec["offline_id"])).fetchone()
    if held == (rec["patient_id"], rec["kind"], True):
        return "duplicates_refused", None
    return "conflicts", f"offline_id {rec['offline_id']} already entered with another record"


def _slot_taken(conn: psycopg.Connection, rec: dict[str, Any]) -> str | None:
    """Why a registration cannot simply be entered: its slot is held by another patient."""
    need = (rec.get("detail") or {}).get("need") or {}
    if not need.get("slot"):
        return None
    other = conn.execute(
        "SELECT patient_id FROM offline_entries WHERE kind = 'registration' AND status = 'entered' "
        "AND detail->'need'->>'department' = %s AND detail->'need'->>'slot' = %s "
        "AND patient_id <> %s AND offline_id <> %s LIMIT 1",
        (need.get("department"), need["slot"], rec["patient_id"], rec["offline_id"])).fetchone()
    return f"slot {need.get('department')} {need['slot']} held by {other[0]}" if other else None


def _landed(conn: psycopg.Connection, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    rows = conn.execute("SELECT offline_id FROM offline_entries WHERE offline_id = ANY(%s)",
                        (ids,)).fetchall()
    return {r[0] for r in rows}
