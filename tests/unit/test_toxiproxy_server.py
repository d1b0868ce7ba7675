"""The Toxiproxy-compatible server: API contract (raw HTTP and toxiproxy-python) and toxics measured
on real traffic through a proxy to small local servers."""
from __future__ import annotations

import http.client
import json
import os
import random
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from harness.netfault.client import LinkError, Links
from harness.netfault.server import ToxiproxyServer
from harness.netfault.toxics import slice_sizes

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------
# Local upstreams

class _TcpServer:
    """Threaded TCP server; ``handler(conn)`` runs per connection."""

    def __init__(self, handler):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.handler = handler
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.sock.close()


def _echo(prefix=b""):
    def handler(conn):
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(prefix + data)
    return handler


def _blob(conn):
    """Reads 'N [close_after]\\n', sends N bytes, then closes."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            return
        line += chunk
    conn.sendall(b"x" * int(line.split()[0]))


class _Http(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 65536          # one write per response (flushed after each request)

    def do_GET(self):
        body = b"pong" if self.path == "/ping" else b"y" * int(self.path.rsplit("/", 1)[-1])
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def upstreams():
    echo, blob = _TcpServer(_echo()), _TcpServer(_blob)
    tag_a, tag_b = _TcpServer(_echo(b"A:")), _TcpServer(_echo(b"B:"))
    web = ThreadingHTTPServer(("127.0.0.1", 0), _Http)
    web.daemon_threads = True
    threading.Thread(target=web.serve_forever, daemon=True).start()
    yield {"echo": echo.addr, "blob": blob.addr, "a": tag_a.addr, "b": tag_b.addr,
           "http": f"127.0.0.1:{web.server_address[1]}"}
    web.shutdown()
    web.server_close()
    for s in (echo, blob, tag_a, tag_b):
        s.close()


@pytest.fixture(scope="module")
def server():
    with ToxiproxyServer("127.0.0.1", 0, seed=7) as srv:
        yield srv


@pytest.fixture
def api(server):
    yield server.url
    for name in list(requests.get(server.url + "/proxies").json()):
        requests.delete(f"{server.url}/proxies/{name}")


def _proxy(api, name, upstream, **extra):
    r = requests.post(api + "/proxies", json={"name": name, "upstream": upstream,
                                              "listen": "127.0.0.1:0", **extra})
    assert r.status_code == 201, r.text
    host, port = r.json()["listen"].rsplit(":", 1)
    return host, int(port)


def _toxic(api, proxy, kind, attrs, **extra):
    r = requests.post(f"{api}/proxies/{proxy}/toxics",
                      json={"type": kind, "attributes": attrs, **extra})
    assert r.status_code == 200, r.text
    return r.json()["name"]


def _connect(addr, timeout=5.0):
    s = socket.create_connection(addr, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _recv_all(s, limit=10 ** 8):
    out = bytearray()
    while len(out) < limit:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _error(r):
    return r.status_code, r.json()


# ------------------------------------------------------------------------------------------
# API over raw HTTP

def test_version_and_empty_index(api):
    r = requests.get(api + "/version")
    assert r.status_code == 200 and r.json() == {"version": "2.12.0"}
    r = requests.get(api + "/proxies")
    assert r.status_code == 200 and r.json() == {}


def test_proxy_crud_status_codes_and_errors(api, upstreams):
    r = requests.post(api + "/proxies", json={"name": "db", "upstream": upstreams["echo"],
                                              "listen": "127.0.0.1:0"})
    assert r.status_code == 201
    body = r.json()
    assert list(body) == ["name", "listen", "upstream", "enabled", "toxics"]
    assert body["enabled"] is True and body["toxics"] == []
    assert body["listen"].startswith("127.0.0.1:") and not body["listen"].endswith(":0")
    assert requests.get(api + "/proxies/db").json() == body
    assert requests.get(api + "/proxies").json() == {"db": body}

    r = requests.post(api + "/proxies", json={"name": "db", "upstream": upstreams["echo"]})
    assert _error(r) == (409, {"error": "proxy already exists", "status": 409})
    r = requests.post(api + "/proxies", json={"upstream": upstreams["echo"]})
    assert _error(r) == (400, {"error": "missing required field: name", "status": 400})
    r = requests.post(api + "/proxies", json={"name": "x"})
    assert _error(r) == (400, {"error": "missing required field: upstream", "status": 400})
    r = requests.post(api + "/proxies", data=b"{not json")
    assert r.status_code == 400 and r.json()["error"].startswith("bad request body")
    r = requests.post(api + "/proxies", json={"name": 5, "upstream": "a:1"})
    assert r.status_code == 400 and r.json()["error"].startswith("bad request body")
    r = requests.get(api + "/proxies/nope")
    assert _error(r) == (404, {"error": "proxy not found", "status": 404})

    # a listen address already taken cannot be bound
    r = requests.post(api + "/proxies", json={"name": "clash", "upstream": upstreams["echo"],
                                              "listen": body["listen"]})
    assert r.status_code == 500 and "clash" not in requests.get(api + "/proxies").json()

    # created disabled: nothing listens until enabled
    r = requests.post(api + "/proxies", json={"name": "off", "upstream": upstreams["echo"],
                                              "listen": "127.0.0.1:0", "enabled": False})
    assert r.status_code == 201 and r.json()["enabled"] is False
    r = requests.patch(api + "/proxies/off", json={"enabled": True})
    assert r.status_code == 200 and r.json()["enabled"] is True
    assert not r.json()["listen"].endswith(":0")

    assert requests.delete(api + "/proxies/db").status_code == 204
    assert requests.delete(api + "/proxies/db").status_code == 404


def test_toxic_api_defaults_errors_and_update(api, upstreams):
    _proxy(api, "p", upstreams["echo"])
    r = requests.post(api + "/proxies/p/toxics", json={"type": "latency",
                                                       "attributes": {"latency": 50}})
    assert r.status_code == 200
    assert r.json() == {"attributes": {"latency": 50, "jitter": 0}, "name": "latency_downstream",
                        "type": "latency", "stream": "downstream", "toxicity": 1}
    r = requests.post(api + "/proxies/p/toxics", json={"type": "latency"})
    assert _error(r) == (409, {"error": "toxic already exists", "status": 409})
    r = requests.post(api + "/proxies/p/toxics", json={"type": "bogus"})
    assert _error(r) == (400, {"error": "invalid toxic type", "status": 400})
    r = requests.post(api + "/proxies/p/toxics", json={"type": "latency", "stream": "sideways"})
    assert _error(r) == (400, {"error": "stream was invalid, can be either upstream or downstream",
                               "status": 400})
    r = requests.post(api + "/proxies/p/toxics", json={"type": "latency", "name": "l2",
                                                       "attributes": {"latency": "slow"}})
    assert r.status_code == 400 and r.json()["error"].startswith("bad request body")
    r = requests.post(api + "/proxies/nope/toxics", json={"type": "latency"})
    assert _error(r) == (404, {"error": "proxy not found", "status": 404})

    r = requests.post(api + "/proxies/p/toxics",
                      json={"type": "slicer", "stream": "upstream", "toxicity": 0.5})
    assert r.json() == {"attributes": {"average_size": 0, "size_variation": 0, "delay": 0},
                        "name": "slicer_upstream", "type": "slicer", "stream": "upstream",
                        "toxicity": 0.5}
    names = [t["name"] for t in requests.get(api + "/proxies/p/toxics").json()]
    assert names == ["slicer_upstream", "latency_downstream"]   # upstream chain listed first

    r = requests.patch(api + "/proxies/p/toxics/latency_downstream",
                       json={"attributes": {"jitter": 5}, "toxicity": 0.25})
    assert r.status_code == 200
    assert r.json()["attributes"] == {"latency": 50, "jitter": 5} and r.json()["toxicity"] == 0.25
    r = requests.post(api + "/proxies/p/toxics/latency_downstream", json={"attributes": {}})
    assert r.status_code == 200 and r.json()["attributes"]["latency"] == 50
    assert requests.get(api + "/proxies/p/toxics/latency_downstream").json()["toxicity"] == 0.25
    r = requests.get(api + "/proxies/p/toxics/nope")
    assert _error(r) == (404, {"error": "toxic not found", "status": 404})
    assert requests.delete(api + "/proxies/p/toxics/latency_downstream").status_code == 204
    assert requests.delete(api + "/proxies/p/toxics/latency_downstream").status_code == 404
    for kind in ("bandwidth", "slow_close", "timeout", "reset_peer", "limit_data", "noop"):
        assert requests.post(api + "/proxies/p/toxics", json={"type": kind}).status_code == 200
    assert requests.get(api + "/proxies/p").json()["toxics"][-1]["attributes"] == {}


def test_browser_guard_unknown_path_and_wrong_method(api):
    r = requests.get(api + "/proxies", headers={"User-Agent": "Mozilla/5.0 (X11)"})
    assert r.status_code == 403 and r.text.strip() == "User agent not allowed"
    assert requests.get(api + "/nowhere").status_code == 404
    assert requests.get(api + "/proxies/a/b/c/d").status_code == 404
    assert requests.put(api + "/proxies").status_code == 405
    assert requests.delete(api + "/version").status_code == 405
    assert requests.get(api + "/reset").status_code == 405


def test_reset_and_populate(api, upstreams):
    _proxy(api, "one", upstreams["echo"])
    _proxy(api, "two", upstreams["echo"])
    requests.post(api + "/proxies/one", json={"enabled": False})
    _toxic(api, "two", "latency", {"latency": 10})
    assert requests.post(api + "/reset").status_code == 204
    state = requests.get(api + "/proxies").json()
    assert all(p["enabled"] and p["toxics"] == [] for p in state.values())

    listen = state["one"]["listen"]
    r = requests.post(api + "/populate", json=[
        {"name": "one", "upstream": upstreams["echo"], "listen": listen},      # unchanged: kept
        {"name": "three", "upstream": upstreams["echo"], "listen": "127.0.0.1:0"}])
    assert r.status_code == 201
    assert [p["name"] for p in r.json()["proxies"]] == ["one", "three"]
    assert r.json()["proxies"][0]["listen"] == listen
    r = requests.post(api + "/populate", json=[{"name": "four"}])
    assert r.status_code == 400
    assert set(r.json()) == {"error", "status", "proxies"} and r.json()["status"] == 400


def test_populate_duplicate_name_last_one_wins(api, upstreams):
    r = requests.post(api + "/populate", json=[
        {"name": "dup", "upstream": upstreams["a"], "listen": "127.0.0.1:0"},
        {"name": "dup", "upstream": upstreams["b"], "listen": "127.0.0.1:0"}])
    assert r.status_code == 201, r.text
    first, second = r.json()["proxies"]           # one entry per item, as each stands now
    assert first["name"] == second["name"] == "dup"
    assert first["enabled"] is False and second["enabled"] is True
    assert second["upstream"] == upstreams["b"]
    state = requests.get(api + "/proxies").json()
    assert list(state) == ["dup"] and state["dup"] == second
    with pytest.raises(ConnectionRefusedError):   # the first one was replaced: not listening
        socket.create_connection(_addr(first["listen"]), timeout=1)
    s = _connect(_addr(second["listen"]))
    s.sendall(b"x")
    assert s.recv(10) == b"B:x"
    s.close()


def test_toxiproxy_python_unchanged(api, upstreams, server):
    saved = APIConsumer.host, APIConsumer.port
    try:
        tp = toxiproxy.Toxiproxy()
        tp.update_api_consumer("127.0.0.1", server.port)
        assert tp.running()
        assert json.loads(tp.version())["version"] == "2.12.0"
        proxy = tp.create(upstream=upstreams["echo"], name="lib")
        assert proxy.listen.startswith("127.0.0.1:") and proxy.enabled
        with pytest.raises(ProxyExists):
            tp.create(upstream=upstreams["echo"], name="lib")
        assert set(tp.proxies()) == {"lib"}
        proxy.add_toxic(type="latency", attributes={"latency": 5})
        proxy.add_toxic(type="bandwidth", stream="upstream", name="bw", attributes={"rate": 9})
        assert set(proxy.toxics()) == {"latency_downstream", "bw"}
        assert proxy.get_toxic("bw").attributes == {"rate": 9}
        with pytest.raises(InvalidToxic):
            proxy.add_toxic(type="nope")
        with pytest.raises(ProxyExists):   # 409 is mapped to ProxyExists by the library
            proxy.add_toxic(type="latency")
        # toxic update through the library's own transport
        r = APIConsumer.post(f"/proxies/lib/toxics/bw", json={"attributes": {"rate": 20}})
        assert r.json()["attributes"] == {"rate": 20}
        proxy.destroy_toxic("bw")
        assert set(proxy.toxics()) == {"latency_downstream"}
        with proxy.down():
            assert tp.get_proxy("lib").enabled is False
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(_addr(proxy.listen), timeout=1).close()
        assert tp.get_proxy("lib").enabled is True
        assert tp.reset() is True
        assert proxy.toxics() == {}
        made = tp.populate([{"name": "pop", "upstream": upstreams["echo"],
                             "listen": "127.0.0.1:0"}])
        assert [p.name for p in made] == ["pop"]
        tp.destroy_all()
        assert tp.proxies() == {}
        with pytest.raises(NotFound):
            APIConsumer.get("/proxies/lib")
    finally:
        APIConsumer.host, APIConsumer.port = saved


def _addr(listen):
    host, port = listen.rsplit(":", 1)
    return host, int(port)


# ------------------------------------------------------------------------------------------
# Toxics on real traffic

def _rtt_ms(conn, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        conn.request("GET", "/ping")
        assert conn.getresponse().read() == b"pong"
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def test_latency_applies_to_live_connection_and_is_accurate(api, upstreams):
    host, port = _proxy(api, "web", upstreams["http"])
    conn = http.client.HTTPConnection(host, port, timeout=5)
    base = _rtt_ms(conn, 20)
    _toxic(api, "web", "latency", {"latency": 200})
    added = _rtt_ms(conn, 3) - base
    # within a few ms: the event loop's timers (uvloop's) count whole milliseconds
    assert 198 <= added <= 207, added
    _toxic(api, "web", "latency", {"latency": 100}, stream="upstream")
    added = _rtt_ms(conn, 2) - base
    assert 297 <= added <= 309, added
    requests.delete(api + "/proxies/web/toxics/latency_downstream")
    requests.delete(api + "/proxies/web/toxics/latency_upstream")
    assert _rtt_ms(conn, 5) - base < 3
    # toxicity 0: never applied
    _toxic(api, "web", "latency", {"latency": 300}, toxicity=0.0)
    conn2 = http.client.HTTPConnection(host, port, timeout=5)
    assert _rtt_ms(conn2, 3) < base + 20
    conn.close()
    conn2.close()


def test_bandwidth_rate_is_accurate(api, upstreams):
    addr = _proxy(api, "bw", upstreams["blob"])
    _toxic(api, "bw", "bandwidth", {"rate": 100})
    s = _connect(addr)
    t = time.perf_counter()
    s.sendall(b"200000\n")
    data = _recv_all(s)
    elapsed = time.perf_counter() - t
    s.close()
    assert len(data) == 200000
    kbps = len(data) / elapsed / 1000
    assert 98 <= kbps <= 102, kbps


def test_removing_bandwidth_mid_transfer_speeds_it_up(api, upstreams):
    addr = _proxy(api, "bw2", upstreams["blob"])
    _toxic(api, "bw2", "bandwidth", {"rate": 50})
    s = _connect(addr)
    t = time.perf_counter()
    s.sendall(b"400000\n")                   # 8 s at 50 KB/s
    threading.Timer(0.4, requests.delete, (api + "/proxies/bw2/toxics/bandwidth_downstream",)).start()
    data = _recv_all(s)
    s.close()
    assert len(data) == 400000
    assert time.perf_counter() - t < 1.5


def test_timeout_closes_after_timeout(api, upstreams):
    addr = _proxy(api, "to", upstreams["echo"])
    _toxic(api, "to", "timeout", {"timeout": 500})
    s = _connect(addr)
    t = time.perf_counter()
    s.sendall(b"hello")
    assert s.recv(100) == b""               # nothing comes back; then the close
    assert 0.48 <= time.perf_counter() - t <= 0.6
    s.close()


def _closed_within(s, seconds):
    """Seconds until the peer closes ``s`` (reading and discarding), or None if it stays open."""
    t = time.perf_counter()
    s.settimeout(seconds)
    try:
        while s.recv(4096):
            pass
    except socket.timeout:
        return None
    return time.perf_counter() - t


def test_timeout_timer_restarts_on_each_chunk_and_drops_data(api, upstreams):
    addr = _proxy(api, "tick", upstreams["echo"])
    _toxic(api, "tick", "timeout", {"timeout": 300}, stream="upstream")
    s = _connect(addr)
    start = time.perf_counter()
    for _ in range(6):                          # a chunk every 100 ms keeps it open past 300 ms
        last = time.perf_counter()
        s.sendall(b"tick")
        assert _closed_within(s, 0.1) is None   # nothing echoed: the chunks were dropped
    assert _closed_within(s, 2) is not None
    quiet = time.perf_counter() - last          # closed 300 ms after the last chunk
    assert 0.28 <= quiet <= 0.45, quiet
    assert time.perf_counter() - start >= 0.8
    s.close()


def test_removing_timeout_closes_instead_of_releasing(api, upstreams):
    addr = _proxy(api, "hold", upstreams["echo"])
    _toxic(api, "hold", "timeout", {"timeout": 0})
    s = _connect(addr)
    s.sendall(b"held")
    assert _closed_within(s, 0.3) is None       # timeout 0: no close while the toxic is there
    assert requests.delete(api + "/proxies/hold/toxics/timeout_downstream").status_code == 204
    s.settimeout(2)
    assert s.recv(100) == b""                   # closed; the echo it swallowed is gone
    s.close()
    s = _connect(addr)                          # the next connection flows freely again
    s.sendall(b"free")
    assert s.recv(100) == b"free"
    s.close()


def test_removing_timeout_closes_even_where_toxicity_skipped_it(api, upstreams):
    addr = _proxy(api, "skip", upstreams["echo"])
    _toxic(api, "skip", "timeout", {"timeout": 0}, toxicity=0.0)
    s = _connect(addr)
    s.sendall(b"a")
    assert s.recv(10) == b"a"                   # not applied to this connection
    requests.delete(api + "/proxies/skip/toxics/timeout_downstream")
    assert _closed_within(s, 2) is not None     # yet its removal closes it, as in real
    s.close()


def test_reset_peer_sends_rst(api, upstreams):
    addr = _proxy(api, "rst", upstreams["echo"])
    _toxic(api, "rst", "reset_peer", {"timeout": 300})
    s = _connect(addr)
    t = time.perf_counter()
    s.sendall(b"ping")
    with pytest.raises(ConnectionResetError):
        while s.recv(100):
            pass
    assert 0.28 <= time.perf_counter() - t <= 0.4
    s.close()


def test_limit_data_cuts_at_exact_byte_count(api, upstreams):
    addr = _proxy(api, "lim", upstreams["blob"])
    _toxic(api, "lim", "limit_data", {"bytes": 1000})
    s = _connect(addr)
    s.sendall(b"10000\n")
    assert len(_recv_all(s)) == 1000
    s.close()


def test_reset_peer_added_to_open_connection_closes_without_reset(api, upstreams):
    addr = _proxy(api, "rst2", upstreams["echo"])
    s = _connect(addr)
    s.sendall(b"a")
    assert s.recv(10) == b"a"
    _toxic(api, "rst2", "reset_peer", {"timeout": 100})
    t = time.perf_counter()
    s.sendall(b"b")
    s.settimeout(2)
    assert s.recv(10) == b""                    # a plain close (FIN), not ConnectionResetError
    assert 0.09 <= time.perf_counter() - t <= 0.3
    s.close()


def test_reset_peer_once_triggered_closes_even_if_removed(api, upstreams):
    addr = _proxy(api, "rst4", upstreams["echo"])
    s = _connect(addr)
    s.sendall(b"a")
    assert s.recv(10) == b"a"                   # open before the toxic: closes, not resets
    _toxic(api, "rst4", "reset_peer", {"timeout": 300})
    t = time.perf_counter()
    s.sendall(b"x")                             # triggers it: the close is now due at 300 ms
    time.sleep(0.05)
    assert requests.delete(api + "/proxies/rst4/toxics/reset_peer_downstream").status_code == 204
    assert time.perf_counter() - t >= 0.28      # as real, the removal waited for it
    s.settimeout(2)
    assert s.recv(10) == b""
    s.close()


def test_connection_opened_under_reset_peer_resets_on_any_close(api, upstreams):
    addr = _proxy(api, "rst3", upstreams["blob"])
    _toxic(api, "rst3", "reset_peer", {"timeout": 5000})
    s = _connect(addr)
    time.sleep(0.05)                            # the proxy has dialled the upstream
    requests.delete(api + "/proxies/rst3/toxics/reset_peer_downstream")
    s.sendall(b"10\n")                          # the upstream answers and closes normally...
    with pytest.raises(ConnectionResetError):   # ...and the close reaches the client as a reset
        while s.recv(100):
            pass
    s.close()


def _reply_after_eof(conn):
    """Reads until the client half-closes, then answers what it read."""
    got = b""
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            break
        got += chunk
    conn.sendall(b"reply:" + got)


def test_half_close_closes_both_ways(api, upstreams):
    upstream = _TcpServer(_reply_after_eof)
    try:
        direct = _connect(("127.0.0.1", upstream.port))
        direct.sendall(b"q")
        direct.shutdown(socket.SHUT_WR)
        assert _recv_all(direct) == b"reply:q"  # the upstream itself answers a half-close
        direct.close()
        addr = _proxy(api, "half", upstream.addr)
        s = _connect(addr)
        s.sendall(b"q")
        time.sleep(0.05)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(2)
        try:
            got = _recv_all(s)
        except ConnectionResetError:
            got = b""
        assert got == b""                       # the proxy closed both ways: no reply comes
        s.close()
    finally:
        upstream.close()


def test_slicer_sizes_as_real_toxiproxy_computes_them():
    # halved until a piece is within size_variation of average_size: no stub at the end
    assert slice_sizes(1024, 100, 0, random.Random(1)) == [64] * 16
    assert slice_sizes(150, 100, 0, random.Random(1)) == [75, 75]
    assert slice_sizes(100, 100, 0, random.Random(1)) == [100]
    assert slice_sizes(0, 100, 0, random.Random(1)) == []
    rng = random.Random(3)
    for total in (1, 99, 121, 1000, 4096, 65536):
        for avg, var in ((100, 20), (1024, 512), (10, 9), (5, 50)):
            sizes = slice_sizes(total, avg, var, rng)
            assert sum(sizes) == total and min(sizes) >= 1
            assert max(sizes) <= max(avg + var, 1)
            if total > avg + var and var < avg:
                # a cut lands within var of a middle: no piece is much below half of avg + var
                assert min(sizes) >= (avg + var + 1) // 2 - var, (total, avg, var, sizes)


def test_slicer_cuts_and_delays(api, upstreams):
    addr = _proxy(api, "sl", upstreams["echo"])
    _toxic(api, "sl", "slicer", {"average_size": 100, "size_variation": 0, "delay": 30000})
    s = _connect(addr)
    t = time.perf_counter()
    payload = bytes(range(256)) * 4
    s.sendall(payload)
    got, reads = b"", []
    while len(got) < len(payload):
        chunk = s.recv(65536)
        got += chunk
        reads.append(len(chunk))
    assert got == payload
    assert time.perf_counter() - t >= 0.44      # 16 pieces, 30 ms apart
    assert len(reads) >= 8                      # arrived in pieces, not in one read
    assert all(n % 64 == 0 for n in reads), reads   # pieces of 64, as real cuts 1024 at avg 100
    s.close()


def test_slow_close_delays_the_close(api, upstreams):
    addr = _proxy(api, "sc", upstreams["blob"])
    _toxic(api, "sc", "slow_close", {"delay": 300})
    s = _connect(addr)
    t = time.perf_counter()
    s.sendall(b"10\n")
    assert s.recv(100) == b"x" * 10
    assert time.perf_counter() - t < 0.1
    assert s.recv(100) == b""
    assert 0.29 <= time.perf_counter() - t <= 0.45
    s.close()


def test_disable_closes_connections_and_stops_listening(api, upstreams):
    addr = _proxy(api, "d", upstreams["echo"])
    s = _connect(addr)
    s.sendall(b"a")
    assert s.recv(10) == b"a"
    r = requests.post(api + "/proxies/d", json={"enabled": False})
    assert r.json()["enabled"] is False
    assert s.recv(10) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(addr, timeout=1)
    r = requests.post(api + "/proxies/d", json={"enabled": True})
    assert _addr(r.json()["listen"]) == addr           # same port again
    s2 = _connect(addr)
    s2.sendall(b"b")
    assert s2.recv(10) == b"b"
    # deleting closes everything too
    assert requests.delete(api + "/proxies/d").status_code == 204
    assert s2.recv(10) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(addr, timeout=1)
    s.close()
    s2.close()


def test_repoint_upstream_drops_connections(api, upstreams):
    addr = _proxy(api, "rp", upstreams["a"])
    s = _connect(addr)
    s.sendall(b"1")
    assert s.recv(10) == b"A:1"
    r = requests.patch(api + "/proxies/rp", json={"upstream": upstreams["b"]})
    assert r.status_code == 200 and r.json()["upstream"] == upstreams["b"]
    assert s.recv(10) == b""
    s2 = _connect(addr)
    s2.sendall(b"2")
    assert s2.recv(10) == b"B:2"
    s.close()
    s2.close()


def test_stats_extension_counts_bytes(api, upstreams):
    addr = _proxy(api, "st", upstreams["echo"])
    s = _connect(addr)
    s.sendall(b"z" * 1000)
    got = b""
    while len(got) < 1000:
        got += s.recv(4096)
    r = requests.get(api + "/proxies/st/stats").json()
    assert r["upstream_bytes"] == 1000 and r["downstream_bytes"] == 1000
    assert r["connections"] == 1
    s.close()
    assert requests.get(api + "/proxies/none/stats").status_code == 404
    assert requests.post(api + "/proxies/st/stats").status_code == 405


def _burst_connect_seconds(addr, n):
    """Opens ``n`` connections at once; seconds each took from its connect() to established."""
    socks, started, took = [], {}, []
    poll = select.poll()
    try:
        for _ in range(n):
            s = socket.socket()
            s.setblocking(False)
            started[s.fileno()] = time.perf_counter()
            s.connect_ex(addr)
            poll.register(s, select.POLLOUT)
            socks.append(s)
        deadline = time.perf_counter() + 10
        while len(took) < n and time.perf_counter() < deadline:
            for fd, _ in poll.poll(100):
                took.append(time.perf_counter() - started[fd])
                poll.unregister(fd)
    finally:
        for s in socks:
            s.close()
    return took


def test_listeners_take_a_burst_of_300_connects(api, server):
    # Real Toxiproxy's backlog is 4096; with asyncio's default of 100, some of 300 simultaneous
    # connects are dropped by the kernel and wait for the 1 s SYN retry.
    upstream = socket.create_server(("127.0.0.1", 0), backlog=4096)
    try:
        addr = _proxy(api, "burst", f"127.0.0.1:{upstream.getsockname()[1]}")
        for target in (addr, ("127.0.0.1", server.port)):
            for _ in range(3):
                took = sorted(_burst_connect_seconds(target, 300))
                assert len(took) == 300
                assert took[-1] < 0.5, f"slowest of 300 connects {took[-1]:.3f} s"
                time.sleep(0.1)
    finally:
        upstream.close()


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss to read a listen backlog")
def test_listen_backlog_is_4096(api, server, upstreams):
    _, port = _proxy(api, "bl", upstreams["echo"])
    for p in (port, server.port):
        out = subprocess.run(["ss", "-Hltn", f"sport = :{p}"], capture_output=True, text=True,
                             check=True).stdout.split()
        assert out[0] == "LISTEN" and out[2] == "4096", out   # Send-Q of a listener: its backlog


# ------------------------------------------------------------------------------------------
# The wrapper and the process

def test_links_wrapper(api, upstreams, server):
    links = Links(api)
    assert links.wait_ready(2) == "2.12.0"
    listen = links.ensure_proxy("w", upstreams["a"])
    assert links.ensure_proxy("w", upstreams["a"]) == listen
    assert links.ensure_proxy("w", upstreams["b"]) == listen and \
        links.proxies()["w"]["upstream"] == upstreams["b"]
    links.repoint("w", upstreams["a"])
    name = links.add_toxic("w", "latency", {"latency": 1}, name="f1-latency")
    assert name == "f1-latency"
    assert links.add_toxic("w", "timeout", {"timeout": 0}, stream="upstream") == "timeout_upstream"
    assert links.remove_toxic("w", "timeout_upstream") is True   # (removal would close a connection)
    links.add_toxic("w", "latency", {"latency": 5000}, stream="upstream")
    with pytest.raises(LinkError, match="toxic already exists"):
        links.add_toxic("w", "latency", {}, name="f1-latency")
    with pytest.raises(LinkError, match="invalid toxic type"):
        links.add_toxic("w", "nope", {})
    assert links.remove_toxic("w", "f1-latency") is True
    assert links.remove_toxic("w", "f1-latency") is False
    links.set_enabled("w", False)
    assert links.proxies()["w"]["enabled"] is False
    assert links.ensure_proxy("w", upstreams["a"]) == listen   # re-enabled on the same port
    s = _connect(_addr(listen))
    links.reset()
    s.sendall(b"q")
    assert s.recv(10) == b"A:q"
    s.close()
    st = links.stats("w")
    assert st["upstream_bytes"] == 1 and st["downstream_bytes"] == 3
    with pytest.raises(LinkError, match="proxy not found"):
        links.set_enabled("missing", True)
    assert links.delete("w") is True and links.delete("w") is False
    with pytest.raises(LinkError, match="unreachable"):
        Links("http://127.0.0.1:1", timeout=0.5).proxies()


def test_cli_process_ready_file_and_sigterm(tmp_path, upstreams):
    ready = tmp_path / "ready.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "harness.netfault.server", "--host",
                             "127.0.0.1", "--port", "0", "--ready-file", str(ready)],
                            cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 10
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        info = json.loads(ready.read_text())
        assert info["pid"] == proc.pid and info["port"] > 0
        url = f"http://127.0.0.1:{info['port']}"
        assert requests.get(url + "/version").json() == {"version": "2.12.0"}
        addr = _proxy(url, "c", upstreams["echo"])
        s = _connect(addr)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert s.recv(10) == b""                   # proxies closed on the way out
        s.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
