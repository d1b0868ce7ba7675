"""Load a plan file with the drills' loader: bounded YAML, `extends:`, every refused field as
`file:line: field: why` (exit 2). A bare name is a shipped plan (harness/catalog/plans)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..catalog import PLANS, find
from ..errors import InputError
from ..loader import Document, Loc
from .models import Plan

DEFAULT_PLAN = "hospital"


@dataclass
class LoadedPlan:
    plan: Plan
    doc: Document

    @property
    def path(self) -> Path:
        return self.doc.path

    def where(self, loc: Loc) -> str:
        """'file:line' of a field (or of its nearest parent the file sets)."""
        doc = self.doc.origin(loc)
        line = doc.line_of(loc)
        return f"{doc.path}:{line}" if line else str(doc.path)

    def resolve(self, name: str) -> Path:
        """A file the plan names, relative to the plan file."""
        return self.doc.path.parent / name

    def scenario_class(self, name: str) -> tuple[str | None, str | None]:
        """(the failure_class of the scenario file `name`, None), or (None, why it cannot be had)."""
        try:
            doc = Document(self.resolve(name)).extend()
        except InputError as e:
            return None, f"cannot be read ({e})"
        found = doc.data.get("failure_class")
        return (str(found), None) if found else (None, "has no failure_class")


def find_plan(name: str | None) -> Path:
    """The file a plan argument means: a path that exists wins; otherwise a bare name is a shipped
    plan; none given is the shipped `hospital` plan."""
    return find(name or DEFAULT_PLAN, PLANS)


def load_plan(path: Path | str) -> LoadedPlan:
    doc = Document(Path(path)).extend()
    return LoadedPlan(doc.parse(Plan), doc)
