"""The JSON Schema of score.json, generated from the score card's pydantic model.

    python -m harness.score.schema > docs/score.schema.json     # regenerate the published schema

tests/unit/test_score.py checks that the published file is what this generates, and that a real
score.json validates against it.
"""
from __future__ import annotations

import json
import sys

from .card import ScoreCard

SCHEMA_ID = "https://hospital-drill.invalid/schemas/score.schema.json"


def score_schema() -> dict:
    """ScoreCard's JSON Schema (draft 2020-12) as score.json is written (serialisation mode)."""
    schema = ScoreCard.model_json_schema(mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "hospital-drill score card (score.json)",
            **{k: v for k, v in schema.items() if k != "title"}}


def schema_text() -> str:
    return json.dumps(score_schema(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(schema_text())
