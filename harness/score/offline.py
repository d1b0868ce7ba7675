"""Offline reception and back-entry (补录), read off the records and the journal.

Taken: offline records patients hold a receipt for (their `POST /records` answered with a seq, in
the request records: ground truth, never seen by the runbook). Back-entered, duplicates refused and
conflicts: what the `back_entry` runs journalled (`offline.back_entered`). Lost: a receipt given
before the last back-entry run began whose offline id the main database does not hold after it —
the target is 0. A receipt given later is counted apart (taken after back-entry), not as lost: no
run could have entered it. No back-entry run at all: every receipt is lost. To contact: the patients
whose acknowledged writes the crash lost (`rpo.measured`) and those holding a lost receipt.

Back-entry is complete at the end of the first run after which every receipt given before that run
began is in the main database (`complete_seq`): the `back_entry` target times it from recovery.
Duplicates: rows the main database holds beyond one per offline record, as each run counted them.
Findings: receipts lost (high), records entered twice (high), conflicts awaiting clinical review
(medium), owned by the group whose step does the back-entry.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

from ..journal import JournalRead
from .card import Finding, OfflineResult

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
    missing = sorted(tally.receipts)
    for e in runs:
        r.back_entered += _count(e, "entered") + _count(e, "conflicts")  # both landed
        r.duplicates_refused += _count(e, "duplicates_refused")
        r.conflicts += _count(e, "conflicts")
        r.conflict_sample += [c for c in e.get("conflict_list") or [] if isinstance(c, dict)]
        r.duplicates = max(r.duplicates, _count(e, "rows") - _count(e, "in_main_db"))
        due = {oid for oid, t in tally.receipts.items() if t < _began(e)}
        missing = sorted(due - set(e.get("landed_ids") or []))
        r.taken_after = len(tally.receipts) - len(due)
        if r.complete_seq is None and not missing and not _count(e, "lost"):
            r.complete_seq = e.get("seq") if isinstance(e.get("seq"), int) else None
    r.conflict_sample = r.conflict_sample[:LOST_SAMPLE]
    r.lost, r.lost_sample = len(missing), missing[:LOST_SAMPLE]
    rpo = journal.of_type("rpo.measured")
    lost_writes = (rpo[-1].get("lost_patients") if rpo else None) or []
    r.to_contact = sorted({str(p) for p in lost_writes} | {tally.patients[oid] for oid in missing})
    return r


def _began(run: dict) -> float:
    """When a back-entry run began reading: its journal time less its own real work."""
    return float(run.get("wall") or 0) - float(run.get("seconds") or 0)


def offline_findings(r: OfflineResult | None, owner: str = "clinical_support") -> list[Finding]:
    """Receipts not back-entered, records entered twice, conflicts left for clinical review."""
    if r is None:
        return []
    out = []

    def add(severity, capability, en: tuple[str, str, str], zh: tuple[str, str, str]) -> None:
        out.append(Finding(kind="offline", severity=severity, capability=capability, owner=owner,
                           text=en[0], evidence=en[1], action=en[2],
                           text_zh=zh[0], evidence_zh=zh[1], action_zh=zh[2]))

    due, runs = r.taken - r.taken_after, r.back_entry_runs
    if r.lost:
        how = f"after {runs} back-entry run(s)" if runs else "no back-entry run was made"
        how_zh = f"经过 {runs} 次补录" if runs else "未进行补录"
        sample = ", ".join(r.lost_sample[:3])
        add("high", "plan",
            (f"{r.lost} offline records lost: patients hold a receipt the main database lacks",
             f"{r.lost} of {due} receipts given before the last back-entry are not in the main "
             f"database ({how}); e.g. {sample}",
             "Back-enter every record offline reception took (read it to the end, retry an "
             "interrupted run), and contact the patients listed under offline reception."),
            (f"{r.lost} 条线下记录丢失：患者持有回执，主库中却没有",
             f"最后一次补录前发出的 {due} 张回执中有 {r.lost} 张不在主库（{how_zh}）；如 {sample}",
             "补录线下接诊的全部记录（读到最后一条，中断后重跑），并联系线下接诊部分列出的患者。"))
    if r.duplicates:
        add("high", "equipment",
            (f"{r.duplicates} offline records entered more than once",
             f"the main database holds {r.duplicates} rows beyond one per offline record after "
             f"{runs} back-entry run(s)",
             "Key back-entry on the offline record's id, so that a second run refuses what already "
             "landed; remove the extra rows with the clinical-support group."),
            (f"{r.duplicates} 条线下记录被重复补录",
             f"{runs} 次补录后，主库中比每条线下记录一行多出 {r.duplicates} 行",
             "补录以线下记录编号为键，重跑时拒绝已录入的记录；与临床支持组一起清理多出的行。"))
    if r.conflicts:
        sample = "; ".join(f"{c.get('offline_id')} {c.get('patient')}: {c.get('why')}"
                           for c in r.conflict_sample[:3])
        add("medium", "organisation",
            (f"{r.conflicts} back-entered records need clinical review",
             f"entered with status 'conflict' (e.g. a slot another patient took meanwhile): {sample}",
             "Review each conflict with the patient and the department (rebook the slot, confirm "
             "the refill) before the back-entry deadline."),
            (f"{r.conflicts} 条补录记录需临床复核",
             f"以“冲突”状态录入（如号源已被他人占用）：{sample}",
             "在补录期限前与患者及科室逐条复核冲突（改约号源、确认续方）。"))
    return out


def _count(e: dict, key: str) -> int:
    v = e.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else 0
