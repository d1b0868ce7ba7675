"""The network and third-party drills end to end through the CLI, at time scale 60: egress line
saturated, egress line down, a wrong backup-interface address (and the same drill corrected), the
insurer failing with the app degrading gracefully. Each asserts what patients measurably got."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.journal import read_journal
from harness.load.records import iter_records
from tests.helpers import assert_nothing_left, start_drill, wait_in_journal

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
PAYMENT = "POST /api/payments"


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def addresses(run_dir: Path) -> list[str]:
    up = read_journal(run_dir / "journal.jsonl").first("stack.up") or {}
    return [*up.get("services", {}).values(), *up.get("links", {}).values()]


def run_drill(tmp_path: Path, drill: str, *extra: str, expect: int = 0):
    out = tmp_path / "run"
    p = run_cli("run", drill, "--out", str(out), "--quiet", *extra)
    assert p.returncode == expect, p.stdout[-3000:] + p.stderr[-3000:]
    card = json.loads((out / "score.json").read_text())
    return out, card, {t["id"]: t for t in card["targets"]}, read_journal(out / "journal.jsonl")


def payments(out: Path, start: float, end: float) -> list[dict]:
    """Patients' payment requests that started between two wall times."""
    return [r for r in iter_records(out / "records")
            if r.get("name") == PAYMENT and start <= r["t"] <= end]


def failing(recs: list[dict]) -> float:
    assert recs, "no requests in the window"
    return sum(not r["ok"] for r in recs) / len(recs)


def nobody_paid(out: Path, start: float, end: float) -> None:
    """No payment that started after `start` and was over by `end` succeeded, the test account's
    (which pays every walk, several times a second) and the patients' alike; and there were some."""
    probes = [json.loads(line) for line in (out / "probes.jsonl").read_text().splitlines() if line]
    tried = [pr for pr in probes if start <= pr["t"] and pr["t"] + pr["ms"] / 1000 <= end
             and "payment" in pr["steps"]]
    assert tried and not any(pr["ok"] for pr in tried)
    assert not any(r["ok"] for r in payments(out, start, end) if r["t"] + r["ms"] / 1000 <= end)


def payments_work(out: Path, start: float) -> None:
    """From `start` on, the test account's payments all went through and the patients' did (the
    few patients' payments of a short window may be none at all)."""
    probes = [json.loads(line) for line in (out / "probes.jsonl").read_text().splitlines() if line]
    tried = [pr for pr in probes if pr["t"] >= start and "payment" in pr["steps"]]
    assert tried and all(pr["ok"] for pr in tried)
    theirs = payments(out, start, float("inf"))
    assert not theirs or failing(theirs) < 0.05


def step_event(journal, step: str, kind: str = "step.finished") -> dict:
    e = journal.first(kind, step=step)
    assert e is not None, f"{kind} {step} missing"
    return e


def test_egress_saturation_is_detected_and_the_backup_line_takes_over(tmp_path):
    out, card, by_id, journal = run_drill(tmp_path, "drills/egress-saturation.yaml")
    assert card["verdict"] == "pass"
    assert 0 < by_id["detect"]["actual"] <= 60
    assert by_id["detect"]["actual"] < by_id["line-switched"]["actual"] <= 300
    assert 0 < by_id["payments-recovered"]["actual"] <= 1800
    assert by_id["level"]["actual"] == 2

    fault = journal.first("fault.injected")
    assert fault["fault_type"] == "egress_saturation" and fault["detail"]["flows"] == 8
    # the line's own byte counters: idle before, at its capacity after, three samples in a row above
    # 95% before the plan's rule raised its alert, and never much above what the line can carry
    samples = [e for e in journal.of_type("link.sample") if e["link"] == "egress-primary"]
    before = [s["utilisation"] for s in samples if s["wall"] < fault["wall"]]
    assert before and max(before) < 0.1
    saturated = journal.first("alert.raised", alert="egress_saturated")
    assert saturated is not None and saturated["severity"] == "critical"
    assert saturated["detail"]["unreachable"]  # the rule's second half: third parties cut off
    during = [s["utilisation"] for s in samples if fault["wall"] < s["wall"] <= saturated["wall"]]
    assert any(all(u > 0.95 for u in during[i:i + 3]) for i in range(len(during) - 2)), during
    assert max(during) < 1.5, during  # capped: 8 uncapped flows would carry several times more
    # the line's round trip is what the board showed first
    assert journal.first("alert.raised", alert="egress_latency_high")["wall"] <= saturated["wall"]

    level = journal.first("level.declared")
    assert level["level"] == 2 and "egress_saturated" in level["rule"]["alerts"]
    switched = step_event(journal, "switch-line")
    assert switched["ok"] and switched["detail"]["routes"] == {"egress": "backup"}
    assert switched["detail"]["test_payment"]["ok"]
    assert step_event(journal, "offline-reception")["ok"]
    assert any(n["channel"] == "official_account" for n in journal.of_type("notification.sent"))

    # patients: payments failed while on the full line, worked again once on the backup line;
    # what does not leave the hospital (consultations, bookings) was not touched
    switch_started = step_event(journal, "switch-line", "step.started")["wall"]
    assert failing(payments(out, fault["wall"] + 0.3, switch_started - 0.1)) > 0.8
    back = journal.first("recovery")["at_wall"]
    assert failing(payments(out, back + 0.5, float("inf"))) < 0.05
    others = [r for r in iter_records(out / "records")
              if r.get("name") != PAYMENT and fault["wall"] < r["t"] < back]
    assert others and failing(others) < 0.05

    reverted = journal.first("fault.reverted")
    assert reverted["detail"]["flows_stopped"] == 8 and reverted["detail"]["flows_alive"] == 0
    assert_nothing_left(out, addresses(out))


def test_interrupted_saturation_stops_its_bulk_flows(tmp_path):
    out = tmp_path / "run"
    proc = start_drill("drills/egress-saturation.yaml", "--out", str(out), "--quiet")
    wait_in_journal(proc, out, "egress_latency_high", "the line never filled")
    journal = out / "journal.jsonl"
    proc.send_signal(signal.SIGINT)  # mid-incident: the flows are running
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3, output
    events = read_journal(journal)
    assert events.first("run.finished")["status"] == "aborted"
    reverted = events.first("fault.reverted")
    assert reverted["detail"]["flows_alive"] == 0 and reverted["detail"]["bytes_moved"] > 1_000_000
    assert_nothing_left(out, addresses(out))


def test_egress_line_down_switches_to_the_backup_line(tmp_path):
    out, card, by_id, journal = run_drill(tmp_path, "drills/egress-line-down.yaml")
    assert card["verdict"] == "pass"
    assert 0 < by_id["detect"]["actual"] <= 60 and 0 < by_id["line-switched"]["actual"] <= 300
    assert by_id["level"]["actual"] == 2
    fault = journal.first("fault.injected")
    down = journal.first("alert.raised", alert="egress_line_down")
    assert down["detail"]["link"] == "egress-primary"
    level = journal.first("level.declared")
    assert level["level"] == 2 and "egress_line_down" in level["rule"]["alerts"]
    samples = [e for e in journal.of_type("link.sample") if e["link"] == "egress-primary"]
    assert any(not s["up"] for s in samples if s["wall"] > fault["wall"])
    assert all(s["up"] for s in samples if s["wall"] < fault["wall"])
    switched = step_event(journal, "switch-line")
    assert switched["ok"] and switched["detail"]["test_payment"]["ok"]
    switch_started = step_event(journal, "switch-line", "step.started")["wall"]
    nobody_paid(out, fault["wall"] + 0.05, switch_started)
    back = journal.first("recovery")["at_wall"]
    assert failing(payments(out, back + 0.5, float("inf"))) < 0.05
    assert_nothing_left(out, addresses(out))


def _assert_wrong_address_found(out: Path, card: dict, journal, address: str) -> None:
    failed = [e for e in journal.of_type("step.finished") if not e["ok"]]
    assert [e["step"] for e in failed] == ["switch-insurance"]
    error = failed[0]["detail"]["error"]
    assert address in error and "refused connection" in error
    assert "stack.insurance_backup_address" in error  # the corrective action
    verified = journal.first("route.verified")
    assert verified["ok"] is False
    assert verified["found"][0] == {"route": "insurance", "target": "backup", "address": address,
                                    "connected": False, "what": "refused connection"}
    assert verified["test_payment"]["status"] == 502
    assert verified["rolled_back"]["routes"] == {"insurance": "primary"}
    # the report says what was wrong and what to do about it
    findings = " ".join(f["evidence"] + " " + f["action"] for f in card["findings"])
    assert address in findings and "refused connection" in findings
    assert "insurance-switched" in (out / "junit.xml").read_text()
    assert not journal.of_type("recovery")  # patients' insured payments never came back
    assert_nothing_left(out, addresses(out))


def test_wrong_backup_ip_misses_its_targets_and_names_the_address(tmp_path):
    out, card, by_id, journal = run_drill(tmp_path, "drills/wrong-backup-ip.yaml", expect=1)
    assert card["verdict"] == "fail"
    assert not by_id["insurance-switched"]["met"] and not by_id["payments-recovered"]["met"]
    assert by_id["detect"]["met"]
    assert "127.0.0.9:18090" in by_id["insurance-switched"]["reason"]
    fault = journal.first("fault.injected")
    assert failing(payments(out, fault["wall"] + 0.2, float("inf"))) > 0.8
    _assert_wrong_address_found(out, card, journal, "127.0.0.9:18090")


def test_wrong_backup_ip_fixed_passes(tmp_path):
    out, card, by_id, journal = run_drill(tmp_path, "drills/wrong-backup-ip-fixed.yaml")
    assert card["verdict"] == "pass"
    assert 0 < by_id["insurance-switched"]["actual"] <= 300
    switched = step_event(journal, "switch-insurance")
    assert switched["ok"] and switched["detail"]["test_payment"]["body"]["claim_status"] == "settled"
    fault = journal.first("fault.injected")
    switch_started = step_event(journal, "switch-insurance", "step.started")["wall"]
    nobody_paid(out, fault["wall"] + 0.05, switch_started)
    back = journal.first("recovery")["at_wall"]
    assert back >= switch_started
    payments_work(out, back + 0.5)
    assert_nothing_left(out, addresses(out))


def test_a_wrong_address_in_any_stack_config_is_found(tmp_path):
    # the hospital's own config, with its own typo: nothing about the address is built in
    (tmp_path / "drills").mkdir()
    for name in ("db-crash-failover.yaml", "wrong-backup-ip.yaml"):
        (tmp_path / "drills" / name).write_text((ROOT / "drills" / name).read_text(encoding="utf-8"),
                                                encoding="utf-8")
    (tmp_path / "scenarios").mkdir()
    for name in ("db-crash.yaml", "insurance-primary-down.yaml"):
        (tmp_path / "scenarios" / name).write_text(
            (ROOT / "scenarios" / name).read_text(encoding="utf-8"), encoding="utf-8")
    mine = tmp_path / "drills" / "mine.yaml"
    mine.write_text("extends: wrong-backup-ip.yaml\nname: my-hospital\n"
                    "stack:\n  insurance_backup_address: 127.0.0.23:18091\n", encoding="utf-8")
    out, card, by_id, journal = run_drill(tmp_path, str(mine), "--time-scale", "120", expect=1)
    assert journal.first("run.started")["config"]["insurance_backup_address"] == "127.0.0.23:18091"
    _assert_wrong_address_found(out, card, journal, "127.0.0.23:18091")


def test_insurer_errors_degrade_then_settle(tmp_path):
    out, card, by_id, journal = run_drill(tmp_path, "drills/insurer-errors-degrade.yaml")
    assert card["verdict"] == "pass"
    assert 0 < by_id["detect"]["actual"] <= 60 and 0 < by_id["degraded"]["actual"] <= 300
    assert by_id["payments-recovered"]["actual"] <= 1800 and by_id["claims-settled"]["met"]
    assert by_id["level"]["actual"] == 3
    fault = journal.first("fault.injected")
    degraded = step_event(journal, "degrade-insurance")
    assert degraded["ok"] and degraded["detail"]["test_payment"]["body"]["claim_status"] == "queued"
    assert degraded["detail"]["test_payment"]["body"]["insurance_covered"] == 0
    degrade_started = step_event(journal, "degrade-insurance", "step.started")["wall"]
    reverted = max(e["wall"] for e in journal.of_type("fault.reverted"))
    # nobody could pay while claims failed; in degraded mode patients pay (claims queued), though
    # the insurer is still failing
    nobody_paid(out, fault["wall"] + 0.05, degrade_started)
    assert failing(payments(out, degraded["wall"] + 0.3, reverted - 0.1)) < 0.05
    sms = [n for n in journal.of_type("notification.sent") if n["channel"] == "sms"]
    assert sms and "排队" in sms[0]["text"]
    # once the insurer answers again: normal mode, and every queued claim settled
    settled = step_event(journal, "settle-claims")
    assert settled["ok"] and settled["wall"] > reverted
    assert settled["detail"]["settled"]["claims"] > 10 and settled["detail"]["refund_due"] > 0
    assert settled["detail"]["normal_mode"]
    assert_nothing_left(out, addresses(out))
