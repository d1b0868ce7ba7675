"""The control surface (`hospital-drill ctl`) in one process: a fake stack behind the real server,
client, moves and journal. The fake stack records what the built-in actions asked of it; the real
stack is in tests/integration/test_ctl.py."""
from __future__ import annotations

import dataclasses
import json
import stat
import threading
import time

import pytest

from harness import cli
from harness.clock import DrillClock
from harness.control import moves
from harness.control.server import ControlServer
from harness.journal import Journal
from harness.monitor.monitor import changes_world
from harness.runbook.actions import ActionContext
from harness.rundir import RunDir
from harness.score.card import LevelResult
from harness.score.response import response_findings
from harness.stack.rpo import promotions, rpo_trigger


class FakeLinks:
    def __init__(self, stack):
        self.stack = stack

    def repoint(self, link: str, address: str) -> None:
        self.stack.upstreams[link] = address

    def proxies(self) -> dict:
        return {n: {"upstream": u} for n, u in self.stack.upstreams.items()}


class FakeStack:
    """What the promotion and repoint actions ask of a stack; a standby promoted is primary."""

    def __init__(self):
        self.addresses = {"pg-primary": "127.0.0.1:1", "pg-samecity": "127.0.0.1:2",
                          "pg-remote": "127.0.0.1:3", "app-primary": "127.0.0.1:4",
                          "app-backup": "127.0.0.1:5"}
        self.db_roles = {"pg-primary": "crashed", "pg-samecity": "standby", "pg-remote": "standby"}
        self.upstreams = {"db": "127.0.0.1:1", "app-vip": "127.0.0.1:4"}
        self.links = FakeLinks(self)

    def promote_standby(self, node: str) -> dict:
        if self.db_roles.get(node) != "standby":
            raise RuntimeError(f"{node} is not a running standby (it is {self.db_roles.get(node)})")
        self.db_roles[node] = "primary"
        self.upstreams["db"] = self.addresses[node]
        return {"promoted": node, "db_link": "db"}

    def current_primary(self):
        return next((n for n, r in self.db_roles.items() if r == "primary"), None)

    def db_role(self, node: str) -> str:
        return self.db_roles.get(node, "absent")

    def db_dsn(self, node: str) -> str:  # nothing listens there: status says so
        host, port = self.addresses[node].rsplit(":", 1)
        return f"host={host} port={port} dbname=hospital user=hospital"

    def live_app_nodes(self) -> list[str]:
        return []


class FakeEngine:
    """The runbook engine's `running_context`: the contexts of the steps running now."""

    def __init__(self):
        self.running: dict[str, ActionContext] = {}

    def running_context(self, step: str):
        return self.running.get(step)


@pytest.fixture
def drill(tmp_path, monkeypatch):
    """A control server over a fake stack, at ×600; yields (server, run dir, journal, engine, clock)."""
    monkeypatch.delenv("HD_STEP", raising=False)
    rd = RunDir(tmp_path)
    clock = DrillClock(600)
    clock.start()
    journal = Journal(rd.journal, clock)
    base = ActionContext(FakeStack(), journal, None, None, 600, run_dir=rd)
    engine = FakeEngine()
    server = ControlServer(base, rd, clock, engine=engine).start()
    yield server, rd, journal, engine, clock
    server.stop()
    journal.close()


def ctl(capsys, rd, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["ctl", str(rd), *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def moves_in(journal) -> list[dict]:
    return [e for e in journal.events if e["type"] == "control.move"]


# --- the verbs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("verb,args,where,why", [
    ("promote", ["pg-nowhere"], "promote NODE", "unknown postgres 'pg-nowhere'"),
    ("promote", ["app-backup"], "promote NODE", "unknown postgres 'app-backup'"),
    ("repoint", ["app-vip", "pg-samecity"], "repoint NODE", "app-vip leads to a app node"),
    ("repoint", ["db", "app-backup"], "repoint NODE", "db leads to a postgres node"),
    ("repoint", ["nolink", "pg-samecity"], "repoint LINK", "unknown service 'nolink'"),
    ("line", ["tertiary"], "line LINE", "'primary' or 'backup'"),
    ("interface", ["egress", "backup"], "interface KIND", "the egress line is `line`"),
    ("interface", ["payment", "second"], "interface TARGET", "'primary' or 'backup'"),
    ("notice", ["set", "a", "b"], "notice set TEXT | clear", "takes 1 or 2 argument(s), got 3"),
    ("notice", ["set"], "notice set TEXT", "one argument"),
    ("notice", ["set", " "], "notice set TEXT", "notice clear"),
    ("notice", ["show"], "notice", "set TEXT"),
    ("notify", ["pager", "patients", "hi"], "notify CHANNEL", "sms"),
    ("wait", ["soon"], "wait DURATION", "not a duration"),
    ("status", ["now"], "status", "takes 0 argument(s), got 1"),
    ("reboot", [], "VERB", "unknown verb 'reboot'"),
])
def test_a_move_asked_wrongly_names_its_argument(verb, args, where, why):
    with pytest.raises(moves.MoveError) as e:
        moves.plan(verb, args)
    assert e.value.where == where and why in e.value.why, str(e.value)


def test_each_move_is_the_builtin_action_with_its_parameters():
    got = {v: moves.plan(v, a) for v, a in [
        ("promote", ["pg-remote"]), ("repoint", ["app-vip", "app-backup"]), ("line", ["backup"]),
        ("interface", ["insurance", "backup"]), ("notice", ["clear"]),
        ("notify", ["hotline", "staff", "回电"])]}
    assert {v: m.action for v, m in got.items()} == {
        "promote": "promote_standby", "repoint": "repoint_link", "line": "switch_egress",
        "interface": "switch_and_verify", "notice": "set_notice", "notify": "notify"}
    assert got["promote"].params.standby == "pg-remote"
    assert (got["repoint"].params.link, got["repoint"].params.to) == ("app-vip", "app-backup")
    assert got["interface"].params.routes() == {"insurance": "backup"}
    assert got["notice"].params.text is None
    assert moves.plan("wait", ["5m"]).seconds == 300


# --- the server ----------------------------------------------------------------------------------

def test_control_file_is_private_and_gone_after_stop(drill):
    server, rd, *_ = drill
    data = json.loads(rd.control.read_text())
    assert data["url"].startswith("http://127.0.0.1:") and data["token"] == server.token
    assert stat.S_IMODE(rd.control.stat().st_mode) == 0o600
    server.stop()
    assert not rd.control.exists()


def test_promote_from_a_running_step_runs_on_its_lane(drill, capsys, monkeypatch):
    server, rd, journal, engine, clock = drill
    step_lane = clock.lane("step:failover")
    engine.running["failover"] = dataclasses.replace(server.base, lane=step_lane, step="failover")
    monkeypatch.setenv("HD_STEP", "failover")
    code, out, err = ctl(capsys, rd, "promote", "pg-samecity")
    assert code == 0, err
    assert "promote_standby" in out and "promoted=pg-samecity" in out
    assert server.base.stack.current_primary() == "pg-samecity"
    [move] = moves_in(journal)
    assert move["chain"]["lane"] == "step:failover"
    assert (move["verb"], move["action"], move["step"], move["context"], move["ok"]) == (
        "promote", "promote_standby", "failover", "step", True)
    # the RPO measurement and the split-brain check see the script's promotion
    assert promotions(journal.events) == [move]
    assert rpo_trigger(journal.events)["promoted"] == "pg-samecity"
    assert changes_world(move)


def test_a_failed_move_exits_1_with_its_reason_and_is_journalled(drill, capsys):
    server, rd, journal, *_ = drill
    code, out, err = ctl(capsys, rd, "promote", "pg-primary")  # crashed, not a standby
    assert code == 1 and out == ""
    assert "promote failed: promote pg-primary: pg-primary is not a running standby" in err
    [move] = moves_in(journal)
    assert move["ok"] is False and "not a running standby" in move["error"]
    assert move["step"] is None and move["context"] == "run" and move["chain"]["lane"] == "ctl"
    assert promotions(journal.events) == []


def test_a_step_that_is_not_running_moves_outside_the_runbook(drill, capsys, monkeypatch):
    server, rd, journal, *_ = drill
    monkeypatch.setenv("HD_STEP", "long-gone")
    assert ctl(capsys, rd, "repoint", "app-vip", "app-backup")[0] == 0
    assert server.base.stack.upstreams["app-vip"] == "127.0.0.1:5"
    [move] = moves_in(journal)
    assert (move["step"], move["context"]) == ("long-gone", "run")


def test_an_engine_without_running_context_falls_back_to_the_runs_context(tmp_path, capsys):
    rd = RunDir(tmp_path)
    clock = DrillClock(60)
    journal = Journal(rd.journal, clock)
    base = ActionContext(FakeStack(), journal, None, None, 60, run_dir=rd)
    server = ControlServer(base, rd, clock, engine=object()).start()
    try:
        assert ctl(capsys, rd, "promote", "pg-remote")[0] == 0
    finally:
        server.stop()
    assert moves_in(journal)[0]["context"] == "run"


def test_wait_is_a_declared_wait_on_the_asking_steps_lane(drill, capsys, monkeypatch):
    server, rd, journal, engine, clock = drill
    lane = clock.lane("step:replication")
    engine.running["replication"] = dataclasses.replace(server.base, lane=lane, step="replication")
    monkeypatch.setenv("HD_STEP", "replication")
    t0 = time.monotonic()
    code, out, _ = ctl(capsys, rd, "wait", "5m")
    real = time.monotonic() - t0
    assert code == 0 and out.strip() == "waited 300 drill s"
    assert 0.45 <= real < 3.0  # 300 drill s at ×600: half a second, not five minutes
    [move] = moves_in(journal)
    assert move["chain"]["declared"] == pytest.approx(300, abs=0.01)
    assert move["drill"] >= 300 and not changes_world(move)


def test_the_runs_stop_ends_a_wait_and_the_move_fails(tmp_path, capsys):
    rd = RunDir(tmp_path)
    clock = DrillClock(1)
    journal = Journal(rd.journal, clock)
    server = ControlServer(ActionContext(FakeStack(), journal, None, None, 1, run_dir=rd), rd,
                           clock).start()
    threading.Timer(0.3, server.stop).start()
    t0 = time.monotonic()
    code, _, err = ctl(capsys, rd, "wait", "1h")
    assert code == 1 and "the run ended during the wait of 1h" in err
    assert time.monotonic() - t0 < 5


def test_status_reads_the_stack(drill, capsys):
    server, rd, journal, *_ = drill
    code, out, _ = ctl(capsys, rd, "status", "--json")
    assert code == 0
    got = json.loads(out)["detail"]
    assert got["primary"] is None and got["databases"]["pg-samecity"]["role"] == "standby"
    assert str(got["databases"]["pg-primary"]["in_recovery"]).startswith("no answer")
    assert got["links"] == {"app-vip": "app-primary", "db": "pg-primary"}
    assert got["drill"]["time_scale"] == 600 and got["drill"]["t_plus"] >= 0
    assert not changes_world(moves_in(journal)[0])


def test_a_wrong_token_is_refused(drill, capsys):
    server, rd, journal, *_ = drill
    data = json.loads(rd.control.read_text())
    rd.control.write_text(json.dumps({**data, "token": "guessed"}))
    code, _, err = ctl(capsys, rd, "promote", "pg-samecity")
    assert code == 2 and "HTTP 401" in err
    assert moves_in(journal) == [] and server.base.stack.current_primary() is None


def test_bad_usage_and_no_drill_exit_2(drill, capsys, tmp_path):
    server, rd, journal, *_ = drill
    code, _, err = ctl(capsys, rd, "repoint", "db", "app-backup")  # checked by the drill
    assert code == 2 and "repoint NODE: db leads to a postgres node" in err
    code, _, err = ctl(capsys, rd, "reboot")  # checked before asking
    assert code == 2 and "unknown verb 'reboot'" in err
    assert moves_in(journal) == []
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    code, _, err = ctl(capsys, RunDir(empty), "status")
    assert code == 2 and "no drill is running here" in err
    server.stop()
    code, _, err = ctl(capsys, rd, "status")
    assert code == 2 and "no drill is running here" in err


# --- the score ---------------------------------------------------------------------------------

def test_a_scripts_failover_on_a_false_alarm_is_a_finding():
    events = [
        {"type": "fault.injected", "wall": 100.0, "fault": "f"},
        {"type": "check.finished", "wall": 101.0, "verdict": "not_system_failure", "reason": "stale page"},
        {"type": "control.move", "wall": 102.0, "verb": "line", "action": "switch_egress",
         "step": "net-script", "ok": True},
        {"type": "control.move", "wall": 103.0, "verb": "wait", "action": None, "step": "net-script",
         "ok": True},
    ]
    [f] = response_findings(events, LevelResult(), [])
    assert f.text == "failover on a false alarm" and f.step == "net-script"
    assert "net-script: ctl line (switch_egress, ok)" in f.evidence and "wait" not in f.evidence
    assert response_findings(events[:2] + events[3:], LevelResult(), []) == []
