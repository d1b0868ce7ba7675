"""The back-entry target (from recovery to back-entry complete), its n/a rule, and the offline
findings: lost receipts, records entered twice, conflicts for clinical review."""
from harness.journal import JournalRead
from harness.models import Target
from harness.score.applicability import judge
from harness.score.card import LevelResult, PatientImpact
from harness.score.facts import Facts
from harness.score.offline import OfflineTally, offline_findings, offline_result
from harness.score.targets import measure_target

SCALE = 60.0
T_FAULT, T_BACK = 1000.0, 1100.0  # wall: the crash, patients back


def receipt(oid, t, patient="P00001"):
    return {"t": t, "patient": patient, "journey": "offline", "ok": True, "choice": "offline",
            "offline_id": oid}


def run(seq, wall, landed, seconds=1.0, **counts):
    return {"seq": seq, "wall": wall, "type": "offline.back_entered", "seconds": seconds,
            "landed_ids": landed, "read": len(landed), "in_main_db": len(landed),
            "rows": len(landed), "conflict_list": [], **counts}


def journal(*back_entries, recovered=True):
    events = [{"seq": 1, "wall": 900.0, "type": "run.started", "time_scale": SCALE},
              {"seq": 2, "wall": 950.0, "type": "scenario.started"},
              {"seq": 3, "wall": T_FAULT, "type": "fault.injected", "fault": "crash"}]
    if recovered:
        events.append({"seq": 4, "wall": T_BACK + 5, "type": "recovery", "at_wall": T_BACK})
    return JournalRead(events=[*events, *back_entries])


def offline_of(j, receipts):
    tally = OfflineTally()
    list(tally.watch(receipts))
    return offline_result(j, tally)


def measure(j, receipts, target=None):
    target = target or Target(id="back-entry", measure="back_entry")
    return measure_target(target, Facts(j, SCALE), LevelResult(), None, None, offline_of(j, receipts))


def test_back_entry_is_timed_from_recovery_not_from_the_fault():
    j = journal(run(5, T_BACK + 30, ["a", "b"], entered=2))
    r = measure(j, [receipt("a", 1010.0), receipt("b", 1020.0)])
    assert r.target == 24 * 3600 and r.met  # the plan's 24 h by default
    assert r.actual == 30 * SCALE  # 30 real s after recovery (v1 journal: wall × scale), not 130


def test_back_entry_completes_at_the_first_run_that_holds_every_earlier_receipt():
    receipts = [receipt("a", 1010.0), receipt("b", 1020.0), receipt("c", 1025.0)]
    j = journal(run(5, T_BACK + 10, ["a", "b"], entered=2, lost=0),  # c is missing: not complete
                run(6, T_BACK + 40, ["a", "b", "c"], entered=1, duplicates_refused=2))
    card = offline_of(j, receipts)
    assert card.complete_seq == 6 and card.lost == 0
    assert measure(j, receipts).actual == 40 * SCALE
    tight = Target(id="back-entry", measure="back_entry", within="20m")
    r = measure(j, receipts, tight)
    assert not r.met and "over the 20m" in r.reason


def test_back_entry_never_complete_or_never_recovered_is_missed_with_the_reason():
    receipts = [receipt("a", 1010.0), receipt("b", 1020.0)]
    r = measure(journal(run(5, T_BACK + 10, ["a"], entered=1)), receipts)
    assert r.status == "missed" and "1 receipt(s) not in the main database" in r.reason
    r = measure(journal(run(5, T_BACK + 10, ["a", "b"]), recovered=False), receipts)
    assert r.status == "missed" and "no recovery" in r.reason
    assert "no back-entry run" in measure(journal(), receipts).reason


def test_back_entry_is_na_without_an_outage_or_without_offline_records():
    t = [Target(id="back-entry", measure="back_entry")]
    finished = {"seq": 9, "wall": 1200.0, "type": "run.finished", "status": "completed"}
    outage = [{"type": "fault.injected"},
              {"type": "alert.raised", "alert": "patient_errors", "severity": "critical"}, finished]
    assert "no offline record" in judge(t, [], outage, LevelResult(), PatientImpact())["back-entry"].reason
    assert judge(t, [], outage, LevelResult(), PatientImpact(), offline_taken=3) == {}
    calm = [{"type": "fault.injected"}, finished]
    assert "no outage" in judge(t, [], calm, LevelResult(), PatientImpact(), offline_taken=3)["back-entry"].reason
    assert "no fault" in judge(t, [], [finished], LevelResult(), PatientImpact())["back-entry"].reason


def test_lost_receipts_duplicates_and_conflicts_are_findings_for_the_back_entry_group():
    receipts = [receipt("a", 1010.0), receipt("b", 1020.0, patient="P00002")]
    conflict = {"offline_id": "a", "patient": "P00001", "why": "slot surgery 09:00 held by P00009"}
    j = journal(run(5, T_BACK + 10, ["a"], entered=0, conflicts=1, conflict_list=[conflict], rows=2))
    card = offline_of(j, receipts)
    assert (card.lost, card.duplicates, card.conflicts, card.to_contact) == (1, 1, 1, ["P00002"])
    found = {f.text.split(" ", 2)[-1][:30]: f for f in offline_findings(card, "clinical_support")}
    assert [f.severity for f in found.values()] == ["high", "high", "medium"]
    assert all(f.owner == "clinical_support" and f.kind == "offline" for f in found.values())
    lost, twice, review = found.values()
    assert "b" in lost.evidence and "1 of 2 receipts" in lost.evidence
    assert "1 rows beyond one per offline record" in twice.evidence
    assert "held by P00009" in review.evidence


def test_a_clean_back_entry_has_no_offline_finding():
    j = journal(run(5, T_BACK + 10, ["a"], entered=1))
    assert offline_findings(offline_of(j, [receipt("a", 1010.0)])) == []
    assert offline_findings(None) == []
