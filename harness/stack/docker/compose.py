"""The stack a drill runs on, as a docker-compose file (`hospital-drill compose`).

The same plan as a docker run (fixed addresses, every path through a Toxiproxy link), written with
the build contexts of our two images and the links' Toxiproxy config beside it, for `docker compose up`.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from ...models import StackConfig
from .. import postgres as pg
from .. import topology
from .engine import LABEL_NODE
from .images import BASE_IMAGE_ENV, DEFAULT_BASE_IMAGE, HD_UID, host_python, write_context
from .plan import API_PORT, DNS_OPTIONS, TOXIPROXY, Box, Plan, make_plan

COMPOSE_SUBNET = "10.213.250.0/24"
TOXIPROXY_CONFIG = "/etc/hospital-drill/toxiproxy.json"  # where the links' config is mounted


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
    proxies = [{"name": link, "listen": f"0.0.0.0:{plan.link_ports[link]}", "upstream": upstream,
                "enabled": True} for link, upstream in plan.wiring.items()]
    (out_dir / "toxiproxy.json").write_text(json.dumps(proxies, indent=2) + "\n")

    services = {box.node: _service(box, plan, images, base_image, bool(toxiproxy_image))
                for box in plan.boxes.values()}
    if config.replication.lag > 0:
        services["link-setup"] = _link_setup(plan, images["runtime"], time_scale)
    gateway = str(next(ipaddress.ip_network(plan.subnet).hosts()))
    doc = {
        "name": project,
        "services": services,
        "networks": {"hospital": {"driver": "bridge", "ipam": {"config": [
            {"subnet": plan.subnet, "gateway": gateway}]}}},
    }
    path = out_dir / "docker-compose.yml"
    path.write_text(_head(name, path, plan, base_image)
                    + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120),
                    encoding="utf-8")
    return path


def _service(box: Box, plan: Plan, images: dict[str, str], base_image: str,
             real_toxiproxy: bool) -> dict[str, Any]:
    """One container of the plan as a compose service."""
    svc: dict[str, Any] = {"image": images[box.image], "init": True, "dns_opt": DNS_OPTIONS,
                           "labels": {LABEL_NODE: box.node},
                           "networks": {"hospital": {"ipv4_address": box.ip}}}
    if box.image in ("runtime", "postgres"):
        svc["build"] = {"context": f"./build/{box.image}",
                        "args": {"BASE_IMAGE": base_image, "HD_UID": str(HD_UID)}}
    command = list(box.command) if box.command else None
    if box.node == TOXIPROXY:
        svc["volumes"] = [f"./toxiproxy.json:{TOXIPROXY_CONFIG}:ro"]
        # Shopify's server and ours spell the flag differently
        command = (command + [f"-config={TOXIPROXY_CONFIG}"] if real_toxiproxy
                   else command + ["--config", TOXIPROXY_CONFIG])
        svc["ports"] = [f"127.0.0.1:${{HOSPITAL_DRILL_TOXIPROXY_PORT:-8474}}:{API_PORT}",
                        f"127.0.0.1:${{HOSPITAL_DRILL_VIP_PORT:-8080}}:{plan.link_ports['app-vip']}"]
    if command:
        svc["command"] = command
    env = dict(box.env)
    if box.image == "postgres":
        svc["healthcheck"] = {"test": ["CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-U", "hospital"],
                              "interval": "1s", "timeout": "3s", "retries": 60}
        if box.node == "pg-primary" and plan.config.replication.mode == "sync":
            env["HD_SYNC_NAMES"] = pg._conf_literal(pg._sync_names_value(["pg-samecity"]))
        if box.node in topology.STANDBY_LINK:
            svc["depends_on"] = {TOXIPROXY: {"condition": "service_started"},
                                 "pg-primary": {"condition": "service_healthy"}}
    elif box.node != TOXIPROXY:
        svc["depends_on"] = [TOXIPROXY]
    if env:
        svc["environment"] = env
    return svc


def _link_setup(plan: Plan, runtime_image: str, time_scale: float) -> dict[str, Any]:
    """A one-shot service that puts the drill's replication lag on the replication links, as a
    docker run does once Toxiproxy answers (the remote DR, ten times further, gets twice the delay)."""
    base_ms = plan.config.replication.lag / time_scale * 1000
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
    return {"image": runtime_image, "command": ["python3", "-c", script], "restart": "no",
            "depends_on": [TOXIPROXY], "networks": {"hospital": {}}}


def _head(name: str, path: Path, plan: Plan, base_image: str) -> str:
    return (f"# The mock hospital of drill {name!r}, for docker compose (written by hospital-drill compose).\n"
            f"#   docker compose -f {path} up --build\n"
            f"# Patients enter at http://127.0.0.1:${{HOSPITAL_DRILL_VIP_PORT:-8080}}; the Toxiproxy API is\n"
            f"# at http://127.0.0.1:${{HOSPITAL_DRILL_TOXIPROXY_PORT:-8474}}. Services dial fixed addresses\n"
            f"# on the network {plan.subnet}; every path a fault can touch goes through a Toxiproxy link\n"
            f"# (toxiproxy.json). Base image: {base_image} (its python3 must be {host_python().version}).\n")
