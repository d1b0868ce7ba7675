"""The Docker engine: how we reach it, and the labels by which we find again what a run made there.

The engine is found as the `docker` CLI finds it: DOCKER_HOST, else the default socket.
"""
from __future__ import annotations

import os

from ...errors import HarnessError

# labels: how teardown and `hospital-drill down` find what a run made
LABEL_RUN = "io.hospital-drill.run"
LABEL_DIR = "io.hospital-drill.run-dir"
LABEL_NODE = "io.hospital-drill.node"
LABEL_CACHE = "io.hospital-drill.cache"  # role of a cached image (kept between runs)
LABEL_KEY = "io.hospital-drill.key"


def client(timeout: float = 120):
    """A Docker SDK client for the engine the environment names; HarnessError when unreachable."""
    try:
        import docker
    except ImportError:
        raise HarnessError("the docker backend needs the Docker SDK: pip install docker") from None
    where = os.environ.get("DOCKER_HOST", "the default socket")
    try:
        c = docker.from_env(timeout=int(timeout), use_ssh_client=False)
        c.ping()
    except Exception as e:
        raise HarnessError(f"no Docker engine reachable at {where}: {e.__class__.__name__}: "
                           f"{str(e)[:200]}") from None
    return c


def engine_reachable() -> tuple[bool, str]:
    """(whether an engine answers, why not) — for tests that need one and `down`."""
    try:
        client(timeout=5).close()
        return True, ""
    except HarnessError as e:
        return False, str(e)
