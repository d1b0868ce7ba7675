"""`hospital-drill audit` end to end: a real stack brought up with no fault, the plan's typo'd
insurance backup address found with what a connection to it did, the report in every format, and
nothing left running."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
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
    """The audit, its backup stores in a data dir of the test's own (beside `out`)."""
    env = {**os.environ, "XDG_DATA_HOME": str(out.parent / "data")}
    return subprocess.run([sys.executable, "-m", "harness.cli", "audit", *args, "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def test_audit_finds_the_wrong_backup_insurance_address(tmp_path):
    out = tmp_path / "audit"
    p = audit(out, "hospital-wrong-backup-ip", "--take-backups")
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
    assert [t["kind"] for t in checks["backups_taken"]["evidence"]["taken"]] == ["full", "incremental"]
    assert checks["backups"]["status"] == "pass"  # what it took, found in the stores
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


def _age(store: Path, days: float) -> None:
    """Every backup in `store` made `days` older: its label's START TIME moved back."""
    for label in store.glob("*/backup_label"):
        text = label.read_text()
        m = re.search(r"^START TIME: (\S+ \S+) UTC$", text, re.M)
        old = dt.datetime.fromisoformat(m[1]) - dt.timedelta(days=days)
        label.write_text(text.replace(m[0], f"START TIME: {old:%Y-%m-%d %H:%M:%S} UTC"))


def test_backups_taken_are_found_fresh_then_old(tmp_path):
    """`hospital-drill backup` fills the plan's stores (as `audit --take-backups` does, above); the
    next audit judges what is there (and restores its newest chain); once the labels say two days
    ago, the same stores are too old."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    p = subprocess.run([sys.executable, "-m", "harness.cli", "backup", "--out", str(tmp_path / "take")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    stores = tmp_path / "data" / "hospital-drill" / "backups" / "hospital"
    assert sorted(d.name for d in stores.iterdir()) == ["cloud", "local_disk", "offline_tape"]
    assert all(len(list((stores / s).iterdir())) == 2 for s in ("cloud", "local_disk", "offline_tape"))
    assert p.stdout.count(str(stores)) == 6  # where each copy went
    assert_nothing_left(tmp_path / "take")

    p = audit(tmp_path / "fresh", "--restore")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    checks = {c["name"]: c for c in json.loads((tmp_path / "fresh" / "audit.json").read_text())["checks"]}
    assert checks["backups_taken"]["status"] == "skipped"
    fresh = checks["backups"]
    assert fresh["status"] == "pass" and fresh["evidence"]["found"] == 6
    assert fresh["evidence"]["newest_incremental"]["age_seconds"] < 300
    assert [b["kind"] for b in checks["restore"]["evidence"]["chain"]] == ["full", "incremental"]
    assert checks["restore"]["status"] == "pass"

    for s in ("cloud", "local_disk", "offline_tape"):
        _age(stores / s, 2)
    p = audit(tmp_path / "old")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]  # high and medium: not critical
    report = json.loads((tmp_path / "old" / "audit.json").read_text())
    old = next(c for c in report["checks"] if c["name"] == "backups")
    assert sorted(f["severity"] for f in old["findings"]) == ["high", "medium"]
    full = next(f for f in old["findings"] if f["severity"] == "high")
    assert "the newest full backup" in full["message"] and "48h" in full["message"]
    assert full["evidence"]["age_seconds"] > 2 * 86400 and full["evidence"]["path"].startswith(str(stores))
    assert full["where"].endswith(tuple(f":{n}" for n in range(1, 400)))  # the plan's backups line
    assert report["score"] == 100 - 10 - 4
    assert_nothing_left(tmp_path / "old")
