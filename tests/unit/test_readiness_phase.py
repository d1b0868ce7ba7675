"""A drill's readiness phase wired with fakes: the checks' results journalled as the audit's events,
a critical finding stopping the drill only when the drill says so, what the checks judge against
derived from the drill's own stack, and the findings read back as the card's top findings."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.clock import DrillClock
from harness.errors import HarnessError
from harness.journal import Journal, read_journal
from harness.models import Readiness
from harness.plan import readiness as phase
from harness.plan.findings import CheckResult, Finding
from harness.plan.live import Basis
from harness.run import DrillRun
from harness.score.card import Finding as CardFinding, Overview
from harness.score.findings import merged
from harness.score.readiness import readiness_findings, readiness_result

ROOT = Path(__file__).resolve().parents[2]
DRILL = ROOT / "tests" / "e2e" / "drills" / "wrong-backup-ip-readiness.yaml"
SCENARIO = ROOT / "scenarios" / "insurance-primary-down.yaml"
TYPO = "127.0.0.9:18090"
REFUSED = f"insurance backup interface {TYPO} refused connection"
# as the runbook's verified switch words it: what, (how it was seen); what was tried; the fix
MESSAGE = (f"{REFUSED} (behind link insurance-backup, which closed the connection; reported by "
           "egress-gw); 1 test payment(s) after the switch to insurance backup: HTTP 502; fix: correct it")


def refusing(calls: list) -> phase.Checks:
    """Fake live checks: the insurance backup interface refuses, the standbys stream."""
    def checks(stack, journal, out, basis):
        calls.append(basis)
        at = basis.where(basis.address_field("insurance"))
        return [CheckResult("interfaces", "backup interfaces", "live",
                            [Finding("interfaces", "critical",
                                     MESSAGE, at,
                                     {"address": TYPO, "what": "refused connection"},
                                     "correct stack.insurance_backup_address")], seconds=0.2),
                CheckResult("standbys", "standbys stream", "live", seconds=0.1),
                CheckResult("backups", "backups", "live", skipped="the drill has no backup schedule")]
    return checks


def run_of(tmp_path: Path, drill_text: str | None = None, live: bool = False) -> DrillRun:
    drill = DRILL
    if drill_text is not None:
        drill = tmp_path / "drill.yaml"
        drill.parent.mkdir(parents=True, exist_ok=True)
        drill.write_text(f"extends: {DRILL}\nscenario: {SCENARIO}\n{drill_text}", encoding="utf-8")
    run = DrillRun(drill, out_dir=tmp_path / "run", live=live)
    run.run_dir.mkdir(parents=True)
    run.journal = Journal(run.rd.journal, run.clock)
    run.stack = object()  # the fake checks never touch it
    return run


def test_the_phase_runs_by_default_only_for_live_drills():
    assert Readiness().runs(live=True) and not Readiness().runs(live=False)
    assert Readiness(before=True).runs(live=False)
    assert not Readiness(before=False).runs(live=True)


def test_the_checks_judge_against_the_drills_own_stack(tmp_path):
    drill = tmp_path / "lagging.yaml"
    drill.write_text(f"extends: {DRILL}\nscenario: {SCENARIO}\nstack:\n  replication: {{mode: sync, lag: 30s}}\n"
                     "  remote_dr: false\n  backup_addresses: {payment: 127.0.0.9:18091}\n",
                     encoding="utf-8")
    run = DrillRun(drill, out_dir=tmp_path / "run")
    basis = Basis.of_drill(run.drill, 60.0, phase.drill_where(drill))
    # the plan's 10 s bound plus the remote DR's share of the lag the drill puts on purpose (2 × 0.5 s)
    assert basis.max_lag == pytest.approx(11.0)
    assert basis.sync and not basis.remote_dr and basis.backups is None and basis.document == "drill"
    # a typo'd address points at the line of the file in the extends chain that sets it
    assert basis.address_field("payment") == ("stack", "backup_addresses", "payment")
    assert basis.where(basis.address_field("payment")) == f"{drill}:6"
    where = basis.where(basis.address_field("insurance"))
    path, line = where.rsplit(":", 1)
    assert TYPO in Path(path).read_text(encoding="utf-8").splitlines()[int(line) - 1]


def test_a_critical_finding_is_journalled_and_the_drill_goes_on(tmp_path):
    calls: list = []
    run = run_of(tmp_path)
    said: list[str] = []
    outcome = phase.before_drill(run.stack, run.journal, run.rd, run.drill,
                                 Basis.of_drill(run.drill, 60.0, phase.drill_where(DRILL)),
                                 backend="local", say=said.append, checks=refusing(calls))
    run.journal.close()
    assert [f.message for f in outcome.critical] == [MESSAGE]
    [basis] = calls
    assert basis.document == "drill" and basis.backups is None
    journal = read_journal(run.rd.journal)
    types = [e["type"] for e in journal.events]
    assert types == ["audit.started", "audit.check", "audit.check", "audit.check", "audit.finished"]
    assert journal.first("audit.started")["drill_name"] == "wrong-backup-ip-readiness"
    fin = journal.first("audit.finished")
    assert fin["verdict"] == "not_ready" and fin["findings"]["critical"] == 1
    assert fin["stops_drill"] is False and fin["seconds"] >= 0
    # the console says what was found, without the account of how
    assert f"  found before the drill: {REFUSED} (behind link insurance-backup, which closed the " \
           "connection; reported by egress-gw)" in said


def test_the_run_stops_before_any_fault_only_when_the_drill_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(phase, "check_stack", lambda stack, journal, out, basis, **_: refusing([])(
        stack, journal, out, basis))
    going_on = run_of(tmp_path / "a")
    going_on._readiness()  # a critical finding, but the drill goes on
    assert going_on.abort_reason is None and going_on.phase == "readiness"

    stopping = run_of(tmp_path / "b", "readiness: {before: true, stop_on_critical: true}\n")
    with pytest.raises(HarnessError) as e:
        stopping._readiness()
    assert stopping.abort_reason == str(e.value)
    assert stopping.abort_reason == ("stopped before any fault: found before the drill: "
                                     f"{REFUSED} (behind link insurance-backup, which closed the "
                                     "connection; reported by egress-gw)")
    stopping.journal.close()
    assert read_journal(stopping.rd.journal).first("audit.finished")["stops_drill"] is True

    skipped = run_of(tmp_path / "c", "readiness: {before: false}\n", live=True)
    skipped._readiness()
    skipped.journal.close()
    assert read_journal(skipped.rd.journal).events == []


def test_a_check_that_breaks_is_an_aborted_phase_not_an_aborted_drill(tmp_path):
    run = run_of(tmp_path)

    def broken(stack, journal, out, basis):
        raise OSError("connection reset")
    outcome = phase.before_drill(run.stack, run.journal, run.rd, run.drill,
                                 Basis.of_drill(run.drill, 60.0), backend="local", checks=broken)
    run.journal.close()
    assert outcome.aborted == "readiness checks: OSError: connection reset" and outcome.critical == []
    fin = read_journal(run.rd.journal).first("audit.finished")
    assert fin["verdict"] == "aborted" and fin["reason"] == outcome.aborted


def test_the_cards_top_finding_is_what_was_found_before_the_drill(tmp_path):
    run = run_of(tmp_path, "readiness: {before: true, stop_on_critical: true}\n")
    phase.before_drill(run.stack, run.journal, run.rd, run.drill,
                       Basis.of_drill(run.drill, 60.0, phase.drill_where(DRILL)), backend="local",
                       checks=refusing([]))
    run.journal.close()
    result = readiness_result(read_journal(run.rd.journal))
    assert result is not None and result.verdict == "not_ready" and result.stopped_drill
    assert [(c.name, c.status) for c in result.checks] == [("interfaces", "fail"), ("standbys", "pass"),
                                                           ("backups", "skipped")]
    [found] = readiness_findings(result)
    assert found.kind == "readiness" and found.severity == "critical"
    assert found.text == f"found before the drill: {REFUSED} (behind link insurance-backup, which " \
                         "closed the connection; reported by egress-gw)"
    # the evidence keeps the rest of the account, and where the address is set
    assert "1 test payment(s) after the switch to insurance backup: HTTP 502" in found.evidence
    assert "wrong-backup-ip.yaml:14" in found.evidence and "the drill stopped here" in found.evidence
    # ahead of another critical finding of the drill itself
    level = CardFinding(kind="level", severity="critical", text="level declared never")
    ordered = merged([level], [found], Overview(drill="d", time_scale=60.0))
    assert [f.kind for f in ordered] == ["readiness", "level"] and ordered[0].id == "F1"


def test_no_phase_no_readiness_on_the_card(tmp_path):
    with Journal(tmp_path / "journal.jsonl", DrillClock(60.0)) as journal:
        journal.record("audit.started", plan="hospital", plan_file="plans/hospital.yaml", live=False,
                       backend=None)  # a plan's own audit, not a drill's phase
    assert readiness_result(read_journal(tmp_path / "journal.jsonl")) is None
    assert readiness_findings(None) == []
