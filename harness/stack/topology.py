"""The mock hospital's topology: which services run, in which centre, and the links between them.

Names here are what scenarios and runbooks refer to (fault targets, action parameters), so they are
checked against this table before anything starts.
"""
from __future__ import annotations

from dataclasses import dataclass

MAIN_DC, SAMECITY_DR, REMOTE_DR = "main DC", "same-city DR (20 km)", "remote DR (200 km)"


@dataclass(frozen=True)
class Node:
    name: str
    kind: str  # postgres | app | thirdparty | egress
    site: str
    role: str = ""


@dataclass(frozen=True)
class Link:
    """A Toxiproxy proxy: every path a fault can degrade or a failover can repoint."""
    name: str
    upstream: str  # the node it leads to at bring-up
    purpose: str


DB_NODES = (
    Node("pg-primary", "postgres", MAIN_DC, "primary"),
    Node("pg-samecity", "postgres", SAMECITY_DR, "standby"),
    Node("pg-remote", "postgres", REMOTE_DR, "standby"),
)
APP_NODES = (
    Node("app-primary", "app", MAIN_DC, "primary"),
    Node("app-backup", "app", SAMECITY_DR, "backup"),
)
THIRD_PARTIES = (
    Node("insurance-primary", "thirdparty", "third party", "insurance"),
    Node("insurance-backup", "thirdparty", "third party", "insurance"),
    Node("payment", "thirdparty", "third party", "payment"),
    Node("notification", "thirdparty", "third party", "notification"),
)
EGRESS = Node("egress-gw", "egress", MAIN_DC, "egress gateway")
NODES = {n.name: n for n in (*DB_NODES, *APP_NODES, *THIRD_PARTIES, EGRESS)}

LINKS = {l.name: l for l in (
    Link("app-vip", "app-primary", "the address patients use (VIP)"),
    Link("db", "pg-primary", "the app's database address"),
    Link("repl-samecity", "pg-primary", "replication to the same-city DR standby"),
    Link("repl-remote", "pg-primary", "replication to the remote DR standby"),
    Link("egress-primary", "egress-gw", "primary egress line to third parties"),
    Link("egress-backup", "egress-gw", "backup egress line"),
    Link("insurance-primary", "insurance-primary", "medical-insurance primary interface"),
    Link("insurance-backup", "insurance-backup", "medical-insurance backup interface"),
    Link("payment", "payment", "payment interface"),
    Link("notify", "notification", "SMS / official-account push"),
)}

STANDBY_LINK = {"pg-samecity": "repl-samecity", "pg-remote": "repl-remote"}


def require(name: str, *, kinds: tuple[str, ...] = (), links: bool = False) -> str | None:
    """None when `name` is a known node (of one of `kinds`) or link; otherwise why not."""
    if links and name in LINKS:
        return None
    node = NODES.get(name)
    if node and (not kinds or node.kind in kinds):
        return None
    pool = sorted([n.name for n in NODES.values() if not kinds or n.kind in kinds]
                  + (list(LINKS) if links else []))
    return f"unknown {'/'.join(kinds) or 'service'} {name!r} (known: {', '.join(pool)})"
