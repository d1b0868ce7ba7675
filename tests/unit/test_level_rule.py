"""The one level rule (score/level.py): windows, SLO, lost writes — and the same answer at any scale."""
import pytest

from harness.models import Levels, PatientSlo
from harness.score.level import IncidentShares, affected_share, level_of

SLO = PatientSlo(latency=2.0, journeys={"payment": 5.0})


def rec(t, patient, ok=True, ms=20.0, journey="followup"):
    return {"t": t, "patient": patient, "ok": ok, "ms": ms, "journey": journey}


def test_affected_means_failed_or_slow_or_lost():
    recs = [rec(0.1, "A", ok=False), rec(0.2, "B", ms=2500), rec(0.3, "C", ms=4000, journey="payment"),
            rec(0.4, "D"), rec(5.0, "E", ok=False),  # E is outside the window
            {"t": 0.5, "patient": "BOT", "persona": "attacker", "ok": False, "ms": 1}]
    s = affected_share(recs, 0.0, 1.0, SLO, lost_patients=["D", "Z"])
    assert (s.active, s.affected, s.failed, s.slow, s.lost) == (5, 4, 1, 1, 2)
    assert level_of(s.share, Levels()) == 1


@pytest.mark.parametrize("share,level", [(0.2, 3), (0.21, 2), (0.5, 2), (0.51, 1)])
def test_thresholds_are_the_plans(share, level):
    assert level_of(share, Levels()) == level


@pytest.mark.parametrize("scale", [20, 60, 120])
def test_same_patients_same_level_at_any_scale(scale):
    """Think times are declared: a 60 s window holds the same journeys whatever the scale."""
    width = 60.0 / scale
    recs = []
    for i in range(10):  # each patient: one journey every 20 drill s; 4 of 10 fail in the first minute
        for k in range(6):
            t = 1000.0 + (k * 20.0 + i) / scale
            recs.append(rec(t, f"P{i}", ok=not (i < 4 and k < 3)))
    shares = IncidentShares(1000.0, 1000.0 + 120.0 / scale, width, SLO)
    for r in recs:
        shares.add(r)
    judged = shares.judged()
    assert judged.share == pytest.approx(0.4) and level_of(judged.share, Levels()) == 2
    assert shares.worst().share == pytest.approx(0.4)  # the second minute is milder


def test_the_judged_window_is_the_declared_one_and_a_worse_later_one_is_worst():
    recs = [rec(0.5, "A", ok=False), rec(0.6, "B"), rec(0.7, "C"), rec(0.8, "D"), rec(0.9, "E")]
    recs += [rec(1.5, p, ok=False) for p in "ABCD"] + [rec(1.6, "E")]
    shares = IncidentShares(0.0, 2.0, 1.0, SLO, declared=(0.0, 1.0))
    for r in recs:
        shares.add(r)
    assert shares.judged().share == pytest.approx(0.2)  # what the runbook saw
    assert shares.worst().share == pytest.approx(0.8)  # the incident grew after


def test_audit_sees_a_drop_in_rows_between_two_runs():
    from harness.monitor.data_rules import dropped
    assert dropped({"consultations": 120, "payments": 40}, {"consultations": 3, "payments": 41}) == {
        "consultations": [120, 3]}
    assert dropped({"consultations": None}, {"consultations": 3}) == {}  # not counted before: no claim


def test_a_level_declared_below_the_implied_one_is_a_critical_miss():
    from harness.score.card import LevelResult
    from harness.score.policy import verdict_of
    from harness.score.targets import _level_target
    base = {"id": "level", "title": "", "measure": "level", "critical": False, "step": None}
    under = _level_target(base, LevelResult(declared=3, implied=1, share=0.9, ok=False))
    over = _level_target(base, LevelResult(declared=1, implied=3, share=0.1, ok=False))
    assert under.critical and not under.met and "critical" in under.reason
    assert not over.critical and not over.met
    assert verdict_of([under], "completed") == "fail" and verdict_of([over], "completed") == "pass"


def test_an_incident_that_grew_after_the_declaration_is_a_finding():
    from harness.score.card import LevelResult
    from harness.score.findings import _grew
    from types import SimpleNamespace
    ctx = SimpleNamespace(level=LevelResult(declared=2, implied=2, ok=True, grew_to=1, grew_share=0.8,
                                            grew_at=120.0), level_owner="technical", out=[])
    _grew(ctx)
    assert len(ctx.out) == 1 and "grew to level 1" in ctx.out[0].text
