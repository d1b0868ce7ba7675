"""What our small HTTP services share: a threaded JSON server, the config file and the ready file.

The app, the third parties and the egress gateway are each `python -m ... --config FILE`. They speak
HTTP/1.1 with keep-alive (Locust and requests reuse connections), route by method + path regex, take
and give JSON, write `{"port", "pid"}` to their ready file once listening, and stop cleanly on SIGTERM.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import select
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from http import HTTPStatus
from pathlib import Path
from socketserver import StreamRequestHandler, ThreadingTCPServer
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import parse_qs, urlsplit

import orjson

from ...whole_file import write_whole

log = logging.getLogger("harness.service")

CHUNK = 64 * 1024


class ClientGone(Exception):
    """The client went away while we read its request."""


class HttpError(Exception):
    """Raised by a handler to answer `{"error": message}` with `status`."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


@dataclass
class Stream:
    """A non-JSON reply whose body is written as it is produced (the egress gateway's pass-through)."""
    status: int
    chunks: Iterable[bytes]
    content_type: str = "application/octet-stream"
    length: int | None = None  # None: sent with chunked transfer encoding
    headers: dict[str, str] | None = None  # more response headers (e.g. who answered)


Reply = tuple[int, Any] | Stream  # (status, JSON-able body) or a stream
Handler = Callable[["Request"], Reply]


class Headers:
    """A request's headers: looked up by any case, kept in the order and spelling they came in."""

    __slots__ = ("_items", "_by_name")

    def __init__(self, items: list[tuple[str, str]]):
        self._items = items
        self._by_name = {name.lower(): value for name, value in items}

    def get(self, name: str, default: Any = None) -> Any:
        return self._by_name.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._by_name[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_name

    def __str__(self) -> str:  # as they crossed the wire (the egress gateway meters their size)
        return "".join(f"{name}: {value}\n" for name, value in self._items) + "\n"


class Request:
    """One request as handlers see it; the body is read lazily so big uploads can be streamed."""

    def __init__(self, method: str, target: str, headers: Headers, rfile: Any,
                 client_address: tuple[str, int], params: dict[str, str]):
        self.method = method
        if not target.startswith("/"):  # absolute form (http://host/path), as a proxy is sent
            split = urlsplit(target)
            target = split.path + (f"?{split.query}" if split.query else "")
        self.path, _, self.raw_query = target.partition("?")
        self.headers = headers
        self.client_address = client_address
        self.params = params
        self._rfile = rfile
        self._consumed = False

    @cached_property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.raw_query).items()} if self.raw_query else {}

    def iter_body(self) -> Iterator[bytes]:
        if self._consumed:
            return
        self._consumed = True
        try:
            yield from self._read_body(self._rfile)
        except OSError as e:  # reset, timeout: the client is gone, there is no one to answer
            raise ClientGone(str(e)) from e

    def _read_body(self, rfile: Any) -> Iterator[bytes]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                yield rfile.read(size)
                rfile.readline()
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            data = rfile.read(min(CHUNK, left))
            if not data:
                raise ClientGone("client closed the connection mid-body")
            left -= len(data)
            yield data

    def body(self) -> bytes:
        return b"".join(self.iter_body())

    def json(self) -> Any:
        """The JSON body ({} when empty); 400 when it is not JSON."""
        raw = self.body()
        if not raw.strip():
            return {}
        try:
            return orjson.loads(raw)
        except ValueError as e:
            raise HttpError(400, f"body is not valid JSON: {e}") from None

    def drain(self) -> None:
        for _ in self.iter_body():
            pass


REGEX_CHARS = frozenset(".^$*+?{}[]\\|()")


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        # (method, path) of a route with no pattern in it, unless an earlier route also matches:
        # found in one lookup, where trying every pattern cost more than some handlers
        self._exact: dict[tuple[str, str], Handler] = {}

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        method = method.upper()
        if (method != "*" and not REGEX_CHARS.intersection(pattern) and (method, pattern) not in self._exact
                and not any(m in (method, "*") and rx.match(pattern) for m, rx, _ in self._routes)):
            self._exact[method, pattern] = handler
        self._routes.append((method, re.compile(pattern + r"\Z"), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        handler = self._exact.get((method, path))
        if handler is not None:
            return handler, {}
        allowed = False
        for m, rx, handler in self._routes:
            match = rx.match(path)
            if match:
                if m in (method, "*"):
                    return handler, match.groupdict()
                allowed = True
        if allowed:
            raise HttpError(405, f"{method} not allowed on {path}")
        raise HttpError(404, f"no such endpoint: {method} {path}")


def peer_closed(fd: Any) -> bool:
    """Whether an idle connection (socket or fd) has something to read: the peer closed it or sent
    a farewell (a FATAL), so it must not be reused."""
    try:
        poller = select.poll()  # not select(): a busy service may hold fds above FD_SETSIZE
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def first_line(e: BaseException) -> str:
    """An error's first line, or its class name when it says nothing: what an answer quotes."""
    text = str(e).strip() or e.__class__.__name__
    return text.splitlines()[0]


def _json_default(o: Any) -> Any:
    # orjson writes datetimes and dates itself, as isoformat() does
    return float(o) if isinstance(o, Decimal) else str(o)


def to_json(obj: Any) -> bytes:
    """UTF-8 JSON; orjson: encoding every answer with the standard library's cost the app a tenth
    of its CPU at hospital load."""
    return orjson.dumps(obj, default=_json_default, option=orjson.OPT_NON_STR_KEYS)


STATUS_TEXT = {status.value: status.phrase for status in HTTPStatus}
MAX_LINE = 65536  # a request line or header longer than this is refused
MAX_HEADERS = 100


class BadRequest(Exception):
    """The bytes on the connection are not an HTTP/1.x request we can answer."""


def read_head(rfile: Any) -> tuple[str, str, str, Headers] | None:
    """The next request's method, target, version and headers; None when the client closed."""
    line = rfile.readline(MAX_LINE + 1)
    while line in (b"\r\n", b"\n"):  # stray line ends between requests are allowed (RFC 9112 2.2)
        line = rfile.readline(MAX_LINE + 1)
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(line) > MAX_LINE or len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"bad request line {line[:80]!r}")
    items: list[tuple[str, str]] = []
    while True:
        raw = rfile.readline(MAX_LINE + 1)
        if raw in (b"\r\n", b"\n"):
            break
        name, colon, value = raw.decode("latin-1").partition(":")
        if not raw or not colon or len(raw) > MAX_LINE or len(items) >= MAX_HEADERS:
            raise BadRequest("bad or too many headers" if raw else "connection closed mid-headers")
        items.append((name.strip(), value.strip()))
    return parts[0], parts[1], parts[2], Headers(items)


def _head(status: int, content_type: str, framing: tuple[str, str],
          headers: dict[str, str] | None, close: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {STATUS_TEXT.get(status, 'Unknown')}",
             f"Content-Type: {content_type}", "%s: %s" % framing]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _json_reply(status: int, obj: Any, keep: bool) -> bytes:
    body = to_json(obj)
    return _head(status, "application/json; charset=utf-8", ("Content-Length", str(len(body))),
                 None, not keep) + body


class _Connection(StreamRequestHandler):
    """One client connection: requests answered in turn, kept alive unless either side says close."""

    timeout = 120  # an idle keep-alive connection gives its thread back after this
    server: "JsonServer"

    def setup(self) -> None:
        super().setup()
        # a reply whose stream is written in pieces must not wait ~40 ms on Nagle and delayed ACKs
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        try:
            while self._one():
                pass
        except (BadRequest, UnicodeError) as e:
            try:
                self.connection.sendall(_json_reply(400, {"error": str(e)}, keep=False))
            except OSError:
                pass
        except (ClientGone, OSError):  # reset, idle timeout: nobody left to answer
            pass

    def _one(self) -> bool:
        """Serve one request; whether the connection stays open for the next."""
        head = read_head(self.rfile)
        if head is None:
            return False
        method, target, version, headers = head
        connection = headers.get("Connection", "").lower()
        keep = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        if headers.get("Expect", "").lower() == "100-continue":
            self.connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        req = Request(method, target, headers, self.rfile, self.client_address, {})
        try:
            handler, req.params = self.server.router.resolve(method, req.path)
            reply = handler(req)
        except HttpError as e:
            reply = (e.status, {"error": e.message, **e.extra})
        except ClientGone:
            return False
        except Exception as e:  # a bug must answer 500, not kill the connection silently
            log.exception("%s %s failed", method, target)
            reply = (500, {"error": f"internal error: {e.__class__.__name__}: {e}"})
        try:
            req.drain()  # whatever the handler did not read would be parsed as the next request
            return self._send(req, reply, keep)
        except (ClientGone, OSError) as e:
            # a client that gave up waiting (its own timeout) is routine in a drill
            log.info("%s %s: client gone while replying: %s", method, target, e)
            return False

    def _send(self, req: Request, reply: Reply, keep: bool) -> bool:
        if not isinstance(reply, Stream):
            self.connection.sendall(_json_reply(*reply, keep=keep))  # head and body in one write
            return keep
        chunked = reply.length is None
        framing = ("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(reply.length))
        self.connection.sendall(_head(reply.status, reply.content_type, framing, reply.headers, not keep))
        try:
            for chunk in reply.chunks:
                if chunk:
                    self.connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            if chunked:
                self.connection.sendall(b"0\r\n\r\n")
        except Exception as e:  # the head is gone: all we can do is drop the connection
            # a broken pipe is the client giving up; anything else broke on the producing side
            level = logging.INFO if isinstance(e, BrokenPipeError) else logging.WARNING
            log.log(level, "%s %s: stream broken: %s", req.method, req.path, e)
            return False
        return keep


class JsonServer(ThreadingTCPServer):
    daemon_threads = True  # a stuck request never holds up shutdown
    allow_reuse_address = True
    request_queue_size = 256  # Locust opens many connections at once; the default backlog is 5

    def __init__(self, address: tuple[str, int], router: Router, name: str):
        self.router, self.name = router, name
        super().__init__(address, _Connection)


def load_config(description: str, argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", required=True, type=Path, help="JSON config file")
    args = parser.parse_args(argv)
    try:
        config = json.loads(args.config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        parser.error(f"cannot read config {args.config}: {e}")
    if not isinstance(config, dict):
        parser.error(f"config {args.config} must hold a JSON object")
    return config


def setup_logging(config: dict[str, Any]) -> None:
    handler: logging.Handler = (logging.FileHandler(config["log_file"], encoding="utf-8")
                                if config.get("log_file") else logging.StreamHandler(sys.stderr))
    handler.setFormatter(logging.Formatter(
        f"%(asctime)s {config.get('name', '?')} %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)


def write_ready(path: str | Path, port: int) -> None:
    write_whole(path, json.dumps({"port": port, "pid": os.getpid()}))


def serve(config: dict[str, Any], router: Router, on_stop: Callable[[], None] | None = None) -> None:
    """Listen, announce readiness, serve until SIGTERM/SIGINT, then shut down cleanly."""
    setup_logging(config)
    name = str(config.get("name", "service"))
    ready = Path(config["ready_file"]) if config.get("ready_file") else None
    if ready:
        ready.unlink(missing_ok=True)  # never let a supervisor read a previous run's port
    server = JsonServer((config.get("host", "127.0.0.1"), int(config.get("port", 0))), router, name)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # serve in a thread: shutdown() must be called from a thread other than serve_forever's
    worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="serve", daemon=True)
    worker.start()
    port = config["port"] = server.server_address[1]  # the effective config shows the real port
    if ready:
        write_ready(ready, port)
    log.info("%s listening on %s:%s", name, server.server_address[0], port)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        if on_stop:
            on_stop()
        if ready:
            ready.unlink(missing_ok=True)
