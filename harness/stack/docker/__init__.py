"""The docker backend: the mock hospital as one container per service on a private network.

The same topology as the local backend, driven through the Docker SDK (`pip install docker`).

    engine.py   reaching the engine; the labels that mark what a run made there
    images.py   our two images, built from the base image the user names, cached by content
    plan.py     every container, address and link of a run, decided before anything starts
    stack.py    DockerStack: bring-up, the faults containers make truer, failover primitives
    cleanup.py  removing a run's containers, network and images (teardown, `hospital-drill down`)
    compose.py  the same stack as a docker-compose file

Beside them, the build context files: the Dockerfiles, `hd-run` and `pg-entry`.
"""
from __future__ import annotations

from .cleanup import tear_down_dir, tear_down_if_reachable
from .stack import DockerStack, up

__all__ = ["DockerStack", "tear_down_dir", "tear_down_if_reachable", "up"]
