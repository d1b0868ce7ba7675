"""The synthetic patient: a test account walking a real journey through the patient entry point.

It is the third leg of the plan's three-step check and the judge of recovery: the system is back when
this journey succeeds again (and real patients' error rate agrees).
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

TEST_ACCOUNT = "T00001"


@dataclass
class ProbeResult:
    t: float  # wall start
    ok: bool
    ms: float
    failed_step: str | None = None
    error: str | None = None
    status: int | None = None
    db: str | None = None  # what the app's health check said of its database
    steps: list[str] = field(default_factory=list)
    at: dict[str, float] = field(default_factory=dict)  # step -> wall time it began


HEALTH_RECONNECT_S = 2.0


def walk_journey(base_url: str, session: requests.Session, timeout: float = 2.0,
                 pay: bool = False) -> ProbeResult:
    """Health → login → doctors → consultation → read the reply (→ pay with insurance, when `pay`),
    as test account T00001."""
    t0 = time.time()
    res = ProbeResult(t=t0, ok=False, ms=0.0)
    headers = {"X-Patient-Id": TEST_ACCOUNT}

    def call(step: str, method: str, path: str, body: dict | None = None,
             timeout: float = timeout) -> dict | None:
        res.steps.append(step)
        res.at[step] = time.time()
        try:
            r = session.request(method, base_url + path, json=body, headers=headers, timeout=timeout)
        except requests.RequestException as e:
            res.failed_step, res.error = step, f"{e.__class__.__name__}: {str(e)[:160]}"
            return None
        res.status = r.status_code
        try:
            data = r.json()
        except ValueError:
            data = {}
        if step == "health" and isinstance(data, dict):
            res.db = data.get("db")
        if r.status_code >= 400:
            res.failed_step = step
            res.error = (data.get("error") if isinstance(data, dict) else None) or f"HTTP {r.status_code}"
            return None
        return data if isinstance(data, dict) else {"items": data}

    try:
        # the app's health check may first have to reconnect to a slow database, which libpq gives at
        # least 2 s: waited for, its answer says "slow" instead of the probe calling the app gone
        if call("health", "GET", "/health", timeout=timeout + HEALTH_RECONNECT_S) is None:
            return res
        if call("login", "POST", "/api/login", {"patient_id": TEST_ACCOUNT}) is None:
            return res
        if call("doctors", "GET", "/api/doctors") is None:
            return res
        made = call("consultation", "POST", "/api/consultations",
                    {"patient_id": TEST_ACCOUNT, "doctor_id": 1, "symptoms": "drill probe",
                     "write_id": f"probe-{uuid.uuid4()}"})
        if made is None or call("reply", "GET", f"/api/consultations/{made.get('id')}") is None:
            return res
        # insurance and payment are reached over the egress line: 2 s each at most in the app
        if pay and call("payment", "POST", "/api/payments",
                        {"patient_id": TEST_ACCOUNT, "amount": 1.0, "insurance": True,
                         "write_id": f"probe-pay-{uuid.uuid4()}"}, timeout=timeout + 4.5) is None:
            return res
        res.ok = True
        return res
    finally:
        res.ms = round((time.time() - t0) * 1000, 2)


class SyntheticPatient:
    """The test account. The monitor walks it once per sample, in its own thread, so that a walk's
    real duration (a slow database, a timeout) counts 1:1 in the monitor's drill time instead of
    being hidden behind a declared sampling interval. Results are kept and logged to a file."""

    def __init__(self, base_url: str, log_path: Path, timeout: float = 2.0, pay: bool = False):
        self.base_url, self.timeout, self.pay = base_url, timeout, pay
        self.log_path = Path(log_path)
        self.results: list[ProbeResult] = []
        self._lock = threading.Lock()
        self.session = requests.Session()
        self._fh = open(self.log_path, "a", encoding="utf-8")

    def walk_now(self) -> ProbeResult:
        """A walk outside the sampling (the three-step check's test account): a fresh session, so it
        does not ride on a pooled connection's luck; not kept with the samples."""
        with requests.Session() as s:
            return walk_journey(self.base_url, s, self.timeout, self.pay)

    def walk(self) -> ProbeResult:
        res = walk_journey(self.base_url, self.session, self.timeout, self.pay)
        with self._lock:
            self.results.append(res)
            del self.results[:-2000]  # recovery and the steady state look back a few minutes at most
            if not self._fh.closed:
                self._fh.write(json.dumps(asdict(res), ensure_ascii=False) + "\n")
                self._fh.flush()
        return res

    def since(self, wall: float) -> list[ProbeResult]:
        with self._lock:
            return [r for r in self.results if r.t >= wall]

    def latest(self, n: int = 1) -> list[ProbeResult]:
        with self._lock:
            return self.results[-n:]

    def close(self) -> None:
        with self._lock:
            self._fh.close()
        self.session.close()
