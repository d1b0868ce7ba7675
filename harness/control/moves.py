"""The plan's moves a hospital's script may ask a running drill for (`hospital-drill ctl`): each verb,
its arguments, and how it is carried out.

A move that changes the stack is one of the runbook's built-in actions (runbook/actions.py), run
with the same code and the same declared capabilities (`failover`, `promotes`), so that the RPO
measurement, the score and the board treat a script's promotion exactly like the built-in one's.
Two verbs are no action: `wait` is a declared wait of the plan on the asking step's lane, and
`status` reads the stack.

The verb table is plain data: the client checks a move's shape with it before any drill is asked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..stack import topology

if TYPE_CHECKING:
    from ..runbook.actions import ActionContext, Params

DB_TIMEOUT = 1  # real seconds `status` gives a database to say whether it is in recovery
HTTP_TIMEOUT = 2.0


class MoveError(ValueError):
    """A move asked wrongly (exit 2): `where` names the verb and the argument, `why` what is wrong."""

    def __init__(self, where: str, why: str):
        self.where, self.why = where, why
        super().__init__(f"{where}: {why}")


@dataclass(frozen=True)
class Verb:
    name: str
    usage: str  # its arguments, as `--help` shows them
    describe: str
    action: str | None  # the built-in action that carries it out; None: `wait`, `status`
    # the action's raw parameters from the arguments (already counted); may raise MoveError
    params: Callable[[list[str]], dict[str, Any]] | None = None
    fields: tuple[tuple[str, str], ...] = ()  # (action parameter, argument name) for its errors
    arity: tuple[int, ...] = (0,)  # how many arguments it takes


@dataclass
class Move:
    verb: Verb
    args: list[str]
    params: "Params | None" = None  # validated, for an action's move
    seconds: float | None = None  # drill seconds, for `wait`

    @property
    def action(self) -> str | None:
        return self.verb.action


# --- argument readers -----------------------------------------------------------------------------

def _repoint(args: list[str]) -> dict[str, Any]:
    """A link is pointed only at a node of the kind it was built for: the VIP at an app instance,
    the DB address at a PostgreSQL node (anything else breaks patients and proves nothing)."""
    link, node = args
    built = topology.LINKS.get(link)
    target = topology.NODES.get(node)
    if built is not None and target is not None:
        kind = topology.NODES[built.upstream].kind
        if target.kind != kind:
            raise MoveError("repoint NODE", f"{link} leads to a {kind} node; {node} is a {target.kind} "
                                            f"node (one of: {', '.join(_nodes_of(kind))})")
    return {"link": link, "to": node}


def _nodes_of(kind: str) -> list[str]:
    return sorted(n.name for n in topology.NODES.values() if n.kind == kind)


def _interface(args: list[str]) -> dict[str, Any]:
    kind, which = args
    if kind not in topology.THIRD_PARTY_KINDS:
        raise MoveError("interface KIND", f"unknown third party {kind!r} (one of: "
                                          f"{', '.join(topology.THIRD_PARTY_KINDS)}; the egress "
                                          f"line is `line`)")
    return {kind: which}


def _notice(args: list[str]) -> dict[str, Any]:
    what = args[0]
    if what == "set":
        if len(args) != 2:
            raise MoveError("notice set TEXT", "give the banner's text as one argument (quote it)")
        if not args[1].strip():
            raise MoveError("notice set TEXT", "the text is empty: use `notice clear` to clear it")
        return {"text": args[1]}
    if what == "clear":
        if len(args) != 1:
            raise MoveError("notice clear", "takes no argument")
        return {"text": None}
    raise MoveError("notice", f"{what!r}: give `set TEXT` or `clear`")


VERBS: dict[str, Verb] = {v.name: v for v in (
    Verb("promote", "NODE", "promote a PostgreSQL standby to primary (pg_ctl promote); the app's "
         "DB address and the other standbys follow it", "promote_standby",
         lambda a: {"standby": a[0]}, (("standby", "NODE"),), (1,)),
    Verb("repoint", "LINK NODE", "point a link at another node: the VIP (app-vip) at an app "
         "instance, the DB address (db) at a PostgreSQL node", "repoint_link", _repoint,
         (("link", "LINK"), ("to", "NODE")), (2,)),
    Verb("line", "primary|backup", "switch every running app instance to an egress line",
         "switch_egress", lambda a: {"line": a[0]}, (("line", "LINE"),), (1,)),
    Verb("interface", "KIND primary|backup", "switch a third party's interface (insurance, payment, "
         "notification), then walk a test call through it; switched back when it fails",
         "switch_and_verify", _interface, (("insurance", "TARGET"), ("payment", "TARGET"),
                                           ("notification", "TARGET")), (2,)),
    Verb("notice", "set TEXT | clear", "show (or clear) the status banner in the patient app",
         "set_notice", _notice, (("text", "TEXT"),), (1, 2)),
    Verb("notify", "CHANNEL AUDIENCE TEXT", "send a message (sms, official_account, app_banner, "
         "hotline, broadcast) through the notification service", "notify",
         lambda a: {"channel": a[0], "audience": a[1], "text": a[2]},
         (("channel", "CHANNEL"), ("audience", "AUDIENCE"), ("text", "TEXT")), (3,)),
    Verb("wait", "DURATION", "a declared wait of the plan (e.g. 5m), compressed by the time scale "
         "and counted on the asking step's time", None, arity=(1,)),
    Verb("status", "", "who is primary, each database's role, where each link points, the notice, "
         "the egress line and the drill clock", None, arity=(0,)),
)}


def verb_of(name: str) -> Verb:
    verb = VERBS.get(name)
    if verb is None:
        raise MoveError("VERB", f"unknown verb {name!r} (one of: {', '.join(VERBS)})")
    return verb


def check_shape(name: str, args: list[str]) -> Verb:
    """The verb, when it is known and given as many arguments as it takes (the client's check)."""
    verb = verb_of(name)
    if len(args) not in verb.arity:
        want = " or ".join(str(n) for n in verb.arity)
        raise MoveError(f"{verb.name} {verb.usage}".strip(),
                        f"takes {want} argument(s), got {len(args)}")
    return verb


def plan(name: str, args: list[str]) -> Move:
    """The move asked for, its arguments checked as a runbook step's parameters are."""
    from ..clock import parse_duration
    from ..runbook import actions
    verb = check_shape(name, args)
    if verb.name == "wait":
        try:
            return Move(verb, args, seconds=parse_duration(args[0]))
        except ValueError as e:
            raise MoveError("wait DURATION", str(e)) from None
    if verb.action is None:
        return Move(verb, args)
    raw = verb.params(args)
    try:
        params = actions.validate(verb.action, raw)
    except ValueError as e:  # 'with.<param>: why' → the argument it came from
        field, _, why = str(e).partition(": ")
        param = field.removeprefix("with.").split(".")[0]
        arg = dict(verb.fields).get(param, param.upper())
        raise MoveError(f"{verb.name} {arg}", why or str(e)) from None
    return Move(verb, args, params=params)


def carry_out(move: Move, ctx: "ActionContext") -> dict[str, Any]:
    """Do the move in `ctx` (the asking step's lane and stop); its detail. Raises ActionFailed."""
    from ..runbook.actions import ACTIONS, ActionFailed
    if move.action is not None:
        return ACTIONS[move.action].run(ctx, move.params)
    if move.verb.name == "wait":
        if not ctx.lane.wait(move.seconds, ctx.stop):
            raise ActionFailed(f"the run ended during the wait of {move.args[0]}")
        return {"waited": move.seconds}
    return status(ctx)


# --- status -----------------------------------------------------------------------------------------

def status(ctx: "ActionContext") -> dict[str, Any]:
    """What a script needs to decide its next move, as the stack stands now."""
    stack = ctx.stack
    by_address = {addr: node for node, addr in stack.addresses.items()}
    try:
        links = {name: by_address.get(p.get("upstream"), p.get("upstream"))
                 for name, p in sorted(stack.links.proxies().items())}
    except Exception as e:  # the board of links is down: say so, the rest still helps
        links = {"error": f"{e.__class__.__name__}: {e}"}
    apps = _apps(stack)
    serving = links.get("app-vip") if isinstance(links.get("app-vip"), str) else None
    seen = apps.get(serving) if isinstance(apps.get(serving), dict) else next(
        (a for a in apps.values() if isinstance(a, dict) and "error" not in a), {})
    clock = ctx.lane.clock
    return {
        "primary": stack.current_primary(),
        "databases": {node: {"role": stack.db_role(node), "in_recovery": _in_recovery(stack, node)}
                      for node in stack.db_roles},
        "links": links,
        "notice": seen.get("notice"),
        "egress": (seen.get("routes") or {}).get("egress"),
        "routes": seen.get("routes"),
        "apps": apps,
        "drill": {"t_plus": _round(clock.drill()), "lane": round(ctx.lane.now(), 3),
                  "time_scale": clock.scale},
    }


def _in_recovery(stack, node: str) -> bool | str:
    """What the database itself says (a script may have promoted it with psql): True a standby,
    False a primary, or why it did not answer."""
    import psycopg
    try:
        with psycopg.connect(stack.db_dsn(node), connect_timeout=DB_TIMEOUT, autocommit=True) as conn:
            return bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])
    except Exception as e:
        return f"no answer: {e.__class__.__name__}"


def _apps(stack) -> dict[str, Any]:
    import requests
    out: dict[str, Any] = {}
    with requests.Session() as http:
        for app in stack.live_app_nodes():
            try:
                cfg = http.get(f"{stack.url(app)}/admin/config", timeout=HTTP_TIMEOUT).json()
                out[app] = {"notice": cfg.get("notice"), "routes": cfg.get("routes")}
            except (requests.RequestException, ValueError, AttributeError) as e:
                out[app] = {"error": f"unreachable: {e.__class__.__name__}"}
    return out


def _round(t: float | None) -> float | None:
    return None if t is None else round(t, 3)
