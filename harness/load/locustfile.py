"""Patient personas for the internet hospital, as Locust users.

Every user is one patient (``X-Patient-Id``) walking one journey of the patient API in a loop:

=============  ==============================================================================
persona        journey (each step must succeed before the next one runs)
=============  ==============================================================================
followup       login -> doctors -> follow-up appointment (复诊) -> read the notice banner
consultation   login -> submit a consultation (问诊) -> read the doctor's reply
prescription   login -> consultation -> prescription (开药)
exam           login -> load the app script (its version) -> exam booking (检查预约)
payment        login -> payment with insurance (医保 + 支付)
=============  ==============================================================================

A failed step ends that iteration of the journey: a patient whose login fails does not go on to book.
Every write carries a fresh ``write_id`` (uuid4), the idempotency key the app stores with the row.

Configuration comes from the environment, read once at import:

``HD_LOAD_CONFIG``
    JSON object, every key optional::

        {"personas": {"followup": 3, "consultation": 3, "prescription": 2, "exam": 2, "payment": 1},
         "wait": [0.5, 1.5],          # think time between journeys, seconds (or one number)
         "patient_offset": 0,         # the first patient is P{offset + 1:05d}
         "patient_count": 10000,      # size of the patient id range (the registered population)
         "patient_seed": 7,           # draw the patients from the range by this seed (absent: in order)
         "workers": 1,                # number of Locust workers (interleaves the id range)
         "request_timeout_s": 3,      # connect and read timeout of every request
         "departments": [],           # values for ?department= of the doctors list ([] = none)
         "insurance_share": 1.0,      # share of payments that claim insurance
         "offline_share": 0.5,        # share of patients in trouble who go to offline reception
         "stages": [[60, 10, 5]],     # used by shapes.py only
         "attack": {"clients": ["P04999"], "path": "/api/exam-reports", "wait": [0, 0]}}
                                      # a flood: only Attacker bots run (persona "attacker")

    A persona missing from ``personas`` is not run; an unknown persona or key fails at import.

    A patient is in trouble when a step of the journey fails or the app shows a notice (level 1 or
    2). Then the app's page (``GET /api/notice``) shows the notice and the QR code of offline
    reception: ``offline_share`` of them go there and record their need (``POST /records`` with a
    client-made ``offline_id``, answered with a receipt); the rest retry the journey at once or give
    up until their next visit, half and half. These requests carry journey ``offline`` and
    ``choice`` (offline | retry | give_up), so that the monitor and the patient-impact figures,
    which are about the internet hospital, leave them out.
``HD_RECORDS_DIR``
    Directory for the request records (one JSON line per request, docs/internals.md). Each Locust
    process that runs users writes ``<process>.jsonl`` (``local`` or ``worker-<pid>``); a master
    writes nothing. Unset: no records.

Patient ids are distinct across users and workers: user n (0, 1, ... in spawn order) of worker w
(0 for a local run) is patient k = ``n * workers + w`` of the draw (population.py): with
``patient_seed``, the k-th of a seeded shuffle of the range, so a drill run twice draws the same
patients; without, ``offset + 1 + k``.

This file is loaded by Locust (gevent monkey-patched): it imports nothing from the harness.
"""
from __future__ import annotations

import atexit
import datetime as _dt
import itertools
import logging
import os
import random
import re
import sys
import time
import uuid

import gevent
from locust import User, between, constant, events, task
from locust.runners import MasterRunner, WorkerRunner

log = logging.getLogger("hospital.load")

OFFLINE = "offline"  # the journey of a patient in trouble: the notice page, then offline reception
FLUSH_INTERVAL_S = 0.25

# siblings, importable without the harness package (Locust puts this file's folder on sys.path; a
# worker started from elsewhere needs it too)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hospital_client import HospitalClient, Reply  # noqa: E402
from load_config import PERSONAS, LoadConfigError, load_config  # noqa: E402
from population import PatientDraw  # noqa: E402
from record_writer import RecordWriter  # noqa: E402

__all__ = ["LoadConfigError", "load_config"]

CONFIG = load_config(os.environ.get("HD_LOAD_CONFIG"))
DRAW = PatientDraw(CONFIG["patient_count"], CONFIG["patient_offset"], CONFIG["patient_seed"])


# --- request records ------------------------------------------------------------------------------

_writer: RecordWriter | None = None


def _process_name(runner) -> str:
    if isinstance(runner, WorkerRunner):
        return f"worker-{os.getpid()}"
    return "local"


def _flush_loop(writer: RecordWriter) -> None:
    while True:
        gevent.sleep(FLUSH_INTERVAL_S)
        try:
            writer.flush()
        except Exception:  # a full disk must not kill the load; say so and keep going
            log.exception("writing request records to %s failed", writer.path)


def _close_writer(**_kwargs) -> None:
    if _writer is not None:
        _writer.close()


def _flush_writer(**_kwargs) -> None:
    if _writer is not None:
        _writer.flush()


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    global _writer
    records_dir = os.environ.get("HD_RECORDS_DIR")
    if isinstance(environment.runner, MasterRunner):
        return
    if not records_dir:
        log.warning("HD_RECORDS_DIR is not set: no request records are written")
        return
    _writer = RecordWriter(os.path.join(records_dir, _process_name(environment.runner) + ".jsonl"))
    gevent.spawn(_flush_loop, _writer)
    events.test_stop.add_listener(_flush_writer)
    events.quitting.add_listener(_flush_writer)
    events.quit.add_listener(_close_writer)  # after the users are stopped: their last records too
    atexit.register(_close_writer)


@events.request.add_listener
def _on_request(request_type, name, response_time, response=None, context=None, exception=None,
                start_time=None, **_kwargs) -> None:
    if _writer is None:
        return
    context = context or {}
    status = getattr(response, "status_code", None) or None
    error = None
    if exception is not None:
        error = str(exception) or type(exception).__name__
        if len(error) > 300:
            error = error[:300] + "..."
    record = {
        "t": round(start_time if start_time is not None else time.time(), 6),
        "ms": round(float(response_time or 0.0), 3),
        "patient": context.get("patient"),
        "persona": context.get("persona"),
        "journey": context.get("journey"),
        "name": f"{request_type} {name}",
        "ok": exception is None,
        "status": status,
        "error": error,
        "write_id": context.get("write_id"),
    }
    for key in ("choice", "offline_id"):  # only on a patient's way out of trouble
        if context.get(key):
            record[key] = context[key]
    _writer.add(record)


# --- patients -------------------------------------------------------------------------------------

_patient_counter = itertools.count()
_range_warned = False
_doctor_ids: list = []
_offline_url: list = []  # the QR code's address, once any patient of this process has seen it


def next_patient_id(runner) -> str:
    """The next patient of this process; distinct across users and (interleaved) across workers."""
    global _range_warned
    n = next(_patient_counter)
    worker = runner.worker_index if isinstance(runner, WorkerRunner) else 0
    workers = CONFIG["workers"]
    if worker >= workers and not _range_warned:
        log.warning("worker index %s >= configured workers %s: patient ids may repeat", worker, workers)
        _range_warned = True
    k = n * workers + worker
    if DRAW.wraps(k) and not _range_warned:
        log.warning("more users than patients (%s): patient ids repeat", CONFIG["patient_count"])
        _range_warned = True
    return DRAW.patient(k)


def _error_text(reply: Reply) -> str:
    try:
        body = reply.json()
        if isinstance(body, dict) and body.get("error"):
            return str(body["error"])[:200]
    except Exception:
        pass
    return reply.text[:200].strip()


def _status_failure(reply: Reply) -> str | None:
    """Why the call failed the patient before any body is looked at: no answer, or not a 2xx."""
    status = reply.status_code
    if not status:
        err = reply.error
        return f"{type(err).__name__}: {err}" if err is not None else "no response"
    if not 200 <= status < 300:
        detail = _error_text(reply)
        return f"HTTP {status}" + (f": {detail}" if detail else "")
    return None


class HospitalUser(User):
    """Someone at the hospital's door: calls through one HospitalClient (hospital_client.py)."""

    abstract = True

    def __init__(self, environment):
        super().__init__(environment)
        if not self.host:
            raise ValueError("no host: the hospital's address is given with --host")
        self.http = HospitalClient(self, self.host, CONFIG["request_timeout_s"])

    def on_stop(self) -> None:
        self.http.close()


class Patient(HospitalUser):
    """One patient; subclasses are the personas, each with one journey."""

    abstract = True
    persona = ""
    wait_time = between(*CONFIG["wait"]) if CONFIG["wait"][0] != CONFIG["wait"][1] else constant(CONFIG["wait"][0])

    def __init__(self, environment):
        super().__init__(environment)
        self.patient_id = next_patient_id(environment.runner)
        self.token: str | None = None
        self.client_version: int | None = None  # of the app script this patient's page loaded
        self.trouble = False  # a step of this visit failed, or the app showed a notice

    def journey(self) -> None:
        raise NotImplementedError

    @task
    def visit(self) -> None:
        """One visit: the persona's journey, then, when it went wrong, the way out of trouble."""
        self.trouble = False
        self.journey()
        if self.trouble:
            self.out_of_trouble()

    def out_of_trouble(self) -> None:
        """The app's page with the notice and the QR code; offline reception, a retry, or giving up."""
        roll = random.random()
        choice = ("offline" if roll < CONFIG["offline_share"] else
                  "retry" if roll < (1 + CONFIG["offline_share"]) / 2 else "give_up")
        self.call("GET", "/api/notice", expect="notice", journey=OFFLINE, choice=choice)
        if choice == "retry":
            self.trouble = False
            self.journey()
        elif choice == "offline" and _offline_url:
            self.record_offline(_offline_url[0])

    def record_offline(self, url: str) -> dict | None:
        """The patient's need, recorded at offline reception with a receipt (offline_id, seq)."""
        kind = random.choice(OFFLINE_KINDS)
        detail = {"persona": self.persona, "need": OFFLINE_NEEDS[kind]()}
        offline_id = str(uuid.uuid4())  # made on the phone: a repeat gets the first receipt back
        return self.call("POST", url.rstrip("/") + "/records", name="/records (offline reception)",
                         expect="seq", journey=OFFLINE, choice="offline", offline_id=offline_id,
                         body={"offline_id": offline_id, "patient_id": self.patient_id,
                               "kind": kind, "detail": detail})

    def context(self) -> dict:
        return {"patient": self.patient_id, "persona": self.persona}

    def call(self, method: str, path: str, *, name: str | None = None, body: dict | None = None,
             write: bool = False, expect: str | None = None, expect_list: bool = False,
             journey: str | None = None, **context_extra):
        """Make one request of the journey; return the decoded body, or None when the step failed.

        ``ok`` for the patient is a 2xx with a well-formed body: JSON, an object (or a list when
        ``expect_list``) holding ``expect`` when given. Writes get a fresh ``write_id``.
        """
        context = {"journey": journey or self.persona, "write_id": None, **context_extra}
        if write:
            body = dict(body or {}, write_id=str(uuid.uuid4()))
            context["write_id"] = body["write_id"]
        headers = {"X-Patient-Id": self.patient_id}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.client_version is not None:
            headers["X-Client-Version"] = str(self.client_version)
        reply, start, ms = self.http.send(method, path, body, headers)
        failure, data = self._judge(reply, expect, expect_list)
        self.http.report(method, name or path, reply, start, ms, context, failure)
        if failure is not None:
            return None
        if isinstance(data, dict) and "notice" in data:
            self._read_notice(data)
        return data

    def _judge(self, reply: Reply, expect: str | None, expect_list: bool) -> tuple[str | None, object]:
        """(why the call failed the patient or None, the decoded body)."""
        failure = _status_failure(reply)
        if failure is not None:
            self.trouble = True
            return failure, None
        status = reply.status_code
        try:
            data = reply.json()
        except Exception:
            return f"HTTP {status}: body is not JSON", None
        if expect_list:
            if not isinstance(data, list):
                return f"HTTP {status}: expected a JSON list", None
        elif not isinstance(data, dict) or (expect is not None and expect not in data):
            return (f"HTTP {status}: body lacks {expect!r}" if expect else
                    f"HTTP {status}: expected a JSON object"), None
        return None, data

    def _read_notice(self, data: dict) -> None:
        if data.get("offline_url") and not _offline_url:
            _offline_url.append(str(data["offline_url"]))
        if data.get("notice"):
            self.trouble = True

    # steps shared by the journeys

    def login(self) -> bool:
        data = self.call("POST", "/api/login", body={"patient_id": self.patient_id}, expect="token")
        if data is None:
            return False
        self.token = str(data["token"])
        return True

    def doctors(self) -> list | None:
        path = "/api/doctors"
        if CONFIG["departments"]:
            path += f"?department={random.choice(CONFIG['departments'])}"
        data = self.call("GET", path, name="/api/doctors", expect_list=True)
        if data is None:
            return None
        ids = [d.get("id", d.get("doctor_id")) if isinstance(d, dict) else d for d in data]
        ids = [i for i in ids if i is not None]
        if ids and not _doctor_ids:
            _doctor_ids.extend(ids)
        return ids

    def a_doctor(self):
        """A doctor to see: from the list this process has already read, else read it now."""
        if _doctor_ids:
            return random.choice(_doctor_ids)
        ids = self.doctors()
        return random.choice(ids) if ids else None

    def consult(self) -> dict | None:
        doctor = self.a_doctor()
        if doctor is None:
            return None
        return self.call("POST", "/api/consultations", write=True, expect="id", body={
            "patient_id": self.patient_id, "doctor_id": doctor,
            "symptoms": random.choice(SYMPTOMS)})


SYMPTOMS = ["cough for three days", "fever 38.5", "follow-up on blood pressure", "skin rash",
            "headache and dizziness", "stomach ache after meals", "sore throat"]
DRUGS = ["amoxicillin 500mg", "amlodipine 5mg", "metformin 500mg", "ibuprofen 200mg", "loratadine 10mg"]
EXAMS = ["blood test", "chest x-ray", "abdominal ultrasound", "ECG", "CT head"]
OFFLINE_KINDS = ("registration", "refill", "payment_promise")
OFFLINE_NEEDS = {  # what a patient writes down at offline reception, per kind of record
    "registration": lambda: {"department": random.choice(["internal", "surgery", "pediatrics"]),
                             "slot": f"{random.randint(8, 16):02d}:{random.choice(['00', '30'])}"},
    "refill": lambda: {"drug": random.choice(DRUGS)},
    "payment_promise": lambda: {"amount": round(random.uniform(20, 500), 2)},
}


class FollowUpPatient(Patient):
    persona = "followup"

    def journey(self) -> None:
        if not self.login():
            return
        ids = self.doctors()
        if not ids:
            return
        if self.call("POST", "/api/appointments", write=True, expect="id", body={
                "patient_id": self.patient_id, "doctor_id": random.choice(ids), "kind": "followup"}) is None:
            return
        self.call("GET", "/api/notice", expect="notice")


EARLIER_READ = "/api/consultations/{id} earlier"  # a patient re-reading a past consultation


class ConsultationPatient(Patient):
    persona = "consultation"

    def __init__(self, environment):
        super().__init__(environment)
        self.earlier: list = []  # this patient's consultations, to come back to

    def journey(self) -> None:
        if not self.login():
            return
        if self.earlier:  # patients come back to an earlier doctor's reply: how staff hear of lost data
            self.call("GET", f"/api/consultations/{random.choice(self.earlier)}", name=EARLIER_READ,
                      expect="id")
        consultation = self.consult()
        if consultation is None:
            return
        self.earlier = (self.earlier + [consultation["id"]])[-20:]
        self.call("GET", f"/api/consultations/{consultation['id']}", name="/api/consultations/{id}",
                  expect="id")


class PrescriptionPatient(Patient):
    persona = "prescription"

    def journey(self) -> None:
        if not self.login():
            return
        consultation = self.consult()
        if consultation is None:
            return
        self.call("POST", "/api/prescriptions", write=True, body={
            "patient_id": self.patient_id, "consultation_id": consultation["id"],
            "drug": random.choice(DRUGS)})


class ExamPatient(Patient):
    persona = "exam"

    def load_app_script(self) -> bool:
        """The booking page loads the app script (from the cache); its version goes with the booking."""
        path = "/static/app.js"
        reply, start, ms = self.http.send("GET", path, headers={"X-Patient-Id": self.patient_id})
        found = _APP_VERSION.search(reply.text) if 200 <= reply.status_code < 300 else None
        failure = None if found else _status_failure(reply) or f"HTTP {reply.status_code}: no app script version"
        self.http.report("GET", path, reply, start, ms, {"journey": self.persona, "write_id": None}, failure)
        if found is None:
            return False
        self.client_version = int(found.group(1))
        return True

    def journey(self) -> None:
        if not self.login() or not self.load_app_script():
            return
        day = _dt.date.today() + _dt.timedelta(days=random.randint(1, 14))
        slot = f"{day.isoformat()}T{random.choice(['08:30', '09:30', '10:30', '14:00', '15:30'])}:00"
        self.call("POST", "/api/exam-bookings", write=True, body={
            "patient_id": self.patient_id, "exam": random.choice(EXAMS), "slot": slot})


class PaymentPatient(Patient):
    persona = "payment"

    def journey(self) -> None:
        if not self.login():
            return
        self.call("POST", "/api/payments", write=True, body={
            "patient_id": self.patient_id, "amount": round(random.uniform(20, 600), 2),
            "insurance": random.random() < CONFIG["insurance_share"]})


_APP_VERSION = re.compile(r"version:\s*(\d+)")
_attacker_counter = itertools.count()


class Attacker(HospitalUser):
    """A bot of a flood (malicious traffic), not a patient: hammers one endpoint under a few stolen
    client keys, without logging in. Runs only when HD_LOAD_CONFIG has ``attack`` (and then nothing
    else does); its records carry persona ``attacker`` and are never counted as patients."""

    abstract = CONFIG["attack"] is None
    persona = "attacker"

    def __init__(self, environment):
        super().__init__(environment)
        attack = CONFIG["attack"] or {"clients": ["bot"], "path": "/", "wait": [0, 0]}
        self.key = attack["clients"][next(_attacker_counter) % len(attack["clients"])]
        self.path, self.wait = attack["path"], attack["wait"]

    def wait_time(self) -> float:
        return random.uniform(*self.wait)

    def on_start(self) -> None:
        # started ahead of the flood's time (the process takes a second to come up): hold until then
        start_at = (CONFIG["attack"] or {}).get("start_at")
        if start_at is not None:
            gevent.sleep(max(0.0, start_at - time.time()))

    def context(self) -> dict:
        return {"patient": self.key, "persona": self.persona}

    @task
    def flood(self) -> None:
        reply, start, ms = self.http.send("GET", self.path, headers={"X-Patient-Id": self.key})
        failure = _status_failure(reply)
        self.http.report("GET", self.path, reply, start, ms, {"journey": "attack", "write_id": None}, failure)


PERSONA_CLASSES = {cls.persona: cls for cls in
                   (FollowUpPatient, ConsultationPatient, PrescriptionPatient, ExamPatient, PaymentPatient)}
assert tuple(PERSONA_CLASSES) == PERSONAS

for _name, _cls in PERSONA_CLASSES.items():
    _cls.weight = max(CONFIG["personas"][_name], 1)
    # a persona without weight is left out of the run (Locust skips abstract user classes)
    # a flood process runs bots only
    _cls.abstract = CONFIG["personas"][_name] == 0 or CONFIG["attack"] is not None
del _name, _cls  # Locust collects user classes from the module namespace: no aliases
