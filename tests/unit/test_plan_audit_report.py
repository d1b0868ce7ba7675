"""`hospital-drill audit --static`: the readiness report in every format from the static checks
alone, the exit codes, and bad plan input as one line file:line: field: why (exit 2)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from harness.cli import main
from harness.plan.load import PLANS


def _broken_plan(tmp_path: Path) -> Path:
    """The shipped plan with its RPO target at 30 min against the hourly incrementals."""
    text = (PLANS / "hospital.yaml").read_text(encoding="utf-8")
    text = text.replace("measure: rpo, within: 1h}\n\nendpoints", "measure: rpo, within: 30m}\n\nendpoints")
    text = text.replace("../scenarios/", f"{PLANS.parent / 'scenarios'}/").replace(
        "../drills/", f"{PLANS.parent / 'drills'}/")
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_static_audit_of_the_shipped_plan_is_ready(tmp_path, capsys):
    out = tmp_path / "a"
    assert main(["audit", "--static", "--out", str(out)]) == 0
    data = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert (data["verdict"], data["score"]) == ("ready", 100.0)
    assert {c["status"] for c in data["checks"] if c["kind"] == "live"} == {"skipped"}
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
        ["backup_schedule"]
    skipped = [c.get("name") for c in suite.iter("testcase") if c.find("skipped") is not None]
    assert skipped == ["interfaces", "standbys", "backups_taken", "backups", "restore"]  # --static
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
