"""The command line of a live drill: `--live` runs at scale 1 unless `--time-scale` says otherwise;
`--board-port` is checked before anything starts (only with --live, a port, not taken)."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness import cli
from harness.errors import InputError

DRILL = "drills/db-crash-failover.yaml"


class Stop(InputError):
    """Raised by the stand-in run once it has seen its arguments: nothing is started."""


@pytest.fixture
def run_args(monkeypatch):
    seen: dict = {}

    class StandIn:
        def __init__(self, drill, **kwargs):
            seen.update(kwargs, drill=drill)
            raise Stop("stand-in run")

    monkeypatch.setattr("harness.run.DrillRun", StandIn)
    monkeypatch.setattr("harness.cli.signal.signal", lambda *args: None)  # pytest keeps its SIGTERM
    return seen


@pytest.mark.parametrize("flags, scale", [
    (["--live"], 1.0),
    (["--live", "--time-scale", "30"], 30.0),
    ([], None),  # an automatic run: the drill's own scale
    (["--time-scale", "120"], 120.0),
])
def test_live_runs_at_scale_1_unless_told(run_args, flags, scale, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    assert cli.main(["run", DRILL, *flags]) == 2  # the stand-in stops it
    assert run_args["time_scale"] == scale
    assert run_args["live"] is ("--live" in flags)


@pytest.mark.parametrize("flags, why", [
    (["--board-port", "8080"], "--board-port: only a live drill (--live) serves the command board"),
    (["--live", "--board-port", "70000"], "--board-port: 70000 is not a port (0-65535; 0: a free one)"),
    (["--live", "--board-port", "-1"], "--board-port: -1 is not a port"),
])
def test_bad_board_port_is_exit_2_before_anything(run_args, flags, why, capsys):
    assert cli.main(["run", DRILL, *flags]) == 2
    assert why in capsys.readouterr().err
    assert run_args == {}  # no run was even made


def test_a_taken_board_port_is_exit_2(run_args, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["run", DRILL, "--live", "--board-port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"--board-port: port {port} on 127.0.0.1 is taken" in err and err.count("\n") == 1
    assert run_args == {}
