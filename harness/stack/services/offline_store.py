"""The offline reception's durable store: SQLite in WAL mode, each record fsynced before its receipt.

It depends on nothing of the main site: a file in the run directory. A record is keyed on the
`offline_id` the patient's phone made up, so a patient who sends the same record twice (a lost
reply, a retry) gets the same receipt back and the store keeps one row.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("registration", "refill", "payment_promise")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    offline_id TEXT NOT NULL UNIQUE,
    patient_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    detail     TEXT NOT NULL,
    taken_at   REAL NOT NULL
)
"""


class RecordConflict(ValueError):
    """An offline id already taken by a different record."""


@dataclass(frozen=True)
class Receipt:
    offline_id: str
    seq: int
    taken_at: float
    duplicate: bool  # True: this offline id was already recorded, the first receipt is returned


class OfflineStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # one connection behind a lock: SQLite serialises writers anyway
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: every commit's WAL frame is fsynced, so a receipt outlives a SIGKILL or power loss
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)

    def take(self, offline_id: str, patient_id: str, kind: str, detail: dict[str, Any]) -> Receipt:
        """Record one need; the receipt of the first record when `offline_id` is already there."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        text = json.dumps(detail, sort_keys=True, ensure_ascii=False)
        with self._lock:
            row = self._db.execute("SELECT seq, patient_id, kind, detail, taken_at FROM records "
                                   "WHERE offline_id = ?", (offline_id,)).fetchone()
            if row is not None:
                if (row[1], row[2], row[3]) != (patient_id, kind, text):
                    raise RecordConflict(f"offline_id {offline_id} already holds another record")
                return Receipt(offline_id, row[0], row[4], duplicate=True)
            now = time.time()
            cur = self._db.execute("INSERT INTO records (offline_id, patient_id, kind, detail, "
                                   "taken_at) VALUES (?, ?, ?, ?, ?)",
                                   (offline_id, patient_id, kind, text, now))
            return Receipt(offline_id, int(cur.lastrowid), now, duplicate=False)

    def since(self, seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Records after `seq`, oldest first: back-entry pages through them."""
        with self._lock:
            rows = self._db.execute("SELECT seq, offline_id, patient_id, kind, detail, taken_at "
                                    "FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
                                    (seq, limit)).fetchall()
        return [{"seq": r[0], "offline_id": r[1], "patient_id": r[2], "kind": r[3],
                 "detail": json.loads(r[4]), "taken_at": r[5]} for r in rows]

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM records").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
