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
    kind: str  # postgres | app | thirdparty | egress | offline
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
# every third party is reached at one of two interfaces the provider offers: its primary and its
# backup (a second address, often a second data centre of the provider's)
THIRD_PARTY_KINDS = ("insurance", "payment", "notification")
INTERFACES = ("primary", "backup")
THIRD_PARTY_TITLES = {"insurance": "medical-insurance", "payment": "payment",
                      "notification": "SMS / official-account push"}
THIRD_PARTIES = tuple(Node(f"{kind}-{interface}", "thirdparty", "third party", kind)
                      for kind in THIRD_PARTY_KINDS for interface in INTERFACES)
EGRESS = Node("egress-gw", "egress", MAIN_DC, "egress gateway")
# the QR code's address while the site is down: its own store, nothing shared with the main database
OFFLINE = Node("offline-reception", "offline", "hospital premises", "offline reception")
NODES = {n.name: n for n in (*DB_NODES, *APP_NODES, *THIRD_PARTIES, EGRESS, OFFLINE)}

LINKS = {l.name: l for l in (
    Link("app-vip", "app-primary", "the address patients use (VIP)"),
    Link("db", "pg-primary", "the app's database address"),
    Link("repl-samecity", "pg-primary", "replication to the same-city DR standby"),
    Link("repl-remote", "pg-primary", "replication to the remote DR standby"),
    Link("egress-primary", "egress-gw", "primary egress line to third parties"),
    Link("egress-backup", "egress-gw", "backup egress line"),
    *(Link(n.name, n.name, f"{THIRD_PARTY_TITLES[n.role]} {n.name.rsplit('-', 1)[1]} interface")
      for n in THIRD_PARTIES),
    Link("offline", OFFLINE.name, "offline reception (the QR code's address)"),
)}

STANDBY_LINK = {"pg-samecity": "repl-samecity", "pg-remote": "repl-remote"}


def interface(kind: str, which: str) -> str:
    """The node (and link) of a third party's interface: interface("payment", "backup")."""
    return f"{kind}-{which}"


def describe(component: str) -> str:
    """A node or link in words, for an operator: 'payment backup interface', 'backup egress line'."""
    kind, _, which = component.rpartition("-")
    if kind in THIRD_PARTY_KINDS and which in INTERFACES:
        return f"{kind} {which} interface"
    if kind == "egress" and which in INTERFACES:
        return f"{which} egress line"
    return component


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
