"""Offline reception and back-entry (补录), read off the records and the journal.

Taken: offline records patients hold a receipt for (their `POST /records` answered with a seq, in
the request records: ground truth, never seen by the runbook). Back-entered, duplicates refused and
conflicts: what the `back_entry` runs journalled (`offline.back_entered`). Lost: a receipt given
before the last back-entry run began whose offline id the main database does not hold after it —
the target is 0. A receipt given later is counted apart (taken after back-entry), not as lost: no
run could have entered it. No back-entry run at all: every receipt is lost. To contact: the patients
whose acknowledged writes the crash lost (`rpo.measured`) and those holding a lost receipt.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

from ..journal import JournalRead
from .card import OfflineResult

OFFLINE_JOURNEY = "offline"
CHOICES = ("offline", "retry", "give_up")
LOST_SAMPLE = 10


class OfflineTally:
    """Collects the offline requests from the record stream as it passes (the stream is read once)."""

    def __init__(self) -> None:
        self.receipts: dict[str, float] = {}  # offline id -> when the patient asked for it
        self.patients: dict[str, str] = {}  # offline id -> whose receipt it is
        self.choices = {c: 0 for c in CHOICES}

    def watch(self, records: Iterable[Any]) -> Iterator[Any]:
        for rec in records:
            if rec.__class__ is dict and rec.get("journey") == OFFLINE_JOURNEY:
                self._add(rec)
            yield rec

    def _add(self, rec: dict) -> None:
        oid, t = rec.get("offline_id"), rec.get("t")
        if oid:
            if rec.get("ok") is True and isinstance(t, (int, float)):
                self.receipts[str(oid)] = float(t)
                self.patients[str(oid)] = str(rec.get("patient"))
        elif rec.get("choice") in self.choices:
            self.choices[rec["choice"]] += 1


def offline_result(journal: JournalRead, tally: OfflineTally) -> OfflineResult | None:
    """None when the run had neither offline records nor a back-entry."""
    runs = journal.of_type("offline.back_entered")
    if not runs and not tally.receipts and not any(tally.choices.values()):
        return None
    r = OfflineResult(taken=len(tally.receipts), choices=dict(tally.choices), back_entry_runs=len(runs))
    for e in runs:
        r.back_entered += _count(e, "entered") + _count(e, "conflicts")  # both landed
        r.duplicates_refused += _count(e, "duplicates_refused")
        r.conflicts += _count(e, "conflicts")
        r.conflict_sample += [c for c in e.get("conflict_list") or [] if isinstance(c, dict)]
    r.conflict_sample = r.conflict_sample[:LOST_SAMPLE]
    if runs:
        last = runs[-1]
        began = float(last.get("wall") or 0) - float(last.get("seconds") or 0)
        landed = set(last.get("landed_ids") or [])
        due = {oid for oid, t in tally.receipts.items() if t < began}
        missing = sorted(due - landed)
        r.taken_after = len(tally.receipts) - len(due)
    else:
        missing = sorted(tally.receipts)
    r.lost, r.lost_sample = len(missing), missing[:LOST_SAMPLE]
    rpo = journal.of_type("rpo.measured")
    lost_writes = (rpo[-1].get("lost_patients") if rpo else None) or []
    r.to_contact = sorted({str(p) for p in lost_writes} | {tally.patients[oid] for oid in missing})
    return r


def _count(e: dict, key: str) -> int:
    v = e.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else 0
