"""Load a drill with its scenario and check everything that can be checked before a run starts:
schema, fault types and their parameters, runbook actions and the services they name."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .errors import InputError
from .faults import base as faults
from .loader import Document, Loc, Referrer
from .models import Drill, Scenario
from .runbook import actions


@dataclass
class LoadedDrill:
    drill: Drill
    scenario: Scenario
    drill_path: Path
    scenario_path: Path
    faults: list[faults.Fault]
    drill_data: dict  # as run: `extends` resolved
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


def _check_finite(doc: Document, params: Any, loc: Loc) -> None:
    for where in _non_finite(params.model_dump()):
        raise doc.error("numbers must be finite", loc + where)


def load_scenario(path: Path, referrer: Referrer | None = None) -> tuple[Scenario, list[faults.Fault], dict]:
    doc = Document(path, referrer).extend()
    if referrer is not None and ("runbook" in doc.data or "faults" not in doc.data):
        raise referrer[0].error(f"{path} is not a scenario (it has no faults)"
                                + (": it is a drill" if "runbook" in doc.data else ""), referrer[1])
    scenario = doc.parse(Scenario)
    built = []
    for i, spec in enumerate(scenario.faults):
        try:
            built.append(faults.build(spec))
        except ValueError as e:
            field, _, why = str(e).partition(": ")
            raise doc.error(why, ("faults", i, *field.split("."))) from None
        _check_finite(doc, built[-1].params, ("faults", i, "params"))
    return scenario, built, doc.data


def load_drill(path: Path) -> LoadedDrill:
    # every plugin loads now, so a broken one is a one-line error before anything starts (not a
    # failure inside the monitor's thread)
    from .monitor.monitor import RULES, SAMPLERS
    RULES.load()
    SAMPLERS.load()
    doc = Document(path).extend()
    drill = doc.parse(Drill)
    for i, step in enumerate(drill.runbook):
        if step.action:
            try:
                params = actions.validate(step.action, step.with_)
            except ValueError as e:
                field, _, why = str(e).partition(": ")
                raise doc.error(why, ("runbook", i, *field.split("."))) from None
            _check_finite(doc, params, ("runbook", i, "with"))
    scenario_path = doc.resolve(("scenario",), drill.scenario)
    if not scenario_path.exists():
        raise doc.error(f"scenario file {drill.scenario!r} not found (looked at {scenario_path})",
                        ("scenario",))
    scenario, built, scenario_data = load_scenario(scenario_path, referrer=(doc, ("scenario",)))
    return LoadedDrill(drill, scenario, Path(path), scenario_path, built, doc.data, scenario_data)


def validate_file(path: Path) -> str:
    """Validate a drill or scenario file (told apart by its keys); a one-line description."""
    doc = Document(path).extend()
    if "runbook" in doc.data or "targets" in doc.data:
        loaded = load_drill(path)
        return (f"drill {loaded.drill.name}: {len(loaded.drill.runbook)} steps, "
                f"{len(loaded.drill.targets)} targets, scenario {loaded.scenario.name}")
    if "faults" in doc.data:
        scenario, built, _ = load_scenario(path)
        return f"scenario {scenario.name} ({scenario.failure_class}): {len(built)} fault(s)"
    raise InputError("neither a drill (runbook, targets) nor a scenario (faults)", file=str(path),
                     line=1)
