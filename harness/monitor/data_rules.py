"""Data-integrity reconciliation: are the consultations patients were told are saved still there?

A consultation acknowledged to a patient (a 2xx on `POST /api/consultations`: committed) must stay
readable; nothing in the hospital deletes one. The `ConsultationLedger` follows the request records
for acknowledged consultations (their `write_id`s) and, each monitor tick, asks the database the
apps read (through the `db` link) which of them it still holds. Acknowledged rows that are gone are
what a patient meets as a 404 on the doctor's reply; the rule `consultations_missing` raises on them.

After a restore from backup (journalled `data.restored` with `restore_point_wall`), rows
acknowledged after the restore point cannot come back from the backups: they are the data lost
(counted as RPO, back-entered by clinical support) and no longer hold the alert. Rows acknowledged
before the restore point must all be back; until they are, the alert holds and so does recovery
(`blocks_recovery`).

The ledger is switched on by the run for scenarios that delete data (`Monitor.ledger`). It writes
`RUN_DIR/integrity.jsonl` (one line each time the counts change) and journals `data.missing` when
acknowledged rows first go missing and `data.reconciled` when every restorable one is back, each
with a few patients' own reads of their consultations through the entry point (404 / 200).
"""
from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import requests

from ..load.records import RecordTail
from .monitor import SAMPLERS, Observation, rule

if TYPE_CHECKING:
    from .monitor import Monitor

WRITE_NAME = "POST /api/consultations"
EARLIER_READ = "/api/consultations/{id} earlier"  # the load's name for a patient's re-read
NOT_FOUND_MIN = 3  # patients' reads answered 404 in the window before it is a signal
PATIENT_READS = 3  # patients whose reads are journalled as evidence at each transition


class ConsultationLedger:
    def __init__(self, monitor: "Monitor", records_dir: Path, run_dir: Path, min_interval: float = 0.1):
        self.monitor = monitor
        self.stack = monitor.stack
        self.tail = RecordTail(Path(records_dir))
        self.log_path = Path(run_dir) / "integrity.jsonl"
        self.min_interval = min_interval
        self.acked: dict[str, tuple[float, str | None]] = {}  # write_id -> (ack wall, patient)
        self.ids: dict[str, int] = {}  # write_id -> consultation id, learnt while present
        self.missing: set[str] = set()
        self.missing_covered = 0  # missing that a restore should have brought back (or all)
        self.restore_point: float | None = None
        self.last_intact_wall: float | None = None  # last check at which nothing was missing
        self.first_missing_wall: float | None = None
        self.ok: bool | None = None  # None: could not check
        self._vanished: set[str] = set()  # ever seen missing
        self._conn: psycopg.Connection | None = None
        self._last = 0.0
        self._logged: tuple | None = None
        self._lock = threading.Lock()
        self._reported_missing = False
        monitor.journal.subscribe(self._on_event)

    # --- inputs ---------------------------------------------------------------------------------
    def _on_event(self, event: dict) -> None:
        if event.get("type") == "data.restored" and event.get("restore_point_wall") is not None:
            with self._lock:
                self.restore_point = float(event["restore_point_wall"])

    def _ingest(self) -> None:
        for rec in self.tail.poll():
            if rec.get("ok") and rec.get("write_id") and rec.get("name") == WRITE_NAME:
                self.acked[rec["write_id"]] = (rec["t"] + (rec.get("ms") or 0) / 1000,
                                               rec.get("patient"))

    def _connect(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            host, port = self.stack.link_listen["db"].rsplit(":", 1)
            self._conn = psycopg.connect(host=host, port=int(port), dbname="hospital",
                                         user="hospital", connect_timeout=1, autocommit=True,
                                         options="-c statement_timeout=1000")
        return self._conn

    # --- one check ------------------------------------------------------------------------------
    def check(self, now: float) -> None:
        if now - self._last < self.min_interval:
            return
        self._last = now
        self._ingest()
        if not self.acked:
            self.ok = True
            self.last_intact_wall = now
            return
        wanted = list(self.acked)
        try:
            rows = self._connect().execute(
                "SELECT write_id, id FROM consultations WHERE write_id = ANY(%s)", (wanted,)).fetchall()
        except psycopg.Error:
            # the database is unreachable (another fault's business): no verdict on the data
            if self._conn is not None:
                self._conn.close()
            self.ok = None
            return
        present = dict(rows)
        self.ids.update(present)
        with self._lock:
            point = self.restore_point
        missing = {w for w in wanted if w not in present}
        covered = sum(1 for w in missing if point is None or self.acked[w][0] < point)
        came_back = [w for w in self._vanished if w in present]
        self.missing, self.missing_covered = missing, covered
        self._vanished |= missing
        self.ok = covered == 0
        if not missing:
            self.last_intact_wall = now
        elif self.first_missing_wall is None:
            self.first_missing_wall = now
        self._log(now, len(wanted), point)
        if covered and not self._reported_missing:
            self._reported_missing = True
            self._journal("data.missing", list(missing), wall=now, table="consultations",
                          acked=len(wanted), missing=len(missing),
                          last_intact_wall=self.last_intact_wall)
        elif self._reported_missing and not covered:
            self._reported_missing = False
            self._journal("data.reconciled", came_back, wall=now, table="consultations",
                          acked=len(wanted), missing=len(missing), restored=len(came_back),
                          restore_point_wall=point)

    def _journal(self, type_: str, write_ids: list[str], **fields) -> None:
        """Journal a transition with a few patients' own reads, off the monitor's thread: the
        alert this tick raises must not wait for them."""
        sample = [(self.ids[w], self.acked[w][1]) for w in write_ids if w in self.ids]
        sample = random.sample(sample, min(PATIENT_READS, len(sample)))

        def run() -> None:
            reads = _patient_reads(self.stack.vip_url, sample)
            try:
                self.monitor.journal.record(type_, **fields, patient_reads=reads)
            except ValueError:  # the run closed its journal meanwhile
                pass
        threading.Thread(target=run, name=f"integrity-{type_}", daemon=True).start()

    def _log(self, now: float, acked: int, point: float | None) -> None:
        state = (len(self.missing), self.missing_covered, point)
        if state == self._logged:
            return
        self._logged = state
        line = {"t": round(now, 6), "acked": acked, "missing": len(self.missing),
                "missing_covered": self.missing_covered, "restore_point_wall": point}
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _patient_reads(vip_url: str, sample: list[tuple[int, str | None]]) -> list[dict]:
    """Each patient reading the doctor's reply of their consultation through the entry point."""
    out = []
    with requests.Session() as s:
        for cid, patient in sample:
            try:
                r = s.get(f"{vip_url}/api/consultations/{cid}", headers={"X-Patient-Id": patient or ""},
                          timeout=2)
                out.append({"consultation": cid, "patient": patient, "status": r.status_code})
            except requests.RequestException as e:
                out.append({"consultation": cid, "patient": patient, "error": e.__class__.__name__})
    return out


def _reconcile(monitor: "Monitor", now: float) -> None:
    if monitor.ledger is not None:
        monitor.ledger.check(now)


SAMPLERS.add("reconcile", _reconcile)


@rule("earlier_consultations_not_found", "critical",
      "patients re-reading an earlier consultation get 'not found': patient data may be lost")
def _earlier_not_found(o: Observation) -> dict | bool:
    # what staff see: patients' own reads failing with 404 (the error log, the hotline), no ledger
    records = [r for r in o.monitor.recent_records() if r.get("name", "").endswith(EARLIER_READ)]
    missing = [r for r in records if r.get("status") == 404]
    if len(missing) >= NOT_FOUND_MIN:
        return {"not_found": len(missing), "reads": len(records),
                "patients": sorted({str(r.get("patient")) for r in missing})[:5]}
    return False


@rule("consultations_missing", "critical",
      "consultations acknowledged to patients are gone from the database (their replies 404)",
      raise_after=1, clear_after=1, blocks_recovery=True, ground_truth=True)
def _consultations_missing(o: Observation) -> bool:
    # one missing acknowledged row is already data loss, never noise: no streak is waited for
    ledger = o.monitor.ledger
    return bool(ledger is not None and ledger.ok is False)


def watch(monitor: "Monitor", records_dir: Path, run_dir: Path) -> ConsultationLedger:
    """Switch the reconciliation on for this monitor (before it starts)."""
    monitor.ledger = ConsultationLedger(monitor, records_dir, run_dir,
                                        min_interval=max(0.1, monitor.interval))
    return monitor.ledger


# --- the plan's scheduled audit: row counts, as a DBA's job sees them ------------------------------

AUDIT = "audit"


def audit_counts(dsn_parts: tuple[str, int], tables: list[str]) -> dict[str, int | None]:
    """Row counts of `tables` on the database behind (host, port); None for a table it cannot count."""
    host, port = dsn_parts
    out: dict[str, int | None] = {}
    try:
        with psycopg.connect(host=host, port=port, dbname="hospital", user="hospital",
                             connect_timeout=2, autocommit=True) as conn:
            for table in tables:
                try:
                    out[table] = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                except psycopg.Error:
                    out[table] = None
    except psycopg.Error:
        return dict.fromkeys(tables)
    return out


def dropped(before: dict[str, int | None], now: dict[str, int | None]) -> dict[str, list[int]]:
    """Tables whose count went down between two audits: {table: [before, now]}."""
    return {t: [before[t], n] for t, n in now.items()
            if isinstance(n, int) and isinstance(before.get(t), int) and n < before[t]}


def sample_audit(m: "Monitor", now: float) -> None:
    """Run the plan's audit when its interval has come (on the board's lane; the counting is real
    work). Keeps the last two results."""
    if m.audit is None or m.stack is None or "db" not in getattr(m.stack, "link_listen", {}):
        return
    runs = m.samples.setdefault(AUDIT, [])
    t = m.lane.now()
    if runs and t - runs[-1]["drill"] < m.audit.every:
        return
    host, port = m.stack.link_listen["db"].rsplit(":", 1)
    runs.append({"drill": t, "t": now, "counts": audit_counts((host, int(port)), m.audit.tables)})
    del runs[:-2]


SAMPLERS.add("audit", sample_audit)


@rule("audit_rows_dropped", "critical",
      "the scheduled data audit counts fewer rows than at the last one: patient data deleted or lost",
      raise_after=1, clear_after=1)
def _audit_rows_dropped(o: Observation) -> dict | bool:
    runs = o.monitor.samples.get(AUDIT) or []
    if len(runs) < 2:
        return False
    gone = dropped(runs[-2]["counts"], runs[-1]["counts"])
    return {"dropped": gone, "audit_at_drill": round(runs[-1]["drill"], 1)} if gone else False
