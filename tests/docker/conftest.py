"""Docker-backend tests need an engine: they skip with the reason where none answers (a laptop
without Docker), and fail where one was promised (CI exports HOSPITAL_DRILL_BASE_IMAGE after
starting its own engine with .ci/docker-setup)."""
from __future__ import annotations

import os
import time

import pytest

from harness.stack.docker import images
from harness.stack.docker.engine import LABEL_DIR, client, engine_reachable


@pytest.fixture(scope="session")
def docker_engine():
    ok, why = engine_reachable()
    if not ok:
        if os.environ.get("CI") and os.environ.get(images.BASE_IMAGE_ENV):
            pytest.fail(f"CI started a Docker engine for these tests, but: {why}")
        pytest.skip(f"no Docker engine: {why}")
    engine = client()
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def base_image(docker_engine) -> str:
    """The base image our images build from, with both images built once for the session."""
    image = os.environ.get(images.BASE_IMAGE_ENV) or images.DEFAULT_BASE_IMAGE
    t0 = time.monotonic()
    try:
        images.ensure_images(docker_engine, image)
    except Exception as e:
        if not os.environ.get("CI") and "could not be pulled" in str(e):
            pytest.skip(f"base image {image} not available: {e}")
        raise
    print(f"\ndocker images from {image} ready in {time.monotonic() - t0:.1f}s")
    return image


def run_leftovers(engine, run_dir) -> dict[str, list]:
    """Containers, networks and images still labelled with a run directory."""
    f = {"label": f"{LABEL_DIR}={run_dir.resolve()}"}
    return {"containers": engine.api.containers(all=True, filters=f),
            "networks": engine.api.networks(filters=f),
            "images": engine.api.images(filters=f)}
