"""The audit's static checks on variants of the shipped plan, each broken in one way: the finding,
its severity and the file:line it points at."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.errors import InputError
from harness.plan.findings import CheckResult, readiness
from harness.plan.load import PLANS, find_plan, load_plan
from harness.plan.static import CHECKS, run_static

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = PLANS / "hospital.yaml"


def _data() -> dict:
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    data = json.loads(json.dumps(data))  # YAML aliases share objects: edit each copy on its own
    for fc in data["failure_classes"]:  # the plan's files, from wherever the variant is written
        fc["scenarios"] = [str((SHIPPED.parent / s).resolve()) for s in fc["scenarios"]]
        fc["drills"] = [str((SHIPPED.parent / d).resolve()) for d in fc["drills"]]
    return data


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _findings(tmp_path: Path, data: dict, check: str) -> list:
    loaded = load_plan(_write(tmp_path, data))
    return CHECKS[check][1](loaded.plan, loaded)


def _cls(data: dict, cid: str) -> dict:
    return next(fc for fc in data["failure_classes"] if fc["id"] == cid)


def test_shipped_plan_passes_every_static_check():
    loaded = load_plan(find_plan(None))
    assert loaded.path == SHIPPED
    assert len(loaded.plan.failure_classes) == 12
    results = run_static(loaded.plan, loaded)
    assert [f.line() for r in results for f in r.findings] == []
    assert readiness(results)[0] == 100.0


def test_plan_without_level1_hotline_step(tmp_path):
    data = _data()
    fc = _cls(data, "database-crash")
    fc["runbook"] = [s for s in fc["runbook"] if s["id"] != "emergency-hotline"]
    found = _findings(tmp_path, data, "channels")
    assert len(found) == 1
    f = found[0]
    assert f.severity == "critical"
    assert f.evidence == {"failure_class": "database-crash", "level": 1, "requires": "channel:hotline"}
    assert "hotline" in f.message and "level 1" in f.message
    line = int(f.where.rsplit(":", 1)[1])
    assert "runbook:" in _write(tmp_path, data).read_text(encoding="utf-8").splitlines()[line - 1]


def test_hotline_step_that_runs_only_at_level2_does_not_count(tmp_path):
    data = _data()
    step = next(s for s in _cls(data, "server-down")["runbook"] if s["id"] == "emergency-hotline")
    step["when"]["level"] = 2
    found = _findings(tmp_path, data, "channels")
    assert [f.evidence["failure_class"] for f in found] == ["server-down"]


def test_technical_group_with_nobody_skilled_in_postgresql(tmp_path):
    data = _data()
    for member in (*data["groups"]["technical"]["core"], *data["groups"]["technical"]["backup"]):
        member["skills"] = [s for s in member.get("skills", []) if s != "PostgreSQL"]
    found = _findings(tmp_path, data, "skills")
    pg = [f for f in found if f.evidence["needs"] == "PostgreSQL"]
    assert len(pg) == 1 and pg[0].severity == "critical"
    assert pg[0].evidence["members"] == []
    assert {"database-crash/promote-same-city", "power-loss/promote-same-city"} <= set(pg[0].evidence["steps"])
    assert "nobody in technical" in pg[0].message
    # the one DBA left: a finding of its own, medium (no cover)
    data["groups"]["technical"]["backup"][0]["skills"].append("PostgreSQL")
    again = [f for f in _findings(tmp_path, data, "skills") if f.evidence["needs"] == "PostgreSQL"]
    assert [(f.severity, f.evidence["members"]) for f in again] == [("medium", ["杨帆"])]


def test_hourly_incremental_against_a_30_minute_rpo_target(tmp_path):
    data = _data()
    data["targets"] = [t if t["id"] != "rpo" else {**t, "within": "30m"} for t in data["targets"]]
    found = _findings(tmp_path, data, "backup_schedule")
    assert len(found) == 1
    f = found[0]
    assert f.severity == "critical"
    assert f.evidence["interval"] == 3600 and f.evidence["within"] == 1800
    assert "incremental backup every 1h" in f.message and "30m" in f.message
    # a half-hourly incremental meets it
    data["backups"]["incremental_every"] = "30m"
    assert _findings(tmp_path, data, "backup_schedule") == []


def test_rpo_of_a_class_that_restores_from_backups(tmp_path):
    data = _data()
    rpo = next(t for t in _cls(data, "data-deletion")["targets"] if t["id"] == "rpo")
    rpo["within"] = "20m"
    found = _findings(tmp_path, data, "backup_schedule")
    assert [f.evidence["target"] for f in found] == ["rpo"]
    assert found[0].message.startswith("data-deletion:")


def test_failure_class_without_a_runbook(tmp_path):
    data = _data()
    fc = _cls(data, "malicious-attack")
    fc["runbook"], fc["targets"] = [], [{"id": "detect", "measure": "detection", "within": "1m"},
                                        {"id": "core", "measure": "recovery", "within": "30m"}]
    found = _findings(tmp_path, data, "coverage")
    assert [(f.severity, f.evidence) for f in found] == [("critical", {"failure_class": "malicious-attack"})]
    assert "no runbook" in found[0].message


def test_failure_class_without_a_scenario_or_with_a_wrong_one(tmp_path):
    data = _data()
    _cls(data, "false-alarm")["scenarios"] = []
    _cls(data, "power-loss")["scenarios"] = [str(ROOT / "scenarios" / "db-crash.yaml")]
    found = {f.evidence.get("failure_class"): f for f in _findings(tmp_path, data, "coverage")}
    assert found["false-alarm"].severity == "critical"
    wrong = next(f for f in _findings(tmp_path, data, "coverage") if "scenario_class" in f.evidence)
    assert (wrong.severity, wrong.evidence["scenario_class"]) == ("high", "database")


def test_roster_short_of_its_minimum(tmp_path):
    data = _data()
    data["groups"]["clinical_support"]["backup"] = data["groups"]["clinical_support"]["backup"][:1]
    found = _findings(tmp_path, data, "roster")
    assert [(f.severity, f.evidence) for f in found] == [
        ("high", {"group": "clinical_support", "backup": 1, "minimum": 3})]
    data["groups"]["clinical_support"]["minimum"] = {"core": 5, "backup": 1}
    assert _findings(tmp_path, data, "roster") == []


def test_owner_group_missing(tmp_path):
    data = _data()
    del data["groups"]["clinical_support"]
    found = _findings(tmp_path, data, "owner_groups")
    assert found[0].evidence == {"group": "clinical_support"}
    steps = {f.evidence["step"] for f in found[1:]}
    assert steps == {"offline-reception", "back-entry"}
    assert all(f.severity == "critical" for f in found[1:])


def test_targets_looser_than_the_plan_and_missing_steps(tmp_path):
    data = _data()
    fc = _cls(data, "server-down")
    fc["targets"] = [{"id": "detect", "measure": "detection", "within": "5m"},
                     {"id": "gone", "measure": "step", "step": "no-such-step", "within": "3m"}]
    found = _findings(tmp_path, data, "targets")
    assert any("no recovery target" in f.message for f in found)
    assert any(f.evidence.get("plan_within") == 60 and f.evidence["within"] == 300 for f in found)
    assert any(f.severity == "critical" and f.evidence.get("step") == "no-such-step" for f in found)
    assert len(found) == 3


def test_contradicting_triggers(tmp_path):
    data = _data()
    _cls(data, "server-down")["trigger"]["alerts"] = ["db_unreachable", "synthetic_journey_failed"]
    _cls(data, "server-down")["level"] = 2
    _cls(data, "power-loss")["trigger"]["alerts"].append("no_such_alert")
    data["levels"]["level2_above"] = 0.6
    found = _findings(tmp_path, data, "triggers")
    assert any(f.evidence.get("classes") == ["database-crash", "server-down"] for f in found)
    assert any(f.evidence.get("alert") == "no_such_alert" and f.severity == "high" for f in found)
    assert any(f.severity == "critical" and "level 1 must be" in f.message for f in found)


def test_bad_plan_field_is_file_line_field_why(tmp_path):
    data = _data()
    data["groups"]["technical"]["core"][0]["skils"] = ["typo"]
    with pytest.raises(InputError) as e:
        load_plan(_write(tmp_path, data))
    assert str(e.value).startswith(f"{tmp_path / 'plan.yaml'}:")
    assert "groups.technical.core.0.skils: unknown field" in str(e.value)


def test_readiness_score():
    from harness.plan.findings import Finding
    ok = CheckResult("a", "a", "static")
    bad = CheckResult("b", "b", "static", [Finding("b", "critical", "x"), Finding("b", "low", "y")])
    skipped = CheckResult("c", "c", "live", skipped="not asked")
    assert readiness([ok, skipped]) == (100.0, {"critical": 0, "high": 0, "medium": 0, "low": 0})
    assert readiness([ok, bad])[0] == 74.0
    assert readiness([skipped])[0] == 0.0
    assert (ok.status, bad.status, skipped.status) == ("pass", "fail", "skipped")


def test_shipped_plan_is_valid_under_its_json_schema():
    import os
    import re

    import jsonschema
    from harness import schema
    assert schema.stale() == []
    validator = jsonschema.Draft202012Validator(schema.generate("plan"))
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(SHIPPED.read_text(encoding="utf-8")))]
    assert errors == []
    modeline = re.match(r"# yaml-language-server: \$schema=(\S+)", SHIPPED.read_text(encoding="utf-8"))
    # as an editor resolves it from the repository's plans/ folder
    assert Path(os.path.normpath(ROOT / "plans" / modeline[1])) == schema.SCHEMA_DIR / "plan.schema.json"
