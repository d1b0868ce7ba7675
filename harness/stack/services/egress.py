"""The egress gateway: the hospital's way out to its third parties.

Run as `python -m harness.stack.services.egress --config FILE`. Config keys: `name`, `host`, `port`,
`ready_file`, `log_file`, `routes` ({"insurance-primary": "http://127.0.0.1:P", ...}), `timeout_s`
(per upstream request, connect and each read; default 5), optional `route_timeouts` ({route: s}) and
optional `lines` ({"primary": {"address": "127.0.0.1:P", "capacity_kbps": 2000, "buffer_kb": 6000}}).

`/<route>/<rest>` is forwarded to `<routes[route]>/<rest>` (method, query, body, content type) and the
upstream's answer is streamed back, marked with `X-Egress-Route` and `X-Egress-Upstream` (the route and
the address that answered). When the upstream cannot be reached the gateway answers 502 (504: timed
out) with `{"error", "route", "upstream", "what", "reported_by"}`: which route, the address it dialled,
what that address did in words ("refused connection", "closed the connection without an answer") and
the gateway's name, so that whoever sees the error knows which interface failed and where. The egress lines (primary and backup) are proxies in front of this
gateway, so `POST /upload` and `GET /download?bytes=N` exist to push bulk traffic through a line and
saturate it, and `GET /_ping` to time a round trip over a line.

Line capacity. A line's capacity is shared by every flow on it, which a Toxiproxy `bandwidth` toxic
cannot express: it paces each connection on its own, in the real Toxiproxy as in ours, so N bulk flows
get N times its rate. So the gateway, where the lines end, meters them. A request that arrived over a
line with a configured capacity (told by the address it was sent to: its `Host` header is the line's
listen address) crosses that line's queue, one queue per direction, emptied at `capacity_kbps`
(KB = 1000 bytes): a call's request and its answer each wait for the bytes queued ahead of them, and
bulk flows keep the queue filled up to `buffer_kb` (default: 3 s of capacity), each of their pieces
sent on only once it has crossed. A saturated line thus delays every call on it by about
`buffer_kb / capacity_kbps` seconds, as a full router buffer does, while the line's Toxiproxy byte
counters show it carrying its capacity. `GET /_lines` tells each line's capacity, bytes carried and
current queueing delay.
"""
from __future__ import annotations

import http.client
import threading
import time
from collections import deque
from typing import Any, Iterator
from urllib.parse import urlsplit

from .common import CHUNK, HttpError, Request, Router, Stream, load_config, serve

FORWARDED_HEADERS = ("Content-Type", "Accept", "X-Patient-Id", "X-Request-Id")
DEFAULT_QUEUE_S = 3.0  # a line's buffer when not configured: this many seconds of its capacity
HEAD_BYTES = 160  # what a status line and its headers weigh on a line
MAX_DOWNLOAD = 1 << 40


class LineQueue:
    """One direction of a line: a FIFO queue emptied at `rate` bytes/s, kept as a virtual clock (the
    moment everything queued so far will have crossed), so that pacing does not drift.

    `admit(n)` queues n bytes behind everything queued already and says when they will have crossed;
    `admit(n, bulk=True)` does so only while at most `buffer` bytes are queued, and answers None
    otherwise: a bulk sender comes back when `room_at(n)` says there is room.
    """

    def __init__(self, rate: float, buffer: float):
        self.rate, self.buffer = float(rate), float(buffer)
        self.bytes = 0  # admitted so far
        self._free = 0.0
        self._lock = threading.Lock()

    def admit(self, n: int, bulk: bool = False) -> float | None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._free)
            if bulk and (start - now) * self.rate + n > self.buffer and start > now:
                return None
            self._free = start + n / self.rate
            self.bytes += n
            return self._free

    def room_at(self, n: int) -> float:
        with self._lock:
            return self._free - max(0.0, self.buffer - n) / self.rate

    def cross(self, n: int) -> None:
        """Queue n bytes and wait until they have crossed."""
        wait_until(self.admit(n))

    def delay(self) -> float:
        """Seconds a byte queued now would wait."""
        with self._lock:
            return max(0.0, self._free - time.monotonic())

    def paced(self, total: int, piece: int) -> Iterator[int]:
        """A bulk sender of `total` bytes: yields each piece's size once it has crossed, keeping as
        many pieces queued as there is room for."""
        queued: deque[tuple[float, int]] = deque()
        left = total
        while left > 0 or queued:
            while left > 0:
                n = min(piece, left)
                t = self.admit(n, bulk=True)
                if t is None:
                    break
                queued.append((t, n))
                left -= n
            if queued:
                t, n = queued.popleft()
                wait_until(t)
                yield n
            else:
                wait_until(self.room_at(min(piece, left)))


def wait_until(t: float) -> None:
    left = t - time.monotonic()
    if left > 0:
        time.sleep(left)


class Line:
    """An egress line with a capacity: one queue each way (a line is full duplex)."""

    def __init__(self, name: str, address: Any, capacity_kbps: Any, buffer_kb: Any = None):
        try:
            capacity = float(capacity_kbps)
            buffer = float(buffer_kb) if buffer_kb is not None else capacity * DEFAULT_QUEUE_S
        except (TypeError, ValueError):
            capacity = buffer = 0.0
        if capacity <= 0 or buffer <= 0 or not address:
            raise SystemExit(f"line {name!r}: needs an address and a positive capacity_kbps and "
                             f"buffer_kb, not {address!r}, {capacity_kbps!r}, {buffer_kb!r}")
        self.name, self.address = name, str(address)
        self.capacity_kbps, self.buffer_kb = capacity, buffer
        self.up = LineQueue(capacity * 1000, buffer * 1000)  # towards the third parties, uploads
        self.down = LineQueue(capacity * 1000, buffer * 1000)  # their answers, downloads
        # a bulk piece is a few ms of the line, so that the line's byte counters advance smoothly
        self.piece = int(min(64 * 1024, max(1024, capacity * 1000 * 0.0025)))

    def state(self) -> dict[str, Any]:
        return {"address": self.address, "capacity_kbps": self.capacity_kbps,
                "buffer_kb": self.buffer_kb, "upstream_bytes": self.up.bytes,
                "downstream_bytes": self.down.bytes, "upstream_delay_s": round(self.up.delay(), 3),
                "downstream_delay_s": round(self.down.delay(), 3)}


def _port(address: str) -> str:
    return address.rsplit(":", 1)[-1] if ":" in address else ""


def _head_bytes(req: Request) -> int:
    return len(req.method) + len(req.path) + len(req.raw_query) + len(str(req.headers)) + 12


def what_happened(e: BaseException) -> str:
    """What a failed call to an upstream address did, in an operator's words."""
    if isinstance(e, ConnectionRefusedError):
        return "refused connection"
    if isinstance(e, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        return "closed the connection without an answer"
    if isinstance(e, OSError) and e.strerror:
        return f"unreachable ({e.strerror})"
    return f"failed ({e.__class__.__name__}{': ' + str(e) if str(e) else ''})"


class Upstream:
    def __init__(self, route: str, base_url: str, timeout: float, gateway: str = "egress-gw"):
        u = urlsplit(base_url)
        if u.scheme != "http" or not u.hostname:
            raise SystemExit(f"route {route!r}: upstream must be http://host:port, not {base_url!r}")
        self.route, self.host, self.port = route, u.hostname, u.port or 80
        self.prefix = u.path.rstrip("/")
        self.timeout, self.gateway = timeout, gateway

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    def error(self, status: int, what: str, reason: str | None = None) -> HttpError:
        return HttpError(status, f"{self.route} upstream {self.addr} {what}"
                         + (f" ({reason})" if reason else ""),
                         route=self.route, upstream=self.addr, what=what, reported_by=self.gateway)

    def marks(self) -> dict[str, str]:
        return {"X-Egress-Route": self.route, "X-Egress-Upstream": self.addr}

    def forward(self, req: Request, rest: str, line: Line | None = None) -> Stream:
        path = f"{self.prefix}/{rest}" + (f"?{req.raw_query}" if req.raw_query else "")
        headers = {h: req.headers[h] for h in FORWARDED_HEADERS if req.headers.get(h)}
        body = req.body()
        if line is not None:  # the request crosses the line before it goes on
            line.up.cross(_head_bytes(req) + len(body))
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
            raise self.error(502, what_happened(e), reason) from None
        length = resp.getheader("Content-Length")
        ctype = resp.getheader("Content-Type", "application/octet-stream")
        if line is not None:
            # third parties answer in a few hundred bytes: the answer crosses the line whole, status
            # line first, so a full line holds back the caller's first byte
            try:
                data = resp.read()
            except TimeoutError:
                raise self.error(504, f"timed out after {self.timeout:g}s (reading its answer)") from None
            except (OSError, http.client.HTTPException) as e:
                raise self.error(502, f"broke off its answer ({what_happened(e)})",
                                 e.__class__.__name__) from None
            finally:
                conn.close()
            line.down.cross(HEAD_BYTES + len(data))
            return Stream(resp.status, [data], content_type=ctype, length=len(data),
                          headers=self.marks())
        return Stream(resp.status, _relay(resp, conn),
                      content_type=ctype,
                      length=int(length) if length and length.isdigit() else None,
                      headers=self.marks())


def _relay(resp: http.client.HTTPResponse, conn: http.client.HTTPConnection) -> Iterator[bytes]:
    try:
        while chunk := resp.read1(CHUNK):
            yield chunk
    finally:
        conn.close()


class Gateway:
    def __init__(self, config: dict[str, Any]):
        default = float(config.get("timeout_s", 5))
        per_route = config.get("route_timeouts") or {}
        name = str(config.get("name", "egress-gw"))
        self.upstreams = {route: Upstream(route, url, float(per_route.get(route, default)), name)
                          for route, url in (config.get("routes") or {}).items()}
        self.lines = {name: Line(name, spec.get("address"), spec.get("capacity_kbps"),
                                 spec.get("buffer_kb"))
                      for name, spec in (config.get("lines") or {}).items()}
        self._by_address = {line.address: line for line in self.lines.values()}
        self._by_port = {_port(line.address): line for line in self.lines.values()}

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
        r.add("GET", "/_ping", self.ping)
        r.add("POST", "/upload", self.upload)
        r.add("GET", "/download", self.download)
        r.add("*", r"/(?P<route>[^/]+)(?:/(?P<rest>.*))?", self.forward)
        return r

    def ping(self, req: Request) -> tuple[int, Any]:
        """A line's round trip: on a metered line the request and the answer each cross it, so a
        full line shows in the time this takes (what a network team's latency probe measures)."""
        line = self.line_of(req)
        if line is not None:
            line.up.cross(_head_bytes(req))
            line.down.cross(HEAD_BYTES)
        return 200, {"line": line.name if line is not None else None}

    def upload(self, req: Request) -> tuple[int, Any]:
        """Bulk traffic out (an image upload, a backup copy). On a metered line the body is read
        only as there is room in the line's queue, and answered once all of it has crossed."""
        line = self.line_of(req)
        total, crossed = 0, 0.0
        for chunk in req.iter_body():
            total += len(chunk)
            if line is None:
                continue
            for off in range(0, len(chunk), line.piece):
                n = min(line.piece, len(chunk) - off)
                while (t := line.up.admit(n, bulk=True)) is None:
                    wait_until(line.up.room_at(n))
                crossed = t
        wait_until(crossed)
        return 200, {"bytes": total}

    def download(self, req: Request) -> Stream:
        """Bulk traffic in (`?bytes=N`, default 16 MB: an image sync, an update). On a metered line
        each piece is sent once it has crossed the line."""
        raw = req.query.get("bytes", "16000000")
        if not raw.isdigit() or not 0 < int(raw) <= MAX_DOWNLOAD:
            raise HttpError(400, f"bytes must be a whole number from 1 to {MAX_DOWNLOAD}")
        total, line = int(raw), self.line_of(req)
        piece = line.piece if line is not None else CHUNK
        block = b"\x5a" * piece

        def chunks() -> Iterator[bytes]:
            if line is None:
                for off in range(0, total, piece):
                    yield block[:min(piece, total - off)]
                return
            for n in line.down.paced(total, piece):
                yield block[:n]
        return Stream(200, chunks(), length=total)

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
