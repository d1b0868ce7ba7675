"""The internet hospital's patient app: the service the drill keeps alive.

Run as `python -m harness.stack.services.app --config FILE`. Config keys:
  name        "app-primary" | "app-backup"
  host, port  where to listen (port 0: any free port)
  ready_file  where `{"port", "pid"}` is written once listening
  log_file    warnings and errors (stderr when absent)
  db          {host, port, dbname, user, password?, pool_size?}: the DB address is a proxy, so a
              failover repoints it and the app follows without a restart
  egress      {"primary": "http://127.0.0.1:P1", "backup": "http://127.0.0.1:P2"}: the egress lines
  routes      {"egress": "primary", "insurance": "primary", "payment": "primary",
              "notification": "primary"}: the active egress line and each third party's interface
  timeouts    {db_connect_s: 1, statement_s: 3, third_party_s: 2} (real seconds)
  degrade     {insurance: normal|queue, payment: normal|later}: the starting payment mode

The API is the table in docs/internals.md. A 2xx on a write means it is committed; writes are
idempotent on the client's `write_id`. The database failing answers 503, a third party failing 502
(504 when it timed out), each naming what failed and the address tried, and for a third party the
culprit the evidence shows (see third_party_client.py); no call waits longer than the timeouts above.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
import threading
import time
import zlib
from collections import Counter, deque
from decimal import Decimal, InvalidOperation
from typing import Any

import psycopg
from psycopg import sql

from .common import HttpError, Request, Router, Stream, load_config, serve
from .db_pool import Database
from .third_party_client import ThirdParties

DEFAULT_TIMEOUTS = {"db_connect_s": 1.0, "statement_s": 3.0, "third_party_s": 2.0}
HEALTH_TIMEOUT_S = 1.0
MONEY = Decimal("0.01")


# --- the simulated doctor ------------------------------------------------------------------------
ADVICE = (
    "建议多饮水、注意休息，清淡饮食，三天后如无好转请复诊。",
    "建议完善血常规检查，结果出来后在线复诊。",
    "可按原方案继续用药，注意观察，如出现发热或症状加重请及时线下就诊。",
    "建议预约相关检查以明确诊断，检查前请空腹。",
    "目前考虑轻症，可对症处理，若出现胸闷、呼吸困难请立即前往急诊。",
)


def doctor_reply(doctor: str, symptoms: str) -> str:
    advice = ADVICE[zlib.crc32(symptoms.encode("utf-8")) % len(ADVICE)]
    return f"您好，我是{doctor}医生。关于您描述的“{symptoms[:80]}”，{advice}"


# --- request helpers -----------------------------------------------------------------------------
def _field(body: dict[str, Any], key: str, kind: type = str, default: Any = None) -> Any:
    value = body.get(key, default)
    if kind is int and isinstance(value, str) and value.isdigit():
        value = int(value)
    if value is None or isinstance(value, bool) or not isinstance(value, kind) or value == "":
        raise HttpError(400, f"{key} must be a {'non-empty string' if kind is str else kind.__name__}")
    return value


def _patient(req: Request, body: dict[str, Any]) -> str:
    # the body names the patient; the X-Patient-Id header every patient call carries stands in
    return _field(body, "patient_id", default=req.headers.get("X-Patient-Id"))


def _body(req: Request) -> dict[str, Any]:
    body = req.json()
    if not isinstance(body, dict):
        raise HttpError(400, "body must be a JSON object")
    return body


def _amount(body: dict[str, Any]) -> Decimal:
    value = body.get("amount")
    try:
        amount = Decimal(str(value)).quantize(MONEY)
    except InvalidOperation:
        amount = Decimal(-1)
    if isinstance(value, bool) or not amount.is_finite() or amount <= 0:
        raise HttpError(400, "amount must be a positive number")
    return amount


def _insert_once(cur: psycopg.Cursor, table: str, row: dict[str, Any],
                 returning: str = "id") -> tuple[dict[str, Any], bool]:
    """Insert unless `row['write_id']` is stored already; (row, replayed)."""
    insert, select = _insert_sql(table, tuple(row), returning)
    out = cur.execute(insert, list(row.values())).fetchone()
    if out is not None:
        return out, False
    return cur.execute(select, [row["write_id"]]).fetchone(), True


@functools.lru_cache(maxsize=64)
def _insert_sql(table: str, cols: tuple[str, ...], returning: str) -> tuple[str, str]:
    """The idempotent insert of `cols` into `table` and the read of a replay, composed once."""
    ret = sql.SQL(returning)
    insert = sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (write_id) DO NOTHING RETURNING {}").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, cols)),
        sql.SQL(", ").join(sql.Placeholder() * len(cols)), ret)
    select = sql.SQL("SELECT {} FROM {} WHERE write_id = %s").format(ret, sql.Identifier(table))
    return insert.as_string(), select.as_string()


# --- degraded payments ---------------------------------------------------------------------------
QUEUED = "QUEUED-"  # claim_id of an insurance claim queued while the insurer was away
LATER = "LATER-"  # payment_id of a payment the patient makes later (pay-later)


def _payment_view(row: dict[str, Any]) -> dict[str, Any]:
    """A payments row as the patient sees it: with where its claim and its payment stand."""
    claim, pay = row.get("claim_id"), row.get("payment_id")
    return {**row,
            "claim_status": None if claim is None else "queued" if claim.startswith(QUEUED) else "settled",
            "payment_status": None if pay is None else "pay_later" if pay.startswith(LATER) else "paid"}


# --- the edge: who calls how often, who is blocked, which front-end release is live ----------------
EDGE_PREFIXES = ("/api/", "/static/")  # patient traffic; /health and /admin are not counted
TRAFFIC_SPAN_S = 60


def _endpoint(method: str, path: str) -> str:
    return f"{method} {re.sub(r'/[0-9]+', '/{id}', path)}"


class Edge:
    """What stands in front of the patient API: a small WAF and the front end's release state.

    - the traffic board: requests per client key (the X-Patient-Id a client presents, else its
      address) and endpoint, in one-second buckets over the last minute (`GET /admin/traffic`);
    - the block list (`POST /admin/block`): a blocked client is held `tarpit_s` (config, default 1 s)
      and answered 429 without touching the database, so a bot gains nothing by retrying faster;
    - the release: the client version the exam-booking API requires (`api`) and the version of
      `/static/app.js` the cache serves (`static`). A release whose new script has not reached the
      cache leaves patients on the old one, whose exam bookings are refused with 409 until the cache
      is refreshed (`POST /admin/release`, `POST /admin/cache/refresh`).
    """

    def __init__(self, config: dict[str, Any]):
        self.tarpit_s = float(config.get("tarpit_s", 1.0))
        version = int(config.get("client_version", 1))
        self.release = {"api": version, "static": version}
        self.blocked: frozenset[str] = frozenset()
        self._buckets: deque[tuple[int, Counter]] = deque()
        self._lock = threading.Lock()

    @staticmethod
    def client_of(req: Request) -> str:
        pid = req.headers.get("X-Patient-Id")
        if pid:
            return pid
        return f"ip:{req.client_address[0]}"

    def _count(self, client: str, endpoint: str, blocked: bool) -> None:
        sec = int(time.time())
        with self._lock:
            if not self._buckets or self._buckets[-1][0] != sec:
                self._buckets.append((sec, Counter()))
                while self._buckets[0][0] <= sec - TRAFFIC_SPAN_S:
                    self._buckets.popleft()
            self._buckets[-1][1][(client, endpoint, blocked)] += 1

    def admit(self, req: Request, handler: Any) -> Any:
        client = self.client_of(req)
        blocked = client in self.blocked
        self._count(client, _endpoint(req.method, req.path), blocked)
        if blocked:
            time.sleep(self.tarpit_s)
            raise HttpError(429, f"client {client} is blocked", client=client)
        if req.method == "POST" and req.path == "/api/exam-bookings":
            sent = req.headers.get("X-Client-Version", "")
            if sent.isdigit() and int(sent) < self.release["api"]:
                raise HttpError(409, f"exam booking needs client version {self.release['api']}, "
                                     f"this page runs {sent}: reload the app", client_version=int(sent))
        return handler(req)

    # --- admin -----------------------------------------------------------------------------------
    def traffic(self, req: Request) -> tuple[int, Any]:
        try:
            window = min(float(TRAFFIC_SPAN_S - 1), max(1.0, float(req.query.get("window", 5))))
        except ValueError:
            raise HttpError(400, "window must be a number of seconds") from None
        now = time.time()
        start = int(now) - int(window)  # whole seconds, and the current one so far
        elapsed = now - start
        per: dict[str, dict[str, Any]] = {}
        with self._lock:
            buckets = [c for sec, c in self._buckets if sec >= start]
        for counts in buckets:
            for (client, endpoint, blocked), n in counts.items():
                row = per.setdefault(client, {"requests": 0, "blocked": 0, "endpoints": Counter()})
                row["blocked" if blocked else "requests"] += n
                row["endpoints"][endpoint] += n
        clients = []
        for client, row in per.items():
            top, top_n = row["endpoints"].most_common(1)[0]
            total = row["requests"] + row["blocked"]
            clients.append({"client": client, "requests": row["requests"], "blocked": row["blocked"],
                            "rate": round(row["requests"] / elapsed, 3),
                            "blocked_rate": round(row["blocked"] / elapsed, 3),
                            "top_endpoint": top, "top_share": round(top_n / total, 3)})
        clients.sort(key=lambda c: c["requests"] + c["blocked"], reverse=True)
        return 200, {"window_s": round(elapsed, 3), "clients": clients,
                     "total_rate": round(sum(c["rate"] for c in clients), 3),
                     "blocked": sorted(self.blocked)}

    def block(self, req: Request) -> tuple[int, Any]:
        body = _body(req)
        add, remove = body.get("clients") or [], body.get("unblock") or []
        if not all(isinstance(c, str) and c for c in [*add, *remove]):
            raise HttpError(400, "clients and unblock must be lists of client keys")
        self.blocked = frozenset((self.blocked | set(add)) - set(remove))
        return 200, {"blocked": sorted(self.blocked)}

    def set_release(self, req: Request) -> tuple[int, Any]:
        body = _body(req)
        version, stale = body.get("version"), body.get("stale_cache", False)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise HttpError(400, "version must be a positive integer")
        self.release = {"api": version, "static": self.release["static"] if stale else version}
        return 200, dict(self.release)

    def refresh_cache(self, req: Request) -> tuple[int, Any]:
        self.release = {**self.release, "static": self.release["api"]}
        return 200, dict(self.release)

    def app_js(self, req: Request) -> Stream:
        body = (f"/* 互联网医院 patient app */\nwindow.HOSPITAL_APP = {{version: {self.release['static']}}};\n"
                ).encode("utf-8")
        return Stream(200, [body], "application/javascript; charset=utf-8", len(body))


class EdgeRouter(Router):
    """The app's routes, every patient call passing the edge first."""

    def __init__(self, edge: Edge):
        super().__init__()
        self.edge = edge

    def resolve(self, method: str, path: str) -> tuple[Any, dict[str, str]]:
        handler, params = super().resolve(method, path)
        if not path.startswith(EDGE_PREFIXES):
            return handler, params
        return (lambda req: self.edge.admit(req, handler)), params


class HospitalApp:
    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.name: str = config.get("name", "app")
        self.timeouts = {**DEFAULT_TIMEOUTS, **(config.get("timeouts") or {})}
        self.db = Database(config["db"], self.timeouts)
        self.third = ThirdParties(config.get("egress") or {}, config.get("routes") or {},
                                  float(self.timeouts["third_party_s"]), self.name)
        self.notice: str | None = config.get("notice")
        # the QR code printed beside every notice: where patients go while the site is down
        self.offline_url: str | None = config.get("offline_url")
        self.edge = Edge(config)
        self.report_db_s = float(config.get("report_db_ms", 500)) / 1000
        self.degraded = {"insurance": "normal", "payment": "normal", **(config.get("degrade") or {})}

    def routes(self) -> Router:
        r = EdgeRouter(self.edge)
        r.add("GET", "/health", self.health)
        r.add("GET", "/api/notice", lambda req: (200, {"notice": self.notice,
                                                       "offline_url": self.offline_url}))
        r.add("POST", "/api/login", self.login)
        r.add("GET", "/api/doctors", self.doctors)
        r.add("POST", "/api/appointments", self.appointment)
        r.add("POST", "/api/consultations", self.consultation)
        r.add("GET", r"/api/consultations/(?P<id>\d+)", self.read_consultation)
        r.add("POST", "/api/prescriptions", self.prescription)
        r.add("POST", "/api/exam-bookings", self.exam_booking)
        r.add("POST", "/api/payments", self.payment)
        r.add("POST", "/admin/notice", self.set_notice)
        r.add("POST", "/admin/route", self.set_route)
        r.add("POST", "/admin/notify", self.send_notification)
        r.add("GET", "/admin/config", self.effective_config)
        r.add("POST", "/admin/degrade", self.set_degrade)
        r.add("POST", "/admin/settle-claims", self.settle_claims)
        r.add("GET", "/api/exam-reports", self.exam_reports)
        r.add("GET", "/static/app.js", self.edge.app_js)
        r.add("GET", "/admin/traffic", self.edge.traffic)
        r.add("POST", "/admin/block", self.edge.block)
        r.add("POST", "/admin/release", self.edge.set_release)
        r.add("POST", "/admin/cache/refresh", self.edge.refresh_cache)
        return r

    # --- health and admin -------------------------------------------------------------------
    def health(self, req: Request) -> tuple[int, Any]:
        try:
            with self.db.transaction(HEALTH_TIMEOUT_S) as cur:
                cur.execute(f"SET LOCAL statement_timeout = {int(HEALTH_TIMEOUT_S * 1000)}")
                cur.execute("SELECT 1")
        except HttpError as e:
            return 503, {"status": "degraded", "instance": self.name, "db": e.message}
        return 200, {"status": "ok", "instance": self.name, "db": "ok"}

    def set_notice(self, req: Request) -> tuple[int, Any]:
        text = _body(req).get("text")
        if text is not None and not isinstance(text, str):
            raise HttpError(400, "text must be a string or null")
        self.notice = text or None
        return 200, {"notice": self.notice}

    def set_route(self, req: Request) -> tuple[int, Any]:
        return 200, self.third.switch(_body(req))

    def send_notification(self, req: Request) -> tuple[int, Any]:
        """A message to patients through the active notification interface and egress line (the
        way the hospital's own SMS / official-account pushes leave it)."""
        body = _body(req)
        sent = self.third.send(_field(body, "channel"), _field(body, "audience"), _field(body, "text"))
        return 200, sent

    def effective_config(self, req: Request) -> tuple[int, Any]:
        db = {k: v for k, v in self.config["db"].items() if k != "password"}
        return 200, {"name": self.name, "host": self.config.get("host", "127.0.0.1"),
                     "port": self.config.get("port", 0), "db": db, "egress": self.third.egress,
                     "routes": dict(self.third.routes), "timeouts": self.timeouts,
                     "notice": self.notice, "degrade": dict(self.degraded)}

    # --- degraded payments: queue insurance claims, let patients pay later -------------------
    def set_degrade(self, req: Request) -> tuple[int, Any]:
        """`{"insurance": "queue"|"normal", "payment": "later"|"normal"}` (either or both)."""
        body = _body(req)
        allowed = {"insurance": ("normal", "queue"), "payment": ("normal", "later")}
        for key, value in body.items():
            if key not in allowed or value not in allowed[key]:
                raise HttpError(400, "degrade takes insurance: normal|queue and payment: normal|later")
        self.degraded = {**self.degraded, **body}
        return 200, dict(self.degraded)

    def settle_claims(self, req: Request) -> tuple[int, Any]:
        """Settle what degraded mode deferred: claim each queued claim from the insurer, charge each
        pay-later payment, oldest first, until none is left, `limit` is reached or a third party
        fails (said in `error`; the rest stay pending for the next call). Rows are taken with
        SKIP LOCKED, so two instances settling at once never claim the same payment twice."""
        limit = _body(req).get("limit", 1000)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise HttpError(400, "limit must be a positive integer")
        done = {"claims": 0, "payments": 0}
        refund_due, error = Decimal(0), None
        deadline = 2 * float(self.timeouts["third_party_s"]) + float(self.timeouts["statement_s"])
        while error is None and done["claims"] + done["payments"] < limit:
            with self.db.transaction(deadline) as cur:
                row = cur.execute(
                    "SELECT id, patient_id, amount, paid, claim_id, payment_id FROM payments "
                    "WHERE claim_id LIKE %s OR payment_id LIKE %s ORDER BY id LIMIT 1 "
                    "FOR UPDATE SKIP LOCKED", [f"{QUEUED}%", f"{LATER}%"]).fetchone()
                if row is None:
                    break
                change: dict[str, Any] = {}
                try:
                    if (row["claim_id"] or "").startswith(QUEUED):
                        claim = self.third.claim(row["patient_id"], row["amount"])
                        covered = min(row["amount"], Decimal(str(claim["covered"])).quantize(MONEY))
                        change.update(claim_id=claim.get("claim_id"), insurance_covered=covered)
                        refund_due += covered  # the patient paid it all; the insurer's share goes back
                    if (row["payment_id"] or "").startswith(LATER):
                        change["payment_id"] = self.third.pay(row["patient_id"], row["paid"])["payment_id"]
                except HttpError as e:
                    error = e.message  # keep what did settle (a claim made is a claim made)
                if change:
                    sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in change)
                    cur.execute(sql.SQL("UPDATE payments SET {} WHERE id = %s").format(sets),
                                 [*change.values(), row["id"]])
                    done["claims"] += "claim_id" in change
                    done["payments"] += "payment_id" in change
        with self.db.transaction() as cur:
            pending = cur.execute(
                "SELECT count(*) FILTER (WHERE claim_id LIKE %s) AS claims, "
                "count(*) FILTER (WHERE payment_id LIKE %s) AS payments FROM payments",
                [f"{QUEUED}%", f"{LATER}%"]).fetchone()
        return 200, {"settled": done, "pending": dict(pending), "refund_due": refund_due,
                     "error": error}

    # --- reads -------------------------------------------------------------------------------
    def login(self, req: Request) -> tuple[int, Any]:
        patient_id = _patient(req, _body(req))
        with self.db.autocommit() as cur:
            row = cur.execute("SELECT patient_id, name, gender, birth_year, insured FROM patients "
                               "WHERE patient_id = %s", [patient_id]).fetchone()
        if row is None:
            raise HttpError(404, f"unknown patient {patient_id}")
        return 200, {"token": secrets.token_hex(16), "patient": row}

    def doctors(self, req: Request) -> tuple[int, Any]:
        dept = req.query.get("department")
        where, args = "", []
        if dept:  # a department id or its name
            where = "WHERE d.id = %s" if dept.isdigit() else "WHERE d.name = %s"
            args = [int(dept) if dept.isdigit() else dept]
        with self.db.autocommit() as cur:
            rows = cur.execute(
                "SELECT doc.id, doc.name, doc.title, d.id AS department_id, d.name AS department "
                f"FROM doctors doc JOIN departments d ON d.id = doc.department_id {where} "
                "ORDER BY doc.id", args).fetchall()
        return 200, rows

    def read_consultation(self, req: Request) -> tuple[int, Any]:
        with self.db.autocommit() as cur:
            row = cur.execute("SELECT id, patient_id, doctor_id, status, reply, replied_at "
                               "FROM consultations WHERE id = %s", [int(req.params["id"])]).fetchone()
        if row is None:
            raise HttpError(404, f"no consultation {req.params['id']}")
        return 200, row

    def exam_reports(self, req: Request) -> tuple[int, Any]:
        """检查报告: the patient's exams and whether their reports are out. The report archive is
        the slow part of the patient API: a lookup holds its database connection `report_db_ms`
        (config, default 500 ms), as a query over a real archive would."""
        patient_id = _field({}, "patient_id", default=req.query.get("patient_id")
                            or req.headers.get("X-Patient-Id"))
        today = dt.date.today().isoformat()
        with self.db.autocommit() as cur:
            rows = cur.execute("SELECT id, exam, slot FROM exam_bookings WHERE patient_id = %s "
                                "ORDER BY id DESC LIMIT 20", [patient_id]).fetchall()
            cur.execute("SELECT pg_sleep(%s)", [self.report_db_s])
        return 200, {"patient_id": patient_id,
                     "reports": [{**r, "report": "ready" if r["slot"][:10] < today else "pending"}
                                 for r in rows]}

    # --- writes ------------------------------------------------------------------------------
    @staticmethod
    def _created(row: dict[str, Any], write_id: str, replayed: bool) -> tuple[int, Any]:
        return 201, {**row, "write_id": write_id, **({"replayed": True} if replayed else {})}

    def appointment(self, req: Request) -> tuple[int, Any]:
        body = _body(req)
        row = {"write_id": _field(body, "write_id"), "patient_id": _patient(req, body),
               "doctor_id": _field(body, "doctor_id", int),
               "kind": _field(body, "kind", default="followup")}
        with self.db.autocommit() as cur:
            out, replayed = _insert_once(cur, "appointments", row)
        return self._created(out, row["write_id"], replayed)

    def consultation(self, req: Request) -> tuple[int, Any]:
        body = _body(req)
        row = {"write_id": _field(body, "write_id"), "patient_id": _patient(req, body),
               "doctor_id": _field(body, "doctor_id", int), "symptoms": _field(body, "symptoms")}
        with self.db.autocommit() as cur:
            doctor = cur.execute("SELECT name FROM doctors WHERE id = %s", [row["doctor_id"]]).fetchone()
            if doctor is None:
                raise HttpError(404, f"unknown doctor {row['doctor_id']}")
            # the doctor's reply is stored in the same row: acknowledged means answered
            row |= {"status": "replied", "reply": doctor_reply(doctor["name"], row["symptoms"]),
                    "replied_at": dt.datetime.now(dt.timezone.utc)}
            out, replayed = _insert_once(cur, "consultations", row, "id, status")
        return self._created(out, row["write_id"], replayed)

    def prescription(self, req: Request) -> tuple[int, Any]:
        body = _body(req)
        row = {"write_id": _field(body, "write_id"), "patient_id": _patient(req, body),
               "consultation_id": _field(body, "consultation_id", int), "drug": _field(body, "drug")}
        with self.db.autocommit() as cur:
            owner = cur.execute("SELECT patient_id FROM consultations WHERE id = %s",
                                 [row["consultation_id"]]).fetchone()
            if owner is None or owner["patient_id"] != row["patient_id"]:
                raise HttpError(404, f"no consultation {row['consultation_id']} for {row['patient_id']}")
            out, replayed = _insert_once(cur, "prescriptions", row)
        return self._created(out, row["write_id"], replayed)

    def exam_booking(self, req: Request) -> tuple[int, Any]:
        body = _body(req)
        row = {"write_id": _field(body, "write_id"), "patient_id": _patient(req, body),
               "exam": _field(body, "exam"), "slot": _field(body, "slot")}
        with self.db.autocommit() as cur:
            out, replayed = _insert_once(cur, "exam_bookings", row)
        return self._created(out, row["write_id"], replayed)

    def payment(self, req: Request) -> tuple[int, Any]:
        """Insurance claim (optional), then payment of the rest, then the record.

        A replayed write_id answers from the record without charging again; the third parties are
        called outside any database work so that a slow insurer never holds a database connection.
        """
        body = _body(req)
        write_id, patient_id, amount = _field(body, "write_id"), _patient(req, body), _amount(body)
        insurance = body.get("insurance", False)
        if not isinstance(insurance, bool):
            raise HttpError(400, "insurance must be true or false")
        cols = "id, insurance_covered, paid, claim_id, payment_id"
        with self.db.autocommit() as cur:
            known = cur.execute(f"SELECT {cols} FROM payments WHERE write_id = %s", [write_id]).fetchone()
            if known is None and cur.execute("SELECT 1 FROM patients WHERE patient_id = %s",
                                              [patient_id]).fetchone() is None:
                raise HttpError(404, f"unknown patient {patient_id}")
        if known is not None:
            return self._created(_payment_view(known), write_id, True)
        covered, claim_id, payment_id = Decimal(0), None, None
        if insurance and self.degraded["insurance"] == "queue":
            claim_id = f"{QUEUED}{secrets.token_hex(6)}"  # the patient pays it all now; settled later
        elif insurance:
            claim = self.third.claim(patient_id, amount)
            covered = min(amount, Decimal(str(claim["covered"])).quantize(MONEY))
            claim_id = claim.get("claim_id")
        paid = amount - covered
        if paid > 0 and self.degraded["payment"] == "later":
            payment_id = f"{LATER}{secrets.token_hex(6)}"  # owed: charged when payment is back
        elif paid > 0:
            payment_id = self.third.pay(patient_id, paid)["payment_id"]
        row = {"write_id": write_id, "patient_id": patient_id, "amount": amount, "insurance": insurance,
               "insurance_covered": covered, "paid": paid, "claim_id": claim_id, "payment_id": payment_id}
        with self.db.autocommit() as cur:
            out, replayed = _insert_once(cur, "payments", row, cols)
        return self._created(_payment_view(out), write_id, replayed)


def main(argv: list[str] | None = None) -> None:
    config = load_config("internet-hospital patient app", argv)
    app = HospitalApp(config)
    serve(config, app.routes(), on_stop=app.db.close)


if __name__ == "__main__":
    main()
