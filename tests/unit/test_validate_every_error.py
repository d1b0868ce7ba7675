"""`validate` reports every error of a file, and of the scenario a drill names, each as its own
`file:line: field: why` line; `run` refuses the same input with every error and exit 2."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import cli
from harness.errors import InputError
from harness.loader import InputErrors
from harness.validate import load_drill


ERROR = re.compile(r"^hospital-drill: error: (?P<file>[^:]+):(?P<line>\d+): (?P<field>[^: ]+): (?P<why>.+)$")


def _edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def _line(path, text) -> int:
    """The line of `path` that holds `text` (1-based)."""
    hits = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line]
    assert len(hits) == 1, (text, hits)
    return hits[0]


def _file(error: re.Match) -> Path:
    return Path(error["file"]).resolve()  # a scenario is named as the drill reaches it (drills/../)


def _errors(capsys, *paths) -> tuple[int, list[re.Match], list[str]]:
    capsys.readouterr()
    code = cli.main(["validate", *map(str, paths)])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    matches = [ERROR.match(line) for line in lines]
    assert all(matches), lines  # every line is one located error
    return code, matches, out.splitlines()


def _three_mistakes(drill):
    """A schema error, an unknown action (a registry's check) and a target naming no step."""
    _edit(drill, "time_scale: 60", "time_scale: 0")
    _edit(drill, "action: promote_standby", "action: promote_everything")
    _edit(drill, "step: promote-same-city, within: 3m", "step: promote-mars, within: 3m")
    return [(_line(drill, "time_scale: 0"), "time_scale", "greater than 0"),
            (_line(drill, "action: promote_everything"), "runbook.2.action", "unknown action"),
            (_line(drill, "step: promote-mars"), "targets.1.step", "unknown step 'promote-mars'")]


def test_three_independent_mistakes_give_three_located_lines(whole_drill_copy, capsys):
    expected = _three_mistakes(whole_drill_copy)
    code, errors, _ = _errors(capsys, whole_drill_copy)
    assert code == 2
    assert [(int(e["line"]), e["field"]) for e in errors] == [(line, field) for line, field, _ in expected]
    for e, (_, _, why) in zip(errors, expected):
        assert e["file"] == str(whole_drill_copy) and why in e["why"], e.group(0)


def test_the_library_raises_them_together(whole_drill_copy):
    expected = _three_mistakes(whole_drill_copy)
    with pytest.raises(InputErrors) as e:
        load_drill(whole_drill_copy)
    assert [x.field for x in e.value.errors] == [field for _, field, _ in expected]
    assert str(e.value).splitlines() == [str(x) for x in e.value.errors]
    assert isinstance(e.value, InputError)  # every caller of load_drill still exits 2


def _refused(capsys, drill) -> list[re.Match]:
    """The errors `validate` gives the drill (and its scenario), which it refuses with exit 2."""
    code, errors, _ = _errors(capsys, drill)
    assert code == 2
    return errors


def test_the_drills_errors_and_its_scenarios(whole_drill_copy, capsys):
    scenario = whole_drill_copy.parent.parent / "scenarios" / "db-crash.yaml"
    _edit(whole_drill_copy, "action: promote_standby", "action: promote_everything")
    _edit(scenario, "type: db_crash", "type: db_crahs")
    _edit(scenario, "warmup: 4m", "warmup: soon")
    errors = _refused(capsys, whole_drill_copy)
    assert [(_file(e), e["field"]) for e in errors] == [
        (whole_drill_copy, "runbook.2.action"),
        (scenario, "warmup"),  # the scenario's, by line
        (scenario, "faults.0.type")]
    assert int(errors[1]["line"]) == _line(scenario, "warmup: soon")
    assert int(errors[2]["line"]) == _line(scenario, "type: db_crahs")


def test_a_broken_step_is_left_out_the_others_are_checked(whole_drill_copy, capsys):
    # step 1 has a field of its own wrong: its action cannot be checked; step 2's still is, and a
    # target naming step 1 is no error (its id parsed)
    _edit(whole_drill_copy, "action: declare_level", "action: declare_level\n    colour: red")
    _edit(whole_drill_copy, "with: {standby: pg-samecity}", "with: {standby: pg-mars}")
    code, errors, _ = _errors(capsys, whole_drill_copy)
    assert code == 2
    assert [e["field"] for e in errors] == ["runbook.1.colour", "runbook.2.with.standby"]
    assert "unknown postgres 'pg-mars'" in errors[1]["why"]


def test_every_wrong_parameter_of_a_fault_and_of_an_action(whole_drill_copy, capsys):
    # a fault's params and target, and an action's `with`: each wrong field its own line, not the
    # first of them only
    scenario = whole_drill_copy.parent.parent / "scenarios" / "db-crash.yaml"
    _edit(scenario, "    target: pg-primary", "    target: pg-mars\n    params: {mode: fast, when: soon}")
    _edit(whole_drill_copy, "with: {standby: pg-samecity}", "with: {standby: pg-mars, hurry: true}")
    errors = _refused(capsys, whole_drill_copy)
    assert [(_file(e), e["field"]) for e in errors] == [
        (whole_drill_copy, "runbook.2.with.hurry"),
        (scenario, "faults.0.target"),  # a file's errors by line
        (scenario, "faults.0.params.mode"),
        (scenario, "faults.0.params.when")]
    assert "unknown postgres 'pg-mars'" in errors[1]["why"]


def test_a_broken_step_id_is_no_unknown_step_for_its_referrers(whole_drill_copy, capsys):
    _edit(whole_drill_copy, "id: promote-same-city", "id: ../promote")
    code, errors, _ = _errors(capsys, whole_drill_copy)
    assert code == 2
    assert [e["field"] for e in errors] == ["runbook.2.id"]  # not also the target and trigger naming it


def test_several_files_each_reported(whole_drill_copy, repo_root, capsys):
    scenario = whole_drill_copy.parent.parent / "scenarios" / "db-crash.yaml"
    good = repo_root / "scenarios" / "db-crash.yaml"
    _edit(scenario, "users: 24", "users: lots")
    _edit(scenario, "spawn_rate: 24", "spawn_rate: 24\n  stampede: true")
    _edit(whole_drill_copy, "time_scale: 60", "time_scale: 0")
    code, errors, out = _errors(capsys, scenario, good, whole_drill_copy)
    assert code == 2
    assert [(_file(e), e["field"]) for e in errors] == [
        (scenario, "load.users"), (scenario, "load.stampede"),  # the scenario on its own
        (whole_drill_copy, "time_scale"),  # the drill, then its scenario again
        (scenario, "load.users"), (scenario, "load.stampede")]
    assert out == [f"{good}: ok — scenario db-crash (database): 1 fault(s)"]


def test_run_refuses_with_every_error_and_starts_nothing(whole_drill_copy, tmp_path, capsys):
    expected = _three_mistakes(whole_drill_copy)
    out = tmp_path / "run"
    capsys.readouterr()
    assert cli.main(["run", str(whole_drill_copy), "--out", str(out)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert [ERROR.match(line)["field"] for line in lines] == [field for _, field, _ in expected]
    assert not out.exists()
