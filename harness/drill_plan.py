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

A drill that also names one of the plan's failure classes (`failure_class: database-crash`) takes
the class's runbook and targets (docs/audit.md, "Drills and the plan"): each of the drill's steps
and targets with a class id overrides that one field by field, a new id is added after the
class's, and `runbook_skip` / `targets_skip` leave class ids out. The plan's `needs` and `channel` stay the
plan's: a drill step's `needs` makes it wait for a person's claim, which the drill asks for itself.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .catalog import PLANS, shipped as shipped_in
from .checks import slug
from .errors import InputError
from .loader import YAML_SUFFIXES, Document, merge
from .models import Team
from .plan.models import Plan

FIELD = ("plan",)
CLASS = ("failure_class",)
KINDS = ("action", "manual", "exec", "http")  # a step does exactly one of these
PLAN_ONLY = ("needs", "channel")  # the audit's (who can do it, what it tells), not the drill's
# what a new step or target needs besides its id: one the drill means as an override lacks them
NEW_STEP, NEW_TARGET = ("group", "when"), ("measure",)


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
        if doc.data.get("failure_class") is not None:
            raise doc.error("a failure class is the plan's: name the plan too (plan:)", CLASS)
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
    apply_class(doc, plan, plan_doc)
    doc.data["plan"] = str(path.resolve())  # the drill as run names the file it took
    return doc


def override_step(base: dict, over: dict) -> dict:
    """A class step with a drill's step of the same id over it: each field the drill writes replaces
    the plan's, but for `with`, merged key by key while the step keeps its action; a step that does
    something else (another of `KINDS`) drops the plan's kind and its `with`."""
    if any(k in over for k in KINDS):
        base = {k: v for k, v in base.items() if k not in (*KINDS, "with")}
    out = {**base, **over}
    if isinstance(base.get("with"), dict) and isinstance(over.get("with"), dict):
        out["with"] = merge(base["with"], over["with"])
    return out


def _overlay(doc: Document, field: str, theirs: list[dict], new_needs: tuple[str, ...],
             override, fc: str) -> tuple[list, list[int | None]]:
    """The class's list (`runbook` or `targets`) with the drill's over it by id, its skips left out,
    and where each item stands in the drill's own list (None: the class's). Errors: a skip or an
    unfinished item that names no class id."""
    skip_field = f"{field}_skip"
    ids = [item["id"] for item in theirs]
    known = f"class {fc!r} has"
    listed = ", ".join(ids)
    skips = doc.data.get(skip_field) or []
    if not isinstance(skips, list):
        raise doc.error("must be a list of ids", (skip_field,))
    for i, name in enumerate(skips):
        if name not in ids:
            raise doc.error(f"{known} no {_noun(field)} {name!r} to leave out (its: {listed})",
                            (skip_field, i))
    mine = doc.data.get(field) or []
    if not isinstance(mine, list):
        return mine, []  # the model says why
    out = {item["id"]: dict(item) for item in theirs if item["id"] not in skips}
    came_from: dict[str, int] = {}
    for i, item in enumerate(mine):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            out[f"#{i}"] = item  # the model says why
            came_from[f"#{i}"] = i
            continue
        name = item["id"]
        try:
            slug(name)
        except ValueError as e:  # before it is matched: a bad id is one error, not a step's worth
            raise doc.error(str(e), (field, i, "id")) from None
        if name in came_from:
            raise doc.error(f"duplicate {_noun(field)} id {name!r}", (field, i, "id"))
        if name in skips:
            raise doc.error(f"{name!r} is both overridden and left out ({skip_field})", (field, i, "id"))
        if name in out:
            out[name] = override(out[name], item)
        elif all(k in item for k in new_needs):
            out[name] = item
        else:
            raise doc.error(f"{known} no {_noun(field)} {name!r} to override (its: {listed}); a new "
                            f"one needs {', '.join(new_needs)}", (field, i, "id"))
        came_from[name] = i
    return list(out.values()), [came_from.get(k) for k in out]


def _noun(field: str) -> str:
    return "step" if field == "runbook" else "target"


def _as_written(doc: Document, origins: dict[str, list[int | None]], ids: dict[str, list]) -> None:
    """Errors of the resolved drill named as the file writes them: a resolved step or target at
    the index it has in the drill's own list (its line with it); a class item's at `failure_class`,
    by id."""
    error = doc.error

    def located(message: str, loc) -> InputError:
        loc = tuple(loc)
        if len(loc) > 1 and loc[0] in origins and isinstance(loc[1], int) \
                and loc[1] < len(origins[loc[0]]):
            mine = origins[loc[0]][loc[1]]
            if mine is None:
                what = f"{loc[0]} {ids[loc[0]][loc[1]]!r} from the class"
                rest = ".".join(str(p) for p in loc[2:])
                return error(f"{what}{': ' + rest if rest else ''}: {message}", CLASS)
            loc = (loc[0], mine, *loc[2:])
        return error(message, loc)

    doc.error = located  # type: ignore[method-assign]


def _depth(doc: Document, of: Document) -> int:
    """How far up the `extends` chain from `doc` the file `of` is (0: doc itself)."""
    depth = 0
    while doc is not of and doc.base is not None:
        doc, depth = doc.base, depth + 1
    return depth


def apply_class(doc: Document, plan: Plan, plan_doc: Document) -> None:
    """The drill's `failure_class`: the class's runbook and targets under the drill's own."""
    name = doc.data.get("failure_class")
    if name is None:
        for skip in ("runbook_skip", "targets_skip"):
            if not doc.data.get(skip):
                continue
            # a skip of the drill this one extends went with the class this one set aside: dropped
            if _depth(doc, doc.origin((skip,))) > _depth(doc, doc.origin(("failure_class",))):
                doc.data[skip] = []
                continue
            raise doc.error("leaves out a failure class's ids: name the class (failure_class)",
                            (skip,))
        return
    classes = [fc.id for fc in plan.failure_classes]
    if name not in classes:
        raise doc.error(f"no failure class {name!r} in plan {plan.name!r} (its "
                        f"classes: {', '.join(classes)})", CLASS)
    index = classes.index(name)
    raw = plan_doc.data["failure_classes"][index]
    steps = [{k: v for k, v in step.items() if k not in PLAN_ONLY} for step in raw.get("runbook") or []]
    targets = [dict(t) for t in raw.get("targets") or []]
    # the plan's ids as its model reads them (slugged), so that the drill's match
    for item, parsed in [*zip(steps, plan.failure_classes[index].runbook),
                         *zip(targets, plan.failure_classes[index].targets)]:
        item["id"] = parsed.id
    origins: dict[str, list[int | None]] = {}
    doc.data["runbook"], origins["runbook"] = _overlay(doc, "runbook", steps, NEW_STEP,
                                                       override_step, name)
    doc.data["targets"], origins["targets"] = _overlay(doc, "targets", targets, NEW_TARGET,
                                                       lambda base, over: {**base, **over}, name)
    ids = {f: [item.get("id") if isinstance(item, dict) else None for item in doc.data[f]]
           if isinstance(doc.data[f], list) else [] for f in origins}
    _as_written(doc, origins, ids)
