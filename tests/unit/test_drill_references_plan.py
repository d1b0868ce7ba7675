"""A drill's `plan:` (harness/drill_plan.py): the plan's roster, levels and endpoints become the
drill's, the drill's own fields win, a plan that cannot be had is one line on the drill's `plan`
field and a plan's own error one line on the plan file; every shipped drill takes the plan."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from harness import cli
from harness.catalog import yaml_files
from harness.loader import Document
from harness.models import Drill
from harness.plan.load import PLANS, load_plan
from harness.validate import load_drill

ROOT = Path(__file__).resolve().parents[2]
DRILLS = ROOT / "harness" / "catalog" / "drills"


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def tree(tmp_path) -> Path:
    """A project folder: a plan of its own (thresholds and a roster unlike the defaults, a backup
    address), the DB crash scenario, and a drill that names the plan and writes no roster."""
    plan = yaml.safe_load((PLANS / "hospital.yaml").read_text(encoding="utf-8"))
    plan["name"] = "county"
    plan["levels"].update(level1_above=0.6, level2_above=0.25, observe="2m")
    plan["levels"]["required"] = {3: [{"channel": "sms"}]}
    plan["groups"]["technical"]["core"][0]["name"] = "值班长"
    plan["endpoints"]["third_parties"]["payment"]["backup"] = "127.0.0.7:18091"
    _write(tmp_path / "plans" / "county.yaml", plan)
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    drill = yaml.safe_load((DRILLS / "db-crash-failover.yaml").read_text(encoding="utf-8"))
    drill["plan"] = "../plans/county.yaml"
    assert "teams" not in drill and "levels" not in drill
    _write(tmp_path / "drills" / "county-drill.yaml", drill)
    return tmp_path


def _drill(tree: Path, **fields) -> Path:
    data = yaml.safe_load((tree / "drills" / "county-drill.yaml").read_text(encoding="utf-8"))
    for key, value in fields.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return _write(tree / "drills" / "county-drill.yaml", data)


def _one_error(capsys, path: Path) -> str:
    capsys.readouterr()
    assert cli.main(["validate", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def _line(path: Path, pattern: str) -> int:
    return next(i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if re.search(pattern, text))


def test_the_plans_roster_levels_and_endpoints_become_the_drills(tree):
    plan = load_plan(tree / "plans" / "county.yaml").plan
    d = load_drill(tree / "drills" / "county-drill.yaml").drill
    assert d.plan == str((tree / "plans" / "county.yaml").resolve())
    assert set(d.teams) == set(plan.groups)
    for group, team in d.teams.items():
        assert team.core == plan.groups[group].core and team.backup == plan.groups[group].backup
    assert d.teams["technical"].core[0].name == "值班长"
    assert (d.levels.level1_above, d.levels.level2_above, d.levels.observe) == (0.6, 0.25, 120.0)
    assert [r.channel for r in d.levels.required.for_level(3)] == ["sms"]
    assert [r.channel for r in d.levels.required.for_level(2)] == ["official_account", "app_banner"]
    assert d.stack.backup_address("payment") == "127.0.0.7:18091"
    assert d.stack.replication.lag == 30.0  # the drill's own knob stays


def test_what_the_drill_writes_wins_mapping_by_mapping(tree):
    path = _drill(tree, levels={"level2_above": 0.3},
                  teams={"technical": {"core": [{"name": "夜班工程师", "skills": ["PostgreSQL"]}]}},
                  roster={"core_min": 1},  # a night shift of one: below the plan's 5 core
                  stack={"backup_addresses": {"payment": "127.0.0.8:18091"}})
    plan = load_plan(tree / "plans" / "county.yaml").plan
    d = load_drill(path).drill
    assert d.levels.level2_above == 0.3 and d.levels.level1_above == 0.6
    assert [m.name for m in d.teams["technical"].core] == ["夜班工程师"]
    assert d.teams["technical"].backup == plan.groups["technical"].backup  # not named: the plan's
    assert d.teams["clinical_support"].core == plan.groups["clinical_support"].core
    assert d.stack.backup_address("payment") == "127.0.0.8:18091"


def test_a_plan_named_through_extends_is_relative_to_the_file_that_names_it(tree):
    child = _write(tree / "drills" / "more" / "child.yaml",
                   {"extends": "../county-drill.yaml", "name": "child",
                    "scenario": "../../scenarios/db-crash.yaml"})
    d = load_drill(child).drill
    assert d.plan == str((tree / "plans" / "county.yaml").resolve())
    assert d.levels.level1_above == 0.6


def test_a_shipped_plan_by_name(tree):
    d = load_drill(_drill(tree, plan="hospital-wrong-backup-ip")).drill
    assert d.plan == str((PLANS / "hospital-wrong-backup-ip.yaml").resolve())
    assert d.stack.backup_address("insurance") == "127.0.0.9:18090"
    assert d.levels.level1_above == 0.5


def test_the_drill_as_run_is_the_resolved_one(tree):
    loaded = load_drill(tree / "drills" / "county-drill.yaml")
    as_run = tree / "run" / "drill.yaml"
    _write(as_run, loaded.drill_data)
    again = Document(as_run).parse(Drill)  # what `report` and `ack` read: no plan to look up
    assert again.model_dump() == loaded.drill.model_dump()
    assert "teams" in loaded.drill_data and loaded.drill_data["plan"] == loaded.drill.plan


@pytest.mark.parametrize("plan,why", [
    ("../plans/nowhere.yaml", r"no such plan '\.\./plans/nowhere\.yaml' \(looked at "),
    ("countyy", r"no such plan 'countyy' \(shipped: hospital, hospital-wrong-backup-ip"),
    ("../scenarios/db-crash.yaml", r"db-crash\.yaml is no plan"),
    ("county-drill.yaml", r"county-drill\.yaml is a drill"),
])
def test_a_plan_that_cannot_be_had_is_one_line_on_the_drills_plan_field(tree, capsys, plan, why):
    path = _drill(tree, plan=plan)
    line = _one_error(capsys, path)
    assert re.search(rf"{re.escape(str(path))}:{_line(path, '^plan:')}: plan: (.*/)?{why}", line), line


def test_a_broken_plan_is_one_line_on_the_plan_file(tree, capsys):
    plan_file = tree / "plans" / "county.yaml"
    data = yaml.safe_load(plan_file.read_text(encoding="utf-8"))
    data["levels"]["level2_above"] = "a fifth"
    _write(plan_file, data)
    line = _one_error(capsys, tree / "drills" / "county-drill.yaml")
    where = _line(plan_file, "level2_above")
    assert re.search(rf"{re.escape(str(plan_file))}:{where}: levels\.level2_above: ", line), line


def test_without_a_plan_a_drill_needs_its_own_teams(tree, capsys):
    whole = _raw(ROOT / "tests" / "unit" / "data" / "db-crash-whole.yaml")  # no failure class either
    path = _drill(tree, plan=..., failure_class=..., runbook=whole["runbook"], targets=whole["targets"])
    assert "teams: required field missing" in _one_error(capsys, path)


def _raw(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", yaml_files(DRILLS), ids=lambda p: p.stem)
def test_every_shipped_drill_takes_a_shipped_plan_and_writes_only_its_differences(path):
    raw = _raw(path)
    chain = [raw]
    while "extends" in chain[-1]:
        chain.append(_raw(path.parent / chain[-1]["extends"]))
    assert any("plan" in data for data in chain), "the drill names no plan, nor does what it extends"
    d = load_drill(path).drill
    assert Path(d.plan).resolve().parent == PLANS.resolve()
    plan = load_plan(d.plan).plan
    # a roster or level the drill writes must differ from the plan's: no copies
    for group, team in (raw.get("teams") or {}).items():
        ours = plan.groups[group].model_dump(include={"core", "backup"})
        assert {k: v for k, v in d.teams[group].model_dump().items() if k in team} != \
            {k: v for k, v in ours.items() if k in team}, f"teams.{group} copies the plan"
    for key in raw.get("levels") or {}:
        assert getattr(d.levels, key) != getattr(plan.levels, key), f"levels.{key} copies the plan"
