"""What our small HTTP services share: a threaded JSON server, the config file and the ready file.

The app, the third parties and the egress gateway are each `python -m ... --config FILE`. They speak
HTTP/1.1 with keep-alive (Locust and requests reuse connections), route by method + path regex, take
and give JSON, write `{"port", "pid"}` to their ready file once listening, and stop cleanly on SIGTERM.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import parse_qs, urlsplit

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


class Request:
    """One request as handlers see it; the body is read lazily so big uploads can be streamed."""

    def __init__(self, http: BaseHTTPRequestHandler, params: dict[str, str]):
        self._http = http
        split = urlsplit(http.path)
        self.method: str = http.command
        self.path: str = split.path
        self.raw_query: str = split.query
        self.query: dict[str, str] = {k: v[0] for k, v in parse_qs(split.query).items()}
        self.headers = http.headers
        self.params = params
        self._consumed = False

    def iter_body(self) -> Iterator[bytes]:
        if self._consumed:
            return
        self._consumed = True
        try:
            yield from self._read_body(self._http.rfile)
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
            return json.loads(raw)
        except ValueError as e:
            raise HttpError(400, f"body is not valid JSON: {e}") from None

    def drain(self) -> None:
        for _ in self.iter_body():
            pass


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(pattern + r"\Z"), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
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


def first_line(e: BaseException) -> str:
    """An error's first line, or its class name when it says nothing: what an answer quotes."""
    text = str(e).strip() or e.__class__.__name__
    return text.splitlines()[0]


def to_json(obj: Any) -> bytes:
    def default(o: Any) -> Any:
        if isinstance(o, Decimal):
            return float(o)
        if isinstance(o, (dt.datetime, dt.date)):
            return o.isoformat()
        return str(o)
    return json.dumps(obj, ensure_ascii=False, default=default).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every reply carries a length or is chunked
    timeout = 120  # an idle keep-alive connection gives its thread back after this
    server: "JsonServer"

    def setup(self) -> None:
        super().setup()
        # headers and body leave in separate writes: with Nagle's algorithm and the client's
        # delayed ACK every keep-alive reply would wait ~40 ms
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _dispatch(self) -> None:
        req: Request | None = None
        try:
            handler, params = self.server.router.resolve(self.command, urlsplit(self.path).path)
            req = Request(self, params)
            reply = handler(req)
        except HttpError as e:
            reply = (e.status, {"error": e.message, **e.extra})
        except ClientGone:
            self.close_connection = True
            return
        except Exception as e:  # a bug must answer 500, not kill the connection silently
            log.exception("%s %s failed", self.command, self.path)
            reply = (500, {"error": f"internal error: {e.__class__.__name__}: {e}"})
        try:
            # whatever the handler did not read would be parsed as the next request
            (req or Request(self, {})).drain()
            self._send(reply)
        except (ClientGone, OSError) as e:
            # a client that gave up waiting (its own timeout) is routine in a drill
            log.info("%s %s: client gone while replying: %s", self.command, self.path, e)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def _send(self, reply: Reply) -> None:
        if isinstance(reply, Stream):
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            for name, value in (reply.headers or {}).items():
                self.send_header(name, value)
            chunked = reply.length is None
            self.send_header(*(("Transfer-Encoding", "chunked") if chunked
                               else ("Content-Length", str(reply.length))))
            self.end_headers()
            try:
                for chunk in reply.chunks:
                    if chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
            except Exception as e:  # headers are gone: all we can do is drop the connection
                # a broken pipe is the client giving up; anything else broke on the producing side
                level = logging.INFO if isinstance(e, BrokenPipeError) else logging.WARNING
                log.log(level, "%s %s: stream broken: %s", self.command, self.path, e)
                self.close_connection = True
            return
        status, obj = reply
        body = to_json(obj)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class JsonServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck request never holds up shutdown
    allow_reuse_address = True
    request_queue_size = 256  # Locust opens many connections at once; the default backlog is 5

    def __init__(self, address: tuple[str, int], router: Router, name: str):
        self.router, self.name = router, name
        super().__init__(address, _Handler)


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
    """Temp file + rename: a reader sees either no file or the whole of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"port": port, "pid": os.getpid()}))
    os.replace(tmp, path)


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
