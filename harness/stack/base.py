"""What every backend's running stack offers to faults, runbook actions and the monitor.

A backend supplies the primitives (kill a database node, promote it, restart it, address of a node);
the failover logic built on them — promote, repoint the app's DB link, make the other standby follow —
lives here once, so both backends fail over the same way.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import psycopg
import requests

from ..models import StackConfig
from ..netfault.client import Links
from . import topology

HTTP_TIMEOUT = 2.0


class Stack(ABC):
    """A running mock hospital. Use it as a context manager: leaving it always tears it down."""

    backend: str = "?"

    def __init__(self, run_dir: Path, config: StackConfig, time_scale: float):
        self.run_dir = Path(run_dir)
        self.config = config
        self.time_scale = time_scale
        self.links: Links  # set by the backend once the Toxiproxy API is up
        self.addresses: dict[str, str] = {}  # node name -> host:port, direct (not through a link)
        self.link_listen: dict[str, str] = {}  # link name -> host:port patients/services dial
        self.db_roles: dict[str, str] = {}  # node -> primary | standby | crashed | stopped | restored
        self.killed_services: set[str] = set()  # HTTP services a fault killed, until started again
        self.backups: list[Any] = []  # backups taken of the serving database, oldest first (backups.py)
        self.http = requests.Session()

    # --- backend primitives ---------------------------------------------------------------------
    @abstractmethod
    def _kill_db(self, name: str) -> dict[str, Any]: ...

    @abstractmethod
    def _promote_db(self, name: str) -> None: ...

    @abstractmethod
    def _start_db(self, name: str) -> None: ...

    @abstractmethod
    def _kill_service(self, name: str) -> dict[str, Any]:
        """Kill one of our HTTP services (an app instance, a third party, the egress gateway) the
        way a host dies: SIGKILL, no shutdown, its connections reset. Return what was killed (e.g.
        pid or container id) for the journal. Local: the service's process group; docker: a
        container kill. The service stays down until `_start_service`."""

    @abstractmethod
    def _start_service(self, name: str) -> str:
        """Start a killed service again with its original configuration and wait until it answers
        `GET /health` (or at least listens: an app whose database is down still listens). Return its
        address host:port, the old one when it can be had again."""

    @abstractmethod
    def down(self) -> None: ...

    # Backups and restores. Not abstract, so that a backend without them still runs every other
    # drill; a backend that can back up its databases overrides both.
    def backup_db(self, node: str, label: str, since: Any = None) -> Any:
        """A real backup of database node `node`, stored under the name `label` on the backup disk:
        a full `pg_basebackup`, or with `since` (an earlier `postgres.Backup` of the same cluster)
        an incremental one (`pg_basebackup --incremental` on `since`'s manifest). Return the
        `postgres.Backup` (path, kind, seconds, size). Local: a directory under the run's state dir;
        docker: run pg_basebackup against the container and keep the result where `restore_db`
        can read it."""
        raise NotImplementedError(f"the {self.backend} backend cannot take database backups")

    def restore_db(self, chain: list[Any], name: str = "pg-restore") -> str:
        """Restore a backup chain (a full `postgres.Backup` then its incrementals, oldest first,
        combined with `pg_combinebackup`) into a new database node `name`, start it as a standalone
        primary on a free port and wait until it answers. Set `addresses[name]` and
        `db_roles[name] = "restored"` (it serves nothing until a runbook points a link at it or
        copies rows out of it) and return `name`. Local: a process beside the others; docker: a
        container."""
        raise NotImplementedError(f"the {self.backend} backend cannot restore database backups")

    def entry_log_tail(self) -> str:
        """The last lines of the primary app's log, for an error when the entry stays unhealthy."""
        return ""

    # --- shared bring-up steps ------------------------------------------------------------------
    @contextmanager
    def starting(self) -> Iterator["Stack"]:
        """The bring-up goes inside: when it fails or is interrupted, whatever had started is torn
        down before the error goes on, so a failed start leaves no process, container or data.

            with stack.starting():
                ...start the parts...
        """
        try:
            yield self
        except BaseException as failure:
            try:
                self.down()
            except Exception as e:  # the start's error is the one to report; this one rides along
                failure.add_note(f"teardown after the failed start: {e}")
            raise

    def apply_replication_lag(self) -> None:
        """The drill's lag knob (drill time) as real latency on the replication links; the remote
        DR, ten times further, gets twice the same-city delay."""
        lag = self.config.replication.lag
        if lag > 0:
            base_ms = lag / self.time_scale * 1000
            for name, factor in (("repl-samecity", 1), ("repl-remote", 2)):
                self.links.add_toxic(name, "latency", {"latency": int(base_ms * factor), "jitter": 0},
                                     stream="downstream", name="replication-lag")

    def wait_entry(self, timeout: float) -> None:
        """Until the patient entry point answers /health with 200."""
        from ..errors import HarnessError
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                r = requests.get(self.vip_url + "/health", timeout=1)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code} {r.text[:200]}"
            except requests.RequestException as e:
                last = e.__class__.__name__
            time.sleep(0.01)
        raise HarnessError(f"patient entry point {self.vip_url} not healthy after {timeout:.0f}s: "
                           f"{last}\n{self.entry_log_tail()}")

    # --- addresses ------------------------------------------------------------------------------
    @property
    def vip_url(self) -> str:
        return f"http://{self.link_listen['app-vip']}"

    def url(self, node: str) -> str:
        return f"http://{self.addresses[node]}"

    def db_dsn(self, node: str, dbname: str = "hospital", user: str = "hospital") -> str:
        host, port = self.addresses[node].rsplit(":", 1)
        return f"host={host} port={port} dbname={dbname} user={user} connect_timeout=3"

    def current_primary(self) -> str | None:
        return next((n for n, r in self.db_roles.items() if r == "primary"), None)

    def db_role(self, node: str) -> str:
        return self.db_roles.get(node, "absent")

    # --- database faults and failover -----------------------------------------------------------
    def crash_db(self, node: str, cut_links: bool = True) -> dict[str, Any]:
        # power loss takes the host and its network at the same instant: the links go down first,
        # so nothing still in flight (WAL on its way to a standby) is delivered while the harness
        # is busy killing processes — that delay would be the harness's, not the hospital's
        cut = list(self._links_to(node)) if cut_links else []
        self._set_links(cut, False)  # every session through them dies with its data, all at once
        # when the data stopped flowing: the end of the window of lost writes (RPO), which the
        # harness's API calls above may have moved a few ms past the fault's start
        down_wall = time.time()
        try:
            detail = self._kill_db(node)
            self.db_roles[node] = "crashed"
        finally:
            self._set_links(cut, True)
        if cut_links:
            detail["links_cut"] = cut
            detail["links_down_wall"] = round(down_wall, 6)
        return detail

    def restart_db(self, node: str) -> None:
        self._start_db(node)
        self.db_roles[node] = "primary" if self.current_primary() is None else "standby"

    def promote_standby(self, node: str) -> dict[str, Any]:
        """Promote `node`, point the app's DB link at it and the other standbys' links at it."""
        if self.db_roles.get(node) != "standby":
            raise RuntimeError(f"{node} is not a running standby (it is {self.db_role(node)})")
        t0 = time.monotonic()
        self._promote_db(node)
        promoted_s = time.monotonic() - t0
        self.file_promotion(node)
        # a promoted standby inherits no sync standby: waiting for one would stall every write
        with psycopg.connect(self.db_dsn(node, "postgres"), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = ''")
            conn.execute("SELECT pg_reload_conf()")
        self.links.repoint("db", self.addresses[node])
        followers = []
        for other, link in topology.STANDBY_LINK.items():
            if other != node and self.db_roles.get(other) == "standby":
                self.links.repoint(link, self.addresses[node])
                followers.append(other)
        return {"promoted": node, "promote_seconds": round(promoted_s, 3), "db_link": "db",
                "followers": followers, "seconds": round(time.monotonic() - t0, 3)}

    def file_promotion(self, node: str) -> str | None:
        """The bookkeeping of a promotion, however it was made: `node` is the primary now and the
        former primary is filed stopped (whether it stopped or not: fencing.py asks the nodes).
        Returns the former primary."""
        old = self.current_primary()
        if old and old != node:
            self.db_roles[old] = "stopped"
        self.db_roles[node] = "primary"
        return old

    def _set_links(self, links: list[str], enabled: bool) -> None:
        """Enable or disable several links side by side: one API call's latency, not one per link
        (at ×120 each 10 ms of the harness's would be 1.2 s of the data a crash loses)."""
        if len(links) <= 1:
            for link in links:
                self.links.set_enabled(link, enabled)
            return
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=len(links)) as pool:
            list(pool.map(lambda link: self.links.set_enabled(link, enabled), links))

    def _links_to(self, node: str) -> list[str]:
        addr = self.addresses.get(node)
        return [name for name, p in self.links.proxies().items() if p.get("upstream") == addr]

    # --- services -------------------------------------------------------------------------------
    def kill_service(self, name: str) -> dict[str, Any]:
        """SIGKILL an HTTP service (e.g. app-primary losing its server); links to it stay as they are."""
        detail = self._kill_service(name)
        self.killed_services.add(name)
        return {"service": name, "address": self.addresses.get(name), **detail}

    def start_service(self, name: str) -> dict[str, Any]:
        """Start a killed service again; links that led to its old address follow a new one."""
        old = self.addresses.get(name)
        followed = self._links_to(name) if old else []
        addr = self._start_service(name)
        self.killed_services.discard(name)
        if old and addr != old:
            for link in followed:
                self.links.repoint(link, addr)
        self.addresses[name] = addr
        return {"service": name, "address": addr,
                "links_repointed": followed if old and addr != old else []}

    def live_app_nodes(self) -> list[str]:
        """App instances not killed by a fault (they may still be failing for other reasons)."""
        return [a for a in self.app_nodes() if a not in self.killed_services]

    def set_third_party_mode(self, node: str, mode: str, delay_ms: int = 0) -> None:
        r = self.http.post(f"{self.url(node)}/_mode", json={"mode": mode, "delay_ms": delay_ms},
                           timeout=HTTP_TIMEOUT)
        r.raise_for_status()

    def app_nodes(self) -> list[str]:
        return [n.name for n in topology.APP_NODES if n.name in self.addresses]

    def post_apps(self, path: str, body: dict, apps: list[str] | None = None) -> dict[str, Any]:
        """Send an admin call to every app instance (or to `apps`); what each answered (or why not)."""
        out: dict[str, Any] = {}
        for app in self.app_nodes() if apps is None else apps:
            try:
                r = self.http.post(f"{self.url(app)}{path}", json=body, timeout=HTTP_TIMEOUT)
                out[app] = r.status_code
            except requests.RequestException as e:
                out[app] = f"unreachable: {e.__class__.__name__}"
        return out

    def notify(self, channel: str, audience: str, text: str) -> dict[str, Any]:
        """The command board's own channel to patients: straight to the notification service's
        primary interface, so that a drill's announcements do not depend on the egress line they
        may be about (the hospital's own sending path is the apps' `/admin/notify`)."""
        r = self.http.post(f"{self.url(topology.interface('notification', 'primary'))}/send",
                           json={"channel": channel, "audience": audience, "text": text},
                           timeout=HTTP_TIMEOUT)
        r.raise_for_status()
        return r.json()

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc) -> None:
        self.down()
