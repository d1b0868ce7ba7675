"""Which addresses a drill may name: loopback, or the run's own container network.

Whatever a drill, a scenario or a flag names is dialled by the harness or by the proxy it runs, so a
drill must never point outside itself: no other host, and no host name that DNS could send anywhere.
The checks raise ValueError with the reason; the caller names the file, line and field.
"""
from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

# the docker backend gives each run a /24 out of this pool (stack/docker/plan.py takes it from here);
# an address there is on a run's own container network
CONTAINER_POOL_ENV = "HOSPITAL_DRILL_DOCKER_POOL"
DEFAULT_CONTAINER_POOL = "10.213.0.0/16"

# the one host name whose meaning no resolver may change (RFC 6761)
LOOPBACK_NAMES = ("localhost",)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def container_pool() -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    raw = os.environ.get(CONTAINER_POOL_ENV, DEFAULT_CONTAINER_POOL)
    try:
        return ipaddress.ip_network(raw)
    except ValueError:
        raise ValueError(f"${CONTAINER_POOL_ENV} is not a network ({raw!r})") from None


def check_host(host: str, *, container_network: bool = True) -> str:
    """`host` if it is loopback (or, when allowed, on the run's container network); else ValueError."""
    if host.lower() in LOOPBACK_NAMES:
        return host
    try:
        ip: IPAddress = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ValueError(f"{host!r} is a host name: give a loopback address (127.0.0.1, ::1)"
                         + (" or one on the run's container network" if container_network else "")
                         + ", never a name that DNS resolves") from None
    if ip.is_loopback:
        return host
    if container_network:
        pool = container_pool()
        if ip.version == pool.version and ip in pool:
            return host
        raise ValueError(f"{host} is neither loopback (127.0.0.0/8, ::1) nor on the run's container "
                         f"network ({pool}): a drill never dials outside itself")
    raise ValueError(f"{host} is not loopback (127.0.0.0/8, ::1): a drill never dials outside itself")


def split_host_port(address: str) -> tuple[str, int]:
    """'127.0.0.1:8080' or '[::1]:8080' → (host, port); ValueError when it is not that shape."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"{address!r} is not host:port")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ValueError(f"{address!r}: write an IPv6 address in brackets, e.g. [::1]:8080")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{address!r} has no valid port (1-65535)")
    return host.strip("[]"), int(port)


def check_host_port(address: str, *, container_network: bool = True) -> str:
    host, _ = split_host_port(address)
    check_host(host, container_network=container_network)
    return address.strip()


def check_url(url: str, *, container_network: bool = False) -> str:
    """An http(s) URL whose host is loopback (a Toxiproxy API the harness talks to from the host)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # ValueError when out of range or not a number
    except ValueError as e:
        raise ValueError(f"{url!r} is not a URL ({e})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// URL with a host")
    if parts.username or parts.password:
        raise ValueError(f"{url!r} carries credentials; give the address only")
    if port == 0:
        raise ValueError(f"{url!r} has no valid port (1-65535)")
    check_host(parts.hostname, container_network=container_network)
    return url.strip()
