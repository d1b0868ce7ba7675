"""The service failure classes' pure pieces: traffic-board rules, the single-function rule, the
three-step check's verdict, the level-dependent response findings and the app's edge."""
from __future__ import annotations

import json

import pytest

from harness.monitor.service_rules import abusive_clients, failing_function, merge_boards
from harness.runbook.actions import check_verdict
from harness.score.card import LevelResult, Overview, StepResult
from harness.score.response import response_findings, with_response_findings
from harness.stack.services.app import Edge, EdgeRouter
from harness.stack.services.common import HttpError


def patient(i: int, rate: float = 3.0) -> dict:
    return {"client": f"P{i:05d}", "requests": int(rate * 2), "blocked": 0, "rate": rate,
            "blocked_rate": 0.0, "top_endpoint": "POST /api/login", "top_share": 0.3}


def bot(key: str, rate: float = 50.0, blocked: int = 0) -> dict:
    return {"client": key, "requests": int(rate * 2), "blocked": blocked, "rate": rate,
            "blocked_rate": blocked / 2, "top_endpoint": "GET /api/exam-reports", "top_share": 1.0}


# --- traffic board -------------------------------------------------------------------------------

def test_bots_are_flagged_patients_and_the_test_account_are_not():
    board = [patient(i) for i in range(1, 25)] + [bot("P04998"), bot("P04999")]
    board.append({**patient(0, rate=40.0), "client": "T00001"})  # the probe: fast, but a journey
    assert [c["client"] for c in abusive_clients(board)] == ["P04998", "P04999"]
    # a bot at a patient's pace is not abusive; one endpoint alone is not enough
    assert abusive_clients([patient(i) for i in range(1, 25)] + [bot("P04998", rate=6.0)]) == []
    # a fast client walking a journey is not a bot
    assert abusive_clients([patient(i) for i in range(1, 25)] + [{**patient(99, 60.0), "top_share": 0.4}]) == []
    assert abusive_clients([]) == []


def test_blocked_bots_stop_being_abusive_and_boards_merge():
    blocked = bot("P04998", rate=0.0, blocked=120)
    assert abusive_clients([patient(i) for i in range(1, 25)] + [blocked]) == []
    merged = merge_boards([{"clients": [bot("P04998", rate=30.0), patient(1)]},
                           {"clients": [bot("P04998", rate=20.0), patient(2)]}])
    top = merged[0]
    assert top["client"] == "P04998" and top["rate"] == 50.0 and top["requests"] == 100
    assert {c["client"] for c in merged} == {"P04998", "P00001", "P00002"}


# --- one function failing ------------------------------------------------------------------------

def rec(t: float, name: str, ok: bool, status: int = 200) -> dict:
    return {"t": t, "name": name, "ok": ok, "status": status if ok else 409}


def working(n: int = 20, t0: float = 0.0) -> list[dict]:
    return [rec(t0 + i * 0.01, ("POST /api/login", "GET /api/doctors")[i % 2], True) for i in range(n)]


BOOK = "POST /api/exam-bookings"


def test_one_function_failing_is_found_by_its_streak():
    records = working(n=200, t0=0.0) + [rec(1.0, BOOK, True), rec(1.1, BOOK, True)]
    assert failing_function(records) is None
    records += [rec(1.2, BOOK, False), rec(1.3, BOOK, False)]
    assert failing_function(records) is None  # two in a row are not yet a streak of three
    records.append(rec(1.4, BOOK, False))
    assert failing_function(records) == BOOK
    assert failing_function(records + [rec(1.5, BOOK, True)]) is None  # it works again
    # the others must have been seen working while it failed
    assert failing_function(working(n=20) + [rec(5.0 + i, BOOK, False) for i in range(3)]) is None


def test_everything_failing_is_not_one_function():
    down = [rec(i * 0.1, n, False) for i, n in enumerate(["POST /api/login", "GET /api/doctors", BOOK] * 5)]
    assert failing_function(down) is None
    two = working() + [rec(1 + i * 0.1, n, False) for i, n in enumerate([BOOK, "POST /api/payments"] * 3)]
    assert failing_function(two) is None
    assert failing_function([rec(i, BOOK, False) for i in range(5)]) is None  # nothing else to compare


# --- the three-step check ------------------------------------------------------------------------

@pytest.mark.parametrize("alerts, statuses, probe_ok, verdict", [
    ({}, [], True, "not_system_failure"),
    ({}, [], False, "system_failure"),
    ({"patient_error_rate": "critical"}, [503] * 5, True, "system_failure"),
    ({"single_function_failing": "warning"}, [409] * 12, True, "not_system_failure"),
    ({"single_function_failing": "warning"}, [409] * 9 + [502], True, "not_system_failure"),
    ({"single_function_failing": "warning"}, [409] * 5 + [502] * 5, True, "system_failure"),
    ({"third_party_errors": "warning"}, [502, 504, 502], True, "system_failure"),
    ({"single_function_failing": "warning"}, [429] * 6, True, "system_failure"),  # the system refuses
    ({"single_function_failing": "warning"}, [None] * 6, True, "system_failure"),  # no answer at all
    ({"single_function_failing": "warning"}, [409] * 12, False, "system_failure"),
    ({"single_function_failing": "warning"}, [], True, "system_failure"),  # a warning, no errors to judge
    ({"redundancy_lost": "warning"}, [], True, "not_system_failure"),  # no patient is failing
    ({"redundancy_lost": "warning"}, [503] * 3, True, "system_failure"),
])
def test_check_verdict(alerts, statuses, probe_ok, verdict):
    got, why = check_verdict(alerts, statuses, probe_ok)
    assert got == verdict and why


# --- the level-dependent response ----------------------------------------------------------------

T = 1000.0


def events(*more: dict) -> list[dict]:
    return [{"type": "notification.sent", "wall": T - 5, "channel": "hotline", "text": "before"},
            {"type": "fault.injected", "wall": T}, *more]


def note(channel: str, text: str = "text", wall: float = T + 2) -> dict:
    return {"type": "notification.sent", "wall": wall, "channel": channel, "text": text}


def step(id_: str, group: str, action: str | None, status: str = "ok", started: float = 30.0) -> StepResult:
    return StepResult(id=id_, group=group, action=action, status=status, started=started)


OV = Overview(drill="d", time_scale=60.0, date="2025-11-25")


def texts(found) -> list[str]:
    return [f.text for f in found]


def test_level_3_is_the_technical_group_alone():
    lv3 = LevelResult(declared=3, declared_at=20.0)
    steps = [step("three-step-check", "technical", "three_step_check", started=5.0),
             step("refresh-cache", "technical", "refresh_cache"),
             step("broadcast", "patient_communication", "notify"),
             step("never", "clinical_support", None, status="skipped")]
    found = response_findings(events(note("app_banner")), lv3, steps, OV)
    assert texts(found) == ["level 3 response mobilised more than the technical group"]
    assert "broadcast (patient_communication)" in found[0].evidence and found[0].severity == "low"


def test_failover_after_a_false_alarm_is_a_high_finding():
    check = {"type": "check.finished", "wall": T + 1, "verdict": "not_system_failure", "reason": "4xx"}
    lv3 = LevelResult(declared=3, declared_at=20.0)
    steps = [step("switch-backup-server", "technical", "switch_app"),
             step("promote", "technical", "promote_standby", status="skipped")]
    found = response_findings(events(check, note("app_banner")), lv3, steps, OV)
    assert texts(found) == ["failover on a false alarm"] and found[0].severity == "high"
    assert "switch-backup-server (switch_app, ok)" in found[0].evidence
    system = {**check, "verdict": "system_failure"}
    assert response_findings(events(system, note("app_banner")), lv3, steps, OV) == []


def test_response_findings_join_the_card_in_order_and_numbered():
    from harness.score.card import Finding
    old = [Finding(id="F1", kind="target", severity="high", text="t", due="2025-12-25"),
           Finding(id="F2", kind="alert", severity="low", text="a", due="2026-02-23")]
    lv3 = LevelResult(declared=3, declared_at=20.0)
    moved = [step("broadcast", "patient_communication", "notify")]
    merged = with_response_findings(old, events(note("app_banner")), lv3, moved, OV)
    assert [(f.id, f.severity, f.text[:5]) for f in merged] == [
        ("F1", "high", "t"), ("F2", "low", "level"), ("F3", "low", "a")]
    assert merged[1].due == "2026-02-23"  # 90 days for a low finding
    # channels are no longer this module's: a level-1 response without any sends nothing here
    assert with_response_findings(old, events(), LevelResult(declared=1), [], OV) is old


# --- the app's edge (no database needed) ---------------------------------------------------------

class FakeReq:
    def __init__(self, method: str, path: str, headers: dict | None = None, body: dict | None = None,
                 query: dict | None = None):
        self.method, self.path, self.headers = method, path, headers or {}
        self.query, self._body = query or {}, body

    def json(self):
        return self._body or {}


def ok(req):
    return 201, {"ok": True}


def test_edge_counts_clients_and_blocks_with_429():
    edge = Edge({"tarpit_s": 0})
    for _ in range(5):
        edge.admit(FakeReq("GET", "/api/exam-reports", {"X-Patient-Id": "P04999"}), ok)
    edge.admit(FakeReq("POST", "/api/login", {"X-Patient-Id": "P00001"}), ok)
    board = edge.traffic(FakeReq("GET", "/admin/traffic", query={"window": "5"}))[1]
    top = board["clients"][0]
    assert top["client"] == "P04999" and top["requests"] == 5 and top["top_share"] == 1.0
    assert edge.block(FakeReq("POST", "/admin/block", body={"clients": ["P04999"]}))[1] == {"blocked": ["P04999"]}
    with pytest.raises(HttpError) as e:
        edge.admit(FakeReq("GET", "/api/exam-reports", {"X-Patient-Id": "P04999"}), ok)
    assert e.value.status == 429
    assert edge.admit(FakeReq("POST", "/api/login", {"X-Patient-Id": "P00001"}), ok)[0] == 201
    board = edge.traffic(FakeReq("GET", "/admin/traffic"))[1]
    assert next(c for c in board["clients"] if c["client"] == "P04999")["blocked"] == 1
    edge.block(FakeReq("POST", "/admin/block", body={"unblock": ["P04999"]}))
    assert edge.admit(FakeReq("GET", "/api/exam-reports", {"X-Patient-Id": "P04999"}), ok)[0] == 201


def test_edge_release_gate_and_cache_refresh():
    edge = Edge({})
    book = lambda v: FakeReq("POST", "/api/exam-bookings", {"X-Patient-Id": "P1", "X-Client-Version": v})
    script = lambda: b"".join(edge.app_js(FakeReq("GET", "/static/app.js")).chunks).decode()
    assert "version: 1" in script() and edge.admit(book("1"), ok)[0] == 201
    assert edge.set_release(FakeReq("POST", "/admin/release", body={"version": 2, "stale_cache": True}))[1] == \
        {"api": 2, "static": 1}
    assert "version: 1" in script()  # the cache still serves the old script
    with pytest.raises(HttpError) as e:
        edge.admit(book("1"), ok)
    assert e.value.status == 409 and "reload" in e.value.message
    assert edge.admit(FakeReq("POST", "/api/exam-bookings", {"X-Patient-Id": "P1"}), ok)[0] == 201  # no header
    assert edge.refresh_cache(FakeReq("POST", "/admin/cache/refresh"))[1] == {"api": 2, "static": 2}
    assert "version: 2" in script() and edge.admit(book("2"), ok)[0] == 201


def test_edge_router_guards_patient_calls_only():
    edge = Edge({"tarpit_s": 0})
    r = EdgeRouter(edge)
    r.add("GET", "/health", lambda req: (200, {}))
    r.add("GET", "/api/doctors", lambda req: (200, []))
    edge.block(FakeReq("POST", "/admin/block", body={"clients": ["P9"]}))
    health, _ = r.resolve("GET", "/health")
    assert health(FakeReq("GET", "/health", {"X-Patient-Id": "P9"}))[0] == 200
    doctors, _ = r.resolve("GET", "/api/doctors")
    with pytest.raises(HttpError):
        doctors(FakeReq("GET", "/api/doctors", {"X-Patient-Id": "P9"}))
    assert json.dumps(edge.traffic(FakeReq("GET", "/admin/traffic"))[1])  # plain JSON


def test_lost_data_is_never_the_clients_fault():
    # a 404 for a consultation the patient made is lost data, not a stale client
    assert check_verdict({"single_function_failing": "warning"}, [404] * 8, True)[0] == "system_failure"


def test_old_failures_of_a_rare_call_after_an_outage_are_not_one_function():
    # everything failed during an outage; the rare payment call has not been made since
    outage = [rec(1 + i * 0.1, n, False) for i, n in enumerate(["POST /api/login", "POST /api/payments"] * 3)]
    assert failing_function(outage + working(n=30, t0=3.0)) is None
