"""Load a drill with its scenario and check everything that can be checked before a run starts:
the plan it names (harness/drill_plan.py), schema, fault types and their parameters, runbook
actions and the services they name, the steps that triggers and targets name, and the scenario the
drill names.

The checks run over whatever parsed, so that one pass reports every error of a drill and of its
scenario: a step whose own fields are wrong is left out of the checks that need it, the others are
checked as usual. Only a file that is no YAML mapping at all (or whose `extends:` or `plan:` fails)
stops there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError

from .checks import slug
from .drill_plan import apply_plan
from .errors import InputError
from .faults import base as faults
from .load.profile import mix_error, plan_mixes
from .loader import Document, Loc, Problems, Referrer
from .models import Drill, Scenario
from .runbook import actions
from .runbook.exec_steps import check_exec


@dataclass
class LoadedDrill:
    drill: Drill
    scenario: Scenario
    drill_path: Path
    scenario_path: Path
    faults: list[faults.Fault]
    drill_data: dict  # as run: `extends` and `plan` resolved
    scenario_data: dict


def _non_finite(value: Any, loc: Loc = ()) -> Iterator[Loc]:
    """Where a parameter model holds an infinite or NaN number (e.g. from a string '1e309')."""
    if isinstance(value, float) and not math.isfinite(value):
        yield loc
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _non_finite(v, loc + (k,))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _non_finite(v, loc + (i,))


def _check_finite(doc: Document, params: Any, loc: Loc, problems: Problems) -> None:
    for where in _non_finite(params.model_dump()):
        problems.add(doc.error("numbers must be finite", loc + where))


def _registry_errors(doc: Document, e: ValueError, loc: Loc) -> list[InputError]:
    """A registry's 'field: why' (faults.build, actions.validate: each of them), at that field
    under `loc`."""
    out = []
    for item in getattr(e, "items", None) or [str(e)]:
        field, _, why = item.partition(": ")
        out.append(doc.error(why, (*loc, *field.split("."))))
    return out


def _items(model: type[BaseModel], field: str, parsed: BaseModel | None,
           raw: Any) -> list[tuple[int, Any]]:
    """The items of the list field `field`: all of them from a model that parsed, else those that
    parse on their own (the others' errors are already reported by the model's parse)."""
    if parsed is not None:
        return list(enumerate(getattr(parsed, field)))
    if not isinstance(raw, list):
        return []
    item = TypeAdapter(get_args(model.model_fields[field].annotation)[0])
    found = []
    for i, value in enumerate(raw):
        try:
            found.append((i, item.validate_python(value)))
        except ValidationError:
            pass
    return found


def check_scenario(path: Path, problems: Problems, referrer: Referrer | None = None,
                   plan: str | None = None) -> tuple[Scenario | None, list[faults.Fault], dict]:
    """A scenario and its faults, every error added to `problems`; raises only when the file cannot
    be read as a scenario at all. A `load.mix` is looked up in `plan` (the shipped one if none)."""
    doc = Document(path, referrer).extend()
    if referrer is not None and ("runbook" in doc.data or "faults" not in doc.data):
        raise referrer[0].error(f"{path} is not a scenario (it has no faults)"
                                + (": it is a drill" if "runbook" in doc.data else ""), referrer[1])
    scenario, errors = doc.check(Scenario)
    for e in errors:
        problems.add(e)
    if scenario is not None and scenario.load.mix is not None:
        mix = mix_error(doc, scenario.load, plan_mixes(plan))
        if mix is not None:
            problems.add(mix)
    built = []
    for i, spec in _items(Scenario, "faults", scenario, doc.data.get("faults")):
        try:
            fault = faults.build(spec)
        except ValueError as e:
            for error in _registry_errors(doc, e, ("faults", i)):
                problems.add(error)
            continue
        _check_finite(doc, fault.params, ("faults", i, "params"), problems)
        built.append(fault)
    return scenario, built, doc.data


def load_scenario(path: Path, referrer: Referrer | None = None) -> tuple[Scenario, list[faults.Fault], dict]:
    problems = Problems()
    with problems.collect():
        scenario, built, data = check_scenario(path, problems, referrer)
    problems.raise_any()
    return scenario, built, data  # type: ignore[return-value]


def _references(doc: Document, steps: list[tuple[int, Any]],
                targets: list[tuple[int, Any]]) -> list[InputError]:
    """Steps and teams named but not there, each at the field that names it. The model checks the
    same, but stops at the first and can only blame the whole drill."""
    raw = doc.data.get("runbook")
    if not isinstance(raw, list):
        return []
    ids = [item.get("id") if isinstance(item, dict) else None for item in raw]
    # a step whose id is itself wrong may be the one named: then no name is known to be unknown
    all_known = all(isinstance(i, str) and _is_slug(i) for i in ids)
    teams = doc.data.get("teams")
    found = []
    for i, step in steps:
        if ids.index(step.id) < i:
            found.append(doc.error(f"duplicate runbook step id {step.id!r}", ("runbook", i, "id")))
        if all_known and step.when.after and step.when.after not in ids:
            found.append(doc.error(f"'after' names unknown step {step.when.after!r}",
                                   ("runbook", i, "when", "after")))
        if isinstance(teams, dict) and step.group not in teams:
            found.append(doc.error(f"group {step.group!r} has no team", ("runbook", i, "group")))
    for k, target in targets:
        if all_known and target.step and target.step not in ids:
            found.append(doc.error(f"unknown step {target.step!r}", ("targets", k, "step")))
    return found


def _people(doc: Document, drill: Drill) -> list[InputError]:
    """Each group staffed to the drill's `roster` minimums, the absent named on the roster, enough
    people left to draw from, and someone in each step's group with the skill or role it `needs`."""
    from .models import GROUP_TITLES
    from .people.roster import Roster
    found = []
    for group, team in drill.teams.items():
        for tier, have, need in (("core", len(team.core), drill.roster.core_min),
                                 ("backup", len(team.backup), drill.roster.backup_min)):
            if have < need:
                found.append(doc.error(f"{have} {tier} member(s) in {group} ({GROUP_TITLES[group]}); "
                                       f"the roster needs at least {need} (roster.{tier}_min)",
                                       ("teams", group, tier)))
    roster = Roster.of(drill.model_copy(update={"people": drill.people.model_copy(
        update={"absent_drawn": 0})}))
    for i, name in enumerate(drill.people.absent):
        if roster.get(name) is None:
            found.append(doc.error(f"{name!r} is not on the roster", ("people", "absent", i)))
    left = len(roster.people) - len(drill.people.absent)
    if drill.people.absent_drawn > left:
        found.append(doc.error(f"{drill.people.absent_drawn} to draw, but only {left} people are "
                               "left on the roster", ("people", "absent_drawn")))
    for i, step in enumerate(drill.runbook):
        if step.needs and not any(p.group == step.group and p.able(step.needs) for p in roster.people):
            found.append(doc.error(f"nobody in {step.group} has {step.needs!r} (a skill, or words "
                                   "of a role)", ("runbook", i, "needs")))
    return found


def _resolve_exec(doc: Document, i: int, step) -> None:
    """An exec step's script and working directory made absolute and checked (runbook/exec_steps.py),
    in the drill as run too: its copy in the run directory lives elsewhere."""
    try:
        step.exec_ = check_exec(step.exec_, doc.origin(("runbook",)).path.parent.resolve())
    except ValueError as e:
        raise _registry_errors(doc, e, ("runbook", i, "exec"))[0] from None
    as_run = doc.data["runbook"][i]["exec"]
    as_run["cwd"] = step.exec_.cwd
    if step.exec_.script is not None:
        as_run["script"] = step.exec_.script


def _is_slug(name: str) -> bool:
    try:
        return slug(name) == name
    except ValueError:
        return False


def check_drill(path: Path, problems: Problems) -> LoadedDrill | None:
    """A drill and its scenario, every error added to `problems`; None when there is any. Raises
    only when the drill file cannot be read as a drill at all."""
    # every plugin loads now, so a broken one is a one-line error before anything starts (not a
    # failure inside the monitor's thread)
    from .monitor.monitor import RULES, SAMPLERS
    RULES.load()
    SAMPLERS.load()
    doc = apply_plan(Document(path).extend())  # the plan's teams, levels, stack under the drill's
    drill, errors = doc.check(Drill)
    steps = _items(Drill, "runbook", drill, doc.data.get("runbook"))
    references = _references(doc, steps, _items(Drill, "targets", drill, doc.data.get("targets")))
    for e in errors:
        if not (references and e.field is None):  # the model's own reference check, said better
            problems.add(e)
    for e in references:
        problems.add(e)
    for e in _people(doc, drill) if drill is not None else []:
        problems.add(e)
    for i, step in steps:
        if getattr(step, "action", None):
            try:
                params = actions.validate(step.action, step.with_)
            except ValueError as e:
                for error in _registry_errors(doc, e, ("runbook", i)):
                    problems.add(error)
                continue
            _check_finite(doc, params, ("runbook", i, "with"), problems)
        if getattr(step, "exec_", None) is not None:
            with problems.collect():
                _resolve_exec(doc, i, step)
    name = doc.data.get("scenario")
    if not isinstance(name, str):
        return None  # the model's parse said why
    scenario = scenario_data = None
    built: list[faults.Fault] = []
    with problems.collect():
        scenario_path = doc.resolve(("scenario",), name)
        if not scenario_path.exists():
            raise doc.error(f"scenario file {name!r} not found (looked at {scenario_path})", ("scenario",))
        scenario, built, scenario_data = check_scenario(scenario_path, problems, (doc, ("scenario",)),
                                                        doc.data.get("plan"))
    if problems.errors or drill is None or scenario is None or scenario_data is None:
        return None
    return LoadedDrill(drill, scenario, Path(path), scenario_path, built, doc.data, scenario_data)


def load_drill(path: Path) -> LoadedDrill:
    """The drill and its scenario, ready to run; InputError (InputErrors: several) when not."""
    problems = Problems()
    loaded = None
    with problems.collect():
        loaded = check_drill(path, problems)
    problems.raise_any()
    if loaded is None:  # every path to None has added an error; this is a guard, not a case
        raise InputError("not a drill", file=str(path))
    return loaded


def validate_file(path: Path) -> str:
    """Validate a drill or scenario file (told apart by its keys); a one-line description."""
    doc = Document(path).extend()
    if "runbook" in doc.data or "targets" in doc.data or "plan" in doc.data:
        loaded = load_drill(path)
        return (f"drill {loaded.drill.name}: {len(loaded.drill.runbook)} steps, "
                f"{len(loaded.drill.targets)} targets, scenario {loaded.scenario.name}")
    if "faults" in doc.data:
        scenario, built, _ = load_scenario(path)
        return f"scenario {scenario.name} ({scenario.failure_class}): {len(built)} fault(s)"
    raise InputError("neither a drill (runbook, targets) nor a scenario (faults)", file=str(path),
                     line=1)
