"""hospital-drill: the command line, a thin layer over the library.

Exit codes: 0 every critical target met; 1 a target missed; 2 bad input or usage; 3 the run aborted.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
from pathlib import Path

from . import checks
from .catalog import find_drill
from .errors import HarnessError, InputError
from .rundir import RunDir

TOXIPROXY_ENV = "HOSPITAL_DRILL_TOXIPROXY_URL"
DEFAULT_STACK_DIR = Path(".hospital-drill") / "stack"


_print_lock = threading.Lock()


def _say(line: str) -> None:
    with _print_lock:  # progress comes from several threads: keep lines whole
        print(line, flush=True)


def _raise_interrupt(signum, frame):
    from .run import Interrupted
    raise Interrupted(f"signal {signum}")


def cmd_run(args) -> int:
    from .run import DrillRun
    if args.out:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise InputError("names an existing file, not a run directory", file=args.out, field="--out")
        if RunDir(out).holds_run():
            raise InputError(f"already holds a run ({RunDir.JOURNAL}): give a new directory", file=args.out,
                             field="--out")
    from .report.sections import SECTIONS
    SECTIONS.load()  # a report-section plugin that does not load stops the run before it starts
    signal.signal(signal.SIGTERM, _raise_interrupt)
    # a live drill is people's real time: scale 1 unless the facilitator asks for another
    scale = 1.0 if args.live and args.time_scale is None else args.time_scale
    run = DrillRun(find_drill(args.drill), out_dir=args.out, time_scale=scale, backend=args.backend,
                   toxiproxy_url=args.toxiproxy, live=args.live, backend_options=_backend_options(args),
                   progress=None if args.quiet else _say, lang=args.lang,
                   board_port=getattr(args, "board_port", None) or 0,
                   load_bind=_load_bind(args))
    _say(f"drill {run.drill.name}: scenario {run.scenario.name}, time scale {run.time_scale:g} "
         f"(1 real second = {run.time_scale:g} drill seconds), run dir {run.run_dir}")
    with run:
        run.execute()
    card = run.card
    if card is None:
        return 3
    if run.abort_reason:
        _say(f"run aborted: {run.abort_reason}")
    if run.time_scale != 1:
        _say(f"figures at time scale ×{run.time_scale:g}: declared waits compressed, machines' work and "
             f"people's time counted 1:1")
    _say_targets(card)
    _say(f"report: {run.reports.get('html', run.run_dir)}")
    return card.exit_code


def _say_targets(card) -> None:
    """A line per target. A figure with a modeled part (a simulated operator's duration) says
    `modeled`, a live run's figure at a scale other than 1 carries the scale, and a figure with
    people on its chain shows its human and machine parts."""
    ov = card.overview
    at_scale = f" ×{ov.time_scale:g}" if ov.live and ov.time_scale != 1 else ""
    for t in card.targets:
        mark = "met   " if t.met else "MISSED"
        fmt = (lambda v: "—" if v is None else f"L{v:g}") if t.unit == "level" else _fmt
        figure = fmt(t.actual) + ("" if t.actual is None or t.unit == "level" else at_scale) \
            + (" modeled" if t.modeled else "")
        parts = "" if t.human is None else f"  [human {_fmt(t.human)}, plan's waits {_fmt(t.waits or 0)}, machine {_fmt(t.machine)}]"
        _say(f"  {mark} {t.id:<16} actual {figure} / target {fmt(t.target)}{parts}"
             + ("" if t.met or not t.reason else f"  ({t.reason})"))


def _fmt(seconds) -> str:
    from .clock import format_duration
    return format_duration(seconds)


def cmd_validate(args) -> int:
    """Every file is checked, and every error of each is reported."""
    from .validate import validate_file
    failed = False
    for path in args.files:
        try:
            _say(f"{path}: ok — {validate_file(find_drill(path))}")
        except InputError as e:
            _print_errors(e)
            failed = True
    return 2 if failed else 0


def cmd_list(args) -> int:
    """The packaged scenarios and drills, and those of --dir."""
    from . import catalog
    folders = [("packaged", catalog.HERE)]
    if args.dir:
        if not Path(args.dir).is_dir():
            raise InputError("not a folder", file=args.dir, field="--dir")
        folders.append((args.dir, Path(args.dir)))
    seen: set[Path] = set()  # --dir may be the checkout, whose folders are the packaged ones
    for origin, root in folders:
        scenarios, drills = ([p for p in catalog.yaml_files(root / sub) if p.resolve() not in seen]
                             for sub in ("scenarios", "drills"))
        seen.update(p.resolve() for p in scenarios + drills)
        _list_folder(origin, scenarios, drills)
    return 0


def _list_folder(origin: str, scenarios: list[Path], drills: list[Path]) -> None:
    from .clock import format_duration
    from .validate import load_drill, load_scenario
    _say(f"scenarios ({origin}):")
    for path in scenarios:
        try:
            sc, faults, _ = load_scenario(path)
            kinds = ", ".join(f"{f.type_name}@{format_duration(f.spec.at)}" for f in faults)
            _say(f"  {path.stem:<28} {sc.failure_class:<18} {sc.title or sc.name}  [{kinds}]")
        except InputError as e:
            _say(f"  {path.stem:<28} INVALID: {_first_error(e)}")
    _say(f"drills ({origin}):")
    for path in drills:
        try:
            d = load_drill(path)
            targets = ", ".join(f"{t.id} {format_duration(t.within)}" if t.within is not None else t.id
                                for t in d.drill.targets)
            _say(f"  {path.stem:<28} {d.scenario.failure_class:<18} {d.drill.title or d.drill.name}")
            _say(f"  {'':<28} scenario {d.scenario.name}, ×{d.drill.time_scale:g}; targets: {targets}")
        except InputError as e:
            _say(f"  {path.stem:<28} INVALID: {_first_error(e)}")


def cmd_up(args) -> int:
    from .models import StackConfig
    from .stack import backends
    from .validate import load_drill
    stack_dir = Path(args.dir)
    if RunDir(stack_dir).state.exists():
        raise InputError(f"a stack is already recorded in {stack_dir}: run 'hospital-drill down' first",
                         field="--dir")
    config, scale = StackConfig(), 60.0
    if args.drill:
        loaded = load_drill(find_drill(args.drill))
        config, scale = loaded.drill.stack, loaded.drill.time_scale
    stack = backends.get(args.backend).up(stack_dir, config, scale, toxiproxy_url=args.toxiproxy,
                                          detach=True, **_backend_options(args))
    state = {"backend": args.backend, "vip": stack.vip_url, "services": stack.addresses,
             "links": stack.link_listen, "toxiproxy": stack.links.url, "state_dir": str(stack.state_dir)}
    RunDir(stack_dir).state.write_text(json.dumps(state, indent=2))
    _say(f"mock hospital up; patients enter at {stack.vip_url}")
    _say(f"Toxiproxy API: {stack.links.url}")
    for name, addr in sorted(stack.addresses.items()):
        _say(f"  {name:<18} {addr}")
    _say(f"stop it with: hospital-drill down --dir {stack_dir}")
    return 0


def cmd_status(args) -> int:
    import requests
    state_file = RunDir(args.dir).state
    if not state_file.exists():
        _say(f"no stack recorded in {args.dir}")
        return 1
    state = json.loads(state_file.read_text())
    from .stack.process import read_pids
    import psutil
    pids = read_pids(Path(args.dir))
    healthy = True
    for name, pid in sorted(pids.items()):
        alive = psutil.pid_exists(pid)
        healthy &= alive
        _say(f"  {name:<18} pid {pid:<8} {'running' if alive else 'GONE'}")
    try:
        r = requests.get(state["vip"] + "/health", timeout=2)
        _say(f"patient entry {state['vip']}: HTTP {r.status_code} {r.text.strip()[:120]}")
        healthy &= r.status_code == 200
    except requests.RequestException as e:
        _say(f"patient entry {state['vip']}: unreachable ({e.__class__.__name__})")
        healthy = False
    return 0 if healthy else 1


def _backend_options(args) -> dict:
    """Options only a backend understands (`--base-image`, `--toxiproxy-image`: docker)."""
    opts = {k: v for k, v in (("base_image", args.base_image),
                              ("toxiproxy_image", args.toxiproxy_image)) if v}
    if args.backend == "docker":
        if args.toxiproxy:
            raise InputError("with --backend docker, Toxiproxy runs on the run's network: name a "
                             f"Toxiproxy image with --toxiproxy-image (unset {TOXIPROXY_ENV})",
                             field="--toxiproxy")
    elif opts:
        raise InputError("--base-image / --toxiproxy-image are for --backend docker", field="--backend")
    return opts


def cmd_compose(args) -> int:
    from .stack.docker.compose import write_compose
    from .validate import load_drill
    drill = load_drill(find_drill(args.drill)).drill
    out = Path(args.out or DEFAULT_STACK_DIR.parent / "compose" / drill.name)
    path = write_compose(out, drill.stack, drill.time_scale, name=drill.name,
                         base_image=args.base_image, toxiproxy_image=args.toxiproxy_image,
                         subnet=args.subnet)
    _say(f"wrote {path} (build contexts under {out / 'build'})")
    _say(f"run it with: docker compose -f {path} up --build")
    return 0


def cmd_down(args) -> int:
    from .stack.docker.cleanup import tear_down_if_reachable
    from .stack.local import tear_down_dir
    dirs = [RunDir(d) for d in (args.run_dirs or [args.dir])]
    for d in dirs:
        stopped = tear_down_dir(d) + tear_down_if_reachable(d)
        _say(f"{d}: stopped {', '.join(stopped) if stopped else 'nothing (no process left)'}")
    return 0


def cmd_toxiproxy_server(args) -> int:
    from .netfault import server
    return server.main(["--host", args.host, "--port", str(args.port)])


def cmd_ack(args) -> int:
    """A person's move at a live drill's desk, from a terminal: a manual step done, any other step
    claimed. An unknown step or person, an absent person, a step not open yet: exit 2."""
    from .control.ctl import post
    run_dir = RunDir(args.run_dir)
    status, answer = post(run_dir, "/desk", {"move": "ack", "step": args.step, "person": args.by})
    if status != 200:
        raise InputError(str(answer.get("error") or f"the drill answered {status}"), file=str(run_dir))
    record = answer.get("record") or {}
    did = "done" if record.get("type") == "person.done" else "claimed"
    _say(f"{args.step}: {did} by {record.get('person')} at T+{record.get('drill')} drill s")
    return 0


def cmd_stop(args) -> int:
    """The emergency stop: ask the drill running in RUN_DIR to halt, and wait for it to end."""
    import time
    from . import emergency_stop
    from .journal import read_journal
    run_dir = RunDir(args.run_dir)
    if not run_dir.holds_run():
        raise InputError(f"no {RunDir.JOURNAL} here: not a run directory", file=str(run_dir))
    if read_journal(run_dir.journal).first("run.finished") is not None:
        raise InputError("that run has already ended: nothing to stop", file=str(run_dir))
    pid = emergency_stop.running_pid(run_dir.path)
    if pid is None:
        raise InputError("no drill is running there any more (killed?): stop what it left with "
                         f"'hospital-drill down {run_dir}'", file=str(run_dir))
    emergency_stop.request(run_dir.path, args.by or os.environ.get("USER", "operator"), args.reason)
    _say(f"stop requested of the drill in {run_dir} (pid {pid})")
    if args.no_wait:
        return 0
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        finished = read_journal(run_dir.journal).first("run.finished")
        if finished is not None:
            _say(f"halted: {finished.get('reason')}")
            _say(f"report: {run_dir.reports['html']}")
            return 0
        time.sleep(0.2)
    _say(f"the drill has not ended after {args.timeout:g}s; it is still cleaning up, or stuck "
         f"(then: kill {pid}; hospital-drill down {run_dir})")
    return 1


def cmd_report(args) -> int:
    from .report.render import summary_line, write_reports
    from .score.build import score_run
    run_dir = RunDir(args.run_dir)
    if not run_dir.holds_run():
        raise InputError(f"no {RunDir.JOURNAL} here: not a run directory", file=str(run_dir))
    card = score_run(run_dir)
    paths = write_reports(run_dir.path, card, lang=args.lang)
    _say(summary_line(card))
    _say_targets(card)
    _say(f"report: {paths.get('html')}")
    if args.screenshot:
        from .report import browser
        if browser.find_chromium() is None:
            _say("screenshot: no Chromium here (apt-get install -y chromium); none taken")
        else:
            for name, width in (("report", 1280), ("report-phone", 390)):
                shot = browser.full_page_screenshot(paths["html"], run_dir.screenshot(name), width=width)
                _say(f"screenshot: {shot}")
    return 0


def cmd_trend(args) -> int:
    from .report.trend import write_trend
    result = write_trend([Path(p) for p in args.runs], Path(args.out), threshold=args.threshold,
                         lang=args.lang)
    for line in result.lines():
        _say(line)
    return 1 if args.fail_on_regression and result.latest_regressions else 0


def _docker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base-image", help="docker backend: the image ours are built from "
                   "(default $HOSPITAL_DRILL_BASE_IMAGE or python:3.11-slim)")
    p.add_argument("--toxiproxy-image", help="docker backend: run this Toxiproxy image instead of "
                   "our compatible server")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line and exit 2, like every other bad input."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def _check_flags(args) -> None:
    """The numbers and addresses given as flags, checked as strictly as the drill's own fields and
    before anything starts."""
    from pydantic import TypeAdapter, ValidationError
    from typing import Annotated
    from . import addresses
    from .models import Drill
    if getattr(args, "time_scale", None) is not None:
        bounds = Drill.model_fields["time_scale"].metadata  # the drill field's own range
        try:
            checks.finite(args.time_scale, "the time scale")
            TypeAdapter(Annotated[float, *bounds]).validate_python(args.time_scale, strict=True)
        except ValidationError as e:
            raise InputError(e.errors()[0]["msg"], field="--time-scale") from None
        except ValueError as e:
            raise InputError(str(e), field="--time-scale") from None
    if getattr(args, "toxiproxy", None):
        try:
            addresses.check_url(args.toxiproxy)
        except ValueError as e:
            raise InputError(f"{e} (flag or ${TOXIPROXY_ENV})", field="--toxiproxy") from None
    if args.func is cmd_toxiproxy_server:
        try:
            addresses.check_host(args.host, container_network=False)
        except ValueError as e:
            raise InputError(f"the server listens on loopback only: {e}", field="--host") from None
        if not 0 <= args.port <= 65535:
            raise InputError(f"{args.port} is not a port (0-65535; 0: any free one)", field="--port")
    if getattr(args, "board_port", None) is not None:
        if not args.live:
            raise InputError("only a live drill (--live) serves the command board", field="--board-port")
        if not 0 <= args.board_port <= 65535:
            raise InputError(f"{args.board_port} is not a port (0-65535; 0: a free one)", field="--board-port")
        if args.board_port:
            _check_port_free(args.board_port)
    if getattr(args, "threshold", None) is not None:
        if not (math.isfinite(args.threshold) and 0 <= args.threshold <= 100):
            raise InputError(f"{args.threshold!r} is not a share between 0 and 100", field="--threshold")
    if getattr(args, "subnet", None) is not None:
        _check_subnet(args.subnet)
    if args.func is cmd_stop and not (math.isfinite(args.timeout) and 0 < args.timeout <= 86400):
        raise InputError(f"{args.timeout!r} is not a number of seconds from 0 to 86400", field="--timeout")


def _load_bind(args) -> tuple[str, int] | None:
    """--load-bind HOST[:PORT]: where the drill's Locust master listens (loopback unless asked)."""
    if getattr(args, "load_bind", None) is None:
        return None
    from .load.master_address import parse_bind
    try:
        return parse_bind(args.load_bind)
    except ValueError as e:
        raise InputError(str(e), field="--load-bind") from None


def _check_port_free(port: int) -> None:
    """A taken board port is found before the stack comes up, not after."""
    import socket
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the board's server binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as e:
            raise InputError(f"port {port} on 127.0.0.1 is taken ({e.strerror})", field="--board-port") from None


def _check_subnet(text: str) -> None:
    """The compose network: a private IPv4 network with room for the stack's containers."""
    import ipaddress
    try:
        net = ipaddress.ip_network(text)
    except ValueError as e:
        raise InputError(f"not a network ({e})", field="--subnet") from None
    if net.version != 4 or not net.is_private or net.is_loopback or not 16 <= net.prefixlen <= 24:
        raise InputError(f"{text} is not a private IPv4 network from /16 to /24", field="--subnet")


def _add_run(sub) -> None:
    r = sub.add_parser("run", help="run a drill end to end and write its report")
    r.add_argument("drill")
    r.add_argument("--time-scale", type=float, help="drill seconds per real second (default: the drill's)")
    r.add_argument("--out", help="run directory (default reports/<drill>-<time>)")
    r.add_argument("--backend", default="local")
    r.add_argument("--toxiproxy", default=os.environ.get(TOXIPROXY_ENV),
                   help=f"use this Toxiproxy API instead of starting ours (env {TOXIPROXY_ENV})")
    _docker_options(r)
    r.add_argument("--live", action="store_true",
                   help="people carry out the manual steps on the command board (or 'hospital-drill ack') "
                        "instead of a simulated operator; time scale 1 unless --time-scale is given")
    r.add_argument("--board-port", type=int,
                   help="live drills: the command board's port on 127.0.0.1 (default 0: a free one)")
    r.add_argument("--load-bind", metavar="HOST[:PORT]",
                   help="where the Locust master listens for workers (default 127.0.0.1, a free port); "
                        "another address, e.g. 0.0.0.0:5557, lets 'load-worker' join from other machines")
    r.add_argument("--quiet", action="store_true")
    r.add_argument("--lang", choices=["zh", "en"], default="zh", help="the report's language (default zh)")
    r.set_defaults(func=cmd_run)


def _add_files(sub) -> None:
    v = sub.add_parser("validate", help="check scenario / drill files without running")
    v.add_argument("files", nargs="+")
    v.set_defaults(func=cmd_validate)

    ls = sub.add_parser("list", help="every scenario and drill, with failure class and targets")
    ls.add_argument("--dir", help="also list the scenarios/ and drills/ of this project folder")
    ls.set_defaults(func=cmd_list)


def _add_stack(sub) -> None:
    for name, fn, help_ in (("up", cmd_up, "bring the mock hospital up and leave it running"),
                            ("status", cmd_status, "show the running mock hospital"),
                            ("down", cmd_down, "stop the mock hospital (or leftovers of runs)")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--dir", default=str(DEFAULT_STACK_DIR), help="where the stack's state lives")
        if name == "up":
            s.add_argument("--drill", help="take the stack config (replication, addresses) from a drill")
            s.add_argument("--backend", default="local")
            s.add_argument("--toxiproxy", default=os.environ.get(TOXIPROXY_ENV))
            _docker_options(s)
        if name == "down":
            s.add_argument("run_dirs", nargs="*", help="run directories whose leftovers to stop")
        s.set_defaults(func=fn)

    c = sub.add_parser("compose", help="write a docker-compose file of the stack a drill runs on")
    c.add_argument("drill")
    c.add_argument("--out", help=f"directory to write to (default {DEFAULT_STACK_DIR.parent}/compose/<drill>)")
    c.add_argument("--subnet", default="10.213.250.0/24", help="the stack network's subnet (a /24)")
    _docker_options(c)
    c.set_defaults(func=cmd_compose)

    t = sub.add_parser("toxiproxy-server", help="run our Toxiproxy-compatible server on its own")
    t.add_argument("--host", default="127.0.0.1")
    t.add_argument("--port", type=int, default=8474)
    t.set_defaults(func=cmd_toxiproxy_server)


def _add_live(sub) -> None:
    a = sub.add_parser("ack", help="a live drill: complete a manual step, or claim a step that "
                                   "needs someone, as a named person of the roster")
    a.add_argument("run_dir")
    a.add_argument("step")
    a.add_argument("--by", required=True, help="who (a name on the drill's roster)")
    a.set_defaults(func=cmd_ack)

    st = sub.add_parser("stop", help="emergency stop: halt the drill running in a run directory")
    st.add_argument("run_dir")
    st.add_argument("--reason", default="emergency stop", help="why (journalled and reported)")
    st.add_argument("--by", help="who stops it (default $USER)")
    st.add_argument("--no-wait", action="store_true", help="return at once, do not wait for the end")
    st.add_argument("--timeout", type=float, default=120.0,
                    help="real seconds to wait for the run to end (default 120)")
    st.set_defaults(func=cmd_stop)


def _add_reports(sub) -> None:
    rep = sub.add_parser("report", help="rebuild a run's report from its journal and records")
    rep.add_argument("run_dir")
    rep.add_argument("--lang", choices=["zh", "en"], default="zh", help="the report's language (default zh)")
    rep.add_argument("--screenshot", action="store_true",
                     help="also save report.png and report-phone.png (headless Chromium)")
    rep.set_defaults(func=cmd_report)

    tr = sub.add_parser("trend", help="targets across drills over time, with regressions flagged")
    tr.add_argument("runs", nargs="+", help="run directories, or folders holding run directories")
    tr.add_argument("--out", default="reports/trend", help="where trend.html / trend.md go")
    tr.add_argument("--threshold", type=float, default=0.2,
                    help="flag a time that grew by more than this share (default 0.2)")
    tr.add_argument("--lang", choices=["zh", "en"], default="zh")
    tr.add_argument("--fail-on-regression", action="store_true",
                    help="exit 1 when a drill's latest run regressed")
    tr.set_defaults(func=cmd_trend)


def _add_init(sub) -> None:
    from . import init_project  # `init DIR`: a project folder from an example drill and its script
    init_project.add_parser(sub)


def _add_audit(sub) -> None:
    from .plan import command  # `audit [PLAN]`: the plan checked before any drill (harness/plan/)
    command.add_parser(sub)


def _add_load_worker(sub) -> None:
    from .load import worker  # `load-worker --master HOST:PORT`: patients from another machine
    worker.add_parser(sub)


def _add_control(sub) -> None:
    from .control import ctl  # `ctl RUN_DIR VERB ...`: the plan's moves for the hospital's scripts
    ctl.add_parser(sub)


# the commands in the order `--help` lists them: running a drill, its files, a project to start
# from, the stack on its own, a live drill's people, the hospital's scripts, the reports
COMMANDS = (_add_run, _add_audit, _add_files, _add_init, _add_stack, _add_live, _add_control,
            _add_load_worker, _add_reports)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="hospital-drill", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return p


def _first_error(e: InputError) -> str:
    more = len(getattr(e, "errors", [e])) - 1
    return str(e).splitlines()[0] + (f" (and {more} more: hospital-drill validate)" if more else "")


def _print_errors(e: InputError) -> None:
    """Each error of the input on a line of its own (`file:line: field: why`)."""
    for one in getattr(e, "errors", [e]):
        print(f"hospital-drill: error: {' '.join(str(one).split())}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check_flags(args)
        return args.func(args)
    except InputError as e:
        _print_errors(e)
        return 2
    except HarnessError as e:
        print(f"hospital-drill: aborted: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("hospital-drill: interrupted", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
