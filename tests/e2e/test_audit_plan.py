"""`hospital-drill audit` end to end: a real stack brought up with no fault, the plan's typo'd
insurance backup address found with what a connection to it did, the report in every format, and
nothing left running."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.journal import read_journal
from tests.helpers import assert_nothing_left

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
TYPO = "127.0.0.9:18090"  # as in drills/wrong-backup-ip.yaml


def audit(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "audit", *args, "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_audit_finds_the_wrong_backup_insurance_address(tmp_path):
    out = tmp_path / "audit"
    p = audit(out, "hospital-wrong-backup-ip")
    assert p.returncode == 1, p.stdout[-3000:] + p.stderr[-3000:]
    report = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert report["verdict"] == "not_ready"
    checks = {c["name"]: c for c in report["checks"]}
    assert all(checks[n]["status"] == "pass" for n in ("coverage", "roster", "skills", "channels"))
    interfaces = checks["interfaces"]
    assert interfaces["status"] == "fail"
    [finding] = interfaces["findings"]
    assert finding["severity"] == "critical"
    assert finding["evidence"]["address"] == TYPO
    assert finding["evidence"]["what"] == "refused connection"
    assert TYPO in finding["message"] and "refused connection" in finding["message"]
    # it points at the plan's line that holds the typo
    plan_file, line = finding["where"].rsplit(":", 1)
    assert TYPO in Path(plan_file).read_text(encoding="utf-8").splitlines()[int(line) - 1]
    # the other interfaces and the backup line answered, and were put back to primary
    routes = interfaces["evidence"]["routes"]
    assert {r: v["ok"] for r, v in routes.items()} == {"insurance": False, "payment": True,
                                                        "notification": True, "egress": True}
    assert checks["standbys"]["status"] == "pass"
    assert {s["state"] for s in checks["standbys"]["evidence"]["standbys"].values()} == {"streaming"}
    assert [t["kind"] for t in checks["backups"]["evidence"]["taken"]] == ["full", "incremental"]
    assert report["bring_up_seconds"] > 0
    print(f"audit of the wrong-backup-ip plan: {report['seconds']:.1f}s wall, "
          f"bring-up {report['bring_up_seconds']:.1f}s")
    # junit: the failing case is the live interfaces check
    suite = ET.parse(out / "junit.xml").getroot()
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["interfaces"]
    html = (out / "audit.html").read_text(encoding="utf-8")
    assert TYPO in html and "NOT READY" in html
    assert TYPO in (out / "audit.md").read_text(encoding="utf-8")
    journal = read_journal(out / "journal.jsonl")
    assert journal.first("audit.finished")["verdict"] == "not_ready"
    assert journal.first("route.verified", ok=False)["culprit"]["address"] == TYPO
    assert_nothing_left(out)


def test_audit_of_the_shipped_plan_is_ready(tmp_path):
    out = tmp_path / "audit"
    p = audit(out, "--no-backups")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    report = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert report["verdict"] == "ready" and report["score"] == 100.0
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["interfaces"] == "pass" and statuses["backups"] == "skipped"
    assert_nothing_left(out)
