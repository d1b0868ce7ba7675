"""`hospital-drill load-worker` and `run --load-bind`: the addresses, and the one-line errors (exit 2)
for a master that is not there or a port that is not a master's; the drill's side of external workers
(the shipped locustfile, the join line, the patient ids shared out)."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness import __version__, cli
from harness.errors import InputError
from harness.load.master_address import is_loopback, join_host, parse_bind, parse_master
from harness.load.runner import PatientLoad, shipped_locustfile
from harness.load.worker import SENT_LINE, WorkerProcess, probe_master
from harness.models.scenario import LoadProfile

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1", ("127.0.0.1", 0)),
    ("127.0.0.1:5557", ("127.0.0.1", 5557)),
    ("0.0.0.0:0", ("0.0.0.0", 0)),
    ("localhost:6000", ("127.0.0.1", 6000)),
    ("[::1]", ("::1", 0)),
    ("[::1]:5557", ("::1", 5557)),
    ("::1", ("::1", 0)),
])
def test_bind_addresses(text, expected):
    assert parse_bind(text) == expected


@pytest.mark.parametrize("text, why", [
    ("drill-host:5557", "not a host name"),
    ("127.0.0.1:70000", "no valid port"),
    ("127.0.0.1:x", "no valid port"),
    ("", "not a host name"),
])
def test_bad_bind_addresses(text, why):
    with pytest.raises(ValueError, match=why):
        parse_bind(text)


def test_master_addresses():
    assert parse_master("drill-host:5557") == ("drill-host", 5557)
    assert parse_master("[::1]:5557") == ("::1", 5557)
    for bad, why in (("127.0.0.1", "not host:port"), ("127.0.0.1:0", "no valid port"),
                     ("::1:5557", "brackets"), ("-x:5557", "does not name a host")):
        with pytest.raises(ValueError, match=why):
            parse_master(bad)


def test_join_host_names_this_machine_for_a_wildcard():
    assert join_host("127.0.0.1") == "127.0.0.1"
    assert join_host("::1") == "[::1]"
    assert join_host("0.0.0.0") == socket.gethostname()
    assert is_loopback("127.0.0.5") and is_loopback("localhost") and not is_loopback("0.0.0.0")


def _main(argv, capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err.strip()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Listener:
    """A TCP listener on 127.0.0.1 that greets each connection with ``greeting`` (maybe nothing)."""

    def __init__(self, greeting: bytes):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.greeting = greeting
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            while True:
                conn, _ = self.sock.accept()
                conn.sendall(self.greeting)
                threading.Timer(5, conn.close).start()
        except OSError:
            return

    def close(self):
        self.sock.close()


def test_unreachable_master_is_one_line_naming_the_address(capsys):
    port = _closed_port()
    code, err = _main(["load-worker", "--master", f"127.0.0.1:{port}"], capsys)
    assert code == 2
    assert err.startswith(f"hospital-drill: error: --master: no Locust master reachable at 127.0.0.1:{port}")
    assert len(err.splitlines()) == 1


def test_a_port_that_is_not_a_masters_is_refused(capsys):
    http = Listener(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    silent = Listener(b"")
    try:
        for listener in (http, silent):
            code, err = _main(["load-worker", "--master", f"127.0.0.1:{listener.port}"], capsys)
            assert code == 2
            assert err == (f"hospital-drill: error: --master: 127.0.0.1:{listener.port} answers, but not "
                           f"as a Locust master: give the port of the drill's 'load-worker --master' line")
    finally:
        http.close()
        silent.close()


def test_a_zeromq_greeting_passes_the_probe():
    zmq_like = Listener(b"\xff" + b"\x00" * 7 + b"\x01\x7f" + b"\x03")
    try:
        probe_master("127.0.0.1", zmq_like.port)  # no error
    finally:
        zmq_like.close()


@pytest.mark.parametrize("argv, field", [
    (["load-worker", "--master", "nonsense"], "--master"),
    (["load-worker", "--master", "127.0.0.1:5557", "--processes", "0"], "--processes"),
    (["run", "drills/db-crash-failover.yaml", "--load-bind", "drill-host"], "--load-bind"),
])
def test_bad_usage_is_exit_2_before_anything_starts(argv, field, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, err = _main(argv, capsys)
    assert code == 2 and err.startswith(f"hospital-drill: error: {field}: "), err
    assert len(err.splitlines()) == 1


def test_load_worker_is_a_command():
    out = subprocess.run([sys.executable, "-m", "harness.cli", "load-worker", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--master HOST:PORT" in out.stdout and "--processes" in out.stdout


def test_shipped_locustfile_carries_the_config_and_the_version(tmp_path):
    config = {"personas": {"followup": 1}, "wait": [0.1, 0.2], "workers": 3}
    text = shipped_locustfile(config)
    compile(text, "hospital_patients.py", "exec")
    assert '{"personas": {"followup": 1}, "wait": [0.1, 0.2], "workers": 3}' in text
    assert f"!= {__version__!r}" in text and "from harness.load.remote import *" in text


def test_external_workers_share_the_patients_and_get_a_join_line(tmp_path):
    load = PatientLoad("http://127.0.0.1:9", tmp_path / "records", users=10, spawn_rate=5,
                       workers=2, external_workers=3, log_dir=tmp_path / "logs")
    assert load._worker_config()["workers"] == 5  # ids interleaved over every worker, joined or not
    assert load.join_command is None  # no master port before start
    load.master_port = 5557
    assert load.join_command == "hospital-drill load-worker --master 127.0.0.1:5557"
    wide = PatientLoad("http://127.0.0.1:9", tmp_path / "records", users=10, spawn_rate=5,
                       external_workers=1, bind=("0.0.0.0", 5557), log_dir=tmp_path / "logs")
    wide.master_port = 5557
    assert wide.join_command == f"hospital-drill load-worker --master {socket.gethostname()}:5557"
    local = PatientLoad("http://127.0.0.1:9", tmp_path / "records", users=10, spawn_rate=5,
                        log_dir=tmp_path / "logs")
    local.master_port = 5557
    assert local.join_command is None
    with pytest.raises(InputError, match="external_workers must be 0 or more"):
        PatientLoad("http://127.0.0.1:9", tmp_path / "records", users=10, spawn_rate=5,
                    external_workers=-1, log_dir=tmp_path / "logs")


def test_load_profile_external_workers():
    lp = LoadProfile(external_workers=2, wait_for_workers="90s")
    assert lp.external_workers == 2 and lp.wait_for_workers == 90.0
    assert LoadProfile().external_workers == 0
    for bad in ({"external_workers": -1}, {"wait_for_workers": "0s"}, {"wait_for_workers": "2h"}):
        with pytest.raises(ValidationError):
            LoadProfile(**bad)


@pytest.mark.parametrize("log, outcome", [
    ("Got quit message from master, shutting down...\nhospital.load.remote: " + SENT_LINE + " 431\n",
     ("ended by the drill", 431)),
    ("Didn't get heartbeat from master in over 15s\n", ("lost its master", None)),
    ("Traceback (most recent call last):\nModuleNotFoundError: No module named 'harness'\n",
     ("exited", None)),
])
def test_worker_outcome_from_its_log(tmp_path, log, outcome):
    path = tmp_path / "load-worker-1.log"
    path.write_text(log)
    assert WorkerProcess(1, None, path).outcome() == outcome
