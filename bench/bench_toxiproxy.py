"""Benchmark of the Toxiproxy-compatible server (harness.netfault.server).

Starts the server as its own process (as the harness does), a small HTTP responder and a bulk
sender in this process, and prints:

- per-request overhead with no toxics, keep-alive and new-connection-per-request, versus direct;
- stream throughput through a proxy, versus direct;
- bandwidth toxic accuracy at rate=100 and rate=1000 (1 MiB download);
- latency toxic accuracy at 200 ms (median added ms);
- a burst of simultaneous connects (default 200), one request each: p99 of connect() to
  established, and to the whole response.

Every figure is a median over several runs.  Usage: python bench/bench_toxiproxy.py [--runs N]
"""
from __future__ import annotations

import argparse
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
MIB = 1 << 20


# ---------------------------------------------------------------------------- local servers

def _serve(handler) -> str:
    ls = socket.create_server(("127.0.0.1", 0), backlog=4096)

    def accept():
        while True:
            conn, _ = ls.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=_guard, args=(handler, conn), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return f"127.0.0.1:{ls.getsockname()[1]}"


def _guard(handler, conn):
    try:
        handler(conn)
    except OSError:
        pass
    finally:
        conn.close()


def _http(conn):
    """Answers every request on the connection with a fixed 2-byte body."""
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buf += chunk
        _, buf = buf.split(b"\r\n\r\n", 1)
        conn.sendall(RESPONSE)


def _bulk(conn):
    """Reads 'N\\n', sends N bytes, closes."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = conn.recv(64)
        if not chunk:
            return
        line += chunk
    left = int(line)
    block = b"b" * (256 * 1024)
    while left > 0:
        n = min(left, len(block))
        conn.sendall(block[:n])
        left -= n


# ---------------------------------------------------------------------------- clients

def _addr(a: str):
    h, p = a.rsplit(":", 1)
    return h, int(p)


def _read_response(s):
    buf = b""
    while len(buf) < len(RESPONSE):
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed early")
        buf += chunk


def keepalive_ms(addr, n: int) -> float:
    s = socket.create_connection(addr)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(50):                         # warm up
        s.sendall(REQUEST)
        _read_response(s)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        s.sendall(REQUEST)
        _read_response(s)
        times.append(time.perf_counter() - t)
    s.close()
    return statistics.median(times) * 1000


def newconn_ms(addr, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        s = socket.create_connection(addr)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(REQUEST)
        _read_response(s)
        s.close()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def download(addr, nbytes: int) -> tuple[float, int]:
    """Seconds from the request to the last byte, and the bytes received."""
    s = socket.create_connection(addr)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray(1 << 20)
    got = 0
    t = time.perf_counter()
    s.sendall(b"%d\n" % nbytes)
    while got < nbytes:
        n = s.recv_into(buf)
        if not n:
            break
        got += n
    elapsed = time.perf_counter() - t
    s.close()
    return elapsed, got


def burst_ms(addr, n: int) -> tuple[list[float], list[float]]:
    """Opens ``n`` connections at once and sends one request on each as soon as it is up.

    Returns, in milliseconds from each connect(), when it was established and when its whole
    response had arrived (the first shows the listen backlog, the second the proxy's work too).
    """
    socks, started, connected, answered = {}, {}, [], []
    got: dict[int, int] = {}
    poll = select.poll()

    def reap(timeout_ms: int) -> None:
        for fd, ev in poll.poll(timeout_ms):
            now = time.perf_counter()
            s = socks[fd]
            if fd not in got:                   # writable: established
                connected.append((now - started[fd]) * 1000)
                got[fd] = 0
                s.sendall(REQUEST)
                poll.modify(fd, select.POLLIN)
                continue
            data = s.recv(4096)
            got[fd] += len(data)
            if not data or got[fd] >= len(RESPONSE):
                if data:
                    answered.append((now - started[fd]) * 1000)
                poll.unregister(fd)
    try:
        for _ in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks[s.fileno()] = s
            started[s.fileno()] = time.perf_counter()
            s.connect_ex(addr)
            poll.register(s, select.POLLOUT)
            reap(0)                 # note early completions now, not after the whole burst
        deadline = time.perf_counter() + 10
        while len(answered) < n and time.perf_counter() < deadline:
            reap(100)
    finally:
        for s in socks.values():
            s.close()
    if len(answered) < n:
        raise ConnectionError(f"{n - len(answered)} of {n} requests unanswered after 10 s")
    return sorted(connected), sorted(answered)


def p99(values: list[float]) -> float:
    return values[max(0, int(len(values) * 0.99 + 0.5) - 1)]


# ---------------------------------------------------------------------------- server process

class ServerProcess:
    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        ready = Path(self.dir.name) / "ready.json"
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, "-m", "harness.netfault.server", "--host",
                                      "127.0.0.1", "--port", "0", "--ready-file", str(ready)],
                                     cwd=ROOT, env=env)
        deadline = time.monotonic() + 15
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise SystemExit("the server did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{json.loads(ready.read_text())['port']}"

    def proxy(self, name: str, upstream: str):
        r = requests.post(self.url + "/proxies", json={"name": name, "upstream": upstream,
                                                       "listen": "127.0.0.1:0"})
        r.raise_for_status()
        return _addr(r.json()["listen"])

    def toxic(self, proxy: str, kind: str, attrs: dict):
        r = requests.post(f"{self.url}/proxies/{proxy}/toxics",
                          json={"type": kind, "attributes": attrs})
        r.raise_for_status()
        return r.json()["name"]

    def untoxic(self, proxy: str, name: str):
        requests.delete(f"{self.url}/proxies/{proxy}/toxics/{name}").raise_for_status()

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.dir.cleanup()


def med(fn, runs: int) -> float:
    return statistics.median(fn() for _ in range(runs))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per figure (default 5)")
    ap.add_argument("--requests", type=int, default=1000, help="requests per run (default 1000)")
    ap.add_argument("--burst", type=int, default=200,
                    help="simultaneous connects per burst (default 200)")
    ap.add_argument("--slow-runs", type=int, default=1,
                    help="runs of the ~10 s rate=100 download (default 1)")
    args = ap.parse_args(argv)

    http_up, bulk_up = _serve(_http), _serve(_bulk)
    srv = ServerProcess()
    rows: list[tuple[str, str, str, str]] = []
    try:
        web = srv.proxy("web", http_up)
        bulk = srv.proxy("bulk", bulk_up)
        n, runs = args.requests, args.runs

        d = med(lambda: keepalive_ms(_addr(http_up), n), runs)
        p = med(lambda: keepalive_ms(web, n), runs)
        rows.append(("request, keep-alive", f"{d:.3f} ms", f"{p:.3f} ms",
                     f"overhead +{p - d:.3f} ms"))
        d = med(lambda: newconn_ms(_addr(http_up), n // 2), runs)
        p = med(lambda: newconn_ms(web, n // 2), runs)
        rows.append(("request, new connection", f"{d:.3f} ms", f"{p:.3f} ms",
                     f"overhead +{p - d:.3f} ms"))

        size = 256 * MIB

        def mbps(addr):
            elapsed, got = download(addr, size)
            return got / elapsed / 1e6
        d = med(lambda: mbps(_addr(bulk_up)), 3)
        p = med(lambda: mbps(bulk), 3)
        rows.append(("stream throughput (256 MiB)", f"{d:.0f} MB/s", f"{p:.0f} MB/s",
                     f"{p / d * 100:.0f}% of direct"))

        for rate, r in ((1000, runs), (100, args.slow_runs)):
            name = srv.toxic("bulk", "bandwidth", {"rate": rate})

            def kbps():
                elapsed, got = download(bulk, MIB)
                assert got == MIB
                return got / elapsed / 1000
            k = med(kbps, max(1, r))
            srv.untoxic("bulk", name)
            rows.append((f"bandwidth rate={rate} (1 MiB)", f"{rate} KB/s", f"{k:.1f} KB/s",
                         f"error {(k - rate) / rate * 100:+.2f}%"))

        # Simultaneous connects: p99 per run, median of the runs and the worst run.
        bursts = {"direct": [], "proxy": []}
        for label, target in (("direct", _addr(http_up)), ("proxy", web)):
            for _ in range(max(runs, 5)):
                conn_ms, resp_ms = burst_ms(target, args.burst)
                bursts[label].append((p99(conn_ms), p99(resp_ms)))
                time.sleep(0.2)            # let the closed connections drain between bursts
        for i, what in ((0, "connect"), (1, "connect + first response")):
            d = statistics.median(r[i] for r in bursts["direct"])
            p = statistics.median(r[i] for r in bursts["proxy"])
            worst = max(r[i] for r in bursts["proxy"])
            verdict = f"; {'under' if worst < 20 else 'OVER'} 20 ms" if i == 0 else ""
            rows.append((f"{args.burst} at once: p99 {what}", f"{d:.1f} ms", f"{p:.1f} ms",
                         f"worst run {worst:.1f} ms{verdict}"))

        base = med(lambda: keepalive_ms(web, 200), runs)
        name = srv.toxic("web", "latency", {"latency": 200})
        s = socket.create_connection(web)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        for _ in range(max(10, runs * 3)):
            t = time.perf_counter()
            s.sendall(REQUEST)
            _read_response(s)
            times.append((time.perf_counter() - t) * 1000)
        s.close()
        srv.untoxic("web", name)
        added = statistics.median(times) - base
        rows.append(("latency 200 ms", "200 ms added", f"{added:.1f} ms added",
                     f"error {added - 200:+.1f} ms"))
    finally:
        srv.close()

    head = ("measure", "direct / target", "through proxy", "result")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    print(f"Toxiproxy-compatible server benchmark (medians; runs={args.runs}, "
          f"requests/run={args.requests}, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs)")
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print(line)
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
