"""Checking an event against its model, and the event table generated for docs/internals.md."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .base import EVENTS, TABLE_BEGIN, TABLE_END, RESERVED, Event


def problem(type_: str, fields: dict[str, Any], *, on_lane: bool = False, wall: float = 0.0,
            drill: float | None = None) -> str | None:
    """What is wrong with an event a writer is about to record, in one line; None when it fits."""
    model = EVENTS.get(type_)
    if model is None:
        return f"{type_}: undeclared event type (declare it in harness/events/)"
    taken = [k for k in RESERVED if k in fields]
    if taken:
        return f"{type_}: {', '.join(taken)}: set by the journal, not by the writer"
    if on_lane and not model.on_lane:
        return f"{type_}: written on a lane but declared without `chain` (derive it from LaneEvent)"
    event = {"seq": 1, "wall": wall, "drill": drill, "type": type_, **fields}
    if on_lane:
        event["chain"] = {"lane": "check", "cause": None, "declared": 0.0, "real": 0.0}
    try:
        model.model_validate(event)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(event)"
        more = f" (+{e.error_count() - 1} more)" if e.error_count() > 1 else ""
        return f"{type_}: {where}: {first['msg']}{more}"
    return None


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    return text or str(annotation).replace("typing.", "")


def event_table() -> str:
    """The Markdown table of every event type: what it says, and each field with its meaning
    (`?`: may be absent), one field a line."""
    base = set(Event.model_fields) | {"chain"}
    rows = ["| type | when | fields |", "|---|---|---|"]
    for kind, model in EVENTS.items():
        fields = []
        for name, info in model.model_fields.items():
            if name in base:
                continue
            mark = "" if info.is_required() else "?"
            fields.append(f"`{info.alias or name}`{mark}: {info.description}")
        when = (model.__doc__ or "").strip()
        if model.on_lane:
            when += " On a lane: carries `chain`."
        rows.append(f"| `{kind}` | {_cell(when)} | {'<br>'.join(_cell(f) for f in fields) or '—'} |")
    return "\n".join(rows) + "\n"


def rewrite_doc(path: Path) -> bool:
    """Put the current table between the markers in `path`; True when the file changed."""
    text = path.read_text(encoding="utf-8")
    head, sep, rest = text.partition(TABLE_BEGIN)
    _, sep2, tail = rest.partition(TABLE_END)
    if not sep or not sep2:
        raise ValueError(f"{path}: the event table markers are missing")
    new = head + TABLE_BEGIN + "\n" + event_table() + TABLE_END + tail
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True


def table_in_doc(path: Path) -> str | None:
    """The table as it stands between the markers in `path` (None when they are missing)."""
    text = path.read_text(encoding="utf-8")
    _, sep, rest = text.partition(TABLE_BEGIN)
    inside, sep2, _ = rest.partition(TABLE_END)
    return inside.lstrip("\n") if sep and sep2 else None


def main(argv: list[str]) -> int:
    if argv[:1] == ["--write"] and len(argv) == 2:
        changed = rewrite_doc(Path(argv[1]))
        print(f"{argv[1]}: event table {'rewritten' if changed else 'already current'}")
        return 0
    if argv:
        print("usage: python -m harness.events [--write docs/internals.md]", file=sys.stderr)
        return 2
    sys.stdout.write(event_table())
    return 0
