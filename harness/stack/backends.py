"""Backends by name: each brings a topology up as a running `Stack`.

A backend registers the module (or object) that has `up`, by its dotted name: it is imported only
when chosen, since the docker backend needs the Docker SDK. Plugins add theirs through the
`hospital_drill.backends` entry-point group (docs/plugins.md).
"""
from __future__ import annotations

import importlib
from typing import Any, Protocol

from ..errors import InputError
from ..registry import Registry, UnknownName


class Backend(Protocol):
    def up(self, run_dir, config, time_scale, *, toxiproxy_url=None): ...


# name → where the backend lives: a module's dotted name, or the backend itself
BACKENDS: Registry[Any] = Registry("backend", group="hospital_drill.backends")
BACKENDS.add("local", f"{__package__}.local", origin=__name__)
BACKENDS.add("docker", f"{__package__}.docker", origin=__name__)


def get(name: str) -> Backend:
    try:
        where = BACKENDS[name]
    except UnknownName as e:
        raise InputError(str(e), field="--backend") from None
    return importlib.import_module(where) if isinstance(where, str) else where
