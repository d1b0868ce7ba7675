"""The Locust master's address: where a drill's master listens, and where a worker finds it.

- ``--load-bind HOST[:PORT]`` (a run): the address the master listens on. Loopback by default; any
  other address is an explicit choice of the person running the drill. Port 0 (or none): a free one.
- ``--master HOST:PORT`` (``load-worker``): the master to join. HOST may be a name: a person joins a
  drill on another machine of theirs.

The checks raise ValueError with the reason; the command line names the flag.
"""
from __future__ import annotations

import ipaddress
import socket

from ..addresses import split_host_port

LOOPBACK = "127.0.0.1"
WILDCARDS = ("0.0.0.0", "::")


def parse_master(text: str) -> tuple[str, int]:
    """'drill-host:5557', '127.0.0.1:5557' or '[::1]:5557' → (host, port)."""
    host, port = split_host_port(text)
    if any(c.isspace() for c in host) or host.startswith("-"):
        raise ValueError(f"{text!r} does not name a host")
    return host, port


def parse_bind(text: str) -> tuple[str, int]:
    """'127.0.0.1', '0.0.0.0:5557', '[::1]:0' → (address, port); port 0 when not given (a free one).

    A bind address is an address of this machine (or a wildcard), never a name."""
    raw = text.strip()
    host, port = raw, 0
    bracketed = raw.startswith("[") and "]" in raw
    if bracketed or raw.count(":") == 1:
        head, sep, tail = raw.rpartition(":")
        if bracketed and not head.endswith("]"):  # '[::1]' alone: no port
            head, tail = raw, ""
        if tail:
            if not tail.isdigit() or not 0 <= int(tail) <= 65535:
                raise ValueError(f"{text!r} has no valid port (0-65535; 0: a free one)")
            port = int(tail)
        host = head
    host = host.strip("[]")
    if host.lower() == "localhost":
        host = LOOPBACK
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text!r}: give an address of this machine to listen on "
                         f"(e.g. {LOOPBACK} or 0.0.0.0), not a host name") from None
    return host, port


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def join_host(bind_host: str) -> str:
    """The host a worker elsewhere names to reach a master bound to ``bind_host``: a wildcard bind
    is this machine's name (nothing is resolved here), an IPv6 address goes in brackets."""
    if bind_host in WILDCARDS:
        return socket.gethostname()
    return f"[{bind_host}]" if ":" in bind_host else bind_host
