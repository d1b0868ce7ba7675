"""Persona mixes of the plan's peak hours (plan `load_mixes`), named by a scenario's `load.mix`:
looked up in the drill's plan, refused with one located line when unknown."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from harness import cli
from harness.catalog import PLANS
from harness.load.profile import load_config, plan_mixes
from harness.models import LoadProfile
from harness.plan.load import load_plan

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = "scenarios/db-crash-morning-peak.yaml"
DRILL = "drills/morning-peak-db-crash.yaml"


@pytest.fixture
def tree(tmp_path) -> Path:
    for d in ("drills", "scenarios"):
        shutil.copytree(ROOT / d, tmp_path / d)
    return tmp_path


def validate(capsys, path: Path) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = cli.main(["validate", str(path)])
    return code, capsys.readouterr().err.splitlines()


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if text in line)


def share(personas: dict[str, int], *names: str) -> float:
    return sum(personas.get(n, 0) for n in names) / sum(personas.values())


def test_the_plan_s_morning_is_consultations_and_exams_its_evening_follow_ups_and_refills():
    mixes = plan_mixes(None)
    morning, evening = mixes["morning_peak"], mixes["evening"]
    assert morning.hours == "08:00-10:00"
    assert share(morning.personas, "consultation", "exam") > 0.6
    assert share(evening.personas, "followup", "prescription") > 0.6
    assert share(morning.personas, "followup", "prescription") < share(evening.personas, "followup",
                                                                        "prescription")


def test_a_named_mix_gives_the_load_its_weights_instead_of_the_scenario_s():
    mixes = plan_mixes(None)
    cfg = load_config(LoadProfile(mix="evening"), time_scale=60, seed=1, mixes=mixes)
    assert cfg["personas"] == mixes["evening"].personas
    assert load_config(LoadProfile(personas={"payment": 1}), time_scale=60, seed=1)["personas"] == \
        {"payment": 1}


def test_the_shipped_morning_peak_drill_validates(capsys):
    code, err = validate(capsys, ROOT / DRILL)
    assert code == 0, err


def test_an_unknown_mix_is_one_located_line_naming_the_known_ones(tree, capsys):
    path = tree / SCENARIO
    path.write_text(path.read_text(encoding="utf-8").replace("mix: morning_peak", "mix: brunch"),
                    encoding="utf-8")
    for target in (path, tree / DRILL):  # on its own, and as the drill's scenario
        code, err = validate(capsys, target)
        assert code == 2 and len(err) == 1, err
        where, _, why = err[0].removeprefix("hospital-drill: error: ").partition(": ")
        file, line = where.rsplit(":", 1)
        assert (Path(file).resolve(), int(line)) == (path.resolve(), line_of(path, "mix: brunch"))
        assert why == "load.mix: unknown mix 'brunch' (known: evening, midday, morning_peak, night)"


def test_the_mix_is_looked_up_in_the_drill_s_own_plan(tree, capsys):
    plan = yaml.safe_load((PLANS / "hospital.yaml").read_text(encoding="utf-8"))
    plan["load_mixes"] = {"flu_season": {"hours": "07:00-12:00",
                                         "personas": {"consultation": 5, "prescription": 3}}}
    (tree / "plans").mkdir()
    (tree / "plans" / "flu.yaml").write_text(yaml.safe_dump(plan, allow_unicode=True), encoding="utf-8")
    scenario = tree / SCENARIO
    scenario.write_text(scenario.read_text(encoding="utf-8").replace("mix: morning_peak",
                                                                      "mix: flu_season"), encoding="utf-8")
    drill = tree / DRILL
    drill.write_text(drill.read_text(encoding="utf-8") + "plan: ../plans/flu.yaml\n", encoding="utf-8")
    code, err = validate(capsys, drill)
    assert code == 0, err
    assert load_plan(tree / "plans" / "flu.yaml").plan.load_mixes["flu_season"].personas == \
        {"consultation": 5, "prescription": 3}
    # the shipped plan has no such mix: the scenario on its own is refused
    code, err = validate(capsys, scenario)
    assert code == 2 and "unknown mix 'flu_season'" in err[0]


def test_weights_and_a_mix_together_are_refused(tree, capsys):
    path = tree / SCENARIO
    path.write_text(path.read_text(encoding="utf-8").replace(
        "mix: morning_peak", "mix: morning_peak\n  personas: {exam: 1}"), encoding="utf-8")
    code, err = validate(capsys, path)
    assert code == 2 and err[0].endswith("load: give `personas` or a `mix`, not both"), err


def test_a_plan_mix_with_an_unknown_persona_or_hours_is_refused_at_its_line(tmp_path, capsys):
    text = (PLANS / "hospital.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "plan.yaml"
    bad.write_text(text.replace("personas: {followup: 4, prescription: 4,",
                                "personas: {visitor: 4, prescription: 4,")
                       .replace('hours: "11:30-13:30"', 'hours: "noon"'), encoding="utf-8")
    with pytest.raises(Exception) as got:
        load_plan(bad)
    lines = str(got.value).splitlines()
    assert any(f":{line_of(bad, 'visitor: 4')}: load_mixes.evening.personas: unknown persona "
               "'visitor'" in line for line in lines), lines
    noon = line_of(bad, '"noon"')
    assert any(f":{noon}: load_mixes.midday.hours" in line for line in lines), lines
