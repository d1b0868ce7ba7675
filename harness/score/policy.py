"""The scoring policy: how a target is rated, what the overall score weighs, what the CI verdict is.

Pure functions of target results and findings; their weights and costs are parameters with the
defaults below, so a hospital that weighs differently passes its own.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .card import Finding, Rating, TargetResult, Verdict
from .level import level_of

EXIT_CODES: dict[str, int] = {"pass": 0, "fail": 1, "aborted": 3}
LEVEL_SHARE = 0.2  # share of the overall score for declaring the right response level
# weight of a time target in the score, by whether it is critical
WEIGHTS: dict[str, int] = {"critical": 2, "other": 1}
# points off the score for each finding of these kinds (a required plan step or channel missing;
# two primaries after a promotion)
COSTS: dict[str, float] = {"plan_step": 5.0, "split_brain": 25.0}

# ratings (HSEEP): P performed without challenges, S with some challenges, M with major
# challenges, U unable to be performed; from the target's headroom = margin ÷ target
RATING_P = 0.25
RATING_S = 0.10
RATING_RULE = (f"P: met with at least {RATING_P:.0%} of the target to spare (a zero target met "
               f"exactly; a level target met); S: met with {RATING_S:.0%}–{RATING_P:.0%} to spare; "
               f"M: met with less than {RATING_S:.0%} to spare; U: missed or not measured.")

implied_level = level_of  # the one rule's classification (score/level.py), by its old name


def rate(r: TargetResult) -> Rating:
    """The objective's rating from its measured margin; the rule is RATING_RULE.

    Edge cases: a target of 0 (e.g. RPO 0 s) met exactly is P (there is no share to spare);
    a level target is P when met and U otherwise (it has no margin)."""
    if not r.met or (r.unit != "level" and r.actual is None):
        return "U"
    if r.unit == "level" or not r.target:
        return "P"
    headroom = (r.margin or 0.0) / r.target
    if headroom >= RATING_P:
        return "P"
    if headroom >= RATING_S:
        return "S"
    return "M"


def credit(r: TargetResult) -> float:
    """A time target's share of its weight: met 1; missed 0.5 at the target falling linearly to 0
    at 2× the target; unmeasured, or a zero target missed, 0."""
    if r.status == "met":
        return 1.0
    if r.actual is None or not r.target or r.target <= 0:
        return 0.0
    return 0.5 * max(0.0, 1.0 - (r.actual - r.target) / r.target)


def overall_score(results: list[TargetResult], level_ok: bool | None, findings: Iterable[Finding] = (),
                  *, level_share: float = LEVEL_SHARE, costs: Mapping[str, float] = COSTS,
                  weights: Mapping[str, float] = WEIGHTS) -> tuple[int, dict[str, Any]]:
    """Score 0–100 and its breakdown.

    Rule:
    - each time target (measure ≠ 'level') that applies has a weight: weights['critical'] when it
      is critical, weights['other'] otherwise;
    - credit (see `credit`): met → 1; missed but measured → 0.5 at the target, falling linearly to
      0 at 2× the target (a miss always costs at least half its weight); unmeasured → 0;
    - the targets share 100 × (1 − level_share) points in proportion to weight × credit;
    - the response level is worth level_share × 100 points: right (True) → all, wrong (False) → 0;
    - then each finding whose kind has a cost in `costs` takes that many points off.

    Edge cases:
    - n/a targets weigh nothing: they are out of the score as they are out of the verdict;
    - level_ok None (nothing to judge it on) → its points go to the targets;
    - no time targets that apply → the level is worth all 100; neither → 0 (nothing measured,
      nothing earned) before costs; the score never goes below 0 nor above 100;
    - a missed target with within 0 (e.g. RPO 0 s) gets 0: there is no room to scale an overshoot;
    - 'level' targets are not weighed here (they are the level_ok part), so they never count twice.
    """
    weighed = [r for r in results if r.unit != "level" and r.status != "n/a"]
    weight = [weights["critical"] if r.critical else weights["other"] for r in weighed]
    total_weight = sum(weight)
    level_points = 0.0 if level_ok is None else (100.0 if not weighed else 100.0 * level_share)
    target_points = (100.0 - level_points) if weighed else 0.0
    rows, points = [], 0.0
    for r, w in zip(weighed, weight):
        c = credit(r)
        p = target_points * w * c / total_weight
        points += p
        rows.append({"id": r.id, "weight": w, "credit": round(c, 4), "points": round(p, 2)})
    lp = level_points if level_ok else 0.0
    points += lp
    deductions = [{"finding": f.id, "kind": f.kind, "text": f.text, "points": -costs[f.kind]}
                  for f in findings if f.kind in costs]
    points += sum(d["points"] for d in deductions)
    score = max(0, min(100, round(points)))
    return score, {"targets": rows, "target_points": round(target_points, 2),
                   "level": {"ok": level_ok, "max": round(level_points, 2), "points": round(lp, 2)},
                   "not_applicable": [r.id for r in results if r.status == "n/a"],
                   "deductions": deductions, "score": score}


def verdict_of(results: list[TargetResult], status: str) -> Verdict:
    """aborted when the run did not complete (status aborted, or no run.finished at all);
    else pass when no critical target is missed (n/a ones did not apply), fail otherwise."""
    if status != "completed":
        return "aborted"
    return "pass" if all(r.status != "missed" for r in results if r.critical) else "fail"
