"""Counting lost data: acknowledged write ids that the serving database does not hold.

Measured after anything that can lose acknowledged writes, whatever the fault: a database crash, a
data-loss fault (what the restore could not bring back), or any successful promotion (what the
promoted standby had not received: a promotion during a slow but running primary loses writes too).
Which faults and actions those are, they declare themselves (`Fault.loses_data`,
`Fault.crashes_database`, `Action.promotes`): the journal names them, the registries answer.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import psycopg

from ..faults.base import FAULTS
from ..load.records import iter_records
from ..runbook.actions import ACTIONS

if TYPE_CHECKING:
    from ..models import Drill
    from .base import Stack

# every table a patient writes to carries the client-made write_id
WRITE_TABLES = ("appointments", "consultations", "prescriptions", "exam_bookings", "payments")


def missing_write_ids(dsn: str, write_ids: list[str]) -> set[str]:
    if not write_ids:
        return set()
    union = " UNION ALL ".join(f"SELECT write_id FROM {t} WHERE write_id = ANY(%(ids)s)"
                              for t in WRITE_TABLES)
    with psycopg.connect(dsn, autocommit=True) as conn:
        present = {row[0] for row in conn.execute(union, {"ids": write_ids})}
    return set(write_ids) - present


def promotions(events: Iterable[dict]) -> list[dict]:
    """The events of successful promotions of a database, in journal order: finished steps and
    scripts' moves (`control.move`, `hospital-drill ctl promote`) whose action declares it promotes
    (promote_standby), or whose detail names the node it promoted."""
    out = []
    for e in events:
        if e.get("type") not in ("step.finished", "control.move") or e.get("ok") is not True:
            continue
        detail = e.get("detail") if isinstance(e.get("detail"), dict) else {}
        if ACTIONS.declares(e.get("action"), "promotes") or detail.get("promoted"):
            out.append(e)
    return out


def rpo_trigger(events: Iterable[dict]) -> dict[str, Any] | None:
    """What calls for an RPO measurement: {trigger, wall, fault?, promoted?}, or None.

    A fault that loses data in place comes first (its loss is counted against the backups);
    otherwise the earliest of a fault that crashes a database (db_crash) and a promotion, whose
    wall time is where the lost window ends. The trigger is the fault's type, or "promotion"."""
    events = list(events)
    faults = [e for e in events if e.get("type") == "fault.injected" and _wall(e) is not None]
    loss = next((e for e in faults if FAULTS.declares(e.get("fault_type"), "loses_data")), None)
    if loss is not None:
        return {"trigger": str(loss["fault_type"]), "wall": _wall(loss), "fault": loss.get("fault")}
    crash = next((e for e in faults if FAULTS.declares(e.get("fault_type"), "crashes_database")), None)
    promo = next((e for e in promotions(events) if _wall(e) is not None), None)
    if crash is not None and (promo is None or _wall(crash) <= _wall(promo)):
        # the window of lost writes ends when the crashed host's links were down (data stopped)
        down = (crash.get("detail") or {}).get("links_down_wall") if isinstance(crash.get("detail"), dict) else None
        return {"trigger": str(crash["fault_type"]), "wall": down if isinstance(down, (int, float)) else _wall(crash),
                "fault": crash.get("fault")}
    if promo is not None:
        detail = promo.get("detail") if isinstance(promo.get("detail"), dict) else {}
        return {"trigger": "promotion", "wall": _wall(promo), "step": promo.get("step"),
                "promoted": detail.get("promoted")}
    return None


def rpo_fields(trigger: dict[str, Any], acked: dict[str, float], lost: set[str], *, mode: str,
               scale: float, lag: float | None, measured_on: str,
               owners: dict[str, Any] | None = None) -> dict[str, Any]:
    """The rpo.measured event's fields from the acknowledged writes (write id → acknowledgement
    wall time) and the ones missing. The lost window runs from the oldest lost write to the trigger
    (or to a lost write's own acknowledgement, when that came later: a write acknowledged while the
    kill was still landing counts up to itself)."""
    lost_acks = [acked[w] for w in lost if w in acked]
    end = max([trigger["wall"], *lost_acks])
    span = (end - min(lost_acks)) * scale if lost_acks else 0.0
    return {"mode": mode, "trigger": trigger["trigger"], "replication_lag": lag,
            "acked_writes": len(acked), "lost_writes": len(lost), "lost_sample": sorted(lost)[:20],
            "lost_seconds": round(max(span, 0.0), 3), "crash_wall": trigger["wall"],
            "measured_on": measured_on,
            # the patients to contact; the level rule counts them as affected (score/level.py)
            "lost_patients": sorted({str(owners[w]) for w in lost if (owners or {}).get(w)})[:10000]}


def measure_rpo(events: list[dict], stack: "Stack | None", records_dir: Path,
                drill: "Drill") -> dict[str, Any] | None:
    """Lost data = writes acknowledged to patients that the serving primary does not have; the
    fields of the `rpo.measured` event, or None when nothing happened that could lose data."""
    trigger = rpo_trigger(events)
    if trigger is None or stack is None:
        return None
    backup = "fault" in trigger and FAULTS.declares(trigger["trigger"], "loses_data")
    mode = "backup_restore" if backup else drill.stack.replication.mode
    started = next((e for e in events if e.get("type") == "run.started"), {})
    scale = started.get("time_scale")
    scale = float(scale) if isinstance(scale, (int, float)) and scale > 0 else drill.time_scale
    acked, owners = {}, {}
    for r in iter_records(records_dir):
        if r.get("ok") and r.get("write_id"):
            acked[r["write_id"]] = r["t"] + r.get("ms", 0) / 1000
            owners[r["write_id"]] = r.get("patient")
    primary = stack.current_primary()
    if primary is None:
        return {"mode": mode, "trigger": trigger["trigger"], "acked_writes": len(acked),
                "lost_writes": None, "crash_wall": trigger["wall"],
                "error": "no database primary serving at the end of the run"}
    lost = missing_write_ids(stack.db_dsn(primary), list(acked))
    return rpo_fields(trigger, acked, lost, mode=mode, scale=scale,
                      lag=None if backup else drill.stack.replication.lag, measured_on=primary,
                      owners=owners)


def _wall(e: dict | None) -> float | None:
    w = e.get("wall") if e else None
    return float(w) if isinstance(w, (int, float)) and not isinstance(w, bool) else None
