"""`hospital-drill audit --static`: the readiness report in every format from the static checks and
the backups in the plan's stores (nothing brought up), the exit codes, and bad plan input as one line
file:line: field: why (exit 2)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.plan.load import PLANS


@pytest.fixture(autouse=True)
def no_backups(tmp_path, monkeypatch):
    """The plan's stores (in the user's data directory) empty, whatever this machine holds."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def _broken_plan(tmp_path: Path) -> Path:
    """The shipped plan with its RPO target at 30 min against the hourly incrementals."""
    text = (PLANS / "hospital.yaml").read_text(encoding="utf-8")
    text = text.replace("measure: rpo, within: 1h}\n\nendpoints", "measure: rpo, within: 30m}\n\nendpoints")
    text = text.replace("../scenarios/", f"{PLANS.parent / 'scenarios'}/").replace(
        "../drills/", f"{PLANS.parent / 'drills'}/")
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_static_audit_of_the_shipped_plan_is_ready_but_finds_no_backups(tmp_path, capsys):
    out = tmp_path / "a"
    assert main(["audit", "--static", "--out", str(out)]) == 0
    data = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert data["verdict"] == "ready" and data["score"] < 100
    live = {c["name"]: c for c in data["checks"] if c["kind"] == "live"}
    assert {n for n, c in live.items() if c["status"] == "skipped"} == {
        "interfaces", "standbys", "backups_taken", "restore"}
    [finding] = live["backups"]["findings"]  # read without a stack: the stores are empty
    assert finding["severity"] == "high" and "no full backup in any store" in finding["message"]
    assert "audit ready" in capsys.readouterr().out


def test_critical_finding_is_exit_1_and_in_every_format(tmp_path):
    out = tmp_path / "a"
    assert main(["audit", str(_broken_plan(tmp_path)), "--static", "--out", str(out), "--quiet"]) == 1
    data = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert data["verdict"] == "not_ready" and data["findings"]["critical"] == 1
    [finding] = next(c for c in data["checks"] if c["name"] == "backup_schedule")["findings"]
    assert finding["where"].startswith(str(tmp_path / "plan.yaml") + ":")
    suite = ET.parse(out / "junit.xml").getroot()
    assert [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None] == \
        ["backup_schedule"]  # a critical finding fails; the empty stores' is high
    skipped = [c.get("name") for c in suite.iter("testcase") if c.find("skipped") is not None]
    assert skipped == ["interfaces", "standbys", "backups_taken", "restore"]  # --static
    for name in ("audit.md", "audit.html"):
        assert "RPO target 'rpo' is 30m" in (out / name).read_text(encoding="utf-8")


def test_bad_plan_is_one_line_and_exit_2(tmp_path, capsys):
    data = yaml.safe_load((PLANS / "hospital.yaml").read_text(encoding="utf-8"))
    data["backups"]["incremental_every"] = "every hour"
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert main(["audit", str(path), "--static", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"hospital-drill: error: {path}:")
    assert "backups.incremental_every: " in err[0]
    assert not (tmp_path / "a").exists()


def test_out_that_holds_a_run_is_refused(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "journal.jsonl").write_text("", encoding="utf-8")
    assert main(["audit", "--static", "--out", str(tmp_path / "a")]) == 2
    assert "--out: already holds a run" in capsys.readouterr().err
