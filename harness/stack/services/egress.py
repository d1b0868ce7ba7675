"""The egress gateway: the hospital's way out to its third parties.

Run as `python -m harness.stack.services.egress --config FILE`. Config keys: `name`, `host`, `port`,
`ready_file`, `log_file`, `routes` ({"insurance-primary": "http://127.0.0.1:P", ...}), `timeout_s`
(per upstream request, connect and each read; default 5), optional `route_timeouts` ({route: s}) and
optional `lines` ({"primary": {"address": "127.0.0.1:P", "capacity_kbps": 2000, "buffer_kb": 6000}}).

`/<route>/<rest>` is forwarded to `<routes[route]>/<rest>` (method, query, body, content type) and the
upstream's answer is streamed back. The egress lines (primary and backup) are proxies in front of this
gateway, so `POST /upload` exists to push bulk traffic through a line and saturate it.

Line capacity. A line's capacity is shared by every flow on it, which a Toxiproxy `bandwidth` toxic
cannot express (it paces each connection on its own, in the real Toxiproxy as in ours). So the gateway,
where the lines end, meters them: a request that arrived over a line with a configured capacity (told
by the address it was sent to: its `Host` header names the line's listen address) crosses that line's
queue, one queue per direction, drained at `capacity_kbps` (KB = 1000 bytes). Bulk flows fill the
queue up to `buffer_kb` and then wait for room; every other request joins the queue at once and waits
until the bytes ahead of it have crossed, as behind a full router buffer. A saturated line therefore
makes every call on it as slow as `buffer_kb / capacity_kbps` seconds (3 s by default), while the
Toxiproxy byte counters of the line show it carrying exactly its capacity. `GET /_lines` tells each
line's capacity, bytes carried and current queueing delay.
"""
from __future__ import annotations

import http.client
import socket
import threading
import time
from typing import Any, Iterator
from urllib.parse import urlsplit

from .common import CHUNK, HttpError, Request, Router, Stream, load_config, serve

FORWARDED_HEADERS = ("Content-Type", "Accept", "X-Patient-Id", "X-Request-Id")
DEFAULT_QUEUE_S = 3.0  # a line's buffer, when not configured: this many seconds of its capacity
RESPONSE_HEAD = 160  # bytes charged to a line for an answer's status line and headers
# the kernel's own buffers on a connection over a metered line: small, so that what the line's proxy
# counts as carried is what crossed the line (loopback autotuning would buffer megabytes)
LINE_SOCKET_BUFFER = 32 * 1024


class LineQueue:
    """One direction of a line: a FIFO queue emptied at `rate` bytes/s (a virtual clock, no drift).

    `admit(n)` puts n bytes in the queue and returns the monotonic time at which they will have
    crossed. A bulk flow (`bulk=True`) first waits for room (at most `buffer` bytes queued); anything
    else is queued at once, behind whatever the bulk flows have queued.
    """

    def __init__(self, rate: float, buffer: float):
        self.rate, self.buffer = float(rate), float(buffer)
        self.bytes = 0
        self._free = 0.0  # when everything queued so far will have crossed
        self._lock = threading.Lock()

    def admit(self, n: int, bulk: bool = False) -> float:
        while True:
            with self._lock:
                now = time.monotonic()
                start = max(now, self._free)
                queued = (start - now) * self.rate
                if not bulk or queued <= 0 or queued + n <= self.buffer:
                    self._free = start + n / self.rate
                    self.bytes += n
                    return self._free
                wait = (queued + n - self.buffer) / self.rate
            time.sleep(wait)

    def cross(self, n: int) -> None:
        """Queue n bytes and wait until they have crossed the line."""
        wait_until(self.admit(n))

    def delay(self) -> float:
        """Seconds a byte queued now would wait."""
        with self._lock:
            return max(0.0, self._free - time.monotonic())


def wait_until(t: float) -> None:
    left = t - time.monotonic()
    if left > 0:
        time.sleep(left)


class Line:
    """An egress line with a capacity: one queue per direction (lines are full duplex)."""

    def __init__(self, name: str, address: str, capacity_kbps: float, buffer_kb: float | None):
        if not capacity_kbps or float(capacity_kbps) <= 0:
            raise SystemExit(f"line {name!r}: capacity_kbps must be a positive number")
        self.name, self.address = name, str(address)
        self.capacity_kbps = float(capacity_kbps)
        rate = self.capacity_kbps * 1000
        self.buffer_kb = float(buffer_kb) if buffer_kb else self.capacity_kbps * DEFAULT_QUEUE_S
        self.up = LineQueue(rate, self.buffer_kb * 1000)  # towards the third parties
        self.down = LineQueue(rate, self.buffer_kb * 1000)  # their answers

    def state(self) -> dict[str, Any]:
        return {"address": self.address, "capacity_kbps": self.capacity_kbps,
                "buffer_kb": self.buffer_kb, "upstream_bytes": self.up.bytes,
                "downstream_bytes": self.down.bytes, "upstream_delay_s": round(self.up.delay(), 3),
                "downstream_delay_s": round(self.down.delay(), 3)}


def _small_buffers(req: Request) -> None:
    sock = getattr(getattr(req, "_http", None), "connection", None)
    if isinstance(sock, socket.socket):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, LINE_SOCKET_BUFFER)
        except OSError:
            pass


def _port(address: str) -> str:
    return address.rsplit(":", 1)[-1] if ":" in address else ""


class Upstream:
    def __init__(self, route: str, base_url: str, timeout: float):
        u = urlsplit(base_url)
        if u.scheme != "http" or not u.hostname:
            raise SystemExit(f"route {route!r}: upstream must be http://host:port, not {base_url!r}")
        self.route, self.host, self.port = route, u.hostname, u.port or 80
        self.prefix = u.path.rstrip("/")
        self.timeout = timeout

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    def error(self, status: int, reason: str) -> HttpError:
        return HttpError(status, f"{self.route} upstream {self.addr}: {reason}",
                         route=self.route, upstream=self.addr)

    def forward(self, req: Request, rest: str, line: Line | None = None) -> Stream:
        path = f"{self.prefix}/{rest}" + (f"?{req.raw_query}" if req.raw_query else "")
        headers = {h: req.headers[h] for h in FORWARDED_HEADERS if req.headers.get(h)}
        body = req.body()
        if line is not None:  # the request crosses the line before it can go on
            line.up.cross(len(req.method) + len(req.path) + len(str(req.headers)) + len(body) + 12)
        # a fresh connection per call: a link fault must show on the next request, not on a pooled one
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(req.method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
        except TimeoutError:  # connecting or waiting for the answer
            conn.close()
            raise self.error(504, f"timed out after {self.timeout:g}s") from None
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            reason = f"{e.__class__.__name__}: {e}" if str(e) else e.__class__.__name__
            raise self.error(502, reason) from None
        length = resp.getheader("Content-Length")
        return Stream(resp.status, _relay(resp, conn, line),
                      content_type=resp.getheader("Content-Type", "application/octet-stream"),
                      length=int(length) if length and length.isdigit() else None)


def _relay(resp: http.client.HTTPResponse, conn: http.client.HTTPConnection,
           line: Line | None = None) -> Iterator[bytes]:
    try:
        if line is not None:
            line.down.cross(RESPONSE_HEAD)
        while chunk := resp.read1(CHUNK):
            if line is not None:
                line.down.cross(len(chunk))
            yield chunk
    finally:
        conn.close()


class Gateway:
    def __init__(self, config: dict[str, Any]):
        default = float(config.get("timeout_s", 5))
        per_route = config.get("route_timeouts") or {}
        self.upstreams = {name: Upstream(name, url, float(per_route.get(name, default)))
                          for name, url in (config.get("routes") or {}).items()}
        self.lines = {name: Line(name, spec.get("address", ""), spec.get("capacity_kbps"),
                                 spec.get("buffer_kb"))
                      for name, spec in (config.get("lines") or {}).items()}
        self._by_address = {line.address: line for line in self.lines.values()}
        self._by_port = {_port(line.address): line for line in self.lines.values() if _port(line.address)}

    def line_of(self, req: Request) -> Line | None:
        """The metered line a request came over, told by the address it was sent to."""
        host = (req.headers.get("Host") or "").strip()
        if not host or not self.lines:
            return None
        return self._by_address.get(host) or self._by_port.get(_port(host))

    def routes(self) -> Router:
        r = Router()
        r.add("GET", "/health", lambda req: (200, {
            "status": "ok", "routes": {n: u.addr for n, u in self.upstreams.items()}}))
        r.add("GET", "/_lines", lambda req: (200, {n: l.state() for n, l in self.lines.items()}))
        r.add("POST", "/upload", self.upload)
        r.add("*", r"/(?P<route>[^/]+)(?:/(?P<rest>.*))?", self.forward)
        return r

    def upload(self, req: Request) -> tuple[int, Any]:
        """Bulk traffic (an image upload, a backup copy): on a metered line, each piece read waits
        for room in the line's queue, so the sender is held to the line's capacity."""
        line = self.line_of(req)
        if line is not None:
            _small_buffers(req)
        total, crossed = 0, 0.0
        for chunk in req.iter_body():
            total += len(chunk)
            if line is not None:
                crossed = line.up.admit(len(chunk), bulk=True)
        wait_until(crossed)
        return 200, {"bytes": total}

    def forward(self, req: Request) -> Stream:
        upstream = self.upstreams.get(req.params["route"])
        if upstream is None:
            raise HttpError(404, f"no egress route {req.params['route']!r} "
                                 f"(known: {', '.join(sorted(self.upstreams))})")
        return upstream.forward(req, req.params.get("rest") or "", self.line_of(req))


def main(argv: list[str] | None = None) -> None:
    config = load_config("egress gateway to the third parties", argv)
    serve(config, Gateway(config).routes())


if __name__ == "__main__":
    main()
