"""A scenario's `load` as the patient load's configuration (HD_LOAD_CONFIG, see locustfile.py).

What the scenario writes in the plan's terms is settled here, before anything starts:
- `mix`: the persona weights of one of the plan's `load_mixes` (the drill's plan, or the shipped
  `hospital` plan when the drill names none); an unknown name is an input error at `load.mix`;
- `shape`: a named shape (named_shapes.py) as Locust stages, compressed by the time scale;
- think times: declared waits, compressed, so that a window of drill time holds as many journeys at
  any scale;
- the patients: drawn from the hospital's registered population by a seed, the scenario's or one
  made from the drill's name, so the same drill run twice draws the same patients.
"""
from __future__ import annotations

import zlib
from pathlib import Path

from ..errors import InputError
from ..loader import Document
from ..models import LoadProfile
from ..plan.models import LoadMix
from .named_shapes import SHAPES, stages
from .population import POPULATION


def plan_mixes(plan: str | Path | None) -> dict[str, LoadMix]:
    """The persona mixes of a plan file (a drill's `plan` as run), or of the shipped default plan."""
    from ..plan.load import find_plan, load_plan  # the plan's loader: only when a mix is asked for
    return load_plan(find_plan(str(plan) if plan is not None else None)).plan.load_mixes


def mix_error(doc: Document, load: LoadProfile, mixes: dict[str, LoadMix]) -> InputError | None:
    """`load.mix` naming no mix of the plan, as an error at that field of the scenario file."""
    if load.mix is None or load.mix in mixes:
        return None
    known = ", ".join(sorted(mixes)) or "none: the plan has no load_mixes"
    return doc.error(f"unknown mix {load.mix!r} (known: {known})", ("load", "mix"))


def patient_seed(load: LoadProfile, drill_name: str) -> int:
    """The draw's seed: the scenario's, else a stable one of the drill's name (not Python's hash(),
    which changes from one process to the next)."""
    return load.seed if load.seed is not None else zlib.crc32(drill_name.encode("utf-8"))


def load_config(load: LoadProfile, *, time_scale: float, seed: int,
                mixes: dict[str, LoadMix] | None = None) -> dict:
    """HD_LOAD_CONFIG for `load` at `time_scale`. `mixes` must hold `load.mix` when one is named
    (validation has refused it otherwise)."""
    if load.mix is not None:
        if not mixes or load.mix not in mixes:
            raise InputError(f"unknown mix {load.mix!r}", field="load.mix")
        personas = dict(mixes[load.mix].personas)
    else:
        personas = dict(load.personas)
    config = {"personas": personas,
              "wait": [round(w / time_scale, 6) for w in load.think_time],
              "offline_share": load.offline_share,
              "patient_count": POPULATION,
              "patient_seed": seed}
    if load.shape is not None:
        config["stages"] = stages(SHAPES[load.shape], load.users, load.spawn_rate, time_scale)
    return config
