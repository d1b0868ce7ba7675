"""A Toxiproxy 2.x compatible server in pure Python (asyncio, stdlib only).

It speaks the HTTP API described in the shared TOXIPROXY.md, so the ``toxiproxy-python`` client and
plain scripts work against it unchanged, and proxies real TCP traffic through chains of toxics.

Run it as a process::

    python -m harness.netfault.server --host 127.0.0.1 --port 8474 [--ready-file PATH]

or embed it::

    with ToxiproxyServer("127.0.0.1", 0) as srv:
        ...  # srv.url, srv.port

Extension (not in the real Toxiproxy): ``GET /proxies/{name}/stats`` answers
``{"upstream_bytes", "downstream_bytes", "connections", "connections_total"}``; byte counts are the
bytes forwarded in each direction since the proxy was created, ``connections`` the ones open now.

Data path.  Each accepted client gets an upstream connection and two one-way pipes (upstream =
client to server, downstream = server to client).  A pipe with no toxics writes what it reads
straight to the other socket.  A pipe with toxics runs one small task per toxic, chained by
unbounded queues, like Toxiproxy's goroutine chain; back-pressure comes from pausing the reading
side when too many bytes are inside the chain.  Times are absolute (``loop.time()``), so latency is
added to the moment a chunk arrived and bandwidth pacing is a virtual clock that does not drift.

Differences from the real server, on purpose: a ``timeout`` toxic holds data rather than dropping
it, so when it is removed before it fires the held data flows on; half-closes are forwarded
(``EOF`` becomes ``shutdown(SHUT_WR)`` on the other side) instead of closing both ways at once.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

__all__ = ["ToxiproxyServer", "ApiError", "TOXIC_TYPES", "VERSION", "main"]

log = logging.getLogger("harness.netfault.server")

VERSION = "2.12.0"

# Items flowing through a pipe: (kind, data, ts) where ts is the loop time it entered a stage.
DATA, EOF, CLOSE, RESET = 0, 1, 2, 3
UPSTREAM, DOWNSTREAM = 0, 1

HIGH_WATER = 256 * 1024     # bytes inside a toxic chain before the source is paused
LOW_WATER = 64 * 1024       # ... and resumed
PACE_SLICE = 0.01           # bandwidth toxic: emit pieces worth this many seconds
ABORT_AFTER = 5.0           # a gracefully closed socket that will not flush is aborted after this
MAX_BODY = 8 * 1024 * 1024

# type -> (Go struct name, attribute names in the order the real server prints them)
TOXIC_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "latency": ("LatencyToxic", ("latency", "jitter")),
    "bandwidth": ("BandwidthToxic", ("rate",)),
    "slow_close": ("SlowCloseToxic", ("delay",)),
    "timeout": ("TimeoutToxic", ("timeout",)),
    "reset_peer": ("ResetToxic", ("timeout",)),
    "slicer": ("SlicerToxic", ("average_size", "size_variation", "delay")),
    "limit_data": ("LimitDataToxic", ("bytes",)),
    "noop": ("NoopToxic", ()),
}

ERR_INVALID_STREAM = "stream was invalid, can be either upstream or downstream"


class ApiError(Exception):
    """An API failure answered as ``{"error": message, "status": status}``."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message, self.status = message, status


# --------------------------------------------------------------------------------------------
# JSON decoding with the real server's leniency and error wording (Go encoding/json)

_DECODER = json.JSONDecoder()
_INT64 = (-(1 << 63), (1 << 63) - 1)


def _jkind(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


def _parse_json(body: bytes):
    """First JSON value of the body (trailing bytes ignored, as Go's json.Decoder does)."""
    text = body.decode("utf-8", "replace").lstrip(" \t\r\n")
    if not text:
        raise ApiError("bad request body: EOF", 400)
    try:
        value, _ = _DECODER.raw_decode(text)
    except json.JSONDecodeError as e:
        if e.pos >= len(text):
            why = "unexpected EOF"
        else:
            why = f"invalid character {text[e.pos]!r} ({e.msg.lower()})"
        raise ApiError(f"bad request body: {why}", 400) from None
    return value


def _fields(obj, spec: dict[str, str], struct: str) -> dict:
    """Pick the known fields of a JSON object, type-checked; keys match case-insensitively."""
    if not isinstance(obj, dict):
        raise ApiError(f"bad request body: json: cannot unmarshal {_jkind(obj)} into Go value of "
                       f"type {struct}", 400)
    lower = {k.lower(): k for k in spec}
    out = {}
    for key, val in obj.items():
        name = key if key in spec else lower.get(key.lower())
        if name is None or val is None:
            continue
        kind = spec[name]
        if kind == "string":
            ok = isinstance(val, str)
        elif kind == "bool":
            ok = isinstance(val, bool)
        elif kind == "int64":
            ok = isinstance(val, int) and not isinstance(val, bool) and _INT64[0] <= val <= _INT64[1]
        elif kind == "float32":
            ok = isinstance(val, (int, float)) and not isinstance(val, bool)
        else:  # "object"
            ok = isinstance(val, dict)
        if not ok:
            what = _jkind(val)
            if what == "number":
                what = f"number {json.dumps(val)}"
            raise ApiError(f"bad request body: json: cannot unmarshal {what} into Go struct field "
                           f"{struct}.{name} of type {kind}", 400)
        out[name] = val
    return out


def _toxic_attrs(kind: str, given, base: dict) -> dict:
    struct, names = TOXIC_TYPES[kind]
    attrs = dict(base)
    if given is None:
        return attrs
    attrs.update(_fields(given, {n: "int64" for n in names}, f"toxics.{struct}"))
    return attrs


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


# --------------------------------------------------------------------------------------------
# Addresses

def _split_hostport(addr: str) -> tuple[str, int]:
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0 or not addr[end + 1:].startswith(":"):
            raise ValueError(f"address {addr}: missing port in address")
        host, port = addr[1:end], addr[end + 2:]
    else:
        host, sep, port = addr.rpartition(":")
        if not sep:
            raise ValueError(f"address {addr}: missing port in address")
        if ":" in host:
            raise ValueError(f"address {addr}: too many colons in address")
    if port.isdigit():
        num = int(port)
    else:
        try:
            num = socket.getservbyname(port, "tcp")
        except OSError:
            raise ValueError(f"address {addr}: unknown port") from None
    if not 0 <= num <= 65535:
        raise ValueError(f"address {addr}: invalid port")
    return host, num


def _format_addr(sockname) -> str:
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _listen_socket(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host or "0.0.0.0", port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    family, _, proto, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(1024)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


# --------------------------------------------------------------------------------------------
# Data path

class _Chan:
    """An unbounded single-consumer queue."""

    __slots__ = ("items", "waiter")

    def __init__(self):
        self.items: deque = deque()
        self.waiter: asyncio.Future | None = None

    def put(self, item) -> None:
        self.items.append(item)
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)

    async def wait(self, timeout: float | None = None) -> None:
        loop = asyncio.get_running_loop()
        w = self.waiter = loop.create_future()
        timer = loop.call_later(timeout, _wake, w) if timeout is not None else None
        try:
            await w
        finally:
            if timer is not None:
                timer.cancel()
            if self.waiter is w:
                self.waiter = None


def _wake(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


async def _sleep_until(loop, when: float) -> None:
    delay = when - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


class _Stage:
    """One toxic applied to one pipe of one connection."""

    __slots__ = ("pipe", "toxic", "attrs", "active", "inp", "out", "task", "held", "mode", "state",
                 "loop")

    def __init__(self, pipe: "_Pipe", toxic: "_Toxic"):
        self.pipe, self.toxic, self.loop = pipe, toxic, pipe.loop
        self.inp = _Chan()
        self.out = None
        self.task: asyncio.Task | None = None
        self.held: list = []          # items taken from inp and not yet passed on
        self.mode = "kill"
        self.state: dict = {}         # per-connection state that survives an update
        self.roll()

    def roll(self) -> None:
        self.attrs = dict(self.toxic.attrs)
        self.active = self.pipe.conn.proxy.core.rng.random() < self.toxic.toxicity

    def start(self) -> None:
        self.mode = "kill"
        self.task = self.loop.create_task(self._run())

    async def take(self):
        inp = self.inp
        while not inp.items:
            await inp.wait()
        item = inp.items.popleft()
        self.held = [item]
        return item

    def forward(self) -> None:
        """Pass every held item on, stamped now."""
        held, self.held = self.held, []
        now = self.loop.time()
        for kind, data, _ in held:
            self.out.put((kind, data, now))

    def emit(self, kind: int, data=None) -> None:
        self.out.put((kind, data, self.loop.time()))

    async def _run(self) -> None:
        runner = _RUNNERS[self.toxic.type] if self.active else _run_noop
        try:
            await runner(self)
        except asyncio.CancelledError:
            held, self.held = self.held, []
            if self.mode == "remove":       # do not drop data on the floor
                now = self.loop.time()
                for kind, data, _ in held:
                    self.out.put((kind, data, now))
            elif self.mode == "update":     # re-run the same data with the new settings
                self.inp.items.extendleft(reversed(held))
        except Exception:  # pragma: no cover - a bug in a toxic must not hang the connection
            log.exception("toxic %s failed", self.toxic.name)
            self.held = []
            self.emit(CLOSE)

    async def interrupt(self, mode: str) -> None:
        task = self.task
        if task is None or task.done():
            return
        self.mode = mode
        task.cancel()
        await asyncio.wait([task])

    def kill(self) -> None:
        if self.task is not None and not self.task.done():
            self.mode = "kill"
            self.task.cancel()


async def _run_noop(st: _Stage) -> None:
    while True:
        kind = (await st.take())[0]
        st.forward()
        if kind != DATA:
            return


async def _run_latency(st: _Stage) -> None:
    lat, jit = st.attrs["latency"], st.attrs["jitter"]
    rng, loop = st.pipe.conn.proxy.core.rng, st.loop
    while True:
        kind, _, ts = await st.take()
        if kind == DATA:
            delay = lat + (rng.randrange(-jit, jit) if jit > 0 else 0)
            await _sleep_until(loop, ts + delay / 1000.0)
        st.forward()
        if kind != DATA:
            return


async def _run_bandwidth(st: _Stage) -> None:
    rate = st.attrs["rate"]
    if rate <= 0:
        return await _run_noop(st)
    bps = rate * 1000.0
    piece = max(1, int(bps * PACE_SLICE))
    loop, state = st.loop, st.state
    while True:
        kind, data, ts = await st.take()
        if kind != DATA:
            st.forward()
            return
        # Virtual clock: each piece leaves when the link would have finished sending it.
        t = max(ts, state.get("free", 0.0))
        view, off, total = memoryview(data), 0, len(data)
        while off < total:
            n = min(piece, total - off)
            t += n / bps
            await _sleep_until(loop, t)
            chunk = view[off:off + n]
            off += n
            st.held = [(DATA, view[off:], ts)] if off < total else []
            state["free"] = t
            st.emit(DATA, chunk)


async def _run_slow_close(st: _Stage) -> None:
    delay = st.attrs["delay"]
    while True:
        kind = (await st.take())[0]
        if kind != DATA and delay > 0:
            await asyncio.sleep(delay / 1000.0)
        st.forward()
        if kind != DATA:
            return


async def _run_timeout(st: _Stage) -> None:
    # Holds everything (never takes from its input); closes the connection after the timeout,
    # or at once when the source closes.  Timeout 0 holds until the toxic is removed.
    ms, inp, loop = st.attrs["timeout"], st.inp, st.loop
    deadline = loop.time() + ms / 1000.0 if ms > 0 else None
    while True:
        if inp.items and inp.items[-1][0] != DATA:
            break
        if deadline is None:
            await inp.wait()
            continue
        left = deadline - loop.time()
        if left <= 0:
            break
        await inp.wait(left)
    inp.items.clear()
    st.emit(CLOSE)


async def _run_reset_peer(st: _Stage) -> None:
    # On the first data (or close) to arrive, wait the timeout, then reset both sockets.
    ms, inp = st.attrs["timeout"], st.inp
    while not inp.items:
        await inp.wait()
    if ms > 0:
        await asyncio.sleep(ms / 1000.0)
    inp.items.clear()
    st.emit(RESET)


async def _run_slicer(st: _Stage) -> None:
    avg, var, delay = st.attrs["average_size"], st.attrs["size_variation"], st.attrs["delay"]
    if avg <= 0:
        return await _run_noop(st)
    rng = st.pipe.conn.proxy.core.rng
    while True:
        kind, data, ts = await st.take()
        if kind != DATA:
            st.forward()
            return
        view, off, total = memoryview(data), 0, len(data)
        while off < total:
            left = total - off
            if left - avg <= var:
                n = left
            else:
                n = avg + (rng.randint(-var, var) if var > 0 else 0)
                n = max(1, min(n, left))
            chunk = view[off:off + n]
            off += n
            st.held = [(DATA, view[off:], ts)] if off < total else []
            st.emit(DATA, chunk)
            if delay > 0:
                await asyncio.sleep(delay / 1e6)


async def _run_limit_data(st: _Stage) -> None:
    limit, state = st.attrs["bytes"], st.state
    while True:
        kind, data, _ = await st.take()
        if kind != DATA:
            st.forward()
            return
        sent = state.get("sent", 0)
        room = max(0, limit - sent)
        if room < len(data):
            data = memoryview(data)[:room]
        st.held = []
        if len(data):
            state["sent"] = sent = sent + len(data)
            st.emit(DATA, data)
        if limit - sent <= 0:
            st.emit(CLOSE)
            return


_RUNNERS = {
    "latency": _run_latency, "bandwidth": _run_bandwidth, "slow_close": _run_slow_close,
    "timeout": _run_timeout, "reset_peer": _run_reset_peer, "slicer": _run_slicer,
    "limit_data": _run_limit_data, "noop": _run_noop,
}


class _Pipe:
    """One direction of one connection: src socket -> toxic stages -> dst socket."""

    __slots__ = ("conn", "loop", "dir", "src", "dst", "stages", "buffered", "dst_paused",
                 "buf_paused", "read_paused", "ended", "done", "eof_sent", "counters")

    def __init__(self, conn: "_Conn", direction: int, src: "_Side", dst: "_Side"):
        self.conn, self.loop, self.dir, self.src, self.dst = conn, conn.loop, direction, src, dst
        self.stages: list[_Stage] = []
        self.buffered = 0
        self.dst_paused = self.buf_paused = self.read_paused = False
        self.ended = False      # the source has ended (EOF or closed)
        self.done = False       # a terminal item reached the sink
        self.eof_sent = False
        self.counters = conn.proxy.bytes

    # -- source side
    def feed(self, data: bytes) -> None:
        if self.ended or self.done:
            return
        stages = self.stages
        if not stages:
            self._write(data)
            return
        self.buffered += len(data)
        stages[0].inp.put((DATA, data, self.loop.time()))
        if self.buffered > HIGH_WATER and not self.buf_paused:
            self.buf_paused = True
            self.sync_reading()

    def feed_end(self, kind: int) -> None:
        if self.ended:
            return
        self.ended = True
        item = (kind, None, self.loop.time())
        if self.stages:
            self.stages[0].inp.put(item)
        else:
            self.put(item)

    def sync_reading(self) -> None:
        want = self.dst_paused or self.buf_paused
        if want == self.read_paused:
            return
        t = self.src.transport
        if t is None or self.src.closed or t.is_closing():
            return
        self.read_paused = want
        if want:
            t.pause_reading()
        else:
            t.resume_reading()

    # -- sink (the last stage writes here)
    def put(self, item) -> None:
        if self.done:
            return
        kind = item[0]
        if kind == DATA:
            data = item[1]
            self.buffered -= len(data)
            self._write(data)
            if self.buf_paused and self.buffered <= LOW_WATER:
                self.buf_paused = False
                self.sync_reading()
        else:
            self.done = True
            self.conn.terminal(self, kind)

    def _write(self, data) -> None:
        dst = self.dst
        t = dst.transport
        if dst.closed or t.is_closing():
            return
        t.write(data)
        self.counters[self.dir] += len(data)

    # -- toxic changes on a live connection
    def add_stage(self, toxic: "_Toxic") -> None:
        if self.done:
            return
        st = _Stage(self, toxic)
        st.out = self
        if self.stages:
            self.stages[-1].out = st.inp
        self.stages.append(st)
        st.start()

    def _find(self, toxic) -> _Stage | None:
        for st in self.stages:
            if st.toxic is toxic:
                return st
        return None

    async def remove_stage(self, toxic: "_Toxic") -> None:
        st = self._find(toxic)
        if st is None:
            return
        await st.interrupt("remove")
        if st not in self.stages:
            return
        i = self.stages.index(st)
        nxt = st.out
        if i > 0:
            self.stages[i - 1].out = nxt
        del self.stages[i]
        now = self.loop.time()
        items = st.inp.items
        while items:
            kind, data, _ = items.popleft()
            nxt.put((kind, data, now))

    async def update_stage(self, toxic: "_Toxic") -> None:
        st = self._find(toxic)
        if st is None or self.done:
            return
        finished = st.task is not None and st.task.done()
        await st.interrupt("update")
        if finished:
            return
        st.roll()
        st.start()

    def kill(self) -> None:
        for st in self.stages:
            st.kill()


class _Side(asyncio.Protocol):
    """One socket of a proxied connection (the client's or the upstream's)."""

    __slots__ = ("conn", "upstream", "transport", "out_pipe", "in_pipe", "closed", "early")

    def __init__(self, conn: "_Conn", upstream: bool):
        self.conn, self.upstream = conn, upstream
        self.transport = None
        self.out_pipe: _Pipe | None = None   # pipe reading from this socket
        self.in_pipe: _Pipe | None = None    # pipe writing to this socket
        self.closed = False
        # bytes a client sent before its upstream answered: some Pythons (3.11 < 3.11.3) deliver
        # data despite pause_reading() in connection_made, so keep them rather than lose them
        self.early: list[bytes] = []

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self.upstream:
            self.conn.upstream_made(self)
        else:
            self.conn.client_made(self)

    def data_received(self, data: bytes) -> None:
        pipe = self.out_pipe
        if pipe is not None:
            pipe.feed(data)
        else:
            self.early.append(data)

    def eof_received(self):
        pipe = self.out_pipe
        if pipe is None:
            return False
        pipe.feed_end(EOF)
        return True

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.conn.side_lost(self)

    def pause_writing(self) -> None:
        pipe = self.in_pipe
        if pipe is not None:
            pipe.dst_paused = True
            pipe.sync_reading()

    def resume_writing(self) -> None:
        pipe = self.in_pipe
        if pipe is not None:
            pipe.dst_paused = False
            pipe.sync_reading()


def _close_transport(loop, side: _Side | None) -> None:
    if side is None or side.closed or side.transport is None:
        return
    t = side.transport
    if not t.is_closing():
        t.close()
        loop.call_later(ABORT_AFTER, _abort_if_open, side)


def _abort_if_open(side: _Side) -> None:
    if not side.closed:
        side.transport.abort()


class _Conn:
    """A client connection and its upstream connection."""

    def __init__(self, proxy: "_Proxy"):
        self.proxy, self.loop = proxy, proxy.core.loop
        self.client = _Side(self, False)
        self.upstream: _Side | None = None
        self.pipes: tuple[_Pipe, _Pipe] | None = None
        self.connecting: asyncio.Task | None = None
        self.closing = self.finished = False
        proxy.conns.add(self)
        proxy.connections_total += 1

    def client_made(self, side: _Side) -> None:
        side.transport.pause_reading()          # until the upstream answers
        self.connecting = self.loop.create_task(self._connect(self.proxy.upstream))

    async def _connect(self, upstream: str) -> None:
        try:
            host, port = _split_hostport(upstream)
            await self.loop.create_connection(lambda: _Side(self, True), host or None, port)
        except asyncio.CancelledError:
            raise
        except (OSError, ValueError) as e:
            log.info("proxy %s: cannot reach upstream %s: %s", self.proxy.name, upstream, e)
            _close_transport(self.loop, self.client)

    def upstream_made(self, side: _Side) -> None:
        if self.closing or self.client.closed:
            side.transport.close()
            return
        self.upstream = side
        client = self.client
        up = _Pipe(self, UPSTREAM, client, side)
        down = _Pipe(self, DOWNSTREAM, side, client)
        self.pipes = (up, down)
        client.out_pipe, client.in_pipe = up, down
        side.out_pipe, side.in_pipe = down, up
        for toxic in self.proxy.toxics.values():
            self.pipes[toxic.direction].add_stage(toxic)
        early, client.early = client.early, []
        for data in early:
            up.feed(data)
        client.transport.resume_reading()

    def terminal(self, pipe: _Pipe, kind: int) -> None:
        """A pipe's chain ended with EOF, CLOSE or RESET."""
        if kind == RESET:
            self.reset()
        elif kind == EOF and not pipe.src.closed:
            pipe.eof_sent = True
            dst = pipe.dst
            if not dst.closed and not dst.transport.is_closing():
                try:
                    if dst.transport.can_write_eof():
                        dst.transport.write_eof()
                    else:
                        _close_transport(self.loop, dst)
                except (OSError, RuntimeError):
                    _close_transport(self.loop, dst)
            other = self.pipes[1 - pipe.dir]
            if other.eof_sent or other.done:
                self.close_all()
        else:
            _close_transport(self.loop, pipe.dst)

    def side_lost(self, side: _Side) -> None:
        pipe = side.out_pipe
        if pipe is not None and not self.closing:
            if not pipe.ended:
                pipe.feed_end(CLOSE)
            elif pipe.done:
                _close_transport(self.loop, pipe.dst)
        if self.client.closed and (self.upstream is None or self.upstream.closed):
            self._finish()

    def close_all(self) -> None:
        """Close both sockets (proxy disabled, repointed or deleted)."""
        self.closing = True
        if self.connecting is not None:
            self.connecting.cancel()
        if self.pipes:
            for p in self.pipes:
                p.kill()
        _close_transport(self.loop, self.client)
        _close_transport(self.loop, self.upstream)

    def reset(self) -> None:
        self.closing = True
        for side in (self.client, self.upstream):
            if side is None or side.closed or side.transport is None:
                continue
            sock = side.transport.get_extra_info("socket")
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except (OSError, AttributeError):
                pass
            side.transport.abort()
        if self.pipes:
            for p in self.pipes:
                p.kill()

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = self.closing = True
        self.proxy.conns.discard(self)
        if self.connecting is not None:
            self.connecting.cancel()
        if self.pipes:
            for p in self.pipes:
                p.kill()


# --------------------------------------------------------------------------------------------
# Proxies and toxics

class _Toxic:
    __slots__ = ("name", "type", "stream", "direction", "toxicity", "attrs")

    def __init__(self, name, kind, stream, direction, toxicity, attrs):
        self.name, self.type, self.stream, self.direction = name, kind, stream, direction
        self.toxicity, self.attrs = toxicity, attrs

    def to_json(self) -> dict:
        tox = self.toxicity
        return {"attributes": dict(self.attrs), "name": self.name, "type": self.type,
                "stream": self.stream, "toxicity": int(tox) if float(tox).is_integer() else tox}


class _Proxy:
    def __init__(self, core: "_Core", name: str, listen: str, upstream: str):
        self.core, self.name, self.listen, self.upstream = core, name, listen, upstream
        self.enabled = False
        self.server: asyncio.AbstractServer | None = None
        self.toxics: dict[str, _Toxic] = {}
        self.conns: set[_Conn] = set()
        self.bytes = [0, 0]         # forwarded upstream, downstream
        self.connections_total = 0

    def to_json(self) -> dict:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream,
                "enabled": self.enabled, "toxics": self.toxic_list()}

    def toxic_list(self) -> list:
        ts = sorted(self.toxics.values(), key=lambda t: t.direction)   # upstream chain first
        return [t.to_json() for t in ts]

    async def start(self) -> None:
        if self.enabled:
            return
        try:
            host, port = _split_hostport(self.listen) if self.listen else ("", 0)
        except ValueError as e:
            raise ApiError(f"listen tcp: {e}", 500) from None
        try:
            sock = _listen_socket(host, port)
        except OSError as e:
            why = (e.strerror or str(e)).lower()
            raise ApiError(f"listen tcp {self.listen}: bind: {why}", 500) from None
        self.server = await self.core.loop.create_server(lambda: _Conn(self).client, sock=sock)
        self.listen = _format_addr(sock.getsockname())
        self.enabled = True
        log.info("proxy %s listening on %s -> %s", self.name, self.listen, self.upstream)

    def stop(self) -> None:
        if not self.enabled:
            return
        self.enabled = False
        if self.server is not None:
            self.server.close()
            self.server = None
        for conn in list(self.conns):
            conn.close_all()
        log.info("proxy %s stopped", self.name)

    def live_pipes(self, direction: int) -> list[_Pipe]:
        return [c.pipes[direction] for c in list(self.conns) if c.pipes and not c.closing]


class _Core:
    """The proxies, the API and its handlers; everything runs on one event loop."""

    def __init__(self, loop, seed=None):
        self.loop = loop
        self.rng = random.Random(seed)
        self.proxies: dict[str, _Proxy] = {}
        self.lock = asyncio.Lock()
        self.api_server: asyncio.AbstractServer | None = None
        self.api_conns: set[_ApiProtocol] = set()
        self._rid = 0

    async def open_api(self, host: str, port: int) -> int:
        sock = _listen_socket(host, port)
        self.api_server = await self.loop.create_server(lambda: _ApiProtocol(self), sock=sock)
        return sock.getsockname()[1]

    async def shutdown(self) -> None:
        if self.api_server is not None:
            self.api_server.close()
        for p in self.proxies.values():
            p.stop()
        for c in list(self.api_conns):
            if c.transport is not None:
                c.transport.close()
        await asyncio.sleep(0.01)
        for p in self.proxies.values():
            for conn in list(p.conns):
                for side in (conn.client, conn.upstream):
                    if side is not None and not side.closed and side.transport is not None:
                        side.transport.abort()
        await asyncio.sleep(0)

    def request_id(self) -> str:
        self._rid += 1
        return f"{int(time.time()):08x}{os.getpid() & 0xffff:04x}{self._rid:08x}"

    # -- routing
    def route(self, method: str, path: str):
        """-> (handler, args) or an (status, body, ctype) for 404/405."""
        parts = path[1:].split("/") if path.startswith("/") else [None]
        n, table = len(parts), None
        if n == 1:
            table = {"reset": {"POST": self.h_reset},
                     "proxies": {"GET": self.h_proxy_index, "POST": self.h_proxy_create},
                     "populate": {"POST": self.h_populate},
                     "version": {"GET": self.h_version}}.get(parts[0])
            args = ()
        elif parts[0] == "proxies" and parts[1]:
            args = tuple(parts[1:])
            if n == 2:
                table = {"GET": self.h_proxy_show, "POST": self.h_proxy_update,
                         "PATCH": self.h_proxy_update, "DELETE": self.h_proxy_delete}
            elif n == 3 and parts[2] == "toxics":
                table = {"GET": self.h_toxic_index, "POST": self.h_toxic_create}
                args = (parts[1],)
            elif n == 3 and parts[2] == "stats":
                table = {"GET": self.h_stats}
                args = (parts[1],)
            elif n == 4 and parts[2] == "toxics" and parts[3]:
                table = {"GET": self.h_toxic_show, "POST": self.h_toxic_update,
                         "PATCH": self.h_toxic_update, "DELETE": self.h_toxic_delete}
                args = (parts[1], parts[3])
        if table is None:
            return None, (404, b"404 page not found\n", "text/plain; charset=utf-8")
        handler = table.get(method)
        if handler is None:
            return None, (405, b"", None)
        return handler, args

    def get_proxy(self, name: str) -> _Proxy:
        p = self.proxies.get(name)
        if p is None:
            raise ApiError("proxy not found", 404)
        return p

    # -- handlers: return (status, payload); payload is JSON-able, bytes or None
    def h_version(self, body):
        return 200, (f'{{"version": "{VERSION}"}}\n'.encode(), "application/json;charset=utf-8")

    def h_proxy_index(self, body):
        return 200, {name: self.proxies[name].to_json() for name in sorted(self.proxies)}

    def h_proxy_show(self, body, name):
        return 200, self.get_proxy(name).to_json()

    def h_toxic_index(self, body, name):
        return 200, self.get_proxy(name).toxic_list()

    def h_toxic_show(self, body, name, toxic):
        t = self.get_proxy(name).toxics.get(toxic)
        if t is None:
            raise ApiError("toxic not found", 404)
        return 200, t.to_json()

    def h_stats(self, body, name):
        p = self.get_proxy(name)
        return 200, {"upstream_bytes": p.bytes[UPSTREAM], "downstream_bytes": p.bytes[DOWNSTREAM],
                     "connections": len(p.conns), "connections_total": p.connections_total}

    _PROXY_FIELDS = {"name": "string", "listen": "string", "upstream": "string", "enabled": "bool"}

    async def h_proxy_create(self, body):
        f = _fields(_parse_json(body), self._PROXY_FIELDS, "toxiproxy.Proxy")
        name, upstream = f.get("name", ""), f.get("upstream", "")
        if not name:
            raise ApiError("missing required field: name", 400)
        if not upstream:
            raise ApiError("missing required field: upstream", 400)
        async with self.lock:
            if name in self.proxies:
                raise ApiError("proxy already exists", 409)
            p = _Proxy(self, name, f.get("listen", ""), upstream)
            if f.get("enabled", True):
                await p.start()
            self.proxies[name] = p
            return 201, p.to_json()

    async def h_populate(self, body):
        try:
            value = _parse_json(body)
            if not isinstance(value, list):
                raise ApiError(f"bad request body: json: cannot unmarshal {_jkind(value)} into Go "
                               f"value of type []toxiproxy.Proxy", 400)
            items = [_fields(v, self._PROXY_FIELDS, "toxiproxy.Proxy") for v in value]
            seen = set()
            for i, f in enumerate(items, 1):
                if not f.get("name"):
                    raise ApiError(f"missing required field: name at proxy {i}", 400)
                if not f.get("upstream"):
                    raise ApiError(f"missing required field: upstream at proxy {i}", 400)
                if f["name"] in seen:
                    raise ApiError(f'duplicate proxy name "{f["name"]}"', 500)
                seen.add(f["name"])
            result = []
            async with self.lock:
                for f in items:
                    name, listen, upstream = f["name"], f.get("listen", ""), f["upstream"]
                    old = self.proxies.get(name)
                    if old is not None and old.listen == listen and old.upstream == upstream:
                        result.append(old)
                        continue
                    if old is not None:
                        old.stop()
                    p = _Proxy(self, name, listen, upstream)
                    if f.get("enabled", True):
                        await p.start()
                    self.proxies[name] = p
                    result.append(p)
        except ApiError as e:
            return e.status, {"error": e.message, "status": e.status, "proxies": None}
        return 201, {"proxies": [p.to_json() for p in result] or None}

    async def h_proxy_update(self, body, name):
        async with self.lock:
            p = self.get_proxy(name)
            f = _fields(_parse_json(body), self._PROXY_FIELDS, "toxiproxy.Proxy")
            listen = f.get("listen", p.listen)
            upstream = f.get("upstream", p.upstream)
            enabled = f.get("enabled", p.enabled)
            if listen != p.listen or upstream != p.upstream:
                p.stop()
                p.listen, p.upstream = listen, upstream
            if enabled != p.enabled:
                if enabled:
                    await p.start()
                else:
                    p.stop()
            return 200, p.to_json()

    async def h_proxy_delete(self, body, name):
        async with self.lock:
            p = self.get_proxy(name)
            p.stop()
            del self.proxies[name]
            return 204, None

    async def h_reset(self, body):
        async with self.lock:
            for p in list(self.proxies.values()):
                await p.start()
                toxics = list(p.toxics.values())
                p.toxics.clear()
                for t in toxics:
                    for pipe in p.live_pipes(t.direction):
                        await pipe.remove_stage(t)
            return 204, None

    async def h_toxic_create(self, body, name):
        async with self.lock:
            p = self.get_proxy(name)
            obj = _parse_json(body)
            f = _fields(obj, {"name": "string", "type": "string", "stream": "string",
                              "toxicity": "float32", "attributes": "object"},
                        "toxics.ToxicWrapper")
            stream = f.get("stream", "downstream")
            direction = {"upstream": UPSTREAM, "downstream": DOWNSTREAM}.get(stream.lower())
            if direction is None:
                raise ApiError(ERR_INVALID_STREAM, 400)
            kind = f.get("type", "")
            tname = f.get("name") or f"{kind}_{stream}"
            if kind not in TOXIC_TYPES:
                raise ApiError("invalid toxic type", 400)
            if tname in p.toxics:
                raise ApiError("toxic already exists", 409)
            zeros = {a: 0 for a in TOXIC_TYPES[kind][1]}
            attrs = _toxic_attrs(kind, f.get("attributes"), zeros)
            toxic = _Toxic(tname, kind, stream, direction, float(f.get("toxicity", 1.0)), attrs)
            p.toxics[tname] = toxic
            for pipe in p.live_pipes(direction):
                pipe.add_stage(toxic)
            return 200, toxic.to_json()

    async def h_toxic_update(self, body, name, tname):
        async with self.lock:
            p = self.get_proxy(name)
            toxic = p.toxics.get(tname)
            if toxic is None:
                raise ApiError("toxic not found", 404)
            f = _fields(_parse_json(body), {"attributes": "object", "toxicity": "float32"},
                        "toxics.ToxicWrapper")
            toxic.attrs = _toxic_attrs(toxic.type, f.get("attributes"), toxic.attrs)
            toxic.toxicity = float(f.get("toxicity", toxic.toxicity))
            for pipe in p.live_pipes(toxic.direction):
                await pipe.update_stage(toxic)
            return 200, toxic.to_json()

    async def h_toxic_delete(self, body, name, tname):
        async with self.lock:
            p = self.get_proxy(name)
            toxic = p.toxics.pop(tname, None)
            if toxic is None:
                raise ApiError("toxic not found", 404)
            for pipe in p.live_pipes(toxic.direction):
                await pipe.remove_stage(toxic)
            return 204, None


# --------------------------------------------------------------------------------------------
# A small HTTP/1.1 server for the API

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


class _ApiProtocol(asyncio.Protocol):
    def __init__(self, core: _Core):
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
            self._send(status, _dumps(payload), "application/json", keep, (rid,))

    def _error(self, e: ApiError, keep: bool, rid) -> None:
        body = _dumps({"error": e.message, "status": e.status}) + b"\n"
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


# --------------------------------------------------------------------------------------------
# Embedding and command line

class ToxiproxyServer:
    """The server on its own event loop in a background thread.

    ``start()`` returns once the API listens (``port`` is then the real port, also for port 0);
    ``stop()`` closes every proxy and connection and joins the thread.  Usable as a context
    manager.  ``config`` is an optional list of proxies (the ``/populate`` body) created at start.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8474, *, seed: int | None = None,
                 config: list | None = None):
        self.host, self._port, self.seed, self.config = host, port, seed, config
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    def start(self, timeout: float = 10.0) -> "ToxiproxyServer":
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._thread_main, name="toxiproxy-server",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"Toxiproxy server did not start within {timeout} s")
        if self._error is not None:
            self._thread.join(timeout)
            self._thread = None
            raise self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and self._stop_event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._stop_event.set)
            except RuntimeError:
                pass
        thread.join(timeout)
        self._thread = None

    def __enter__(self) -> "ToxiproxyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _thread_main(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve())
            _cancel_all(loop)
        finally:
            loop.close()

    async def _serve(self) -> None:
        core = _Core(asyncio.get_running_loop(), self.seed)
        try:
            self._port = await core.open_api(self.host, self._port)
            if self.config:
                await _populate(core, self.config)
        except BaseException as e:   # reported to start()
            self._error = e
            self._ready.set()
            await core.shutdown()
            return
        self._stop_event = asyncio.Event()
        self._ready.set()
        await self._stop_event.wait()
        await core.shutdown()


def _cancel_all(loop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


async def _populate(core: _Core, proxies: list) -> None:
    status, payload = await core.h_populate(_dumps(proxies))
    if status != 201:
        raise RuntimeError(f"cannot create the configured proxies: {payload['error']}")


def _write_ready(path: str, port: int) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump({"port": port, "pid": os.getpid()}, fh)
    os.replace(tmp, path)


async def _main_async(args) -> int:
    loop = asyncio.get_running_loop()
    core = _Core(loop, args.seed)
    try:
        port = await core.open_api(args.host, args.port)
    except OSError as e:
        print(f"toxiproxy-server: cannot listen on {args.host}:{args.port}: {e.strerror or e}",
              file=sys.stderr)
        return 1
    if args.config:
        try:
            with open(args.config) as fh:
                await _populate(core, json.load(fh))
        except (OSError, ValueError, RuntimeError) as e:
            print(f"toxiproxy-server: {args.config}: {e}", file=sys.stderr)
            await core.shutdown()
            return 2
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    if args.ready_file:
        _write_ready(args.ready_file, port)
    log.info("Toxiproxy-compatible API on %s:%d", args.host, port)
    await stop.wait()
    await core.shutdown()
    return 0


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Command line entry: serve until SIGTERM/SIGINT; returns the exit code."""
    ap = argparse.ArgumentParser(prog=prog or "python -m harness.netfault.server",
                                 description="Toxiproxy 2.x compatible server (pure Python)")
    ap.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=8474, help="API port, 0 = any (default 8474)")
    ap.add_argument("--ready-file", help='write {"port": N, "pid": P} here once listening')
    ap.add_argument("--config", help="JSON file with a list of proxies to create at start")
    ap.add_argument("--seed", type=int, help="random seed (toxicity, jitter, slicer)")
    ap.add_argument("--log-level", default="WARNING")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(_main_async(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
