"""The engine gates a step that `needs` someone on a claim before its machine part runs; the
simulated operator claims by the roster's rules with a modeled call-out; `validate` refuses a group
short of the roster's minimums."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import yaml

from harness import cli
from harness.clock import DrillClock
from harness.journal import Journal
from harness.models import People, RunbookStep
from harness.people.desk import Desk
from harness.runbook.actions import ActionContext
from harness.runbook.engine import RunbookEngine, SimulatedOperator
from harness.validate import load_drill

DRILLS = Path(__file__).resolve().parents[2] / "harness" / "catalog" / "drills"
PROMOTE = {"id": "promote", "group": "technical", "when": {"alert": "any"}, "needs": "PostgreSQL",
           "action": "promote_standby"}


class Engine:
    """An engine over one `promote` step whose machine part is recorded, not carried out."""

    def __init__(self, tmp_path: Path, operator_of, people: People, scale: float = 60):
        self.clock = DrillClock(scale)
        self.clock.start()
        drill = load_drill(DRILLS / "db-crash-failover.yaml").drill.model_copy(
            update={"people": people, "runbook": [RunbookStep.model_validate(PROMOTE)]})
        self.journal = Journal(tmp_path / "journal.jsonl", self.clock)
        self.operator = operator_of(self.clock)
        ctx = ActionContext(None, self.journal, None, drill, scale)
        self.engine = RunbookEngine(drill.runbook, ctx, self.journal, self.operator, self.clock)
        self.ran = threading.Event()
        self.engine._machine_part = lambda step, ctx: (self.ran.set(), (True, {"promoted": True}))[1]
        self.journal.subscribe(self.engine.on_event, critical=True)
        self.engine.arm()

    def alert(self) -> dict:
        return self.journal.record("alert.raised", lane=self.clock.lane("monitor"), alert="db_unreachable",
                                   severity="critical", detail={}, describe="db")

    def finished(self, timeout: float = 5) -> dict | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [e for e in self.journal.events if e["type"] == "step.finished"]
            if done:
                return done[0]
            time.sleep(0.01)
        return None

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.journal.events if e["type"] == kind]


def test_the_action_waits_for_a_claim_at_the_desk(tmp_path):
    e = Engine(tmp_path, Desk, People(absent=["李娜"]), scale=1)
    e.alert()
    assert e.finished(timeout=0.6) is None and not e.ran.is_set()  # nobody has claimed it
    assert e.operator.snapshot()["steps"][0]["status"] == "open"
    e.operator.claim("promote", "杨帆")
    done = e.finished()
    assert done["ok"] and e.ran.is_set()
    assert done["detail"] == {"promoted": True, "claimed_by": "杨帆", "modeled": False,
                              "call_out": e.of("person.claimed")[0]["call_out"]}
    assert e.of("person.claimed")[0]["call_out"] >= 0.5  # measured: the person's real time
    e.engine.stop()
    e.journal.close()


def test_the_simulated_backup_dba_claims_after_a_modeled_call_out(tmp_path):
    people = People(absent=["李娜"], call_out={"异地灾备中心": "10m"})
    e = Engine(tmp_path, SimulatedOperator, people, scale=600)  # 10 m in 1 real s
    alert = e.alert()
    done = e.finished()
    claim = e.of("person.claimed")[0]
    assert (claim["person"], claim["tier"], claim["modeled"]) == ("杨帆", "backup", True)
    assert claim["call_out"] == pytest.approx(600, abs=2)
    assert claim["chain"]["declared"] == pytest.approx(600, abs=0.01)  # a declared wait: modeled
    assert done["ok"] and done["drill"] == pytest.approx(alert["drill"] + 600, abs=3)
    assert [a["person"] for a in e.of("person.absent")] == ["李娜"]
    e.engine.stop()
    e.journal.close()


def test_with_nobody_able_the_step_fails_and_its_action_never_runs(tmp_path):
    e = Engine(tmp_path, SimulatedOperator, People(absent=["李娜", "杨帆"]))
    e.alert()
    done = e.finished()
    assert not done["ok"] and not e.ran.is_set()
    assert "nobody present in technical with 'PostgreSQL' (absent: 李娜, 杨帆)" in done["detail"]["error"]
    e.engine.stop()
    e.journal.close()


def _team(n: int, prefix: str) -> list[dict]:
    return [{"name": f"{prefix}{i}", "skills": ["PostgreSQL"]} for i in range(n)]


def test_a_team_with_four_core_members_fails_validate_with_exit_2(tmp_path, capsys):
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump({
        "extends": str(DRILLS / "db-crash-failover.yaml"), "name": "short-team",
        "scenario": str(DRILLS.parent / "scenarios" / "db-crash.yaml"),
        "teams": {"technical": {"core": _team(4, "core"), "backup": _team(3, "backup")}}},
        allow_unicode=True), encoding="utf-8")
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"{path}:" in err[0] and "teams.technical.core: 4 core member(s) in technical" in err[0]
    assert "at least 5" in err[0]
    # the drill may lower the bar for a small team, and then it validates
    text = path.read_text(encoding="utf-8") + "roster: {core_min: 4}\n"
    path.write_text(text, encoding="utf-8")
    assert cli.main(["validate", str(path)]) == 0


def test_absent_names_and_needs_are_checked_against_the_roster(tmp_path, capsys):
    path = tmp_path / "absent.yaml"
    path.write_text(yaml.safe_dump({
        "extends": str(DRILLS / "db-crash-failover.yaml"), "name": "absent",
        "scenario": str(DRILLS.parent / "scenarios" / "db-crash.yaml"),
        "people": {"absent": ["李那"], "absent_drawn": 30}}, allow_unicode=True), encoding="utf-8")
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "people.absent.0: '李那' is not on the roster" in err
    assert "people.absent_drawn: 30 to draw, but only 23 people are left" in err
