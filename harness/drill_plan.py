"""A drill's `plan:`: the hospital's emergency plan (harness/plan) that the drill takes its roster,
levels and endpoints from, so that the drill writes only what it exercises differently.

    plan: hospital                   # a shipped plan, by name (harness/catalog/plans)
    plan: ../plans/my-hospital.yaml  # or a plan file, relative to the drill file

Resolved when the drill loads, after `extends:` and before the drill's model is built: the plan's
`groups` become the drill's `teams`, its `levels` the drill's `levels`, and its endpoints and
standbys the drill's `stack` (`Plan.stack_config`, as the audit's live checks see them). The drill's
own fields are merged over them as `extends:` merges (mappings key by key, lists whole), so a drill
that names one team's roster or one level threshold keeps the rest from the plan. The drill as run
holds the result, with `plan` set to the plan file's full path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .catalog import PLANS, shipped as shipped_in
from .loader import YAML_SUFFIXES, Document, merge
from .models import Team
from .plan.models import Plan

FIELD = ("plan",)


def drill_fields(plan: Plan) -> dict[str, Any]:
    """What a plan gives a drill, as the drill would write it: teams, levels and stack."""
    teams = {group: staffed.model_dump(mode="json", include=set(Team.model_fields))
             for group, staffed in plan.groups.items()}
    return {"teams": teams,
            "levels": plan.levels.model_dump(mode="json", by_alias=True, exclude_none=True),
            # only what the plan sets: a drill's stack knob it does not mention stays the drill's
            "stack": plan.stack_config().model_dump(mode="json", by_alias=True, exclude_defaults=True)}


def _is_name(name: str) -> bool:
    return "/" not in name and "\\" not in name and Path(name).suffix.lower() not in YAML_SUFFIXES


def plan_path(doc: Document) -> Path:
    """The plan file that the drill's `plan` names, or an error on that field of the file that sets
    it (through `extends:`, a path is relative to that file)."""
    origin = doc.origin(FIELD)
    name = doc.data["plan"]
    if not isinstance(name, str) or not name.strip():
        raise origin.error("must be a shipped plan's name or the path of a plan file", FIELD)
    name = name.strip()
    if _is_name(name):
        shipped = shipped_in(PLANS)
        if name not in shipped:
            raise origin.error(f"no such plan {name!r} (shipped: {', '.join(sorted(shipped))}; or a "
                               "plan file relative to the drill)", FIELD)
        return shipped[name]
    path = origin.resolve(FIELD, name)
    if not path.exists():
        raise origin.error(f"no such plan {name!r} (looked at {path})", FIELD)
    return path.resolve()  # errors in the plan then name it plainly, not as drills/../plans/...


def apply_plan(doc: Document) -> Document:
    """Merge the drill's fields over those of the plan it names (none named: unchanged). The plan's
    own errors name the plan file and line; a plan that cannot be had is blamed on `plan`."""
    if doc.data.get("plan") is None:
        return doc
    path = plan_path(doc)
    referrer = (doc.origin(FIELD), FIELD)
    plan_doc = Document(path, referrer=referrer).extend()
    if "failure_classes" not in plan_doc.data:
        kind = "a drill" if "runbook" in plan_doc.data else "no plan"
        raise referrer[0].error(f"{path} is {kind}: a plan has groups, levels and failure_classes",
                                FIELD)
    plan = plan_doc.parse(Plan)
    merged = merge(drill_fields(plan), doc.data)
    doc.data = {key: merged[key] for key in [*doc.data, *merged]}  # the drill's own order first
    doc.data["plan"] = str(path.resolve())  # the drill as run names the file it took
    return doc
