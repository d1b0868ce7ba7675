"""Faults on offline reception and back-entry (补录): the part of the plan that loses data in real
hospitals when it goes wrong.

- `offline_service_kill`: the offline desk's server dies mid-outage (SIGKILL). What it gave a receipt
  for is in its fsynced store; a restart (the revert, or the runbook) carries on from there.
- `back_entry_interrupt`: the clerk's back-entry is cut off half-way: its database session is
  terminated with part of the records committed. The runbook's back-entry must make a new pass
  that enters the rest and refuses what landed, so that nothing lands twice.
"""
from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import requests
from pydantic import BaseModel, ConfigDict, Field

from ..runbook.offline_actions import APPLICATION_NAME
from ..stack import topology
from .base import Fault, register
from .services import ServiceKill

POLL_REAL = 0.05  # the watcher's look at the database: a machine's pace, not a declared wait
HTTP_TIMEOUT = 2.0


def _desk_records(stack) -> int | None:
    """How many records the desk holds, by its own health answer; None when it does not answer."""
    try:
        r = requests.get(f"{stack.url(topology.OFFLINE.name)}/health", timeout=HTTP_TIMEOUT)
        return int(r.json()["records"]) if r.status_code == 200 else None
    except (requests.RequestException, ValueError, KeyError):
        return None


@register
class OfflineServiceKill(ServiceKill):
    type_name = "offline_service_kill"
    description = ("offline reception's server dies mid-outage (SIGKILL); the revert starts it again "
                   "on the same store and checks the records it held are still there")
    target_kinds = ("offline",)
    default_target = topology.OFFLINE.name

    def inject(self, stack):
        self.held = _desk_records(stack)
        return {**super().inject(stack), "records_before": self.held}

    def revert(self, stack):
        detail = super().revert(stack)
        after = _desk_records(stack)
        held = getattr(self, "held", None)
        return {**detail, "records_before": held, "records_after": after,
                "kept": None if held is None or after is None else after >= held}


class InterruptParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at_share: float = Field(0.5, gt=0, lt=1, description="where in the desk's records the cut lands: "
                                                          "the share of them committed before it")


@register
class BackEntryInterrupt(Fault):
    """Armed at its scenario time; cuts the first back-entry pass that reaches the chosen record.

    To land the cut at the same point on any machine, the watcher holds that record's key in an
    open transaction of its own (after the takeover, on whatever primary serves): the back-entry's
    insert of it waits there, the batches before it committed. The watcher then terminates the
    back-entry's session (`pg_terminate_backend`) and rolls its own transaction back. Until a
    back-entry starts it moves the held key as new records reach the desk.
    """
    type_name = "back_entry_interrupt"
    description = ("back-entry cut off half-way: its database session is terminated with part of "
                   "the offline records committed; a new pass must not enter any twice")
    Params = InterruptParams

    def inject(self, stack):
        self._stop = threading.Event()
        self.cut: dict[str, Any] | None = None
        self.problem: str | None = None
        self.holding: str | None = None  # the offline id whose key the watcher holds now
        self._watcher = threading.Thread(target=self._watch, args=(stack,), daemon=True,
                                         name=f"fault-{self.id}")
        self._watcher.start()
        self.injected = True
        return {"armed": True, "at_share": self.params.at_share,
                "session": APPLICATION_NAME}

    def revert(self, stack):
        self._stop.set()
        self._watcher.join(timeout=10)
        out: dict[str, Any] = {"cut": self.cut, "problem": self.problem}
        if self.cut is None and self.problem is None:
            out["problem"] = "no back-entry pass reached the held record before the revert"
        primary = stack.current_primary()
        try:
            with psycopg.connect(stack.db_dsn(primary), autocommit=True) as conn:
                rows, ids = conn.execute("SELECT count(*), count(DISTINCT offline_id) "
                                         "FROM offline_entries").fetchone()
            out.update(entries=rows, distinct_offline_ids=ids, duplicates=rows - ids)
        except (psycopg.Error, KeyError, TypeError) as e:
            out["count_error"] = f"{e.__class__.__name__}: {e}"
        return out

    # --- the watcher ------------------------------------------------------------------------------
    def _watch(self, stack) -> None:
        try:
            self._hold_and_cut(stack)
        except Exception as e:  # noqa: BLE001 - reported by the revert, never lost
            self.problem = f"{e.__class__.__name__}: {e}"

    def _hold_and_cut(self, stack) -> None:
        hold: psycopg.Connection | None = None
        held: tuple[str, int, int] | None = None  # (offline id, its position, the desk's count)
        self._look: tuple[str, psycopg.Connection] | None = None
        try:
            while not self._stop.is_set():
                if held is None or not self._back_entry_started(stack):
                    hold, held = self._hold_middle(stack, hold, held)
                    self.holding = held[0] if held else None
                if held is not None:
                    blocked = self._blocked_session(stack)
                    if blocked is not None:
                        self._terminate(stack, blocked, held)
                        return
                self._stop.wait(POLL_REAL)
        finally:
            if hold is not None:
                hold.close()  # an open transaction closed is rolled back: the held key is released
            if self._look is not None:
                self._look[1].close()

    def _hold_middle(self, stack, hold, held):
        """Hold the key of the record at `at_share` of what the desk has now (again when it grew)."""
        primary = stack.current_primary()
        n = _desk_records(stack)
        if primary is None or not n or (held is not None and held[2] == n):
            return hold, held
        position = max(1, min(n - 1, int(n * self.params.at_share))) if n > 1 else 1
        try:
            r = requests.get(f"{stack.url(topology.OFFLINE.name)}/records",
                             params={"since": 0, "limit": position}, timeout=HTTP_TIMEOUT)
            rec = r.json()["records"][-1]
        except (requests.RequestException, ValueError, KeyError, IndexError):
            return hold, held
        try:
            if hold is not None:
                hold.rollback()
            else:
                hold = psycopg.connect(stack.db_dsn(primary), application_name="drill-fault-hold")
            hold.execute("INSERT INTO offline_entries (offline_id, patient_id, kind, detail, taken_at) "
                         "VALUES (%s, %s, %s, '{}'::jsonb, now())",
                         (rec["offline_id"], rec["patient_id"], rec["kind"]))
        except psycopg.Error:  # not serving yet (the outage), or it already landed
            if hold is not None:
                hold.close()
            return None, None
        return hold, (rec["offline_id"], position, n)

    def _sessions(self, stack, where: str) -> list[tuple]:
        """Back-entry sessions on the serving primary, through one connection kept open."""
        primary = stack.current_primary()
        if primary is None:
            return []
        try:
            if self._look is None or self._look[0] != primary or self._look[1].closed:
                if self._look is not None:
                    self._look[1].close()
                self._look = (primary, psycopg.connect(stack.db_dsn(primary), autocommit=True))
            return self._look[1].execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                                         + where, (APPLICATION_NAME,)).fetchall()
        except psycopg.Error:
            if self._look is not None:
                self._look[1].close()
            self._look = None
            return []

    def _back_entry_started(self, stack) -> bool:
        return bool(self._sessions(stack, ""))

    def _blocked_session(self, stack) -> int | None:
        """The back-entry session waiting on the held key, if one is."""
        rows = self._sessions(stack, "AND wait_event_type = 'Lock'")
        return rows[0][0] if rows else None

    def _terminate(self, stack, pid: int, held: tuple[str, int, int]) -> None:
        with psycopg.connect(stack.db_dsn(stack.current_primary()), autocommit=True) as conn:
            committed = conn.execute("SELECT count(*) FROM offline_entries").fetchone()[0]
            done = conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        self.cut = {"held_offline_id": held[0], "position": held[1], "desk_records": held[2],
                    "committed_before_cut": committed, "terminated_pid": pid, "terminated": done,
                    "wall": round(time.time(), 3)}
