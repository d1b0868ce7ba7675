"""The control surface a running drill offers its hospital's scripts: a small HTTP server in the
drill's own process, on 127.0.0.1, that carries out the plan's moves (moves.py) for `hospital-drill
ctl`.

Where it listens and its token are in `RunDir.control` (mode 0600; removed when it stops): only who
can read the run directory can move the stack. A move runs in the context of the step that asked
(the request names it, from the script's HD_STEP): on that step's lane, so that its time is on the
step's causal chain, and with its stop. A move from outside any running step (a person at a
terminal) gets a lane of its own from where the scenario is now. Each move is journalled as
`control.move`.

    POST /move  Authorization: Bearer TOKEN  {"verb": "promote", "args": ["pg-samecity"], "step": "failover"}
    → 200 {"ok": true, "detail": {...}, ...} or {"ok": false, "error": "..."} (the move ran and failed)
    → 400 {"error", "where"} a move asked wrongly; 401 no or a wrong token; 503 the drill is stopping

A live drill's desk (harness/people/desk.py) is reached here too, for `hospital-drill ack`:

    POST /desk  {"move": "ack"|"claim"|"done"|"block", "step": ..., "person": ..., "note"/"reason"}
                {"move": "note", "by": ..., "text": ...}
    → 200 {"ok": true, "record": {...}} (the journal record); 400 {"error", "where"} refused (an
      unknown step or person, absent, not open, taken); 409 not a live drill (no desk)
    GET  /desk  → the desk's snapshot (steps, roster, notes)
"""
from __future__ import annotations

import dataclasses
import hmac
import json
import os
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable

from .moves import MoveError, carry_out, plan

if TYPE_CHECKING:
    from ..clock import DrillClock, Lane
    from ..runbook.actions import ActionContext
    from ..rundir import RunDir

HOST = "127.0.0.1"
MAX_BODY = 64 * 1024
STOP_WAIT = 10.0  # real seconds the run's cleanup waits for moves still being carried out


class ControlServer:
    """Start it once the runbook engine exists; `stop()` on every exit path of the run."""

    def __init__(self, base: "ActionContext", run_dir: "RunDir", clock: "DrillClock", *,
                 engine: Any = None, scenario_lane: Callable[[], "Lane | None"] = lambda: None):
        self.base, self.run_dir, self.clock = base, run_dir, clock
        self.engine = engine
        self.scenario_lane = scenario_lane
        self.token = secrets.token_urlsafe(32)
        self._stop = threading.Event()  # ends the waits of moves made outside any step
        self._busy = 0
        self._idle = threading.Condition()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # --- life -------------------------------------------------------------------------------------
    def start(self) -> "ControlServer":
        server = self

        class Handler(_Handler):
            control = server
        self._httpd = ThreadingHTTPServer((HOST, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="control-server", daemon=True)
        self._thread.start()
        self._publish()
        return self

    def _publish(self) -> None:
        """The address and token, readable by the run's owner alone, never half-written."""
        path = self.run_dir.control
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, json.dumps({"url": self.url, "token": self.token, "pid": os.getpid()}).encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def stop(self, timeout: float = STOP_WAIT) -> None:
        """No new move is taken; moves under way get up to `timeout` real seconds to end."""
        self.run_dir.control.unlink(missing_ok=True)
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy and time.monotonic() < deadline:
                self._idle.wait(max(0.0, deadline - time.monotonic()))

    # --- a move ---------------------------------------------------------------------------------
    def context_for(self, step: str | None) -> tuple["ActionContext", str]:
        """(context, "step") of the running step that asked, or (a context of its own, "run")."""
        if step:
            running = getattr(self.engine, "running_context", None)
            ctx = running(step) if running is not None else None
            if ctx is not None:
                return ctx, "step"
        return dataclasses.replace(self.base, lane=self._outside_lane(), stop=self._stop,
                                   step=None), "run"

    def _outside_lane(self) -> "Lane":
        """A lane from where the scenario's is now: a terminal's move follows the timeline, and
        its waits never count on the scenario's own lane."""
        scenario = self.scenario_lane()
        if scenario is None:
            return self.clock.lane("ctl")
        acc = scenario.account()
        return self.clock.lane("ctl", acc["t"], self.clock.wall(), acc["cause"])

    def move(self, verb: str, args: list[str], step: str | None) -> dict[str, Any]:
        """Carry out one move and journal it. Raises MoveError for a move asked wrongly (nothing
        is journalled: nothing was tried)."""
        from ..runbook.actions import ActionFailed
        asked = plan(verb, args)
        ctx, where = self.context_for(step)
        t0 = time.monotonic()
        try:
            ok, detail, error = True, carry_out(asked, ctx), None
        except ActionFailed as e:
            ok, detail, error = False, None, str(e)
        except Exception as e:  # a harness bug in one move must not take the drill down
            ok, detail, error = False, None, f"harness error: {e.__class__.__name__}: {e}"
        ctx.record("control.move", verb=asked.verb.name, action=asked.action, args=list(args),
                   step=step, context=where, ok=ok, detail=detail, error=error,
                   real_seconds=round(time.monotonic() - t0, 3))
        out = {"ok": ok, "verb": asked.verb.name, "action": asked.action, "step": step,
               "context": where}
        return {**out, "detail": detail} if ok else {**out, "error": error}

    @property
    def desk(self) -> Any:
        """The live drill's desk: the engine's operator when people claim steps, else None."""
        operator = getattr(self.engine, "operator", None)
        return operator if hasattr(operator, "snapshot") else None

    def desk_move(self, body: dict[str, Any]) -> dict[str, Any]:
        """One person's move at the desk; DeskError (refused) before anything is journalled."""
        from ..people.desk import DeskError
        desk, move = self.desk, body.get("move")
        text = {k: body.get(k) for k in ("step", "person", "note", "reason", "by", "text")}
        if any(v is not None and not isinstance(v, str) for v in text.values()):
            raise DeskError("step, person, note, reason, by and text are strings", field="request")
        if move == "note":
            return desk.note(text["by"] or "", text["text"] or "")
        if move not in ("ack", "claim", "done", "block"):
            raise DeskError(f"no move {move!r} (ack, claim, done, block, note)", field="move")
        step, person = text["step"] or "", text["person"] or ""
        if move == "done":
            return desk.done(step, person, text["note"] or "")
        if move == "block":
            return desk.block(step, person, text["reason"] or "")
        return getattr(desk, move)(step, person)

    def _enter(self) -> bool:
        with self._idle:
            if self._stop.is_set():
                return False
            self._busy += 1
            return True

    def _leave(self) -> None:
        with self._idle:
            self._busy -= 1
            self._idle.notify_all()


class _Handler(BaseHTTPRequestHandler):
    control: ControlServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # the journal keeps what matters
        pass

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        given = self.headers.get("Authorization", "")
        want = f"Bearer {self.control.token}"
        return hmac.compare_digest(given.encode(), want.encode())

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        if not self._authorised():
            return self._answer(401, {"error": "no or a wrong token: read it from the run's control.json"})
        if self.path != "/desk":
            return self._answer(404, {"error": f"no {self.path}: GET /desk"})
        desk = self.control.desk
        if desk is None:
            return self._answer(409, {"error": "not a live drill: nobody claims steps here"})
        self._answer(200, desk.snapshot())

    def _desk(self, body: Any) -> None:
        from ..people.desk import DeskError
        if self.control.desk is None:
            return self._answer(409, {"error": "not a live drill (run it with --live): no desk"})
        if not isinstance(body, dict):
            return self._answer(400, {"error": "bad request: a JSON object", "where": "request"})
        try:
            record = self.control.desk_move(body)
        except DeskError as e:
            return self._answer(400, {"error": str(e), "where": e.field})
        self._answer(200, {"ok": True, "record": record})

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        if not self._authorised():
            return self._answer(401, {"error": "no or a wrong token: read it from the run's control.json"})
        if self.path not in ("/move", "/desk"):
            return self._answer(404, {"error": f"no {self.path}: POST /move or /desk"})
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                raise ValueError(f"a body of 1 to {MAX_BODY} bytes")
            body = json.loads(self.rfile.read(length))
        except ValueError as e:
            return self._answer(400, {"error": f"bad request: {e}", "where": "request"})
        if self.path == "/desk":
            return self._desk(body)
        try:
            verb, args, step = body["verb"], body.get("args") or [], body.get("step") or None
            if not (isinstance(verb, str) and isinstance(args, list)
                    and all(isinstance(a, str) for a in args)
                    and (step is None or isinstance(step, str))):
                raise ValueError('{"verb": str, "args": [str], "step": str or null}')
        except (ValueError, KeyError, TypeError) as e:
            return self._answer(400, {"error": f"bad request: {e}", "where": "request"})
        if not self.control._enter():
            return self._answer(503, {"error": "the drill is stopping: no more moves"})
        try:
            answer = self.control.move(verb, args, step)
        except MoveError as e:
            return self._answer(400, {"error": e.why, "where": e.where})
        finally:
            self.control._leave()
        self._answer(200, answer)
