"""A drill's `failure_class` (harness/drill_plan.py): the plan class's runbook and targets become the
drill's, its own steps and targets override them by id, `runbook_skip` / `targets_skip` leave class
items out, and a name that is not the class's is one located line (exit 2)."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from harness import cli
from harness.drill_plan import override_step
from harness.plan.load import PLANS, load_plan
from harness.validate import load_drill

ROOT = Path(__file__).resolve().parents[2]
CLASS = next(c for c in load_plan(PLANS / "hospital.yaml").plan.failure_classes
             if c.id == "database-crash")


def _drill(tmp_path: Path, text: str) -> Path:
    if not (tmp_path / "scenarios").exists():
        shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    path = tmp_path / "drills" / "d.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text("name: d\nscenario: ../scenarios/db-crash.yaml\nplan: hospital\n"
                    "failure_class: database-crash\n" + text, encoding="utf-8")
    return path


def _one_error(capsys, path: Path) -> str:
    capsys.readouterr()
    assert cli.main(["validate", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_the_class_alone_gives_the_runbook_and_targets(tmp_path):
    drill = load_drill(_drill(tmp_path, "")).drill
    assert [s.id for s in drill.runbook] == [s.id for s in CLASS.runbook]
    assert [t.id for t in drill.targets] == [t.id for t in CLASS.targets]
    promote = next(s for s in drill.runbook if s.id == "promote-same-city")
    assert promote.action == "promote_standby" and promote.with_ == {"standby": "pg-samecity"}
    assert promote.deadline == 180
    # the plan's `needs` says who can do it (the audit's); a drill step that needs someone waits
    # for a claim, which the drill asks for itself
    assert all(s.needs is None for s in drill.runbook)


def test_a_step_overrides_field_by_field_and_new_ids_are_added(tmp_path):
    drill = load_drill(_drill(tmp_path, """
runbook_skip: [official-account]
runbook:
  - {id: promote-same-city, deadline: 5m, needs: PostgreSQL}
  - {id: hospital-broadcast, with: {text: 全院广播}}
  - {id: back-entry, when: {after: clear-notice}}
  - {id: clear-notice, group: patient_communication, when: {after: promote-same-city},
     action: set_notice, with: {text: null}}
targets:
  - {id: dr-takeover, within: 5m}
  - {id: rpo, measure: rpo, within: 1h}
targets_skip: [core-recovered]
""")).drill
    steps = {s.id: s for s in drill.runbook}
    assert "official-account" not in steps
    assert list(steps)[-1] == "clear-notice"  # a new id after the class's steps
    promote = steps["promote-same-city"]
    assert (promote.deadline, promote.needs, promote.action) == (300, "PostgreSQL", "promote_standby")
    assert promote.with_ == {"standby": "pg-samecity"}
    broadcast = steps["hospital-broadcast"]
    assert broadcast.with_ == {"channel": "broadcast", "audience": "全院", "text": "全院广播"}
    assert broadcast.when.level == [1]  # untouched fields stay the plan's
    assert steps["back-entry"].when.after == "clear-notice" and steps["back-entry"].action == "back_entry"
    targets = {t.id: t for t in drill.targets}
    assert list(targets) == ["detect", "dr-takeover", "rpo"]
    assert targets["dr-takeover"].within == 300 and targets["dr-takeover"].step == "promote-same-city"


def test_another_kind_of_step_drops_the_plans_action_and_its_parameters():
    plan_step = {"id": "promote-same-city", "group": "technical", "action": "promote_standby",
                 "with": {"standby": "pg-samecity"}, "deadline": "3m"}
    mine = override_step(plan_step, {"id": "promote-same-city", "exec": {"argv": ["failover"]}})
    assert mine == {"id": "promote-same-city", "group": "technical", "deadline": "3m",
                    "exec": {"argv": ["failover"]}}
    # the same action: its parameters merge key by key
    assert override_step(plan_step, {"id": "promote-same-city", "with": {"timeout": "1m"}})["with"] \
        == {"standby": "pg-samecity", "timeout": "1m"}


def test_the_drill_as_run_loads_to_the_same_drill(tmp_path):
    loaded = load_drill(_drill(tmp_path, "runbook_skip: [back-entry]\nrunbook:\n"
                                         "  - {id: three-step-check, deadline: 2m}\n"))
    as_run = tmp_path / "drills" / "as-run.yaml"
    as_run.write_text(yaml.safe_dump(loaded.drill_data, allow_unicode=True), encoding="utf-8")
    again = load_drill(as_run).drill
    assert again.runbook == loaded.drill.runbook and again.targets == loaded.drill.targets


@pytest.mark.parametrize("text,expect", [
    ("", None),  # the class replaced below
    ("runbook_skip: [official-acount]\n",
     r"d.yaml:5: runbook_skip.0: class 'database-crash' has no step 'official-acount' to leave out"),
    ("targets_skip: [detection]\n", r"d.yaml:5: targets_skip.0: class 'database-crash' has no target"),
    ("runbook:\n  - {id: promote-samecity, deadline: 5m}\n",
     r"d.yaml:6: runbook.0.id: class 'database-crash' has no step 'promote-samecity' to override "
     r"\(its: three-step-check, .*\); a new one needs group, when"),
    ("targets:\n  - {id: dr-take-over, within: 5m}\n",
     r"d.yaml:6: targets.0.id: class 'database-crash' has no target 'dr-take-over' to override"),
    ("runbook:\n  - {id: hospital-broadcast, deadline: 1m}\n  - {id: hospital-broadcast, deadline: 2m}\n",
     r"d.yaml:7: runbook.1.id: duplicate step id 'hospital-broadcast'"),
    ("runbook_skip: [back-entry]\nrunbook:\n  - {id: back-entry, deadline: 1m}\n",
     r"d.yaml:7: runbook.0.id: 'back-entry' is both overridden and left out"),
    # an error in an override is reported at the drill's own index and line
    ("runbook:\n  - {id: three-step-check}\n  - {id: promote-same-city, deadline: soon}\n",
     r"d.yaml:7: runbook.1.deadline: not a duration"),
])
def test_a_name_the_class_lacks_is_one_located_line(tmp_path, capsys, text, expect):
    path = _drill(tmp_path, text)
    if expect is None:
        path.write_text(path.read_text(encoding="utf-8").replace("database-crash", "database-crsh"),
                        encoding="utf-8")
        expect = (r"d.yaml:4: failure_class: no failure class 'database-crsh' in plan 'hospital' "
                  r"\(its classes: database-crash, server-down, ")
    assert re.search(expect, _one_error(capsys, path))


def test_a_class_needs_the_plan_and_a_skip_needs_the_class(tmp_path, capsys):
    path = _drill(tmp_path, "runbook:\n  - {id: three-step-check, deadline: 2m}\n")
    path.write_text(path.read_text(encoding="utf-8").replace("plan: hospital\n", ""), encoding="utf-8")
    assert "d.yaml:3: failure_class: a failure class is the plan's" in _one_error(capsys, path)
    whole = tmp_path / "drills" / "whole.yaml"
    whole.write_text((ROOT / "tests/unit/data/db-crash-whole.yaml").read_text(encoding="utf-8")
                     + "runbook_skip: [back-entry]\n", encoding="utf-8")
    path = whole
    assert "runbook_skip: leaves out a failure class's ids: name the class" in _one_error(capsys, path)


def test_a_drill_written_whole_without_a_class_keeps_its_runbook(tmp_path):
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    (tmp_path / "drills").mkdir()
    whole = tmp_path / "drills" / "whole.yaml"
    shutil.copy(ROOT / "tests/unit/data/db-crash-whole.yaml", whole)
    drill = load_drill(whole).drill
    assert drill.failure_class is None
    assert "official-account" not in {s.id for s in drill.runbook}  # not the class's: its own
    assert [s.id for s in drill.runbook][-1] == "back-entry-check"


def test_the_shipped_db_crash_drill_is_the_class_with_its_differences():
    drill = load_drill(ROOT / "drills" / "db-crash-failover.yaml").drill
    ids = [s.id for s in drill.runbook]
    assert ids[:len(CLASS.runbook)] == [s.id for s in CLASS.runbook]
    assert ids[len(CLASS.runbook):] == ["clear-notice", "back-entry-check"]
    assert {s.id: s.golden_hour for s in drill.runbook if s.golden_hour} == {
        "three-step-check": "identify", "declare-level": "classify",
        "promote-same-city": "take_over", "patient-notice": "reassure"}
    scripted = load_drill(ROOT / "drills" / "db-crash-failover-scripted.yaml").drill
    promote = next(s for s in scripted.runbook if s.id == "promote-same-city")
    assert promote.kind == "exec" and promote.action is None and promote.with_ == {}
    assert not {"patient-notice", "hospital-broadcast"} & {s.id for s in scripted.runbook}


def test_setting_the_class_aside_sets_aside_the_skips_of_the_drill_extended(tmp_path, capsys):
    base = _drill(tmp_path, "runbook_skip: [official-account]\ntargets_skip: [core-recovered]\n")
    mine = base.parent / "mine.yaml"
    whole = ("runbook:\n  - {id: check, group: technical, when: {alert: any}, action: three_step_check}\n"
             "targets:\n  - {id: detect, measure: detection, within: 1m}\n")
    mine.write_text(f"extends: d.yaml\nname: mine\nfailure_class: null\n{whole}", encoding="utf-8")
    drill = load_drill(mine).drill
    assert [s.id for s in drill.runbook] == ["check"] and [t.id for t in drill.targets] == ["detect"]
    assert drill.runbook_skip == [] and drill.targets_skip == []
    # a skip the drill writes itself, without a class, is still a mistake it is told of
    mine.write_text(f"extends: d.yaml\nname: mine\nfailure_class: null\nrunbook_skip: [x]\n{whole}",
                    encoding="utf-8")
    assert "mine.yaml:4: runbook_skip: leaves out a failure class's ids" in _one_error(capsys, mine)
