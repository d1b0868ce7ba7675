"""Back-entry (补录): what offline reception took while the site was down, into the main database.

Each offline record lands once in `offline_entries`, keyed on its `offline_id`: a second run (after
one interrupted halfway, or by mistake) finds what already landed and refuses it as a duplicate. A
registration whose slot another patient holds by now is entered as a conflict for clinical review,
never dropped: losing it is the failure the plan's back-entry exists to prevent.

A pass cut off mid-way (its database session killed, the desk gone) keeps the batches it committed;
the clerk logs in again and makes a new pass from the first record (`attempts`), which refuses what
landed and enters the rest. Each cut is journalled (`offline.back_entry_interrupted`).
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
APPLICATION_NAME = "hospital-back-entry"  # how the clerk's session shows in pg_stat_activity


class BackEntryParams(Params):
    page: int = Field(500, ge=1, le=10000, description="offline records read and entered per batch")
    desk_closes: Duration = Field(120.0, description="declared wait before reading: the offline desk "
                                                    "closes once the banner is gone, so patients "
                                                    "already on their way there are served first")
    reach_within: Duration = Field(600.0, description="how long the clerk keeps trying to reach an "
                                                      "offline reception that is down (restarting)")
    attempts: int = Field(3, ge=1, le=10, description="passes the clerk makes when one is cut off "
                                                      "(the database session or the desk lost)")
    retry_after: Duration = Field(30.0, description="declared wait before entering again after a "
                                                    "pass was cut off: logging in again")


class _Tally:
    """What one back-entry run did, counted per committed batch: a batch cut off mid-way rolled
    back and is not counted."""

    def __init__(self) -> None:
        self.counts = {"read": 0, "entered": 0, "duplicates_refused": 0, "conflicts": 0}
        self.conflicts: list[dict[str, Any]] = []
        self.seen: list[str] = []  # offline ids read by the last pass

    def add(self, page: list[dict[str, Any]], outcomes: list[tuple[str, str | None]]) -> None:
        for rec, (outcome, why) in zip(page, outcomes):
            self.counts[outcome] += 1
            if outcome == "conflicts":
                self.conflicts.append({"offline_id": rec["offline_id"], "patient": rec["patient_id"],
                                       "why": why})


@action("back_entry", BackEntryParams,
        "enter every offline-reception record into the main database once, conflicts for review")
def back_entry(ctx: ActionContext, p: BackEntryParams) -> dict[str, Any]:
    stack = ctx.stack
    if stack.current_primary() is None:
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
    tally = _Tally()
    for attempt in range(1, p.attempts + 1):
        primary = stack.current_primary() or "?"
        try:
            landed, rows = _one_pass(stack.db_dsn(primary), desk, p.page, tally)
            break
        except (psycopg.OperationalError, requests.ConnectionError) as e:
            # the session or the desk was lost mid-way: what committed stays, the next pass
            # refuses it as duplicates and enters the rest
            error = f"{e.__class__.__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            if attempt == p.attempts:
                raise ActionFailed(f"back-entry cut off {attempt} times, last: {error}") from e
            ctx.record("offline.back_entry_interrupted", attempt=attempt, error=error, into=primary,
                       committed={k: v for k, v in tally.counts.items() if k != "read"})
            _pause(ctx, p.retry_after)
        except psycopg.Error as e:
            raise ActionFailed(f"entering offline records into {primary}: {e}") from e
        except requests.RequestException as e:
            raise ActionFailed(f"reading offline reception: {e.__class__.__name__}: {e}") from e
    seconds = time.monotonic() - t0
    detail = {**tally.counts, "in_main_db": len(landed), "rows": rows,
              "lost": len(set(tally.seen) - landed), "landed_ids": sorted(landed),
              "conflict_list": tally.conflicts[:50], "into": primary, "attempts": attempt,
              "seconds": round(seconds, 3)}
    ctx.record("offline.back_entered", **detail)
    return {k: v for k, v in detail.items() if k != "landed_ids"}


def _one_pass(dsn: str, desk: str, page_size: int, tally: _Tally) -> tuple[set[str], int]:
    """Read the desk from its first record and enter each; (ids the main DB holds, their rows)."""
    tally.seen, since = [], 0
    with psycopg.connect(dsn, application_name=APPLICATION_NAME) as conn:
        while True:
            page = _read_page(desk, since, page_size)
            if not page:
                break
            with conn.transaction():  # a batch lands whole or not at all
                outcomes = [enter(conn, rec) for rec in page]
            tally.add(page, outcomes)
            tally.seen += [r["offline_id"] for r in page]
            tally.counts["read"] = len(tally.seen)
            since = page[-1]["seq"]
        return _landed(conn, tally.seen)


def _pause(ctx: ActionContext, drill_seconds: float) -> None:
    if ctx.lane is not None:
        ctx.lane.wait(drill_seconds, ctx.stop)
    else:  # outside a run (a test, the control surface): the same wait, unaccounted
        time.sleep(drill_seconds / ctx.time_scale)


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


def _landed(conn: psycopg.Connection, ids: list[str]) -> tuple[set[str], int]:
    """The ids the main database holds, and its rows for them: more rows than ids is a duplicate."""
    if not ids:
        return set(), 0
    rows = conn.execute("SELECT offline_id FROM offline_entries WHERE offline_id = ANY(%s)",
                        (ids,)).fetchall()
    return {r[0] for r in rows}, len(rows)
