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
    flows: int = Field(8, ge=1, le=64, description="parallel bulk transfers")
    transfer_mb: float = Field(16, gt=0, le=1_000_000, description="size of each transfer (MB); "
                                                                 "a flow starts the next at once")


EGRESS_LINES = tuple(name for name in topology.LINKS if name.startswith("egress-"))
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0


@register
class EgressSaturation(Fault):
    """A runaway bulk transfer saturating an egress line with real traffic: the imaging system
    pulling a whole archive back from the regional imaging cloud (影像云同步) in business hours.

    `flows` threads of the harness each download large transfers, back to back, from the egress
    gateway through the target line's proxy. The line's capacity (stack config `egress_lines`) holds
    them to the line's rate, and every call to a third party on that line queues behind them.
    Revert aborts every connection at once (what was in flight is dropped, not delivered late) and
    joins the threads.

    Downloads, not uploads: the gateway sends each piece once it has crossed the line, so the line's
    Toxiproxy byte counters show exactly what the line carries. Uploaded bytes would first sit in
    loopback socket buffers (megabytes) in front of the line, counted as carried before they were.
    """

    type_name = "egress_saturation"
    description = "saturate an egress line with bulk transfers (a runaway sync); revert stops them"
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
        self.moved = 0  # bytes the flows moved through the line
        self.transfers = 0  # transfers completed
        self.errors: dict[str, int] = {}

    def inject(self, stack):
        address = stack.link_listen[self.target]
        self._stop.clear()
        self._threads = [threading.Thread(target=self._flow, args=(address,), daemon=True,
                                          name=f"{self.id}-flow-{i}") for i in range(self.params.flows)]
        self.injected = True  # from here on a revert must stop what started
        for t in self._threads:
            t.start()
        return {"link": self.target, "address": address, "flows": self.params.flows,
                "transfer_mb": self.params.transfer_mb}

    def revert(self, stack):
        self._stop.set()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # a full line would hold a graceful close for seconds
            _abort(conn)
        deadline = time.monotonic() + 5
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = sum(t.is_alive() for t in self._threads)
        with self._lock:
            return {"link": self.target, "flows_stopped": len(self._threads) - alive,
                    "flows_alive": alive, "bytes_moved": self.moved,
                    "transfers_completed": self.transfers,
                    **({"errors": dict(self.errors)} if self.errors else {})}

    # --- one bulk flow ----------------------------------------------------------------------
    def _flow(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        size = int(self.params.transfer_mb * 1_000_000)
        while not self._stop.is_set():
            conn = http.client.HTTPConnection(host, int(port), timeout=CONNECT_TIMEOUT)
            with self._lock:
                self._conns.add(conn)
            try:
                conn.connect()
                if self._stop.is_set():  # reverted while connecting: the revert may not have seen us
                    break
                conn.sock.settimeout(READ_TIMEOUT)  # a full line holds a piece for seconds
                conn.request("GET", f"/download?bytes={size}")
                resp = conn.getresponse()
                while not self._stop.is_set() and (got := resp.read1(256 * 1024)):
                    with self._lock:
                        self.moved += len(got)
                with self._lock:
                    self.transfers += 1
            except (OSError, http.client.HTTPException) as e:
                if self._stop.is_set():
                    break
                with self._lock:
                    name = e.__class__.__name__
                    self.errors[name] = self.errors.get(name, 0) + 1
                self._stop.wait(0.2)  # the line is down or the gateway away: try again shortly
            finally:
                with self._lock:
                    self._conns.discard(conn)
                conn.close()


def _abort(conn: http.client.HTTPConnection) -> None:
    """Reset the connection (RST, not a graceful close): what the flow had in flight is dropped."""
    sock = conn.sock
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
