"""The toxics: one small task per toxic on each pipe of each connection, chained by queues.

Items flow through a chain as ``(kind, data, ts)``: ``ts`` is the loop time the item entered a
stage, so latency is added to the moment a chunk arrived and bandwidth pacing runs on a virtual
clock that does not drift.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque

log = logging.getLogger("harness.netfault.server")

DATA, EOF, CLOSE = 0, 1, 2     # kinds of items in a chain
PACE_SLICE = 0.01           # bandwidth toxic: emit pieces worth this many seconds

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


# uvloop's timers count whole milliseconds from a clock read once per loop turn, so they fire up to
# about 2 ms late: a latency toxic wakes a millisecond early there, to add what it says on average
TIMER_LATE_S = {"uvloop": 0.001}


async def _sleep_until(loop, when: float) -> None:
    delay = when - loop.time() - TIMER_LATE_S.get(type(loop).__module__.split(".")[0], 0.0)
    if delay > 0:
        await asyncio.sleep(delay)


class Stage:
    """One toxic applied to one pipe of one connection."""

    __slots__ = ("pipe", "toxic", "attrs", "active", "inp", "out", "task", "held", "mode", "state",
                 "loop", "firing")

    def __init__(self, pipe: "Pipe", toxic: "Toxic"):
        self.pipe, self.toxic, self.loop = pipe, toxic, pipe.loop
        self.inp = _Chan()
        self.out = None
        self.task: asyncio.Task | None = None
        self.held: list = []          # items taken from inp and not yet passed on
        self.mode = "kill"
        self.state: dict = {}         # per-connection state that survives an update
        self.firing = False           # committed to closing: an interrupt waits for it
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

    async def interrupt(self, mode: str) -> bool:
        """Stop the runner; False when it had ended, or ran to its end (a firing reset_peer)."""
        task = self.task
        if task is None or task.done():
            return False
        if self.firing:
            await asyncio.wait([task])
            return False
        self.mode = mode
        task.cancel()
        await asyncio.wait([task])
        return True

    def kill(self) -> None:
        if self.task is not None and not self.task.done():
            self.mode = "kill"
            self.task.cancel()


async def _run_noop(st: Stage) -> None:
    while True:
        kind = (await st.take())[0]
        st.forward()
        if kind != DATA:
            return


async def _run_latency(st: Stage) -> None:
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


async def _run_bandwidth(st: Stage) -> None:
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


async def _run_slow_close(st: Stage) -> None:
    delay = st.attrs["delay"]
    while True:
        kind = (await st.take())[0]
        if kind != DATA and delay > 0:
            await asyncio.sleep(delay / 1000.0)
        st.forward()
        if kind != DATA:
            return


async def _run_timeout(st: Stage) -> None:
    # As real Toxiproxy: whatever arrives is dropped, and each chunk restarts the timer; after
    # `timeout` ms with nothing arriving the connection closes (0 = never).  It closes at once when
    # the source ends, and also when the toxic is removed (Pipe.remove_stage): nothing is held.
    ms, inp, pipe = st.attrs["timeout"], st.inp, st.pipe
    while True:
        if not inp.items:
            await inp.wait(ms / 1000.0 if ms > 0 else None)
            if not inp.items:
                break               # a quiet timeout elapsed
            continue
        kind, data, _ = inp.items.popleft()
        if kind != DATA:
            break
        pipe.discard(len(data))
    st.emit(CLOSE)


async def _run_reset_peer(st: Stage) -> None:
    # On the first item (data or the source's end), wait the timeout, then close.  The close is a
    # TCP reset only where the toxic was there when the connection opened (Conn sets linger 0 on
    # both sockets then, as real Toxiproxy does); added to an open connection it is a plain close.
    # Like the real one, the wait cannot be interrupted: removing the toxic meanwhile waits for it.
    ms, inp = st.attrs["timeout"], st.inp
    while not inp.items:
        await inp.wait()
    st.firing = True
    if ms > 0:
        await asyncio.sleep(ms / 1000.0)
    while inp.items:
        kind, data, _ = inp.items.popleft()
        if kind == DATA:
            st.pipe.discard(len(data))
    st.emit(CLOSE)


def slice_sizes(total: int, avg: int, var: int, rng) -> list[int]:
    """Sizes of the pieces a slicer cuts ``total`` bytes into, as real Toxiproxy computes them.

    A piece no more than ``var`` bytes above ``avg`` is left whole; a larger one is cut near its
    middle, the cut moved by up to ``var`` either way, and both halves are cut again.  So pieces
    are between about (avg + var) / 2 and avg + var bytes, with no stub left at the end.  Unlike the
    real server a cut never leaves a piece empty (there, ``var`` >= ``avg`` can crash it).
    """
    if avg <= 0:
        return [total] if total else []
    sizes: list[int] = []
    todo = [total]
    while todo:
        n = todo.pop()
        if n - avg <= var or n < 2:
            if n:
                sizes.append(n)
            continue
        cut = n // 2 + (rng.randint(-var, var) if var > 0 else 0)
        cut = min(max(cut, 1), n - 1)
        todo.append(n - cut)    # popped after the left half: pieces come out in order
        todo.append(cut)
    return sizes


async def _run_slicer(st: Stage) -> None:
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
        for n in slice_sizes(total, avg, var, rng):
            chunk = view[off:off + n]
            off += n
            st.held = [(DATA, view[off:], ts)] if off < total else []
            st.emit(DATA, chunk)
            if delay > 0:       # after every piece, the last one too
                await asyncio.sleep(delay / 1e6)


async def _run_limit_data(st: Stage) -> None:
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

