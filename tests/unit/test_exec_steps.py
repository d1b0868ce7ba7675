"""The hospital's own steps run for real: small scripts in a temporary directory (exit 0, exit 3 with
stderr, a timeout and a stop that must leave no process behind) and http calls against a tiny server
on 127.0.0.1. The stack is a fake that only has addresses."""
from __future__ import annotations

import json
import os
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.clock import DrillClock
from harness.journal import Journal
from harness.models import ExecStep, HttpStep, RunbookStep, StackConfig
from harness.rundir import RunDir
from harness.runbook import exec_steps
from harness.runbook.actions import ActionContext
from harness.runbook.engine import RunbookEngine, SimulatedOperator
from harness.runbook.exec_steps import parse_reported, run_exec, run_http, tail
from harness.stack.base import Stack


class FakeStack(Stack):
    """Addresses only: enough for the environment and the URL templates."""
    backend = "fake"

    def __init__(self, run_dir: Path, http: str = "127.0.0.1:9"):
        super().__init__(run_dir, StackConfig(), 60)
        self.links = FakeLinks()
        self.addresses = {"app-primary": http, "app-backup": "127.0.0.1:8", "pg-primary": "127.0.0.1:5501",
                          "pg-samecity": "127.0.0.1:5502"}
        self.link_listen = {"app-vip": http, "db": "127.0.0.1:6001", "offline": "127.0.0.1:6002"}
        self.db_roles = {"pg-primary": "primary", "pg-samecity": "standby"}

    _kill_db = _promote_db = _start_db = _kill_service = _start_service = down = \
        lambda self, *a, **k: None


class FakeLinks:
    url = "http://127.0.0.1:8474"

    def proxies(self) -> dict:
        return {"db": {"upstream": "127.0.0.1:5501"}, "offline": {"upstream": "127.0.0.1:7"}}


def make_ctx(tmp_path: Path, scale: float = 60, http: str = "127.0.0.1:9",
             stop: threading.Event | None = None) -> ActionContext:
    clock = DrillClock(scale)
    clock.start()
    run = RunDir(tmp_path / "run")
    run.path.mkdir(exist_ok=True)
    return ActionContext(FakeStack(run.path, http), None, None, None, scale,  # type: ignore[arg-type]
                         lane=clock.lane("step:s1"), stop=stop or threading.Event(), run_dir=run,
                         step="s1")


def script(tmp_path: Path, body: str, name: str = "step.sh") -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that is not ours to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def wait_dead(pids: list[int], within: float = 3.0) -> list[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.02)
    return [p for p in pids if alive(p)]


# --- exec ---------------------------------------------------------------------------------------------

def test_exit_0_keeps_the_output_and_what_the_script_reported(tmp_path):
    ctx = make_ctx(tmp_path)
    spec = ExecStep(script=script(tmp_path, 'echo "promoting on $HD_BACKEND for $HD_STEP"\n'
                                            'echo "hd: promoted=pg-samecity"\n'
                                            'echo "hd: seconds=0.42"\n'
                                            'echo \'{"routes": {"db": "pg-samecity"}, "ok": true}\'\n'
                                            'echo "a warning" >&2\n'
                                            'echo "$MY_SETTING"\n'),
                    env={"MY_SETTING": "from the drill"}, cwd=str(tmp_path))
    ok, detail = run_exec(ctx, spec)
    assert ok, detail
    assert detail["exit"] == 0
    assert detail["reported"] == {"promoted": "pg-samecity", "seconds": 0.42,
                                  "routes": {"db": "pg-samecity"}, "ok": True}
    assert detail["stdout_tail"][0] == "promoting on fake for s1"
    assert detail["stdout_tail"][-1] == "from the drill"
    assert detail["stderr_tail"] == ["a warning"]
    assert detail["output"] == "steps/s1"
    out = ctx.run_dir.step_output("s1")
    assert (out / "stdout.log").read_text().startswith("promoting on fake")
    assert (out / "stderr.log").read_text() == "a warning\n"


def test_exit_3_fails_the_step_naming_the_exit_and_the_last_stderr_line(tmp_path):
    ctx = make_ctx(tmp_path)
    spec = ExecStep(script=script(tmp_path, 'echo "checking pg-sametown" >&2\n'
                                            'echo "pg-sametown: no such standby" >&2\nexit 3\n',
                                  name="failover.sh"), cwd=str(tmp_path))
    ok, detail = run_exec(ctx, spec)
    assert not ok
    assert detail["exit"] == 3
    assert detail["error"] == "failover.sh: exit 3: pg-sametown: no such standby"
    assert detail["stderr_tail"] == ["checking pg-sametown", "pg-sametown: no such standby"]
    assert "\n" not in detail["error"]


def test_a_timeout_kills_the_script_and_its_children(tmp_path):
    pids = tmp_path / "pids"
    # a background sleep and a foreground one: both must go when the budget runs out
    body = f'sleep 60 &\necho $! > {pids}\necho $$ >> {pids}\necho "waiting" >&2\nsleep 60\n'
    ctx = make_ctx(tmp_path, scale=60)
    # 1 drill second of budget: the script's real work counts 1:1 at any scale, so 1 s real
    spec = ExecStep(script=script(tmp_path, body), cwd=str(tmp_path), timeout=1.0)
    t0 = time.monotonic()
    ok, detail = run_exec(ctx, spec)
    took = time.monotonic() - t0
    assert not ok and detail["timed_out"] is True
    assert "the plan's 1s budget passed on the step's clock" in detail["error"]
    assert detail["error"].endswith(": waiting")
    assert 0.9 < took < 4.0
    started = [int(x) for x in pids.read_text().split()]
    assert len(started) == 2
    assert wait_dead(started) == []


def test_a_scripts_real_work_is_not_cut_by_the_compressed_budget(tmp_path):
    # 2 min of budget at x60 is 2 s if compressed like a wait; the script's 5.5 s of real work is
    # 5.5 drill s on its clock, well within the plan's 2 minutes
    ctx = make_ctx(tmp_path, scale=60)
    spec = ExecStep(script=script(tmp_path, "sleep 5.5\necho done\n"), cwd=str(tmp_path), timeout=120.0)
    ok, detail = run_exec(ctx, spec)
    assert ok, detail.get("error")
    assert detail["seconds"] >= 5.5 and detail["exit"] == 0


def test_the_runbooks_stop_kills_a_running_script(tmp_path):
    stop = threading.Event()
    ctx = make_ctx(tmp_path, stop=stop)
    pids = tmp_path / "pids"
    spec = ExecStep(script=script(tmp_path, f'echo $$ > {pids}\nsleep 60 & wait\n'), cwd=str(tmp_path),
                    timeout=3600.0)
    threading.Timer(0.3, stop.set).start()
    ok, detail = run_exec(ctx, spec)
    assert not ok and "the run ended while it ran" in detail["error"]
    assert wait_dead([int(pids.read_text())]) == []


def test_what_a_script_leaves_in_the_background_does_not_outlive_the_step(tmp_path):
    pids = tmp_path / "pids"
    ctx = make_ctx(tmp_path)
    spec = ExecStep(script=script(tmp_path, f'sleep 60 &\necho $! > {pids}\nexit 0\n'), cwd=str(tmp_path))
    ok, _ = run_exec(ctx, spec)
    assert ok
    assert wait_dead([int(pids.read_text())]) == []


def test_a_signal_fails_the_step_by_name(tmp_path):
    ctx = make_ctx(tmp_path)
    ok, detail = run_exec(ctx, ExecStep(script=script(tmp_path, "kill -TERM $$\n"), cwd=str(tmp_path)))
    assert not ok and "killed by SIGTERM" in detail["error"]


def test_the_environment_reaches_the_script(tmp_path):
    ctx = make_ctx(tmp_path)
    spec = ExecStep(argv=["sh", "-c", "env | grep '^HD_' | sort"], cwd=str(tmp_path))
    ok, detail = run_exec(ctx, spec)
    assert ok
    seen = dict(line.split("=", 1) for line in
                (ctx.run_dir.step_output("s1") / "stdout.log").read_text().splitlines())
    assert seen["HD_STEP"] == "s1"
    assert seen["HD_VIP_URL"] == "http://127.0.0.1:9"
    assert seen["HD_RUN_DIR"] == str(ctx.run_dir.path.resolve())


def test_parse_reported_reads_hd_lines_and_json_objects_only():
    got = parse_reported([
        "plain text", "hd: a=1", "hd:b = two words ", "hd: bad key=1", '{"c": [1, 2]}',
        "[1, 2]", "{not json}", "hd: a=3", 'hd: d="quoted"', "hd: e=", '{"long": "' + "x" * 900 + '"}'])
    assert got == {"a": 3, "b": "two words", "c": [1, 2], "d": "quoted", "e": "",
                   "long": "x" * exec_steps.REPORTED_CHARS}


def test_parse_reported_keeps_at_most_its_limit_of_keys():
    got = parse_reported([f"hd: k{i}={i}" for i in range(500)] + ["hd: k0=updated"])
    assert len(got) == exec_steps.REPORTED_MAX and got["k0"] == "updated"


def test_tail_is_the_last_lines_each_bounded(tmp_path):
    path = tmp_path / "out.log"
    path.write_text("".join(f"line {i}\n" for i in range(1000)) + "y" * 5000 + "\n\n")
    lines = tail(path)
    assert len(lines) == exec_steps.TAIL_LINES
    assert lines[-2] == "line 999" and lines[0] == "line 981"
    assert len(lines[-1]) == exec_steps.TAIL_LINE_CHARS and lines[-1].endswith("…")
    assert tail(tmp_path / "missing.log") == []


# --- http ---------------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802 (the http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append((self.path, self.headers.get("X-Drill"), json.loads(body or b"null")))
        if self.path == "/slow":
            time.sleep(1.5)
        try:
            self.send_response(201 if self.path == "/created" else 200)
            self.end_headers()
            self.wfile.write(b'{"notice": "system maintenance"}')
        except BrokenPipeError:  # the slow call's client gave up, as it should
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.seen = []
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_step_calls_the_templated_address(tmp_path, server):
    ctx = make_ctx(tmp_path, http=server)
    spec = HttpStep(method="POST", url="{app.app-primary}/admin/notice", json={"text": "维护中"},
                    headers={"X-Drill": "yes"})
    ok, detail = run_http(ctx, spec)
    assert ok, detail
    assert detail["status"] == 200 and detail["url"] == f"http://{server}/admin/notice"
    assert detail["body"] == '{"notice": "system maintenance"}'
    assert _Handler.seen == [("/admin/notice", "yes", {"text": "维护中"})]


def test_http_step_fails_on_an_unexpected_status(tmp_path, server):
    ctx = make_ctx(tmp_path, http=server)
    ok, detail = run_http(ctx, HttpStep(method="POST", url="{vip}/created", expect=[200]))
    assert not ok and detail["status"] == 201
    assert detail["error"].startswith(f"POST http://{server}/created: HTTP 201 (expected 200)")
    ok, _ = run_http(ctx, HttpStep(method="POST", url="{vip}/created"))
    assert ok  # 201 is a 2xx


def test_http_step_gives_up_at_its_budget(tmp_path, server):
    ctx = make_ctx(tmp_path, http=server)
    t0 = time.monotonic()
    ok, detail = run_http(ctx, HttpStep(method="POST", url="{vip}/slow", timeout=0.3))
    assert not ok and "no answer within" in detail["error"]
    assert time.monotonic() - t0 < 1.4


def test_http_step_to_a_closed_port_fails_in_one_line(tmp_path):
    ctx = make_ctx(tmp_path, http="127.0.0.1:9")
    ok, detail = run_http(ctx, HttpStep(url="{vip}/health"))
    assert not ok and detail["error"].startswith("GET http://127.0.0.1:9/health: ConnectionError")


# --- the engine ----------------------------------------------------------------------------------------

def test_engine_runs_an_exec_step_and_shows_its_context_while_it_runs(tmp_path):
    clock = DrillClock(60)
    clock.start()
    journal = Journal(tmp_path / "journal.jsonl", clock)
    gate = tmp_path / "go"
    step = RunbookStep.model_validate({
        "id": "failover", "group": "technical", "when": {"alert": "any"},
        "exec": {"script": script(tmp_path, f'while [ ! -e {gate} ]; do sleep 0.02; done\n'
                                            'echo "hd: done=yes"\n'),
                 "cwd": str(tmp_path)}})
    run = RunDir(tmp_path / "run")
    ctx = ActionContext(FakeStack(run.path), journal, None, None, 60, run_dir=run)  # type: ignore[arg-type]
    engine = RunbookEngine([step], ctx, journal, SimulatedOperator(clock), clock)
    journal.subscribe(engine.on_event, critical=True)
    engine.arm()
    assert engine.running_context("failover") is None
    journal.record("alert.raised", lane=clock.lane("monitor"), alert="x", severity="critical",
                   detail={}, describe="a test alert")
    deadline = time.monotonic() + 5
    while engine.running_context("failover") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    running = engine.running_context("failover")
    assert running is not None and running.step == "failover"
    assert running.lane is not None and running.lane.name == "step:failover"
    assert running.stop is not None and not running.stop.is_set()
    gate.touch()
    def of(kind: str) -> list[dict]:
        return [e for e in journal.events if e["type"] == kind]
    while not of("step.finished") and time.monotonic() < deadline:
        time.sleep(0.01)
    engine.stop()
    started, finished = of("step.started")[0], of("step.finished")[0]
    assert started["kind"] == finished["kind"] == "exec" and finished["action"] is None
    assert finished["ok"] is True and finished["detail"]["reported"] == {"done": "yes"}
    assert engine.running_context("failover") is None
    journal.close()


def test_no_test_left_a_process_behind():
    """The atexit guard has nothing left to kill after the tests above."""
    assert exec_steps.RUNNING._live == set()
    assert os.getpgrp() > 0
