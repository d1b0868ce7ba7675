"""The score card: pure functions of the journal and the request records → per-target results and
ratings, the response level, patient impact, time series for the charts, RPO, findings with their
improvement plan, an overall score and a CI verdict.

This module names the score card's public parts; each lives in a module of its own:
- policy.py: ratings, weights, the overall score and the verdict;
- tallies.py: the one streaming pass over the request records (patient impact, series);
- facts.py: the journal's key moments and the reading of drill time;
- parts.py and targets.py: the card's parts and the targets' results, read off the journal;
- build.py: the whole card (`build_scorecard`) and `score_run`, the only one that reads files.
"""
from __future__ import annotations

from .build import DATA_FILES, build_scorecard, score_run
from .card import (AlertEntry, Finding, JourneyImpact, LevelResult, LongestWait, NotificationEntry,
                   Overview, PatientImpact, PhaseCounts, RpoResult, ScoreCard, Series, StepResult,
                   Strength, TargetResult, TimelineEntry)
from .policy import (COSTS, EXIT_CODES, LEVEL_SHARE, RATING_P, RATING_RULE, RATING_S, WEIGHTS,
                     implied_level, overall_score, rate, verdict_of)
from .tallies import bucket_for, tally, tally_records
from .texts import describe

__all__ = [
    "AlertEntry", "Finding", "JourneyImpact", "LevelResult", "LongestWait", "NotificationEntry",
    "Overview", "PatientImpact", "PhaseCounts", "RpoResult", "ScoreCard", "Series", "StepResult",
    "Strength", "TargetResult", "TimelineEntry", "build_scorecard", "describe", "implied_level",
    "overall_score", "rate", "score_run", "tally", "tally_records", "verdict_of", "RATING_RULE",
    "RATING_P", "RATING_S", "COSTS", "EXIT_CODES", "LEVEL_SHARE", "WEIGHTS", "DATA_FILES",
    "bucket_for",
]
