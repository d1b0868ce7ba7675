"""JSON Schema of drill, scenario and plan files, generated from the models, for editors (the
yaml-language-server modeline at the top of each shipped file) and for tools that look at a file
before the harness does.

    python -m harness.schema --write   # docs/schema/drill.schema.json, scenario.schema.json,
                                       # plan.schema.json
    python -m harness.schema --check   # exit 1 when those differ from what the models give

A schema says what a file may hold as written, which is wider than a model's Python types: a
duration is '90s' or a number, a trigger's `level` one level or a list, and a file that `extends:`
another may leave out what its base gives. It is looser than `hospital-drill validate` (fault and
action names and their parameters, the steps that triggers and targets name): it helps whoever
writes a drill; `validate` is the judge.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from .models import Drill, Scenario
from .plan.models import Plan

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schema"
MODELS: dict[str, type[BaseModel]] = {"drill": Drill, "scenario": Scenario, "plan": Plan}
DRAFT = "https://json-schema.org/draft/2020-12/schema"

_DURATION_TEXT = r"^\s*((\d+(\.\d+)?\s*(ms|s|m|h)\s*)+|\d+(\.\d+)?\s*)$"
DURATION = {"anyOf": [{"type": "number", "minimum": 0},
                      {"type": "string", "pattern": _DURATION_TEXT}],
            "description": "drill time: '250ms', '90s', '5m', '1h30m', or a number of seconds"}


def _written(parser: str, inner: dict[str, Any]) -> dict[str, Any] | None:
    """The written form a model's before-parser accepts, by the parser's name; None: as its type."""
    if parser == "drill_seconds":
        return dict(DURATION)
    if parser == "_at_start":  # BackupPlan.full
        return {"anyOf": [{"enum": ["start", "at start"]}, *DURATION["anyOf"]],
                "description": "'at start' (T+0) or a duration"}
    if parser == "_one_level":  # Trigger.level: `level: 1` means `level: [1]`
        arrays = [s for s in inner.get("anyOf", [inner]) if s.get("type") == "array"]
        if arrays:
            return {"anyOf": [arrays[0]["items"], *inner.get("anyOf", [inner])]}
    return None


class _WrittenForms(GenerateJsonSchema):
    def function_before_schema(self, schema):
        inner = super().function_before_schema(schema)
        fn = schema["function"]["function"]
        written = _written(getattr(fn, "__name__", ""), inner)
        return inner if written is None else written


def generate(kind: str) -> dict[str, Any]:
    """The schema of a `kind` file ('drill' or 'scenario')."""
    model = MODELS[kind]
    schema = model.model_json_schema(by_alias=True, schema_generator=_WrittenForms)
    schema["properties"] = {"extends": {
        "type": "string", "pattern": r"\.ya?ml$",
        "description": f"a {kind} file (relative to this one) whose fields this file overrides, "
                       "mapping by mapping; lists are replaced whole"}, **schema["properties"]}
    required = schema.pop("required", [])
    if required:  # a file that extends another may leave to it what its base gives
        schema["if"] = {"required": ["extends"]}
        schema["else"] = {"required": required}
    return {"$schema": DRAFT, "$id": f"{kind}.schema.json", **schema}


def render(kind: str) -> str:
    return json.dumps(generate(kind), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def stale(folder: Path = SCHEMA_DIR) -> list[Path]:
    """The schema files in `folder` that are missing or differ from what the models give."""
    behind = []
    for kind in MODELS:
        path = folder / f"{kind}.schema.json"
        if not path.is_file() or path.read_text(encoding="utf-8") != render(kind):
            behind.append(path)
    return behind


def write(folder: Path = SCHEMA_DIR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in MODELS:
        path = folder / f"{kind}.schema.json"
        path.write_text(render(kind), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.schema", description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write the schema files")
    mode.add_argument("--check", action="store_true", help="exit 1 when a schema file is stale")
    p.add_argument("--dir", type=Path, default=SCHEMA_DIR, help=f"where they live (default {SCHEMA_DIR})")
    args = p.parse_args(argv)
    if args.write:
        for path in write(args.dir):
            print(f"wrote {path}")
        return 0
    behind = stale(args.dir)
    for path in behind:
        print(f"{path}: stale: run python -m harness.schema --write", file=sys.stderr)
    return 1 if behind else 0


if __name__ == "__main__":
    sys.exit(main())
