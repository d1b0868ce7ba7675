"""RPO is measured after any promotion, whatever the fault; two primaries after a promotion are found
from what the nodes answer, and scored as a critical finding."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from harness.journal import JournalRead
from harness.models import Drill
from harness.report.render import write_reports
from harness.score.scorecard import COSTS, build_scorecard
from harness.stack import rpo as rpo_mod
from harness.stack.fencing import split_brain
from harness.stack.rpo import measure_rpo, promotions, rpo_fields, rpo_trigger

T = 1000.0


def fault(fault_type: str, wall: float = T) -> dict:
    return {"type": "fault.injected", "wall": wall, "fault": f"{fault_type}-1", "fault_type": fault_type}


def promoted(wall: float, node: str = "pg-samecity", action: str | None = "promote_standby",
             ok: bool = True, step: str = "promote") -> dict:
    return {"type": "step.finished", "wall": wall, "step": step, "action": action, "ok": ok,
            "detail": {"promoted": node} if ok else {"error": "no"}}


def test_any_promotion_calls_for_rpo_whatever_the_fault():
    slow_db = [fault("link_toxic"), promoted(T + 2)]
    assert rpo_trigger(slow_db) == {"trigger": "promotion", "wall": T + 2, "step": "promote",
                                    "promoted": "pg-samecity"}
    # an action of the hospital's own that says what it promoted counts too; a failed one does not
    own = [fault("link_toxic"), promoted(T + 1, ok=False), promoted(T + 3, action="run_failover_script")]
    assert [e["wall"] for e in promotions(own)] == [T + 3]
    assert rpo_trigger([fault("db_crash"), promoted(T + 2)])["trigger"] == "db_crash"
    assert rpo_trigger([promoted(T - 1), fault("db_crash")])["trigger"] == "promotion"
    assert rpo_trigger([fault("db_crash"), fault("data_deletion", T + 5)])["trigger"] == "data_deletion"
    assert rpo_trigger([fault("link_toxic"), fault("service_kill")]) is None


def test_lost_window_runs_from_the_oldest_lost_write_to_the_trigger():
    trig = {"trigger": "promotion", "wall": T + 2}
    acked = {"w1": T - 1.0, "w2": T + 0.5, "w3": T + 3.0, "w4": T - 5.0}
    fields = rpo_fields(trig, acked, {"w1", "w2"}, mode="async", scale=60.0, lag=30.0, measured_on="pg-samecity")
    assert fields["lost_seconds"] == pytest.approx(3.0 * 60)  # T−1 → T+2, at ×60
    assert fields["lost_writes"] == 2 and fields["acked_writes"] == 4 and fields["trigger"] == "promotion"
    # a lost write acknowledged after the trigger counts up to itself
    late = rpo_fields(trig, acked, {"w3"}, mode="async", scale=60.0, lag=0.0, measured_on="x")
    assert late["lost_seconds"] == 0.0 and late["lost_sample"] == ["w3"]
    assert rpo_fields(trig, acked, set(), mode="sync", scale=60.0, lag=0.0, measured_on="x")["lost_seconds"] == 0.0


class FakeStack:
    def __init__(self, roles: dict[str, str], primary: str | None = "pg-samecity"):
        self.db_roles = roles
        self.addresses = {n: f"127.0.0.1:{5400 + i}" for i, n in enumerate(sorted(roles))}
        self.primary = primary

    def current_primary(self):
        return self.primary

    def db_dsn(self, node: str) -> str:
        return f"dsn-of-{node}"


DRILL = Drill.model_validate({
    "name": "slow-db", "scenario": "s.yaml", "time_scale": 60,
    "stack": {"replication": {"mode": "async", "lag": "30s"}},
    "teams": {"technical": {"core": [{"name": "王工"}]}},
    "runbook": [{"id": "promote", "group": "technical", "when": {"alert": "any"}, "action": "promote_standby"}],
    "targets": [{"id": "rpo", "measure": "rpo", "within": "1m"}]})


def test_measure_rpo_after_a_promotion_during_a_slow_primary(tmp_path, monkeypatch):
    (tmp_path / "local.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"t": T - 1.0, "ms": 10, "ok": True, "write_id": "w-old"},
        {"t": T + 1.0, "ms": 500, "ok": True, "write_id": "w-lost"},
        {"t": T + 1.2, "ms": 5, "ok": False, "write_id": "w-failed"}]) + "\n")
    asked = []
    monkeypatch.setattr(rpo_mod, "missing_write_ids",
                        lambda dsn, ids: asked.append((dsn, sorted(ids))) or {"w-lost"})
    events = [{"type": "run.started", "time_scale": 120.0}, fault("link_toxic"), promoted(T + 2)]
    fields = measure_rpo(events, FakeStack({"pg-primary": "stopped", "pg-samecity": "primary"}),
                         tmp_path, DRILL)
    assert asked == [("dsn-of-pg-samecity", ["w-lost", "w-old"])]  # acknowledged writes only
    assert fields["trigger"] == "promotion" and fields["mode"] == "async" and fields["lost_writes"] == 1
    assert fields["lost_seconds"] == pytest.approx(0.5 * 120)  # acked T+1.5, promotion at T+2, ×120
    assert fields["replication_lag"] == 30.0 and fields["measured_on"] == "pg-samecity"
    assert measure_rpo([fault("link_toxic")], FakeStack({}), tmp_path, DRILL) is None
    none = measure_rpo(events, FakeStack({}, primary=None), tmp_path, DRILL)
    assert none["lost_writes"] is None and "no database primary" in none["error"]


def answers(states: dict[str, dict | None]):
    return lambda dsn: states[dsn.removeprefix("dsn-of-")]


WRITABLE = {"in_recovery": False, "read_only": False}


def test_a_former_primary_still_taking_writes_is_two_primaries():
    stack = FakeStack({"pg-primary": "stopped", "pg-samecity": "primary", "pg-remote": "standby",
                       "pg-restore": "restored"})
    events = [fault("link_toxic"), promoted(T + 2)]
    state = {"pg-primary": WRITABLE, "pg-samecity": WRITABLE, "pg-restore": WRITABLE,
             "pg-remote": {"in_recovery": True, "read_only": True}}
    found = split_brain(events, stack, ask=answers(state))
    assert found["promoted"] == "pg-samecity" and found["writable"] == ["pg-primary"]
    assert found["nodes"][0]["address"] == stack.addresses["pg-primary"] and found["step"] == "promote"
    # fenced: down, demoted to a standby, or read-only — nothing to find
    for fenced in (None, {"in_recovery": True, "read_only": True}, {"in_recovery": False, "read_only": True}):
        assert split_brain(events, stack, ask=answers({**state, "pg-primary": fenced})) is None
    assert split_brain([fault("link_toxic")], stack, ask=answers(state)) is None  # no promotion


def test_two_primaries_are_a_critical_finding_that_costs_score(tmp_path):
    def journal(*extra):
        return JournalRead(events=[
            {"seq": 1, "wall": T - 10, "type": "run.started", "time_scale": 60.0},
            {"seq": 2, "wall": T, "type": "fault.injected", "fault": "slow", "fault_type": "link_toxic"},
            {"seq": 3, "wall": T + 1, "type": "step.finished", "step": "promote", "ok": True,
             "action": "promote_standby", "detail": {"promoted": "pg-samecity"}},
            {"seq": 4, "wall": T + 9, "type": "rpo.measured", "mode": "async", "trigger": "promotion",
             "acked_writes": 10, "lost_writes": 0, "lost_seconds": 0.0, "crash_wall": T + 1},
            *extra,
            {"seq": 9, "wall": T + 10, "type": "run.finished", "status": "completed"}])
    split = {"seq": 5, "wall": T + 9, "type": "db.split_brain", "promoted": "pg-samecity",
             "promoted_address": "127.0.0.1:5401", "step": "promote", "promoted_wall": T + 1,
             "writable": ["pg-primary"], "nodes": [{"node": "pg-primary", "address": "127.0.0.1:5400"}]}
    clean = build_scorecard(DRILL, journal(), [])
    card = build_scorecard(DRILL, journal(split), [])
    assert clean.rpo.trigger == "promotion" and clean.targets[0].status == "met"
    f = card.findings[0]
    assert (f.id, f.kind, f.severity) == ("F1", "split_brain", "critical")
    assert "pg-primary (127.0.0.1:5400) still answered as a primary" in f.evidence
    assert f.at == pytest.approx(60.0)  # 1 real s after the fault at ×60
    drill_day = dt.date.fromisoformat(card.overview.date)
    assert f.due == (drill_day + dt.timedelta(days=7)).isoformat()  # a critical finding: 7 days
    assert clean.score - card.score == COSTS["split_brain"]
    html = write_reports(tmp_path, card, lang="en")["html"].read_text(encoding="utf-8")
    assert "sev-critical" in html and "two primaries" in html
