"""The docker backend's running stack: the mock hospital as one container per service on the run's network.

Only the patient entry point (the app-vip link) and the Toxiproxy API are published, on 127.0.0.1.
The harness reaches the other containers (database admin, health checks) at their addresses on the
network's bridge, which the host is a member of.

Each run makes thin images of its own on top of the cached ones (`hospital-drill-run/<run>:<role>`,
labelled with the run), which its containers use and its teardown removes; the cached layers stay.
`--toxiproxy-image` uses a real Toxiproxy image instead of our server.

Faults. A database crash kills the database's container (SIGKILL: the init process and with it
everything in the container's PID namespace, as a host losing power); a server down kills the app's
container; a freeze pauses a container (cgroup freezer); a network interruption disconnects a
container from the network. Network degradation stays with Toxiproxy, as in the local backend.

Bring-up: every address is planned before anything starts, so every container starts at once;
Toxiproxy gets its links wired straight to their upstreams, standbys take their base backup
through their replication links as soon as the primary answers, and the wait is for all of it.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import psycopg
import requests

from ...errors import HarnessError
from ...models import StackConfig
from ...netfault.client import Links
from .. import postgres as pg
from .. import topology
from ..base import Stack
from ..pg_backup import tree_size
from .cleanup import remove_run, state_file
from .engine import LABEL_DIR, LABEL_NODE, LABEL_RUN, client
from .images import BASE_IMAGE_ENV, DEFAULT_BASE_IMAGE, HD_UID, base_image_id, build_image, ensure_images
from .plan import (API_PORT, DEFAULT_POOL, DNS_OPTIONS, PG_PORT, PLACEHOLDER, POOL_ENV, TOXIPROXY, Box,
                   Plan, make_plan, pool_subnets, run_id_for)

log = logging.getLogger("harness.docker")

TOXIPROXY_IMAGE_ENV = "HOSPITAL_DRILL_TOXIPROXY_IMAGE"
READY_TIMEOUT = 120.0


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
                         round(time.monotonic() - t0, 3), tree_size(dest), time.time())

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
        _, errors = remove_run(self.engine, self.plan.run_id, self.run_dir,
                                containers=self.containers, keep_logs=True)
        self.containers.clear()
        state_file(self.run_dir).unlink(missing_ok=True)
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
            build_image(self.engine, None, tag, labels=labels, dockerfile_text=f"FROM {cached}\n")
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
        tmp = state_file(self.run_dir).with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(state_file(self.run_dir))


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
        base_image_id(engine, toxiproxy_image)  # present, or pulled, or a clear error
        images["toxiproxy"] = toxiproxy_image
    run_id = run_id_for(run_dir)
    plan = make_plan(run_id, str(pool_subnets()[0]), config, real_toxiproxy=bool(toxiproxy_image))
    stack = DockerStack(run_dir, config, time_scale, engine, plan, images)
    with stack.starting():
        stack._bring_up()
    return stack
