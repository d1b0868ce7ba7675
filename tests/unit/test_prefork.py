"""The forkserver: each service a fork in its own session, with its log, its environment, its
command line shown, and reaped when it dies."""
from __future__ import annotations

import json
import os
import signal
import time

import psutil
import pytest

from harness.stack.prefork import Forkserver

SERVICE = '''
import json, os, sys, time
def main(argv):
    out = {"argv": argv, "sys_argv": sys.argv, "pid": os.getpid(), "sid": os.getsid(0),
           "cwd": os.getcwd(), "color": os.environ.get("WARD_COLOR")}
    print("started", flush=True)
    with open(argv[0] + ".tmp", "w") as fh:
        json.dump(out, fh)
    os.replace(argv[0] + ".tmp", argv[0])
    if argv[1] == "fail":
        raise RuntimeError("no beds left")
    time.sleep(60)
'''


@pytest.fixture
def forkserver(tmp_path, monkeypatch):
    (tmp_path / "ward_service.py").write_text(SERVICE)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    fs = Forkserver(["ward_service"], tmp_path / "forkserver.log")
    yield fs
    fs.close()
    for p in [fs.proc.pid, *(c.pid for c in psutil.Process(fs.proc.pid).children())]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    fs.proc.wait(5)


def wait_for(path, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)
    return json.loads(path.read_text())


def test_a_service_runs_in_its_own_session_with_its_log_env_and_title(forkserver, tmp_path):
    out, log = tmp_path / "out.json", tmp_path / "ward.log"
    env = {**os.environ, "WARD_COLOR": "blue"}
    child = forkserver.spawn("ward_service", [str(out), "serve"], log, env)
    seen = wait_for(out)
    assert seen["pid"] == child.pid and seen["sid"] == child.pid  # a session of its own
    assert seen["argv"] == [str(out), "serve"] and seen["sys_argv"][1:] == [str(out), "serve"]
    assert seen["color"] == "blue" and seen["cwd"] == os.getcwd()
    assert psutil.Process(child.pid).ppid() == forkserver.proc.pid
    title = " ".join(psutil.Process(child.pid).cmdline())
    assert f"-m ward_service {out} serve" in title
    assert child.poll() is None
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(5) == -1  # reaped by the forkserver: gone, not a zombie
    assert "started" in log.read_text()


def test_a_failing_main_leaves_its_traceback_in_its_log(forkserver, tmp_path):
    out, log = tmp_path / "out.json", tmp_path / "ward.log"
    child = forkserver.spawn("ward_service", [str(out), "fail"], log, dict(os.environ))
    child.wait(10)
    assert "RuntimeError: no beds left" in log.read_text()


def test_a_module_not_preloaded_is_refused(forkserver, tmp_path):
    with pytest.raises(ValueError, match="not preloaded"):
        forkserver.spawn("harness.stack.services.app", [], tmp_path / "x.log", dict(os.environ))


def test_it_keeps_reaping_after_the_harness_stops_asking(forkserver, tmp_path):
    out = tmp_path / "out.json"
    child = forkserver.spawn("ward_service", [str(out), "serve"], tmp_path / "ward.log", dict(os.environ))
    wait_for(out)
    forkserver.close()
    time.sleep(0.2)
    assert forkserver.alive()
    os.kill(child.pid, signal.SIGTERM)
    assert child.wait(5) == -1
