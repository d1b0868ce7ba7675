"""Start our Python services by forking one interpreter that has already imported them.

Each service is its own process, as with `python -m MODULE`, but a fresh interpreter pays its start
and its imports (psycopg, requests, pydantic) again: a dozen of them cost seconds of CPU on a small
machine. The forkserver imports the service modules once, in the order given, between requests; every
service is then a fork of it that calls `MODULE.main(args)` in its own session, with its log as
stdout and stderr.

The forkserver also reaps the services it forked (SIGCHLD ignored): they are not our children, and a
dead one must not linger as a zombie that still counts as running. It lives as long as the stack:
after its requests end (the supervisor closes the pipe, or the harness died) it just waits, reaping,
until it is stopped with the rest.

Protocol on its stdin/stdout, one JSON object a line: request {"module", "args", "log", "env", "cwd"},
answer {"pid": N} or {"error": "why"}.
"""
from __future__ import annotations

import importlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import psutil
from setproctitle import setproctitle


class Forked:
    """A service forked by the forkserver, with the part of Popen's interface the supervisor uses.

    Not our child, so its exit code is unknown: `returncode` is None while it runs and -1 after."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not _running(self.pid):
            self.returncode = -1
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
            time.sleep(0.005)
        return self.returncode  # type: ignore[return-value]


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class Forkserver:
    """The harness side: start it with the modules to import, then `spawn` services from it."""

    def __init__(self, modules: list[str], log: Path):
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen([sys.executable, "-m", __name__, *modules],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=fh,
                                         start_new_session=True)
        self.modules = set(modules)
        self.log = log

    def spawn(self, module: str, args: list[str], log: Path, env: dict[str, str]) -> Forked:
        """Fork a service; returns once forked (after its module and those before it are imported)."""
        if module not in self.modules:
            raise ValueError(f"{module} is not preloaded by this forkserver")
        request = {"module": module, "args": args, "log": str(log), "env": env, "cwd": os.getcwd()}
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
            answer = self.proc.stdout.readline()  # type: ignore[union-attr]
        except OSError as e:
            raise RuntimeError(f"forkserver gone ({e})") from None
        if not answer:
            raise RuntimeError(f"forkserver exited with code {self.proc.wait()}")
        reply = json.loads(answer)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return Forked(int(reply["pid"]))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        """No more requests; it keeps reaping the services it started until it is stopped."""
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()  # type: ignore[union-attr]
            except OSError:
                pass


# --- the forkserver process ---------------------------------------------------------------------

def _serve(modules: list[str]) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps our children: no zombies
    to_import = list(modules)
    requests = _Lines(0)
    while True:
        # import the next module only while nobody waits: a request for one already imported
        # (the first: the Toxiproxy server) is served before the heavier ones are imported
        if to_import and not requests.ready():
            importlib.import_module(to_import.pop(0))
            continue
        line = requests.readline()
        if not line:
            break
        try:
            req = json.loads(line)
            if req["module"] not in modules:
                raise ValueError(f"{req['module']} is not one of the preloaded modules")
            entry = getattr(importlib.import_module(req["module"]), "main")
            pid = os.fork()
        except Exception as e:
            _answer({"error": f"{e.__class__.__name__}: {e}"})
            continue
        if pid == 0:
            _run_child(entry, req)
        _answer({"pid": pid})
    while True:  # the harness is done asking (or gone): keep reaping until stopped
        signal.pause()


class _Lines:
    """Lines from a file descriptor, unbuffered below us, so that `ready` tells the truth."""

    def __init__(self, fd: int):
        self.fd, self.buf = fd, b""

    def ready(self) -> bool:
        return b"\n" in self.buf or bool(select.select([self.fd], [], [], 0)[0])

    def readline(self) -> bytes:
        while b"\n" not in self.buf:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                line, self.buf = self.buf, b""
                return line
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"


def _answer(reply: dict[str, Any]) -> None:
    os.write(1, json.dumps(reply).encode() + b"\n")  # unbuffered: a fork must not inherit a buffer


def _run_child(entry: Any, req: dict[str, Any]) -> None:
    """In the forked child: become the service, as `python -m` would have started it. Never returns."""
    code = 1
    try:
        os.setsid()  # its own session and group, so that a kill reaches all of it
        # what `ps` shows, and what tools tell the services by: the command it stands for (before
        # the environment changes: the title takes the room of the inherited one)
        setproctitle(" ".join([sys.executable, "-m", req["module"], *req["args"]]))
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        sys.argv = [req["module"], *req["args"]]
        result = entry(req["args"])
        code = result if isinstance(result, int) else 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


if __name__ == "__main__":
    _serve(sys.argv[1:])
