"""The scoring policy: weights and costs are parameters of the one pure score function."""
from __future__ import annotations

import pytest

from harness.score.card import Finding, TargetResult
from harness.score.policy import WEIGHTS, credit, overall_score


def _t(id_: str, critical: bool, actual: float | None, target: float = 60.0) -> TargetResult:
    status = "met" if actual is not None and actual <= target else "missed"
    return TargetResult(id=id_, measure="detection", target=target, actual=actual, critical=critical,
                        status=status)


def test_weights_are_a_parameter():
    results = [_t("detect", True, 30.0), _t("notice", False, None)]  # critical met, other unmeasured
    default, bd = overall_score(results, True)
    assert [r["weight"] for r in bd["targets"]] == [WEIGHTS["critical"], WEIGHTS["other"]]
    assert default == round(80 * 2 / 3 + 20)  # 2 of 3 weight earned, plus the level
    even, bd = overall_score(results, True, weights={"critical": 1, "other": 1})
    assert even == 60 and [r["points"] for r in bd["targets"]] == [40.0, 0.0]


def test_credit_of_a_miss_falls_to_zero_at_twice_the_target():
    assert credit(_t("a", True, 60.0)) == 1.0
    assert credit(_t("a", True, 90.0)) == pytest.approx(0.25)
    assert credit(_t("a", True, 150.0)) == 0.0
    assert credit(_t("a", True, None)) == 0.0
    assert credit(_t("rpo", True, 5.0, target=0.0)) == 0.0  # a zero target: no room to scale


def test_costs_are_a_parameter_and_the_score_stays_in_range():
    f = Finding(id="F1", kind="split_brain", severity="critical", text="two primaries")
    assert overall_score([_t("a", True, 10.0)], True, [f])[0] == 75
    assert overall_score([_t("a", True, 10.0)], True, [f], costs={"split_brain": 500.0})[0] == 0
    assert overall_score([_t("a", True, 10.0)], True, [f], costs={})[0] == 100
