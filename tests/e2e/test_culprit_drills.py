"""The culprit from evidence, end to end through the CLI: a failed switch names the component that
failed and the address that refused, as the services' own errors tell it, not the address the
runbook step switched to."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.journal import read_journal
from tests.helpers import assert_nothing_left

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def run_drill(tmp_path: Path, drill: str | Path, expect: int):
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(drill), "--out", str(out),
                        "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == expect, p.stdout[-3000:] + p.stderr[-3000:]
    card = json.loads((out / "score.json").read_text())
    journal = read_journal(out / "journal.jsonl")
    up = journal.first("stack.up")
    assert up is not None
    return out, card, journal, up


def the_failed_step(journal) -> tuple[str, str]:
    failed = [e for e in journal.of_type("step.finished") if not e["ok"]]
    assert len(failed) == 1, [e["step"] for e in failed]
    return failed[0]["step"], failed[0]["detail"]["error"]


def done(out: Path, up: dict) -> None:
    assert_nothing_left(out, [*up["services"].values(), *up["links"].values()])


def test_a_failed_line_switch_names_the_refusing_payment_interface(tmp_path):
    # a hospital's own drill: the payment interface refuses, and the runbook's answer is to switch
    # the egress line, which works but cannot help
    drill = tmp_path / "payment-refusing.yaml"
    drill.write_text(f"""extends: {ROOT / 'drills' / 'egress-line-down.yaml'}
name: payment-refusing-line-switch
scenario: {ROOT / 'scenarios' / 'payment-primary-down.yaml'}
failure_class: null
runbook:
  - {{id: three-step-check, group: technical, when: {{alert: any}}, action: three_step_check}}
  - {{id: declare-level, group: technical, when: {{after: three-step-check}}, action: declare_level}}
  - id: switch-line
    group: technical
    when: {{after: declare-level}}
    action: switch_and_verify
    with: {{egress: backup}}
    deadline: 5m
targets:
  - {{id: detect, measure: detection, within: 1m}}
  - {{id: line-switched, measure: step, step: switch-line, within: 5m}}
""", encoding="utf-8")
    out, card, journal, up = run_drill(tmp_path, drill, expect=1)
    refusing, line = up["links"]["payment-primary"], up["links"]["egress-backup"]

    step, error = the_failed_step(journal)
    assert step == "switch-line"
    assert error.startswith(f"payment primary interface {refusing} refused connection"), error
    assert "reported by egress-gw" in error and "the switch itself is not at fault" in error
    assert line not in error  # the backup line took every call: it is not what to fix
    verified = journal.first("route.verified")
    assert verified["culprit"] == {"component": "payment-primary", "address": refusing,
                                   "what": "refused connection", "reported_by": "egress-gw"}
    # the app's own account, as the test payment got it: the gateway's 502 names the interface
    assert verified["test_payment"]["culprit"]["address"] == refusing
    assert verified["rolled_back"]["routes"] == {"egress": "primary"}

    top = card["findings"][0]
    assert top["kind"] == "step" and top["step"] == "switch-line"
    assert refusing in top["evidence"] and f"Verify {refusing} is the right address" in top["action"]
    assert line not in top["action"]
    done(out, up)


def test_a_wrong_backup_payment_address_is_found(tmp_path):
    out, card, journal, up = run_drill(tmp_path, ROOT / "drills" / "wrong-backup-payment-ip.yaml", 1)
    wrong = "127.0.0.9:18091"
    assert card["verdict"] == "fail"
    assert journal.first("run.started")["config"]["backup_addresses"] == {"payment": wrong}
    # the stack was brought up with the hospital's typo behind the payment backup link
    assert up["links"]["payment-backup"] != wrong

    step, error = the_failed_step(journal)
    assert step == "switch-payment"
    assert error.startswith(f"payment backup interface {wrong} refused connection"), error
    assert "stack.backup_addresses.payment" in error  # the corrective action names the field
    verified = journal.first("route.verified")
    culprit = verified["culprit"]
    assert (culprit["component"], culprit["address"], culprit["what"], culprit["via"]) == (
        "payment-backup", wrong, "refused connection", "payment-backup")
    # what the gateway saw: its link took the connection and closed it; the address behind it refused
    assert verified["test_payment"]["culprit"]["address"] == up["links"]["payment-backup"]
    assert verified["rolled_back"]["routes"] == {"payment": "primary"}
    assert not journal.of_type("recovery")

    by_id = {t["id"]: t for t in card["targets"]}
    assert by_id["detect"]["met"] and not by_id["payment-switched"]["met"]
    assert wrong in by_id["payment-switched"]["reason"]
    top = card["findings"][0]
    assert top["kind"] == "step" and f"Verify {wrong} is the right address" in top["action"]
    done(out, up)
