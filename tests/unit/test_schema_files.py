"""The JSON Schema of drill and scenario files (harness/schema.py, docs/schema/): current with the
models, usable by a standard validator on every shipped file, and named by each file's modeline."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml
from pydantic import create_model

from harness import schema
from harness.drill_plan import drill_fields
from harness.loader import merge
from harness.models import Drill, Scenario
from harness.plan.load import PLANS, load_plan

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {"drill": sorted((ROOT / "drills").glob("*.yaml")),
           "scenario": sorted((ROOT / "scenarios").glob("*.yaml"))}
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(?P<path>\S+)$")


def _validator(kind: str) -> jsonschema.Draft202012Validator:
    doc = json.loads((schema.SCHEMA_DIR / f"{kind}.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(doc)
    return jsonschema.Draft202012Validator(doc)


def test_schema_files_are_current():
    assert schema.stale() == [], "run: python -m harness.schema --write"
    assert schema.main(["--check"]) == 0


def test_a_changed_model_makes_them_stale(tmp_path, monkeypatch, capsys):
    shutil.copytree(schema.SCHEMA_DIR, tmp_path / "schema")
    assert schema.main(["--check", "--dir", str(tmp_path / "schema")]) == 0
    # the drill model gains a field: the written schema no longer matches
    grown = create_model("Drill", __base__=Drill, colour=(str, "red"))
    monkeypatch.setitem(schema.MODELS, "drill", grown)
    assert schema.stale(tmp_path / "schema") == [tmp_path / "schema" / "drill.schema.json"]
    assert schema.main(["--check", "--dir", str(tmp_path / "schema")]) == 1
    assert "drill.schema.json: stale" in capsys.readouterr().err
    assert "colour" in schema.generate("drill")["properties"]
    schema.main(["--write", "--dir", str(tmp_path / "schema")])
    assert schema.main(["--check", "--dir", str(tmp_path / "schema")]) == 0


@pytest.mark.parametrize("kind", ["drill", "scenario"])
def test_every_shipped_file_validates_against_its_schema(kind):
    assert len(SHIPPED[kind]) >= 10
    validator = _validator(kind)
    for path in SHIPPED[kind]:
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator.iter_errors(yaml.safe_load(path.read_text(encoding="utf-8")))]
        assert errors == [], path


@pytest.mark.parametrize("kind", ["drill", "scenario"])
def test_every_shipped_file_names_its_schema(kind):
    for path in SHIPPED[kind]:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        m = MODELINE.match(first)
        assert m, (path, first)
        # joined as an editor joins it to the file as opened, at the repository's drills/ or scenarios/
        target = Path(os.path.normpath(ROOT / path.parent.name / m["path"]))
        assert target == schema.SCHEMA_DIR / f"{kind}.schema.json", path
        assert target.is_file()


def _db_crash_drill() -> dict:
    """The db-crash drill written whole (no failure class): every step and target in full."""
    whole = ROOT / "tests" / "unit" / "data" / "db-crash-whole.yaml"
    return yaml.safe_load(whole.read_text(encoding="utf-8"))


def test_the_schema_refuses_what_validate_refuses_in_shape():
    v = _validator("drill")
    ok = _db_crash_drill()
    assert not list(v.iter_errors(ok))
    typo = _db_crash_drill()
    typo["runbook"][0]["deadlne"] = "1m"
    bad_duration = _db_crash_drill()
    bad_duration["runbook"][0]["deadline"] = "one minute"
    bad_group = _db_crash_drill()
    bad_group["runbook"][0]["group"] = "kitchen"
    missing = _db_crash_drill()
    del missing["targets"]
    for broken, where in ((typo, ["runbook", 0]), (bad_duration, ["runbook", 0, "deadline"]),
                          (bad_group, ["runbook", 0, "group"]), (missing, [])):
        errors = list(v.iter_errors(broken))
        assert [list(e.absolute_path) for e in errors] == [where], [e.message for e in errors]


def test_written_forms_the_models_accept():
    """What a file may write that the Python type alone would not say: durations as text, one level
    for a list, 'at start', and a file that extends another leaving out what its base gives."""
    v = _validator("drill")
    d = _db_crash_drill()
    d["runbook"][0]["deadline"] = 90
    d["runbook"][1]["when"] = {"after": "three-step-check", "level": 1}
    d["stack"]["backups"] = {"full": "at start", "incremental_every": "1h30m"}
    assert not list(v.iter_errors(d))
    as_run = merge(drill_fields(load_plan(PLANS / "hospital.yaml").plan), d)  # its plan's teams
    assert Drill.model_validate(as_run).stack.backups.full == 0.0  # the models agree
    assert not list(v.iter_errors({"extends": "db-crash-failover.yaml", "name": "x"}))
    assert list(v.iter_errors({"name": "x"}))  # without a base, required fields are required
    s = _validator("scenario")
    assert not list(s.iter_errors({"extends": "db-crash.yaml", "warmup": "2m"}))
    assert list(s.iter_errors({"extends": "db-crash.yaml", "warmup": "-2m"}))
    assert Scenario.model_fields["warmup"]  # a duration field the check above leans on


def test_the_documented_example_is_a_valid_drill(tmp_path):
    from harness.validate import load_drill
    doc = (schema.SCHEMA_DIR / "README.md").read_text(encoding="utf-8")
    example = next(block for block in re.findall(r"```yaml\n(.*?)```", doc, re.S)
                   if block.startswith("# yaml-language-server:"))
    assert not list(_validator("drill").iter_errors(yaml.safe_load(example)))
    (tmp_path / "drills").mkdir()
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    (tmp_path / "drills" / "example.yaml").write_text(example, encoding="utf-8")
    assert load_drill(tmp_path / "drills" / "example.yaml").drill.name == "my-failover"
