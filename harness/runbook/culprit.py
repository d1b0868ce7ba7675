"""The culprit of a failed call to a third party, from the evidence the services gave.

A failed test payment or test message carries the app's account of what failed (its 502 body's
`culprit`): the component (an interface such as `payment-primary`, or an egress line), the address
that failed as the egress gateway or the app saw it, and what that address did. The gateway dials an
interface through its Toxiproxy link, so when the link's own address took the connection but gave no
answer, the fault lies behind it: the link's upstream, the interface's configured address, is tried
and named when it is what refuses. The address the runbook step switched to is never assumed guilty:
it is named only when the evidence leads to it.
"""
from __future__ import annotations

import socket
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..stack import topology

if TYPE_CHECKING:
    from ..stack.base import Stack

CONNECT_TIMEOUT = 1.0
REFUSED = "refused connection"


def probe_address(address: str | None, timeout: float = CONNECT_TIMEOUT) -> tuple[bool, str]:
    """Try a TCP connection to host:port: (connected, what happened, in words)."""
    if not address or ":" not in address:
        return False, f"is not a host:port address ({address!r})"
    host, port = address.rsplit(":", 1)
    if not port.isdigit():
        return False, f"has no valid port ({address!r})"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True, "takes connections"
    except ConnectionRefusedError:
        return False, REFUSED
    except socket.gaierror:
        return False, "does not resolve (no such host name)"
    except TimeoutError:
        return False, f"did not answer within {timeout:g}s"
    except OSError as e:
        return False, f"unreachable ({e.strerror or e.__class__.__name__})"


@dataclass
class Culprit:
    component: str  # a topology node or link: payment-backup, egress-primary, …
    address: str | None  # the address that failed
    what: str  # what it did: "refused connection", "answered HTTP 500: …"
    reported_by: str | None = None  # whose error said so: the egress gateway, an app instance
    via: str | None = None  # the link in front of `address`, when the fault lies behind it
    via_address: str | None = None
    via_what: str | None = None  # what the link's own address did

    def words(self) -> str:
        """'payment backup interface 127.0.0.9:18091 refused connection (behind …; reported by …)'"""
        where = f" {self.address}" if self.address else ""
        notes = []
        if self.via:
            notes.append(f"behind link {self.via} at {self.via_address}, which {self.via_what}")
        if self.reported_by:
            notes.append(f"reported by {self.reported_by}")
        return (f"{topology.describe(self.component)}{where} {self.what}"
                + (f" ({'; '.join(notes)})" if notes else ""))

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def link_at(stack: "Stack", address: str | None) -> str | None:
    """The link of ours that listens on `address`, if any."""
    if not address:
        return None
    return next((name for name, listen in stack.link_listen.items() if listen == address), None)


def link_upstream(stack: "Stack", link: str) -> str | None:
    """Where a link leads now, as the Toxiproxy API says (what the hospital configured)."""
    try:
        proxy = stack.links.get(link)
    except Exception:
        proxy = None
    if proxy and proxy.get("upstream"):
        return str(proxy["upstream"])
    return stack.addresses.get(topology.LINKS[link].upstream) if link in topology.LINKS else None


def locate(stack: "Stack", evidence: dict[str, Any] | None,
           probe: Callable[[str | None], tuple[bool, str]] = probe_address) -> Culprit | None:
    """The culprit the evidence points at; None when there is no evidence to go by."""
    if not isinstance(evidence, dict) or not evidence.get("component"):
        return None
    component = str(evidence["component"])
    address = evidence.get("address") or None
    what = str(evidence.get("what") or "failed")
    reported_by = evidence.get("reported_by")
    link = link_at(stack, address)
    if link is None and address is None and component in topology.LINKS:
        link, address = component, stack.link_listen.get(component)
    if link is None or what == REFUSED:
        # refused at the address the service dialled, or an address that is none of our links
        return Culprit(component, address, what, reported_by)
    upstream = link_upstream(stack, link)
    if upstream and upstream != address:
        connected, did = probe(upstream)
        if not connected:  # the link took the call, the address behind it did not
            return Culprit(component, upstream, did, reported_by, via=link, via_address=address,
                           via_what=what)
    return Culprit(component, address, what, reported_by)


def corrective_action(stack: "Stack", culprit: Culprit) -> str:
    """What to fix, in the terms of the hospital's configuration."""
    kind, _, which = culprit.component.rpartition("-")
    words = topology.describe(culprit.component)
    if kind in topology.THIRD_PARTY_KINDS and which in topology.INTERFACES:
        configured = stack.config.backup_address(kind) if which == "backup" else None
        if configured and configured == culprit.address:
            return (f"correct the configured address ({stack.config.backup_address_field(kind)}) "
                    "and test it")
        other = "backup" if which == "primary" else "primary"
        return (f"restore the {words} with the provider (its link {culprit.component} and the "
                f"service behind it), or switch {kind} to its {other} interface, and test it")
    if kind == "egress":
        return f"correct or restore the {words} and test it"
    return f"restore {words} and test it"
