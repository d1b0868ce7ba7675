"""The docker backend's plan: every container, address and link of a run, decided before anything starts.

One user-defined bridge network per run, named after the run, with a /24 of its own (from
10.213.0.0/16, or HOSPITAL_DRILL_DOCKER_POOL) so that every container has a fixed address: services
dial addresses, not names, so a killed container fails fast instead of in a DNS timeout, and a
restarted one comes back where its links expect it. Every path a fault can touch goes through a
Toxiproxy link, as on the local backend.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...addresses import CONTAINER_POOL_ENV as POOL_ENV
from ...addresses import DEFAULT_CONTAINER_POOL as DEFAULT_POOL
from ...models import StackConfig
from .. import postgres as pg
from .. import topology

TOXIPROXY = "toxiproxy"
API_PORT = 8474
HTTP_PORT = 8000
PG_PORT = 5432
LINK_PORT_BASE = 10000
# a killed container's name would take the resolver's full timeout to fail: we dial addresses, and
# keep the resolver short for anything that still looks a name up
DNS_OPTIONS = ["timeout:1", "attempts:1"]
PLACEHOLDER = "127.0.0.1:9"  # a link whose upstream is gone refuses cleanly (discard port)


def pool_subnets() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The /24s a run's network may take, in order."""
    pool = ipaddress.ip_network(os.environ.get(POOL_ENV, DEFAULT_POOL))
    return list(pool.subnets(new_prefix=24)) if pool.prefixlen < 24 else [pool]


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
            "offline_url": plan.link_url("offline"),
        }
    if node.kind == "offline":
        # inside its own container: killed and started again, the container keeps the file
        return "harness.stack.services.offline", {"name": node.name,
                                                  "store": "/tmp/offline/reception.sqlite"}
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
