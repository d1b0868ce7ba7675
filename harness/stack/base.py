"""What every backend's running stack offers to faults, runbook actions and the monitor.

A backend supplies the primitives (kill a database node, promote it, restart it, address of a node);
the failover logic built on them — promote, repoint the app's DB link, make the other standby follow —
lives here once, so both backends fail over the same way.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

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
        self.db_roles: dict[str, str] = {}  # node -> primary | standby | crashed | stopped
        self.http = requests.Session()

    # --- backend primitives ---------------------------------------------------------------------
    @abstractmethod
    def _kill_db(self, name: str) -> dict[str, Any]: ...

    @abstractmethod
    def _promote_db(self, name: str) -> None: ...

    @abstractmethod
    def _start_db(self, name: str) -> None: ...

    @abstractmethod
    def down(self) -> None: ...

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
        detail = self._kill_db(node)
        self.db_roles[node] = "crashed"
        if cut_links:
            cut = []
            for link in self._links_to(node):
                # down and up again: every session through the link dies with what was in flight
                self.links.set_enabled(link, False)
                self.links.set_enabled(link, True)
                cut.append(link)
            detail["links_cut"] = cut
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
        old = self.current_primary()
        if old:
            self.db_roles[old] = "stopped"
        self.db_roles[node] = "primary"
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

    def _links_to(self, node: str) -> list[str]:
        addr = self.addresses.get(node)
        return [name for name, p in self.links.proxies().items() if p.get("upstream") == addr]

    # --- services -------------------------------------------------------------------------------
    def set_third_party_mode(self, node: str, mode: str, delay_ms: int = 0) -> None:
        r = self.http.post(f"{self.url(node)}/_mode", json={"mode": mode, "delay_ms": delay_ms},
                           timeout=HTTP_TIMEOUT)
        r.raise_for_status()

    def app_nodes(self) -> list[str]:
        return [n.name for n in topology.APP_NODES if n.name in self.addresses]

    def post_apps(self, path: str, body: dict) -> dict[str, Any]:
        """Send an admin call to every app instance; what each answered (or why not)."""
        out: dict[str, Any] = {}
        for app in self.app_nodes():
            try:
                r = self.http.post(f"{self.url(app)}{path}", json=body, timeout=HTTP_TIMEOUT)
                out[app] = r.status_code
            except requests.RequestException as e:
                out[app] = f"unreachable: {e.__class__.__name__}"
        return out

    def notify(self, channel: str, audience: str, text: str) -> dict[str, Any]:
        r = self.http.post(f"{self.url('notification')}/send",
                           json={"channel": channel, "audience": audience, "text": text},
                           timeout=HTTP_TIMEOUT)
        r.raise_for_status()
        return r.json()

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc) -> None:
        self.down()
