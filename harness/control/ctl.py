"""`hospital-drill ctl RUN_DIR VERB ARGS...`: ask the drill running in RUN_DIR for one of the plan's
moves (moves.py), the way a hospital's script calls its own tools.

Exit codes: 0 the move was done; 1 the move was tried and failed (its reason on stderr); 2 bad usage,
an unknown verb, a refused token, or no drill running in RUN_DIR. The asking step is taken from
HD_STEP, which every exec step's environment carries.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError
from ..rundir import RunDir
from .moves import VERBS, MoveError, check_shape

STEP_ENV = "HD_STEP"
CONNECT_TIMEOUT = 3.0  # real seconds; a move itself (a `wait`) may take as long as the plan says


def add_parser(sub) -> None:
    """The `ctl` subcommand, its `--help` listing every verb in one line."""
    width = max(len(f"{v.name} {v.usage}") for v in VERBS.values())
    verbs = "\n".join(f"  {f'{v.name} {v.usage}'.strip():<{width}}  {v.describe}" for v in VERBS.values())
    c = sub.add_parser(
        "ctl", help="ask a running drill for one of the plan's moves (from a runbook script)",
        description="Ask the drill running in RUN_DIR for one of the plan's moves. A runbook "
                    f"script's step is taken from ${STEP_ENV}. Exit 0 done, 1 the move failed, "
                    "2 bad usage or no drill running there.",
        epilog=f"verbs:\n{verbs}\n\nsee docs/ctl.md", formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--json", action="store_true", help="print the drill's whole answer as JSON")
    c.add_argument("run_dir", metavar="RUN_DIR")
    c.add_argument("verb", metavar="VERB", help=f"one of: {', '.join(VERBS)}")
    c.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS")
    c.set_defaults(func=cmd_ctl)


def cmd_ctl(args) -> int:
    rest = [a for a in args.args if a != "--json"]  # `--json` is welcome after the verb too
    as_json = args.json or len(rest) != len(args.args)
    try:
        check_shape(args.verb, rest)
    except MoveError as e:
        raise InputError(e.why, field=e.where) from None
    status, answer = send(RunDir(args.run_dir), args.verb, rest, os.environ.get(STEP_ENV) or None)
    if status == 400:
        raise InputError(str(answer.get("error")), field=answer.get("where"))
    if status != 200:
        raise InputError(f"the drill refused the move: HTTP {status}: {answer.get('error')}",
                         file=args.run_dir)
    if as_json:
        print(json.dumps(answer, ensure_ascii=False, indent=2, default=str))
    if not answer.get("ok"):
        print(f"hospital-drill ctl: {args.verb} failed: {answer.get('error')}", file=sys.stderr)
        return 1
    if not as_json:
        print(summary(answer))
    return 0


def send(run_dir: RunDir, verb: str, args: list[str], step: str | None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, the drill's answer). No drill running in `run_dir`: InputError."""
    return post(run_dir, "/move", {"verb": verb, "args": args, "step": step})


def post(run_dir: RunDir, path: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST `payload` to the control server of the drill running in `run_dir` (/move, /desk)."""
    where = read_control(run_dir)
    parts = urlsplit(where["url"])
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT)
    body = json.dumps(payload).encode()
    try:
        conn.connect()
        conn.sock.settimeout(None)  # the move takes what it takes; the drill bounds it
        conn.request("POST", path, body, {"Authorization": f"Bearer {where['token']}",
                                          "Content-Type": "application/json"})
        r = conn.getresponse()
        raw = r.read()
    except OSError as e:
        raise InputError(f"no drill answers at {where['url']} ({e.__class__.__name__}): it has "
                         f"ended or was killed", file=str(run_dir)) from None
    finally:
        conn.close()
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = {"error": raw[:200].decode("utf-8", "replace")}
    return r.status, answer if isinstance(answer, dict) else {"error": str(answer)[:200]}


def read_control(run_dir: RunDir) -> dict[str, str]:
    try:
        data = json.loads(Path(run_dir.control).read_text())
        if isinstance(data, dict) and isinstance(data.get("url"), str) and isinstance(data.get("token"), str):
            return data
    except FileNotFoundError:
        raise InputError(f"no drill is running here (no {RunDir.CONTROL})", file=str(run_dir)) from None
    except (OSError, ValueError):
        pass
    raise InputError(f"{RunDir.CONTROL} is unreadable", file=str(run_dir))


def summary(answer: dict[str, Any]) -> str:
    """The answer in one line."""
    d = answer.get("detail") or {}
    verb = answer.get("verb")
    if verb == "status":
        dbs = ", ".join(f"{n} {v.get('role')}" for n, v in (d.get("databases") or {}).items())
        links = d.get("links") or {}
        shown = ", ".join(f"{k}→{v}" for k, v in links.items() if k in ("app-vip", "db"))
        clock = d.get("drill") or {}
        return (f"primary {d.get('primary')}; databases: {dbs}; links: {shown}; egress "
                f"{d.get('egress')}; notice {d.get('notice')!r}; T+{clock.get('t_plus')}s")
    if verb == "wait":
        return f"waited {d.get('waited'):g} drill s"
    shown = {k: v for k, v in d.items() if isinstance(v, (str, int, float, bool)) or v is None}
    return f"{verb}: done ({answer.get('action')}" + "".join(f", {k}={v}" for k, v in shown.items()) + ")"
