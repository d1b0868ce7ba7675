"""Our services' HTTP/1.1 loop and the DB pool's watchdog, without a database or a stack."""
from __future__ import annotations

import io
import json
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.stack.services.common import (BadRequest, Headers, HttpError, JsonServer, Router, Stream,
                                           read_head)
from harness.stack.services.db_pool import Watchdog

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from bench_capacity import Step, knee  # noqa: E402


def test_headers_are_found_by_any_case_and_keep_their_wire_form():
    h = Headers([("Host", "a:1"), ("X-Patient-Id", "P00001")])
    assert h.get("x-patient-id") == "P00001" and h["HOST"] == "a:1"
    assert h.get("Missing") is None and h.get("Missing", "") == ""
    assert "x-patient-ID" in h and "Other" not in h
    with pytest.raises(KeyError):
        h["Other"]
    assert str(h) == "Host: a:1\nX-Patient-Id: P00001\n\n"


def test_read_head_parses_a_request_and_skips_stray_line_ends():
    rfile = io.BytesIO(b"\r\nPOST /api/login?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}")
    method, target, version, headers = read_head(rfile)
    assert (method, target, version) == ("POST", "/api/login?x=1", "HTTP/1.1")
    assert headers["content-length"] == "2"
    assert rfile.read() == b"{}"  # the body is left for the handler
    assert read_head(io.BytesIO(b"")) is None  # the client closed between requests


@pytest.mark.parametrize("raw", [b"GET /\r\n\r\n", b"GET / SPDY/3\r\n\r\n",
                                 b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
                                 b"GET / HTTP/1.1\r\nHost: h\r\n"])  # closed mid-headers
def test_read_head_refuses_what_is_not_http1(raw):
    with pytest.raises(BadRequest):
        read_head(io.BytesIO(raw))


@pytest.fixture
def server():
    router = Router()
    router.add("POST", "/echo", lambda req: (200, {"got": req.json(), "who": req.headers.get("x-who"),
                                                   "query": req.query}))
    router.add("GET", "/stream", lambda req: Stream(200, iter([b"ab", b"", b"cd"])))

    def fail(req):
        raise HttpError(409, "taken", step="x")
    router.add("GET", "/fail", fail)
    srv = JsonServer(("127.0.0.1", 0), router, "test")
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield srv.server_address
    srv.shutdown()
    srv.server_close()


def _exchange(address, data: bytes) -> bytes:
    with socket.create_connection(address, timeout=5) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_keep_alive_answers_requests_in_turn_then_closes_on_request(server):
    body = b'{"a": 1}'
    out = _exchange(server, b"POST /echo?k=v HTTP/1.1\r\nX-Who: me\r\nContent-Length: %d\r\n\r\n%s"
                    b"GET /fail HTTP/1.1\r\n\r\n"
                    b"GET /nowhere HTTP/1.1\r\nConnection: close\r\n\r\n"
                    b"GET /fail HTTP/1.1\r\n\r\n" % (len(body), body))
    replies = out.split(b"HTTP/1.1 ")[1:]
    assert [r[:3] for r in replies] == [b"200", b"409", b"404"]  # nothing after the close
    assert json.loads(replies[0].split(b"\r\n\r\n", 1)[1]) == {"got": {"a": 1}, "who": "me",
                                                               "query": {"k": "v"}}
    assert json.loads(replies[1].split(b"\r\n\r\n", 1)[1]) == {"error": "taken", "step": "x"}
    assert b"Connection: close" in replies[2] and b"Connection: close" not in replies[0]


def test_a_stream_without_length_is_chunked_and_a_bad_request_is_400(server):
    out = _exchange(server, b"GET /stream HTTP/1.1\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in out and out.endswith(b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n")
    assert _exchange(server, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400 Bad Request")


def test_an_http10_client_is_answered_and_closed(server):
    out = _exchange(server, b"GET /fail HTTP/1.0\r\n\r\nGET /fail HTTP/1.0\r\n\r\n")
    assert out.count(b"HTTP/1.1 409") == 1


def test_watchdog_cuts_work_past_its_deadline_and_spares_work_done_in_time():
    dog = Watchdog()
    late_a, late_b = socket.socketpair()
    quick_a, quick_b = socket.socketpair()
    try:
        late = dog.arm(late_a, 0.05)
        quick = dog.arm(quick_a, 0.05)
        dog.disarm(quick)  # done in time: goes back to the pool untouched
        late_b.settimeout(2)
        t0 = time.monotonic()
        assert late_a.recv(1) == b""  # shut down under the reader, as a stalled query's socket
        assert 0.03 < time.monotonic() - t0 < 1.5
        assert late.fired and not quick.fired
        quick_b.sendall(b"x")
        assert quick_a.recv(1) == b"x"
    finally:
        for s in (late_a, late_b, quick_a, quick_b):
            s.close()


def _step(users, rps, p95, errors=0):
    return Step(users, rps, p95 / 2, p95, p95 * 1.5, int(rps * 20), errors, {})


def test_knee_is_the_fastest_step_within_the_p95_goal_else_where_growth_stops():
    best, why = knee([_step(10, 400, 40), _step(20, 700, 90), _step(40, 800, 150)])
    assert best.users == 20 and "p95" in why
    best, _ = knee([_step(10, 400, 40), _step(20, 900, 90, errors=3)])
    assert best.users == 10  # errors disqualify a step
    best, why = knee([_step(10, 400, 120), _step(20, 700, 200), _step(40, 710, 400)])
    assert best.users == 20 and "stopped growing" in why


def test_keep_alive_reuses_a_connection_and_drops_one_the_peer_closed(server):
    from harness.stack.services.third_party_client import KeepAlive
    line = KeepAlive(f"http://{server[0]}:{server[1]}", 2.0)
    first = line.post("/echo", {"n": 1})
    assert first.status_code == 200 and json.loads(first.body)["got"] == {"n": 1}
    (conn,) = line._idle
    line.post("/echo", {"n": 2})
    assert line._idle == [conn]  # the same connection, kept alive
    conn.sock.shutdown(socket.SHUT_RDWR)  # as a link cut while it sat idle
    assert line.post("/echo", {"n": 3}).status_code == 200
    assert line._idle and line._idle[0] is not conn


def test_keep_alive_to_a_closed_port_is_refused():
    from harness.stack.services.third_party_client import KeepAlive
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(ConnectionRefusedError):
            KeepAlive(f"http://127.0.0.1:{port}", 1.0).post("/x", {})
