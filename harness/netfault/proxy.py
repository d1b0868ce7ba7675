"""Proxies and their connections: each accepted client gets an upstream connection and two one-way
pipes (upstream = client to server, downstream = server to client).  A pipe with no toxics writes
what it reads straight to the other socket; a pipe with toxics feeds its chain of stages, and
back-pressure pauses the reading side when too many bytes are inside the chain."""
from __future__ import annotations

import asyncio
import logging
import socket
import struct

from .addr import BACKLOG, format_addr, listen_socket, split_hostport
from .codec import DOWNSTREAM, UPSTREAM, ApiError
from .toxics import CLOSE, DATA, EOF, Stage

log = logging.getLogger("harness.netfault.server")

HIGH_WATER = 256 * 1024     # bytes inside a toxic chain before the source is paused
LOW_WATER = 64 * 1024       # ... and resumed
ABORT_AFTER = 5.0           # a gracefully closed socket that will not flush is aborted after this


class Pipe:
    """One direction of one connection: src socket -> toxic stages -> dst socket."""

    __slots__ = ("conn", "loop", "dir", "src", "dst", "stages", "buffered", "dst_paused",
                 "buf_paused", "read_paused", "ended", "done", "counters")

    def __init__(self, conn: "Conn", direction: int, src: "Side", dst: "Side"):
        self.conn, self.loop, self.dir, self.src, self.dst = conn, conn.loop, direction, src, dst
        self.stages: list[Stage] = []
        self.buffered = 0
        self.dst_paused = self.buf_paused = self.read_paused = False
        self.ended = False      # the source has ended (EOF or closed)
        self.done = False       # a terminal item reached the sink
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
            self._write(data)
            self.discard(len(data))
        else:
            self.done = True
            self.conn.terminal(self, kind)

    def discard(self, n: int) -> None:
        """``n`` bytes left the chain (written out, or dropped by a toxic)."""
        self.buffered -= n
        if self.buf_paused and self.buffered <= LOW_WATER:
            self.buf_paused = False
            self.sync_reading()

    def _write(self, data) -> None:
        dst = self.dst
        t = dst.transport
        if dst.closed or t.is_closing():
            return
        t.write(data)
        self.counters[self.dir] += len(data)

    # -- toxic changes on a live connection
    def add_stage(self, toxic: "Toxic") -> None:
        if self.done:
            return
        st = Stage(self, toxic)
        st.out = self
        if self.stages:
            self.stages[-1].out = st.inp
        self.stages.append(st)
        st.start()

    def _find(self, toxic) -> Stage | None:
        for st in self.stages:
            if st.toxic is toxic:
                return st
        return None

    async def remove_stage(self, toxic: "Toxic") -> None:
        st = self._find(toxic)
        if st is None:
            return
        if toxic.type == "timeout":
            # Real Toxiproxy closes the connection when a timeout toxic is removed (its cleanup
            # runs whether or not the toxic applied to this connection); what it dropped is gone.
            if await st.interrupt("kill"):
                st.emit(CLOSE)
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

    async def update_stage(self, toxic: "Toxic") -> None:
        st = self._find(toxic)
        if st is None or self.done:
            return
        if not await st.interrupt("update"):
            return
        st.roll()
        st.start()

    def kill(self) -> None:
        for st in self.stages:
            st.kill()


class Side(asyncio.Protocol):
    """One socket of a proxied connection (the client's or the upstream's)."""

    __slots__ = ("conn", "upstream", "transport", "out_pipe", "in_pipe", "closed", "early")

    def __init__(self, conn: "Conn", upstream: bool):
        self.conn, self.upstream = conn, upstream
        self.transport = None
        self.out_pipe: Pipe | None = None   # pipe reading from this socket
        self.in_pipe: Pipe | None = None    # pipe writing to this socket
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


def _close_transport(loop, side: Side | None) -> None:
    if side is None or side.closed or side.transport is None:
        return
    t = side.transport
    if not t.is_closing():
        t.close()
        loop.call_later(ABORT_AFTER, _abort_if_open, side)


def _linger_zero(side: Side) -> None:
    sock = side.transport.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, AttributeError):
        pass


def _abort_if_open(side: Side) -> None:
    if not side.closed:
        side.transport.abort()


class Conn:
    """A client connection and its upstream connection."""

    def __init__(self, proxy: "Proxy"):
        self.proxy, self.loop = proxy, proxy.core.loop
        self.client = Side(self, False)
        self.upstream: Side | None = None
        self.pipes: tuple[Pipe, Pipe] | None = None
        self.connecting: asyncio.Task | None = None
        self.closing = self.finished = False
        proxy.conns.add(self)
        proxy.connections_total += 1

    def client_made(self, side: Side) -> None:
        side.transport.pause_reading()          # until the upstream answers
        self.connecting = self.loop.create_task(self._connect(self.proxy.upstream))

    async def _connect(self, upstream: str) -> None:
        try:
            host, port = split_hostport(upstream)
            await self.loop.create_connection(lambda: Side(self, True), host or None, port)
        except asyncio.CancelledError:
            raise
        except (OSError, ValueError) as e:
            log.info("proxy %s: cannot reach upstream %s: %s", self.proxy.name, upstream, e)
            _close_transport(self.loop, self.client)

    def upstream_made(self, side: Side) -> None:
        if self.closing or self.client.closed:
            side.transport.close()
            return
        self.upstream = side
        client = self.client
        up = Pipe(self, UPSTREAM, client, side)
        down = Pipe(self, DOWNSTREAM, side, client)
        self.pipes = (up, down)
        client.out_pipe, client.in_pipe = up, down
        side.out_pipe, side.in_pipe = down, up
        toxics = list(self.proxy.toxics.values())
        if any(t.type == "reset_peer" for t in toxics):
            # as real Toxiproxy: a connection opened while a reset_peer toxic exists gets linger 0
            # on both sockets, so any later close of it (the toxic's or not) is a TCP reset
            _linger_zero(client)
            _linger_zero(side)
        for toxic in toxics:
            self.pipes[toxic.direction].add_stage(toxic)
        early, client.early = client.early, []
        for data in early:
            up.feed(data)
        client.transport.resume_reading()

    def terminal(self, pipe: Pipe, kind: int) -> None:
        """A pipe's chain ended: its source ended (EOF, closed) or a toxic closed it.

        Its destination is closed outright, not half-closed, so the other pipe, whose source that
        socket is, ends too: it delivers what is inside its chain, then closes its own destination.
        Real Toxiproxy does the same, so a client's half-close closes the connection both ways.
        """
        _close_transport(self.loop, pipe.dst)
        self.pipes[1 - pipe.dir].feed_end(CLOSE)

    def side_lost(self, side: Side) -> None:
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


class Toxic:
    __slots__ = ("name", "type", "stream", "direction", "toxicity", "attrs")

    def __init__(self, name, kind, stream, direction, toxicity, attrs):
        self.name, self.type, self.stream, self.direction = name, kind, stream, direction
        self.toxicity, self.attrs = toxicity, attrs

    def to_json(self) -> dict:
        tox = self.toxicity
        return {"attributes": dict(self.attrs), "name": self.name, "type": self.type,
                "stream": self.stream, "toxicity": int(tox) if float(tox).is_integer() else tox}


class Proxy:
    def __init__(self, core: "Core", name: str, listen: str, upstream: str):
        self.core, self.name, self.listen, self.upstream = core, name, listen, upstream
        self.enabled = False
        self.server: asyncio.AbstractServer | None = None
        self.toxics: dict[str, Toxic] = {}
        self.conns: set[Conn] = set()
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
            host, port = split_hostport(self.listen) if self.listen else ("", 0)
        except ValueError as e:
            raise ApiError(f"listen tcp: {e}", 500) from None
        try:
            sock = listen_socket(host, port)
        except OSError as e:
            why = (e.strerror or str(e)).lower()
            raise ApiError(f"listen tcp {self.listen}: bind: {why}", 500) from None
        self.server = await self.core.loop.create_server(lambda: Conn(self).client, sock=sock,
                                                          backlog=BACKLOG)
        self.listen = format_addr(sock.getsockname())
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

    def live_pipes(self, direction: int) -> list[Pipe]:
        return [c.pipes[direction] for c in list(self.conns) if c.pipes and not c.closing]

