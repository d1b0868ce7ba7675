"""Backends by name: each brings a topology up as a running `Stack`."""
from __future__ import annotations

from typing import Protocol

from ..errors import InputError


class Backend(Protocol):
    def up(self, run_dir, config, time_scale, *, toxiproxy_url=None): ...


def get(name: str) -> Backend:
    if name == "local":
        from . import local
        return local
    if name == "docker":
        from . import docker
        return docker
    raise InputError(f"unknown backend {name!r} (available: local, docker)", field="--backend")
