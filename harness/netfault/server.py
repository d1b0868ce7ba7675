"""A Toxiproxy 2.x compatible server in pure Python (asyncio; on uvloop's event loop when installed).

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

Modules: ``codec`` (toxic types, errors, JSON as Go decodes it), ``addr`` (addresses, listening
sockets), ``toxics`` (the toxic stages), ``proxy`` (proxies, connections, pipes), ``httpapi``
(HTTP/1.1 framing), ``api`` (state and handlers); this one embeds the server and runs it as a process.

Behaviour follows real Toxiproxy 2.12 where a client can see it: a listen backlog of 4096; a
``timeout`` toxic drops data, restarts its timer on each chunk and closes the connection when
removed; ``reset_peer`` resets only connections opened while it existed (elsewhere it closes); a
half-close closes both ways; ``slicer`` halves data as the real one does; ``/populate`` applies
entries in order, so a repeated name ends as its last entry.  Differences, on purpose: updating a
toxic re-runs the data it holds under the new settings (the real one lets it go at once), and a
slicer with ``average_size`` 0 or ``size_variation`` >= ``average_size`` slices safely where the
real server crashes.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import threading

from ..whole_file import write_whole
from .api import Core
from .codec import TOXIC_TYPES, VERSION, ApiError, dumps

__all__ = ["ToxiproxyServer", "ApiError", "TOXIC_TYPES", "VERSION", "main"]

log = logging.getLogger("harness.netfault.server")


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when it is installed: every byte between the hospital's parts crosses a
    proxy, and its loop relays them at a fraction of the standard loop's CPU and delay. The
    standard loop otherwise (the docker images carry the standard library only)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


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
        loop = self._loop = new_loop()
        try:
            loop.run_until_complete(self._serve())
            _cancel_all(loop)
        finally:
            loop.close()

    async def _serve(self) -> None:
        core = Core(asyncio.get_running_loop(), self.seed)
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


async def _populate(core: Core, proxies: list) -> None:
    status, payload = await core.h_populate(dumps(proxies))
    if status != 201:
        raise RuntimeError(f"cannot create the configured proxies: {payload['error']}")


def _write_ready(path: str, port: int) -> None:
    write_whole(path, json.dumps({"port": port, "pid": os.getpid()}))


async def _main_async(args) -> int:
    loop = asyncio.get_running_loop()
    core = Core(loop, args.seed)
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
        with asyncio.Runner(loop_factory=new_loop) as runner:
            return runner.run(_main_async(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())

