"""The Toxiproxy-compatible server: API contract (raw HTTP and toxiproxy-python) and toxics measured
on real traffic through a proxy to small local servers."""
from __future__ import annotations

import http.client
import json
import os
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
    assert 198 <= added <= 205, added
    _toxic(api, "web", "latency", {"latency": 100}, stream="upstream")
    added = _rtt_ms(conn, 2) - base
    assert 298 <= added <= 306, added
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


def test_timeout_zero_holds_until_removed(api, upstreams):
    addr = _proxy(api, "hold", upstreams["echo"])
    _toxic(api, "hold", "timeout", {"timeout": 0})
    s = _connect(addr)
    s.sendall(b"held")
    s.settimeout(0.4)
    with pytest.raises(socket.timeout):
        s.recv(100)
    assert requests.delete(api + "/proxies/hold/toxics/timeout_downstream").status_code == 204
    s.settimeout(2)
    assert s.recv(100) == b"held"
    s.sendall(b"more")
    assert s.recv(100) == b"more"
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


def test_slicer_cuts_and_delays(api, upstreams):
    addr = _proxy(api, "sl", upstreams["echo"])
    _toxic(api, "sl", "slicer", {"average_size": 100, "size_variation": 0, "delay": 10000})
    s = _connect(addr)
    t = time.perf_counter()
    payload = bytes(range(256)) * 4
    s.sendall(payload)
    got, reads = b"", 0
    while len(got) < len(payload):
        got += s.recv(65536)
        reads += 1
    assert got == payload
    assert time.perf_counter() - t >= 0.09      # 11 pieces, 10 ms apart
    assert reads >= 5                           # arrived in pieces, not in one read
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
