"""The patient load (harness.load) against a small stub of the patient API.

The stub answers just enough of docs/internals.md for the personas, and fails some requests on
purpose: every 6th login (503), every 4th appointment (500) and every 3rd payment (502).
"""
from __future__ import annotations

import itertools
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import pytest

from harness.errors import InputError
from harness.load.records import RecordTail, iter_records
from harness.load.load_config import PERSONAS
from harness.load.runner import LOCUSTFILE, PatientLoad, free_port

pytestmark = pytest.mark.integration

FIELDS = {"t", "ms", "patient", "persona", "journey", "name", "ok", "status", "error", "write_id"}
WRITES = {"POST /api/appointments", "POST /api/consultations", "POST /api/prescriptions",
          "POST /api/exam-bookings", "POST /api/payments"}
ALL_PERSONAS = {"followup": 3, "consultation": 3, "prescription": 2, "exam": 2, "payment": 1}


class StubHospital:
    """The patient API, in memory, on a thread of the test process."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: Counter = Counter()
        self.ids = itertools.count(1)
        self.patients_seen: set[str] = set()
        self.write_ids: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # headers and body go out in two writes: without this, Nagle's algorithm and
                # delayed ACKs hold each response back by 40 ms
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args):
                pass

            def reply(self, status: int, body) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def body(self) -> dict:
                n = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(n)) if n else {}

            def do_GET(self):
                stub.seen(self.headers.get("X-Patient-Id"))
                path = self.path.split("?")[0]
                if path == "/api/doctors":
                    return self.reply(200, [{"id": i, "name": f"Dr {i}", "department": i % 12}
                                            for i in range(1, 61)])
                if path == "/api/notice":
                    return self.reply(200, {"notice": None})
                m = re.fullmatch(r"/api/consultations/(\d+)", path)
                if m:
                    return self.reply(200, {"id": int(m.group(1)), "status": "replied",
                                            "reply": "rest and drink water"})
                return self.reply(404, {"error": "no such path"})

            def do_POST(self):
                stub.seen(self.headers.get("X-Patient-Id"))
                body = self.body()
                n = stub.count(self.path)
                if self.path == "/api/login":
                    if not re.fullmatch(r"P\d{5}", str(body.get("patient_id"))):
                        return self.reply(404, {"error": "unknown patient"})
                    if n % 6 == 0:
                        return self.reply(503, {"error": "database unavailable"})
                    return self.reply(200, {"token": uuid.uuid4().hex, "patient": {"id": body["patient_id"]}})
                if self.path in ("/api/appointments", "/api/consultations", "/api/prescriptions",
                                 "/api/exam-bookings", "/api/payments"):
                    if not body.get("write_id"):
                        return self.reply(400, {"error": "write_id missing"})
                    if self.path == "/api/appointments" and n % 4 == 0:
                        return self.reply(500, {"error": "statement timeout"})
                    if self.path == "/api/payments" and n % 3 == 0:
                        return self.reply(502, {"error": "insurance-primary unreachable"})
                    with stub.lock:
                        stub.write_ids.append(body["write_id"])
                    return self.reply(201, {"id": next(stub.ids), "write_id": body["write_id"]})
                return self.reply(404, {"error": "no such path"})

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client that went away mid-response (Locust stopping) is not news

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def seen(self, patient):
        with self.lock:
            self.patients_seen.add(patient)

    def count(self, path: str) -> int:
        with self.lock:
            self.counts[path] += 1
            return self.counts[path]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    with StubHospital() as s:
        yield s


def assert_gone(pids):
    """No process started by the load is left, nor anything else in their sessions."""
    assert pids
    for p in psutil.process_iter(["pid", "status"]):
        try:
            session = os.getsid(p.info["pid"])
        except OSError:
            continue
        if p.info["pid"] in pids or session in pids:
            assert p.info["status"] == psutil.STATUS_ZOMBIE, f"pid {p.info['pid']} still running"


def check_journeys(records):
    """Per patient, in order: a failed step ends the iteration, the next one starts with a login."""
    by_patient = defaultdict(list)
    for r in records:
        by_patient[r["patient"]].append(r)
    for patient, rs in by_patient.items():
        rs.sort(key=lambda r: r["t"])
        for prev, nxt in zip(rs, rs[1:]):
            if not prev["ok"]:
                assert nxt["name"] == "POST /api/login", (patient, prev, nxt)
        assert len({r["persona"] for r in rs}) == 1, f"{patient} ran more than one persona"
    return by_patient


def patients_only(records) -> list[dict]:
    """The internet hospital's own requests: without the offline way out of patients in trouble
    (the notice page, offline reception), which carry journey "offline"."""
    return [r for r in records if r.get("journey") != "offline"]


def test_local_load_writes_records(stub, tmp_path):
    records_dir = tmp_path / "records"
    config = {"personas": ALL_PERSONAS, "wait": [0.05, 0.2], "request_timeout_s": 2}
    with PatientLoad(stub.url, records_dir, users=15, spawn_rate=30, config=config,
                     log_dir=tmp_path / "logs") as load:
        pids = load.pids()
        assert len(pids) == 1
        load.wait_started(timeout=30)
        tail = RecordTail(records_dir)
        tailed = []
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            tailed += tail.poll()
            time.sleep(0.1)
        codes = load.stop()
        assert load.stop() == codes                   # idempotent
    assert_gone(pids)
    assert [p.name for p in records_dir.iterdir()] == ["local.jsonl"]

    every = list(iter_records(records_dir))
    # patients in trouble (a failing step, a notice) may take the offline way: their records carry
    # journey "offline" and are no patient of the internet hospital's to the tail
    offline = [r for r in every if r["journey"] == "offline"]
    assert all(set(r) <= FIELDS | {"choice", "offline_id"} for r in offline)
    records = [r for r in every if r["journey"] != "offline"]
    assert len(records) > 100
    tailed += tail.poll()
    assert len(tailed) == len(records)                 # the tail saw every record, each once
    for r in records:
        assert set(r) == FIELDS, r
        assert r["persona"] in PERSONAS and r["journey"] == r["persona"]
        assert isinstance(r["t"], float) and r["ms"] >= 0
        if r["name"] in WRITES:
            uuid.UUID(r["write_id"])
        else:
            assert r["write_id"] is None, r
        if r["ok"]:
            assert 200 <= r["status"] < 300 and r["error"] is None
        else:
            assert r["error"] and r["status"] >= 400, r

    # one patient per user, distinct, from the start of the range
    patients = {r["patient"] for r in records}
    assert patients == {f"P{i:05d}" for i in range(1, 16)}
    assert stub.patients_seen == patients              # X-Patient-Id matches the record
    assert {r["persona"] for r in records} == set(PERSONAS)

    # acknowledged writes are the stub's writes (less those in flight at the stop); ids are fresh
    acked = [r["write_id"] for r in records if r["ok"] and r["write_id"]]
    assert len(set(acked)) == len(acked)
    assert set(acked) <= set(stub.write_ids)
    assert len(set(stub.write_ids) - set(acked)) <= 15

    # the failures the stub made are in the records, with the app's error message
    failed = Counter((r["name"], r["status"]) for r in records if not r["ok"])
    assert failed[("POST /api/login", 503)] > 0
    assert failed[("POST /api/appointments", 500)] > 0
    assert failed[("POST /api/payments", 502)] > 0
    assert any("database unavailable" in r["error"] for r in records if not r["ok"])
    check_journeys(records)


def test_distributed_load_one_file_per_worker(stub, tmp_path):
    records_dir = tmp_path / "records"
    config = {"personas": ALL_PERSONAS, "wait": [0.05, 0.2], "patient_offset": 100}
    with PatientLoad(stub.url, records_dir, users=10, spawn_rate=20, config=config, workers=2,
                     log_dir=tmp_path / "logs") as load:
        pids = load.pids()
        assert len(pids) == 3
        load.wait_started(timeout=40)
        deadline = time.monotonic() + 30
        while len(list(records_dir.glob("worker-*.jsonl"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)
    assert_gone(pids)
    files = sorted(p.name for p in records_dir.iterdir())
    assert len(files) == 2 and all(re.fullmatch(r"worker-\d+\.jsonl", f) for f in files), files

    owner = {}
    for f in files:
        recs = patients_only(iter_records(records_dir / f))
        assert recs, f"no records from {f}"
        for r in recs:
            assert set(r) == FIELDS
            assert owner.setdefault(r["patient"], f) == f, f"{r['patient']} in two workers"
    # 10 users over 2 workers: patients interleaved, distinct, from offset 100
    assert set(owner) == {f"P{i:05d}" for i in range(101, 111)}
    check_journeys(patients_only(iter_records(records_dir)))


@pytest.mark.parametrize("backend", ["refused", "hanging"])
def test_dead_backend_fails_fast_and_journeys_stop_at_login(tmp_path, backend):
    records_dir = tmp_path / "records"
    listener = None
    if backend == "refused":
        url = f"http://127.0.0.1:{free_port()}"      # nobody listens there
        expected = "refused"
    else:
        listener = socket.socket()                   # connects, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        expected = "timed out"
    config = {"personas": {"exam": 1, "payment": 1}, "wait": 0.1, "request_timeout_s": 0.5,
              "stages": [[1, 2, 4], [30, 4, 4]]}    # also loads shapes.py
    try:
        with PatientLoad(url, records_dir, users=4, spawn_rate=4, config=config,
                         log_dir=tmp_path / "logs") as load:
            load.wait_started(timeout=30)
            time.sleep(2)
            pids = load.pids()
    finally:
        if listener is not None:
            listener.close()
    assert_gone(pids)
    assert "Shape test" in (tmp_path / "logs" / "locust.log").read_text()
    records = patients_only(iter_records(records_dir))
    assert records
    assert {r["name"] for r in records} == {"POST /api/login"}   # nobody got past the login
    for r in records:
        assert r["ok"] is False and r["status"] is None
        assert expected in r["error"].lower(), r
        assert r["ms"] < 1500
    assert {r["persona"] for r in records} <= {"exam", "payment"}
    assert len({r["patient"] for r in records}) <= 4


def test_stop_before_start_is_harmless(tmp_path):
    load = PatientLoad("http://127.0.0.1:1", tmp_path / "records", users=1, spawn_rate=1)
    assert load.stop() == {} and load.pids() == []


def test_unknown_persona_fails_loudly(tmp_path):
    with pytest.raises(InputError, match="surgery"):
        PatientLoad("http://127.0.0.1:1", tmp_path, users=1, spawn_rate=1,
                    config={"personas": {"followup": 1, "surgery": 2}})
    # the locustfile itself refuses it too, whoever starts Locust
    env = {**os.environ, "HD_LOAD_CONFIG": json.dumps({"personas": {"surgery": 1}})}
    out = subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--list"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.returncode != 0
    assert "unknown persona" in out.stdout + out.stderr and "surgery" in out.stdout + out.stderr


def test_locustfile_lists_configured_personas(tmp_path):
    env = {**os.environ, "HD_LOAD_CONFIG": json.dumps({"personas": {"followup": 1, "payment": 2}})}
    out = subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--list"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "FollowUpPatient" in out.stdout and "PaymentPatient" in out.stdout
    assert "ExamPatient" not in out.stdout
