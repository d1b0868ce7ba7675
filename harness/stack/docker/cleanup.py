"""Removing what a docker run made: its containers, network and images, found by their labels.

Used by a stack's own teardown (every exit path) and by `hospital-drill down` for a run that was
killed before it could tear down; the containers' logs are copied to the run directory first.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ...errors import HarnessError
from .engine import LABEL_DIR, LABEL_NODE, LABEL_RUN, client, engine_reachable

STATE_FILE = "docker.json"  # what a running stack records of itself in its run directory
REMOVAL_WAIT_S = 30.0  # a removal already in progress elsewhere (a concurrent down) finishing


def state_file(run_dir: Path) -> Path:
    return Path(run_dir) / STATE_FILE


def remove_run(engine, run_id: str | None, run_dir: Path, *, containers: dict[str, str] | None = None,
               keep_logs: bool = True) -> tuple[list[str], list[str]]:
    """Remove every container, network and image labelled with the run (or its directory), the
    containers' logs first copied to `run_dir/logs`; (what was removed, what could not be)."""
    removed: list[str] = []
    errors: list[str] = []
    filters = [f"{LABEL_DIR}={Path(run_dir).resolve()}"] + ([f"{LABEL_RUN}={run_id}"] if run_id else [])
    found = _labelled_containers(engine, filters, dict(containers or {}), errors)
    logs = Path(run_dir) / "logs" if keep_logs else None
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda item: _remove_container(engine, *item, logs, removed, errors),
                      found.items()))
    _wait_containers_gone(engine, filters)
    _remove_networks(engine, filters, removed, errors)
    _remove_run_images(engine, filters, removed, errors)
    return removed, errors


def _labelled_containers(engine, filters: list[str], found: dict[str, str],
                         errors: list[str]) -> dict[str, str]:
    """node → container id of every container carrying one of the labels, added to `found`."""
    for f in filters:
        try:
            for cont in engine.api.containers(all=True, filters={"label": f}):
                found.setdefault(cont["Labels"].get(LABEL_NODE, cont["Id"][:12]), cont["Id"])
        except Exception as e:
            errors.append(f"list containers: {e}")
    return found


def _remove_container(engine, node: str, cid: str, logs: Path | None, removed: list[str],
                      errors: list[str]) -> None:
    if logs is not None:
        try:
            text = engine.api.logs(cid, timestamps=True)
            logs.mkdir(parents=True, exist_ok=True)
            (logs / f"{node}.log").write_bytes(text)
        except Exception:
            pass  # a container that never started has no log worth failing the teardown for
    try:
        engine.api.remove_container(cid, force=True, v=True)
        removed.append(f"container {node}")
    except Exception as e:
        if "No such container" not in str(e) and "is already in progress" not in str(e):
            errors.append(f"container {node}: {e}")


def _wait_containers_gone(engine, filters: list[str]) -> None:
    """A removal already in progress elsewhere (a concurrent down) finishes on its own: wait for it,
    or the network would still have endpoints."""
    deadline = time.monotonic() + REMOVAL_WAIT_S
    while time.monotonic() < deadline:
        if not any(engine.api.containers(all=True, filters={"label": f}) for f in filters):
            return
        time.sleep(0.2)


def _remove_networks(engine, filters: list[str], removed: list[str], errors: list[str]) -> None:
    for f in filters:
        try:
            nets = engine.api.networks(filters={"label": f})
        except Exception as e:
            errors.append(f"list networks: {e}")
            continue
        for net in nets:
            deadline = time.monotonic() + REMOVAL_WAIT_S
            while True:
                try:
                    engine.api.remove_network(net["Id"])
                    removed.append(f"network {net['Name']}")
                    break
                except Exception as e:
                    if "No such network" in str(e) or "not found" in str(e):
                        break
                    if "active endpoints" in str(e) and time.monotonic() < deadline:
                        # an endpoint the engine is still letting go of (slow on a busy host), or a
                        # container on our network that no label found: cut it loose, then again
                        _detach_all(engine, net["Id"])
                        time.sleep(0.3)
                        continue
                    errors.append(f"network {net['Name']}: {e}")
                    break


def _detach_all(engine, net_id: str) -> None:
    """Force every container still attached to our run's network off it."""
    try:
        attached = engine.api.inspect_network(net_id).get("Containers") or {}
    except Exception:
        return
    for cid in attached:
        try:
            engine.api.disconnect_container_from_network(cid, net_id, force=True)
        except Exception:
            pass  # gone meanwhile: what the retry wants


def _remove_run_images(engine, filters: list[str], removed: list[str], errors: list[str]) -> None:
    """The run's own thin images; the cached ones they were made from stay."""
    for f in filters:
        try:
            images = engine.api.images(filters={"label": f})
        except Exception as e:
            errors.append(f"list images: {e}")
            continue
        for img in images:
            for tag in img.get("RepoTags") or [img["Id"]]:
                if tag.startswith("hospital-drill-run/") or tag == img["Id"]:
                    try:
                        engine.api.remove_image(tag, noprune=False)
                        removed.append(f"image {tag}")
                    except Exception as e:
                        if "No such image" not in str(e):
                            errors.append(f"image {tag}: {e}")


def tear_down_dir(run_dir: Path) -> list[str]:
    """`hospital-drill down`: remove what a (killed) run in `run_dir` left in the engine."""
    run_dir = Path(run_dir)
    state_path = state_file(run_dir)
    run_id = None
    if state_path.exists():
        try:
            run_id = json.loads(state_path.read_text()).get("run_id")
        except ValueError:
            pass
    engine = client(timeout=60)
    try:
        removed, errors = remove_run(engine, run_id, run_dir, keep_logs=True)
    finally:
        engine.close()
    if errors:
        raise HarnessError("docker cleanup: " + "; ".join(errors))
    state_path.unlink(missing_ok=True)
    return removed


def tear_down_if_reachable(run_dir: Path) -> list[str]:
    """For `hospital-drill down`: the docker leftovers of `run_dir` removed, when an engine answers.

    Without an engine there is nothing of ours to remove, unless the directory says a docker stack
    ran there: then that is said, not silently passed over."""
    try:
        import docker  # noqa: F401
    except ImportError:
        return []
    ran_here = state_file(run_dir).exists()
    if not ran_here and not (os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists()):
        return []
    ok, why = engine_reachable()
    if not ok:
        if ran_here:
            raise HarnessError(f"{run_dir} holds a docker stack but {why}")
        return []
    return tear_down_dir(run_dir)


def leftovers(engine=None) -> dict[str, list[str]]:
    """Every container, network and run image of any hospital-drill run in the engine."""
    own = engine is None
    engine = engine or client(timeout=30)
    try:
        f = {"label": LABEL_RUN}
        return {"containers": [c["Names"][0].lstrip("/") for c in engine.api.containers(all=True, filters=f)],
                "networks": [n["Name"] for n in engine.api.networks(filters=f)],
                "images": [t for i in engine.api.images(filters=f) for t in (i.get("RepoTags") or [i["Id"]])]}
    finally:
        if own:
            engine.close()
