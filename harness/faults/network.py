"""Network faults on Toxiproxy links."""
from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..stack import topology
from .base import Fault, register


class ToxicParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    toxic: Literal["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
                   "limit_data"]
    attributes: dict[str, Any] = Field(default_factory=dict)
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0, le=1)


@register
class LinkToxic(Fault):
    type_name = "link_toxic"
    description = "degrade a link with a Toxiproxy toxic (latency, bandwidth, timeout, …)"
    Params = ToxicParams
    target_links = True

    def inject(self, stack):
        p = self.params
        self.toxic_name = stack.links.add_toxic(self.target, p.toxic, p.attributes, stream=p.stream,
                                                toxicity=p.toxicity, name=f"{self.id}-{p.toxic}")
        self.injected = True
        return {"link": self.target, "toxic": p.toxic, "attributes": p.attributes}

    def revert(self, stack):
        stack.links.remove_toxic(self.target, self.toxic_name)
        return {"link": self.target, "removed": self.toxic_name}


@register
class LinkDown(Fault):
    type_name = "link_down"
    description = "take a link down entirely (proxy disabled: nothing listens, connections cut)"
    target_links = True

    def inject(self, stack):
        stack.links.set_enabled(self.target, False)
        self.injected = True
        return {"link": self.target, "enabled": False}

    def revert(self, stack):
        stack.links.set_enabled(self.target, True)
        return {"link": self.target, "enabled": True}


class SaturationParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flows: int = Field(8, ge=1, le=64, description="parallel bulk uploads")
    upload_mb: float = Field(16, gt=0, le=4096, description="size of each upload (MB); then the next")
    chunk_kb: int = Field(8, ge=1, le=1024, description="the uploader's write size")


FLOW_SOCKET_BUFFER = 64 * 1024  # a bulk flow's send buffer: what it has in flight, dropped on revert
EGRESS_LINES = tuple(name for name in topology.LINKS if name.startswith("egress-"))


@register
class EgressSaturation(Fault):
    """A runaway bulk flow (an image upload to the regional imaging cloud, a backup copy that ran
    into business hours) saturating an egress line with real traffic.

    `flows` threads of the harness each POST large bodies, back to back, to the egress gateway's
    `/upload` through the target line's proxy. The line's capacity (stack config `egress_lines`) holds
    them to the line's rate and everything else on the line queues behind them. Revert closes every
    socket at once and joins the threads.
    """

    type_name = "egress_saturation"
    description = "saturate an egress line with bulk uploads (a runaway sync); reverting stops them"
    Params = SaturationParams
    target_links = True
    default_target = "egress-primary"

    def __init__(self, spec, params):
        super().__init__(spec, params)
        if self.target not in EGRESS_LINES:
            raise ValueError(f"target: {self.target!r} is not an egress line "
                             f"(known: {', '.join(EGRESS_LINES)})")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns: set[http.client.HTTPConnection] = set()
        self._threads: list[threading.Thread] = []
        self.sent = 0  # body bytes handed to the line
        self.uploads = 0  # uploads completed
        self.errors: dict[str, int] = {}

    def inject(self, stack):
        address = stack.link_listen[self.target]
        self._stop.clear()
        self._threads = [threading.Thread(target=self._flow, args=(address,), daemon=True,
                                          name=f"{self.id}-flow-{i}") for i in range(self.params.flows)]
        for t in self._threads:
            t.start()
        self.injected = True
        return {"link": self.target, "address": address, "flows": self.params.flows,
                "upload_mb": self.params.upload_mb}

    def revert(self, stack):
        self._stop.set()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # unblock every send at once: a full line would hold them for seconds
            _cut(conn)
        deadline = time.monotonic() + 5
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = sum(t.is_alive() for t in self._threads)
        return {"link": self.target, "flows_stopped": len(self._threads) - alive, "flows_alive": alive,
                "bytes_sent": self.sent, "uploads_completed": self.uploads,
                **({"errors": dict(self.errors)} if self.errors else {})}

    # --- one bulk flow ----------------------------------------------------------------------
    def _flow(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        while not self._stop.is_set():
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            try:
                with self._lock:
                    self._conns.add(conn)
                conn.connect()
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, FLOW_SOCKET_BUFFER)
                if self._stop.is_set():
                    break
                conn.request("POST", "/upload", body=self._body(), encode_chunked=True,
                             headers={"Content-Type": "application/octet-stream",
                                      "Transfer-Encoding": "chunked"})
                conn.getresponse().read()
                with self._lock:
                    self.uploads += 1
            except (OSError, http.client.HTTPException) as e:
                if self._stop.is_set():
                    break
                name = e.__class__.__name__
                with self._lock:
                    self.errors[name] = self.errors.get(name, 0) + 1
                self._stop.wait(0.2)  # the line is down or the gateway busy: try again shortly
            finally:
                with self._lock:
                    self._conns.discard(conn)
                conn.close()

    def _body(self):
        piece = b"\x5a" * (self.params.chunk_kb * 1024)
        left = int(self.params.upload_mb * 1_000_000)
        while left > 0 and not self._stop.is_set():
            n = min(len(piece), left)
            yield piece[:n]
            with self._lock:
                self.sent += n
            left -= n


def _cut(conn: http.client.HTTPConnection) -> None:
    """Abort the connection (RST, not a graceful close): what the flow had in flight is dropped
    instead of still crossing the line after the revert."""
    sock = conn.sock
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
