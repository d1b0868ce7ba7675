"""Stop conditions: the safeguard rules (pure), the drill's step-failure policy, and the emergency
stop's request file."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness import emergency_stop, safeguards
from harness.errors import InputError
from harness.models import ErrorRateGuard, LostWritesGuard, Safeguards
from harness.validate import load_drill

GUARD = ErrorRateGuard.model_validate({"above": 0.5, "for": "30s"})


def looks(samples, guard=GUARD):
    """Feed (t, rate, requests) looks in order; the drill time of the first breach, or None."""
    since = None
    for t, rate, n in samples:
        since, breach = safeguards.error_rate(since, t, rate, n, guard)
        if breach is not None:
            return t, breach
    return None, None


def test_error_rate_breaches_once_it_held_for_its_duration():
    at, breach = looks([(t, 0.8, 50) for t in range(0, 60, 5)])
    assert at == 30  # the first look 30 s after the first look above the limit
    assert breach.safeguard == "error_rate"
    assert breach.evidence["since_drill"] == 0 and breach.evidence["at_drill"] == 30
    assert "80% above 50% for 30s" in breach.reason
    assert breach.headline().startswith("halted by safeguard error_rate: ")


def test_a_look_at_or_below_the_limit_starts_the_streak_over():
    samples = [(0, 0.9, 50), (5, 0.9, 50), (10, 0.5, 50)] + [(t, 0.9, 50) for t in range(15, 60, 5)]
    at, _ = looks(samples)
    assert at == 45  # 30 s after the look at t=15, not after t=0


def test_a_thin_window_is_no_evidence():
    samples = [(t, 1.0, 3) for t in range(0, 100, 5)]
    assert looks(samples) == (None, None)
    # and it ends a streak that had begun
    samples = [(0, 0.9, 50), (5, 1.0, 2)] + [(t, 0.9, 50) for t in range(10, 45, 5)]
    assert looks(samples)[0] == 40


def test_for_zero_halts_at_the_first_look_above_and_a_lane_going_back_never_lengthens():
    zero = ErrorRateGuard.model_validate({"above": 0.1, "for": 0})
    assert looks([(0, 0.05, 50), (5, 0.2, 50)], zero)[0] == 5
    # the board's lane re-anchored behind the streak's start: the streak restarts there
    assert looks([(20, 0.9, 50), (10, 0.9, 50), (35, 0.9, 50), (40, 0.9, 50)])[0] == 40


def test_window_error_rate():
    assert safeguards.window_error_rate([]) == (0.0, 0)
    assert safeguards.window_error_rate([{"ok": True}, {"ok": False}, {"ok": False}, {}]) == (0.75, 4)


def test_lost_writes_and_wall_clock():
    guard = LostWritesGuard(more_than=3)
    assert safeguards.lost_writes(3, "x", guard) is None
    breach = safeguards.lost_writes(4, "failed writes", guard)
    assert breach.safeguard == "lost_writes" and breach.evidence == {
        "lost": 4, "more_than": 3, "counted": "failed writes"}
    assert safeguards.wall_clock(100.0, None) is None
    assert safeguards.wall_clock(100.0, 100.0) is None
    over = safeguards.wall_clock(100.5, 100.0)
    assert over.safeguard == "wall_clock" and "over its budget of 1m40s" in over.reason


def test_the_watch_keeps_its_streak_and_judges_every_safeguard():
    watch = safeguards.SafeguardWatch(Safeguards.model_validate(
        {"error_rate": {"above": 0.5, "for": "10s"}, "lost_writes": {"more_than": 0},
         "wall_clock": "1m"}))
    assert watch.watches_board
    assert watch.look(0, 0.9, 20, lost=0, counted="c") is None
    assert watch.look(5, 0.9, 20, lost=0, counted="c") is None
    assert watch.look(10, 0.9, 20, lost=0, counted="c").safeguard == "error_rate"
    assert watch.look(15, 0.0, 20, lost=1, counted="c").safeguard == "lost_writes"
    assert watch.elapsed(59.0) is None and watch.elapsed(61.0).safeguard == "wall_clock"
    assert not safeguards.SafeguardWatch(Safeguards()).watches_board


def test_the_emergency_stop_names_who_and_why():
    breach = safeguards.emergency_stop({"by": "张医生", "reason": "real outage", "at_wall": 1.0})
    assert breach.safeguard == "stop"
    assert breach.headline() == "halted by emergency stop: hospital-drill stop by 张医生: real outage"


# --- the drill's fields ------------------------------------------------------------------------------

def _drill(tmp_path, repo_root, extra: str):
    path = tmp_path / "d.yaml"
    path.write_text(f"extends: {repo_root / 'drills' / 'wrong-backup-ip.yaml'}\n"
                    f"scenario: {repo_root / 'scenarios' / 'insurance-primary-down.yaml'}\n{extra}",
                    encoding="utf-8")
    return load_drill(path).drill


def test_a_failed_critical_step_ends_the_incident_unless_the_drill_or_step_says_otherwise(
        tmp_path, repo_root):
    d = load_drill(repo_root / "drills" / "wrong-backup-ip.yaml").drill
    assert d.ends_incident("switch-insurance")  # measured by a critical target
    assert not d.ends_incident("app-notice") and not d.ends_incident("no-such-step")
    d = _drill(tmp_path, repo_root, "safeguards: {failed_critical_step: continue}\n")
    assert not d.ends_incident("switch-insurance")
    d.runbook[3].on_failure = "end_incident"
    assert d.ends_incident(d.runbook[3].id)


def test_safeguards_parse_with_drill_time_and_bad_ones_name_their_line(tmp_path, repo_root):
    d = _drill(tmp_path, repo_root, "safeguards:\n  error_rate: {above: 0.6, for: 2m}\n"
                                    "  lost_writes: {more_than: 5}\n  wall_clock: 15m\n")
    assert d.safeguards.error_rate.for_ == 120 and d.safeguards.wall_clock == 900
    assert d.safeguards.lost_writes.more_than == 5
    for bad, field in (("error_rate: {above: 1.5, for: 1m}", "safeguards.error_rate.above"),
                       ("error_rate: {above: 0.5}", "safeguards.error_rate.for"),
                       ("lost_writes: {more_than: -1}", "safeguards.lost_writes.more_than"),
                       ("wall_clock: .inf", "safeguards.wall_clock"),
                       ("halt_on: everything", "safeguards.halt_on")):
        with pytest.raises(InputError, match=rf"d\.yaml:5: {field}"):
            _drill(tmp_path, repo_root, f"safeguards:\n  # a comment\n  {bad}\n")


# --- the emergency stop's files -----------------------------------------------------------------------

def test_a_stop_request_is_read_whole_and_the_running_pid_is_checked(tmp_path):
    assert emergency_stop.requested(tmp_path) is None
    assert emergency_stop.running_pid(tmp_path) is None
    emergency_stop.mark_running(tmp_path)
    assert emergency_stop.running_pid(tmp_path) == os.getpid()
    emergency_stop.request(tmp_path, "ops", "why not")
    got = emergency_stop.requested(tmp_path)
    assert got["by"] == "ops" and got["reason"] == "why not" and got["at_wall"] > 0
    assert {p.name for p in tmp_path.iterdir()} == {emergency_stop.PID, emergency_stop.REQUEST}
    emergency_stop.mark_ended(tmp_path)
    assert emergency_stop.running_pid(tmp_path) is None
    # a pid that ended: no run there, whatever the file says
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / emergency_stop.PID).write_text(done)
    assert emergency_stop.running_pid(tmp_path) is None


def test_stop_refuses_what_it_cannot_stop(tmp_path, capsys):
    from harness import cli
    assert cli.main(["stop", str(tmp_path)]) == 2
    (tmp_path / "journal.jsonl").write_text('{"seq": 1, "type": "run.started"}\n')
    assert cli.main(["stop", str(tmp_path)]) == 2  # no live run: down is the way
    assert "hospital-drill down" in capsys.readouterr().err
    (tmp_path / "journal.jsonl").write_text('{"seq": 1, "type": "run.finished"}\n')
    assert cli.main(["stop", str(tmp_path)]) == 2
    assert "already ended" in capsys.readouterr().err
    assert not (tmp_path / emergency_stop.REQUEST).exists()
