"""A small HTTP/1.1 server for the API: keep-alive, chunked bodies, 100-continue, and the real
server's framing of errors (text/plain JSON, request ids, the guard against browsers)."""
from __future__ import annotations

import asyncio
import logging
import time
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

from .codec import ApiError, dumps

log = logging.getLogger("harness.netfault.server")

MAX_BODY = 8 * 1024 * 1024

_REASONS = {100: "Continue", 200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request",
            403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
            413: "Request Entity Too Large", 431: "Request Header Fields Too Large",
            500: "Internal Server Error"}

_date_cache = [0, ""]


def _http_date() -> str:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0], _date_cache[1] = now, formatdate(now, usegmt=True)
    return _date_cache[1]


class ApiProtocol(asyncio.Protocol):
    def __init__(self, core):
        self.core = core
        self.transport = None
        self.buf = bytearray()
        self.busy = self.closed = self.continued = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.core.api_conns.add(self)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.core.api_conns.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        while not self.busy and not self.closed:
            try:
                req = self._parse()
            except ValueError as e:
                status = e.args[0] if e.args and isinstance(e.args[0], int) else 400
                self._send(status, f"{_REASONS.get(status, 'Bad Request')}\n".encode(),
                           "text/plain; charset=utf-8", False, ())
                return
            if req is None:
                return
            self._dispatch(*req)

    def _parse(self):
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > 65536:
                raise ValueError(431)
            return None
        lines = buf[:end].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise ValueError(400)
        method, target, version = parts
        headers = {}
        for line in lines[1:]:
            k, sep, v = line.partition(":")
            if not sep:
                raise ValueError(400)
            headers[k.strip().lower()] = v.strip()
        start = end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body, used = self._chunked(start)
            if body is None:
                return None
        else:
            try:
                length = int(headers.get("content-length", "0") or 0)
            except ValueError:
                raise ValueError(400) from None
            if length < 0:
                raise ValueError(400)
            if length > MAX_BODY:
                raise ValueError(413)
            if len(buf) - start < length:
                if headers.get("expect", "").lower() == "100-continue" and not self.continued:
                    self.continued = True
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return None
            body, used = bytes(buf[start:start + length]), start + length
        del buf[:used]
        self.continued = False
        conn = headers.get("connection", "").lower()
        keep = ("close" not in conn) if version == "HTTP/1.1" else ("keep-alive" in conn)
        return method, target, headers, body, keep

    def _chunked(self, pos: int):
        buf, body = self.buf, bytearray()
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None, 0
            try:
                size = int(bytes(buf[pos:eol]).split(b";")[0].strip(), 16)
            except ValueError:
                raise ValueError(400) from None
            pos = eol + 2
            if size == 0:
                trailer_end = buf.find(b"\r\n\r\n", pos - 2)
                if trailer_end < 0:
                    return None, 0
                return bytes(body), trailer_end + 4
            if len(buf) < pos + size + 2:
                return None, 0
            body += buf[pos:pos + size]
            if len(body) > MAX_BODY:
                raise ValueError(413)
            pos += size + 2

    def _dispatch(self, method, target, headers, body, keep) -> None:
        core = self.core
        rid = ("X-Toxiproxy-Request-Id", core.request_id())
        path = unquote(urlsplit(target).path or "/")
        handler, args = core.route(method, path)
        if handler is None:
            status, data, ctype = args
            extra = (rid, ("X-Content-Type-Options", "nosniff")) if status == 404 else (rid,)
            self._send(status, data, ctype, keep, extra)
            return
        if headers.get("user-agent", "").startswith("Mozilla/"):
            self._send(403, b"User agent not allowed\n", "text/plain; charset=utf-8", keep,
                       (rid, ("X-Content-Type-Options", "nosniff")))
            return
        try:
            result = handler(body, *args)
        except ApiError as e:
            self._error(e, keep, rid)
            return
        except Exception as e:  # pragma: no cover - a handler bug answers 500, not a dead socket
            log.exception("API handler failed")
            self._error(ApiError(str(e) or e.__class__.__name__, 500), keep, rid)
            return
        if asyncio.iscoroutine(result):
            self.busy = True
            task = core.loop.create_task(result)
            task.add_done_callback(lambda t: self._finish(t, keep, rid))
        else:
            self._reply(result, keep, rid)

    def _finish(self, task: asyncio.Task, keep: bool, rid) -> None:
        self.busy = False
        if self.closed:
            return
        if task.cancelled():
            self._error(ApiError("request cancelled", 500), False, rid)
            return
        exc = task.exception()
        if isinstance(exc, ApiError):
            self._error(exc, keep, rid)
        elif exc is not None:
            log.error("API handler failed", exc_info=exc)
            self._error(ApiError(str(exc) or exc.__class__.__name__, 500), keep, rid)
        else:
            self._reply(task.result(), keep, rid)
        if self.buf and not self.closed:
            self._next()

    def _reply(self, result, keep: bool, rid) -> None:
        status, payload = result
        if payload is None:
            self._send(status, b"", None, keep, (rid,))
        elif isinstance(payload, tuple):
            self._send(status, payload[0], payload[1], keep, (rid,))
        else:
            self._send(status, dumps(payload), "application/json", keep, (rid,))

    def _error(self, e: ApiError, keep: bool, rid) -> None:
        body = dumps({"error": e.message, "status": e.status}) + b"\n"
        self._send(e.status, body, "text/plain; charset=utf-8", keep,
                   (rid, ("X-Content-Type-Options", "nosniff")))

    def _send(self, status, body: bytes, ctype, keep: bool, extra) -> None:
        if self.closed:
            return
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
        if ctype:
            head.append(f"Content-Type: {ctype}")
        for k, v in extra:
            head.append(f"{k}: {v}")
        head.append(f"Date: {_http_date()}")
        if status != 204:
            head.append(f"Content-Length: {len(body)}")
        if not keep:
            head.append("Connection: close")
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        if not keep:
            self.transport.close()
            self.closed = True

