"""The hospital's own runbook steps: `exec` runs its program, `http` calls an endpoint of the stack.

Both are the hospital's work, not the plan's waiting: their real time counts 1:1 on the step's lane
(nothing here calls `lane.wait`). The step's `timeout` is the plan's budget in drill time. An exec
step's program is held to it on the step's own clock: its real work 1:1 plus the declared waits it
asked for (`ctl wait`, compressed), so a script is never cut off because the scale compressed the
budget of its real work, and the verdict does not depend on the scale or the machine's load. A hung
script is cut off once the budget has passed on that clock (real seconds, for a script that only
hangs). An http call's budget is `ctx.give_up(timeout)` (clock.give_up_after).

An exec step's program runs in its own process group, its output straight into
`RunDir.step_output(step)/stdout.log` and `stderr.log` (kept if the harness dies). On a timeout, on
the runbook's stop (teardown, Ctrl-C of the run) and after it exits, the whole group is killed: no
child the script left behind outlives the step. What a step reports for the journal: the last lines
of both streams and what the program said of itself on stdout (`hd: key=value`, or a line that is one
JSON object).

Before a run, `check_exec` resolves a step's script and working directory against the drill file
and refuses what cannot run, so a typo is a load error, not a failed step an hour in.
"""
from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from ..control.adopt import adopt_promotions
from ..control.env import expand, harness_pythonpath, script_env
from ..models import ExecStep, HttpStep
from ..rundir import RunDir

if TYPE_CHECKING:
    from .actions import ActionContext

TAIL_LINES = 20  # lines of each stream kept in the journal
TAIL_LINE_CHARS = 300  # a longer line is cut (a one-line JSON dump must not fill the journal)
TAIL_READ = 64 * 1024  # bytes read from a stream's end to find its last lines
REPORT_SCAN = 4 << 20  # bytes of stdout read for `hd:` lines
REPORTED_MAX = 100  # keys a step may report
REPORTED_CHARS = 500  # per reported value (as text)
BODY_HEAD = 500  # characters of an http answer kept
POLL = 0.02  # real seconds between looks at a running program: part of its real time
TERM_GRACE = 1.0  # real seconds between SIGTERM and SIGKILL of a program's group

_HD_LINE = re.compile(r"hd:\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*=(.*)")


# --- before the run ---------------------------------------------------------------------------------

def check_exec(spec: ExecStep, base: Path) -> ExecStep:
    """`spec` with its script and working directory made absolute against `base` (the drill file's
    directory); ValueError('field: why') for what could not run."""
    cwd = (base / spec.cwd) if spec.cwd else base
    cwd = cwd.resolve()
    if not cwd.is_dir():
        raise ValueError(f"cwd: {cwd} is not a directory")
    if spec.script is not None:
        script = (base / spec.script).resolve()
        if not script.exists():
            raise ValueError(f"script: {spec.script!r} not found (looked at {script})")
        if not script.is_file():
            raise ValueError(f"script: {script} is not a file")
        if not os.access(script, os.X_OK):
            raise ValueError(f"script: {script} is not executable (chmod +x, with a #! line)")
        return spec.model_copy(update={"script": str(script), "cwd": str(cwd)})
    program = spec.argv[0]  # type: ignore[index]
    if "/" in program:  # a path: relative to the working directory, as the program will see it
        if not (cwd / program).is_file() or not os.access(cwd / program, os.X_OK):
            raise ValueError(f"argv.0: {cwd / program} is not an executable file")
    elif shutil.which(program, path=spec.env.get("PATH", os.environ.get("PATH"))) is None:
        raise ValueError(f"argv.0: {program!r} is not a program on PATH")
    return spec.model_copy(update={"cwd": str(cwd)})


# --- what a program says --------------------------------------------------------------------------

def _value(text: str) -> Any:
    """An `hd:` value: a JSON scalar when it reads as one (3, true, "x"), else the text."""
    text = text.strip()
    try:
        value = json.loads(text)
    except ValueError:
        return text[:REPORTED_CHARS]
    return value if isinstance(value, (int, float, bool, str)) or value is None else text[:REPORTED_CHARS]


def _bounded(value: Any) -> Any:
    """A reported JSON value kept as it is when small; a long string or structure cut as text."""
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text[:REPORTED_CHARS] if len(text) > REPORTED_CHARS else value


def parse_reported(lines) -> dict[str, Any]:
    """What a program reported of itself on stdout: `hd: key=value` lines and lines that are one
    JSON object, later ones winning; at most REPORTED_MAX keys, each value bounded."""
    out: dict[str, Any] = {}
    for raw in lines:
        line = raw.strip()
        m = _HD_LINE.fullmatch(line)
        if m:
            pairs: dict[str, Any] = {m.group(1): _value(m.group(2))}
        elif line.startswith("{") and line.endswith("}"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if not isinstance(obj, dict):
                continue
            pairs = {str(k): _bounded(v) for k, v in obj.items()}
        else:
            continue
        for key, value in pairs.items():
            if key in out or len(out) < REPORTED_MAX:
                out[key] = value
    return out


def tail(path: Path, n: int = TAIL_LINES) -> list[str]:
    """The last `n` non-empty lines of a file (read from its end only), each cut to TAIL_LINE_CHARS."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - TAIL_READ))
            data = f.read()
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    if size > TAIL_READ:
        lines = lines[1:]  # the first one read is probably cut
    kept = deque((ln.rstrip() for ln in lines if ln.strip()), maxlen=n)
    return [ln if len(ln) <= TAIL_LINE_CHARS else ln[:TAIL_LINE_CHARS - 1] + "…" for ln in kept]


def _reported(stdout: Path) -> dict[str, Any]:
    try:
        with stdout.open("rb") as f:
            data = f.read(REPORT_SCAN)
    except OSError:
        return {}
    return parse_reported(data.decode("utf-8", "replace").splitlines())


# --- running a program ----------------------------------------------------------------------------

class _Groups:
    """Process groups of the programs running now, so that an exit of the harness that skipped the
    runbook's stop still kills them (atexit)."""

    def __init__(self) -> None:
        self._live: set[int] = set()
        self._lock = threading.Lock()
        atexit.register(self.kill_all)

    def add(self, pgid: int) -> None:
        with self._lock:
            self._live.add(pgid)

    def discard(self, pgid: int) -> None:
        with self._lock:
            self._live.discard(pgid)

    def kill_all(self) -> None:
        with self._lock:
            live, self._live = set(self._live), set()
        for pgid in live:
            _signal_group(pgid, signal.SIGKILL)


RUNNING = _Groups()


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False when nothing of it is left."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # a member changed its user: nothing more we may do
        return False


def _group_alive(pgid: int) -> bool:
    return _signal_group(pgid, 0)


def _end_group(proc: subprocess.Popen, pgid: int) -> None:
    """SIGTERM the group, SIGKILL what is left after TERM_GRACE, and reap the leader."""
    if _signal_group(pgid, signal.SIGTERM):
        deadline = time.monotonic() + TERM_GRACE
        while time.monotonic() < deadline:
            if proc.poll() is not None and not _group_alive(pgid):
                break
            time.sleep(POLL)
        _signal_group(pgid, signal.SIGKILL)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # unkillable (uninterruptible sleep): say so, do not hang
        pass


def _why(code: int | None, timed_out: bool, stopped: bool, real: float, budget: float) -> str:
    if timed_out:
        return (f"timed out: the plan's {budget:g}s budget passed on the step's clock ({real:g}s real); "
                "killed with its children")
    if stopped:
        return "the run ended while it ran; killed with its children"
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exit {code}"


def run_exec(ctx: "ActionContext", spec: ExecStep) -> tuple[bool, dict[str, Any]]:
    """Run the step's program to its end, its budget or the runbook's stop: (ok, detail)."""
    out_dir = RunDir.of(ctx.run_dir or ctx.stack.run_dir).step_output(ctx.step or "step")
    out_dir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = out_dir / "stdout.log", out_dir / "stderr.log"
    argv = spec.command()
    env = {**os.environ, **spec.env, **script_env(ctx)}
    env["PYTHONPATH"] = harness_pythonpath(env.get("PYTHONPATH"))
    detail: dict[str, Any] = {"argv": argv, "output": _relative(out_dir, ctx)}
    t0 = time.monotonic()
    lane = ctx.lane
    opened = lane.now() if lane is not None else None
    # drill s spent on the step's clock; without a lane (a bare call) real time is all there is
    spent = (lambda: lane.now() - opened) if lane is not None and opened is not None else (
        lambda: time.monotonic() - t0)
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        try:
            proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                    cwd=spec.cwd or None, start_new_session=True)
        except OSError as e:
            detail["error"] = f"could not start {argv[0]}: {e.strerror or e}"
            return False, detail
        pgid = proc.pid  # start_new_session: the program leads its own group
        RUNNING.add(pgid)
        timed_out = stopped = False
        try:
            stop = ctx.stop or threading.Event()
            while proc.poll() is None:
                if spent() >= spec.timeout:  # real work 1:1, `ctl wait`s as declared
                    timed_out = True
                    break
                if stop.wait(POLL):
                    stopped = True
                    break
        finally:
            _end_group(proc, pgid)  # also after a clean exit: what it left in the background
            RUNNING.discard(pgid)
    code = proc.returncode
    detail.update(exit=code, seconds=round(time.monotonic() - t0, 3),
                  stdout_tail=tail(stdout_path), stderr_tail=tail(stderr_path))
    # a promotion made with psql or pg_ctl is filed as the drill's own (control/adopt.py)
    adopted = adopt_promotions(ctx.stack)
    if adopted:
        detail.update(promoted=adopted[-1], promoted_outside_ctl=adopted)
    reported = _reported(stdout_path)
    if reported:
        detail["reported"] = reported
    if code == 0 and not (timed_out or stopped):
        return True, detail
    detail["timed_out"] = timed_out
    last = detail["stderr_tail"][-1] if detail["stderr_tail"] else "(nothing on stderr)"
    detail["error"] = (f"{Path(argv[0]).name}: {_why(code, timed_out, stopped, detail['seconds'], spec.timeout)}"
                       f": {last}")
    return False, detail


def _relative(path: Path, ctx: "ActionContext") -> str:
    """The step's output as the run directory's part (`steps/<id>`), readable wherever it moves."""
    root = Path(ctx.run_dir or ctx.stack.run_dir)
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# --- one HTTP call ------------------------------------------------------------------------------------

def run_http(ctx: "ActionContext", spec: HttpStep) -> tuple[bool, dict[str, Any]]:
    """The step's request once, within its budget: (ok, detail) with the status and the body's head."""
    try:
        url = expand(spec.url, ctx.stack)
    except ValueError as e:
        return False, {"error": f"url {spec.url}: {e}", "method": spec.method}
    detail: dict[str, Any] = {"method": spec.method, "url": url}
    budget = max(0.05, ctx.give_up(spec.timeout) - time.monotonic())
    kw: dict[str, Any] = {"headers": spec.headers, "timeout": budget}
    if spec.json_ is not None:
        kw["json"] = spec.json_
    elif spec.body is not None:
        kw["data"] = spec.body.encode()
    t0 = time.monotonic()
    try:
        r = requests.request(spec.method, url, **kw)
    except requests.Timeout:
        detail["error"] = f"{spec.method} {url}: no answer within {budget:.3g}s real (the plan's " \
                          f"{spec.timeout:g}s drill budget at this scale)"
        return False, detail
    except requests.RequestException as e:
        detail["error"] = f"{spec.method} {url}: {e.__class__.__name__}: {_one_line(str(e))}"
        return False, detail
    detail.update(status=r.status_code, seconds=round(time.monotonic() - t0, 3),
                  body=_one_line(r.text)[:BODY_HEAD])
    if spec.accepts(r.status_code):
        return True, detail
    want = ", ".join(map(str, spec.expect)) if spec.expect else "2xx"
    detail["error"] = f"{spec.method} {url}: HTTP {r.status_code} (expected {want}): {detail['body'][:200]}"
    return False, detail


def _one_line(text: str) -> str:
    return " ".join(text.split())
