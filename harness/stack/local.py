"""The local backend: the whole mock hospital as processes on 127.0.0.1.

Bring-up, side by side wherever one part does not need another's address:
  0. a forkserver (prefork.py) starts importing our Python services, so that each starts as a fork;
  1. the Toxiproxy API (ours, or the user's) and every link, listening, upstream not yet known;
  2. meanwhile every PostgreSQL node copied from a cached, already-seeded, cleanly stopped template
     (initdb + seed once), and the primary started on its copy;
  3. our HTTP services (they need the links' addresses only); once the primary answers, the DR
     standbys started on their copies, streaming from it through their links;
  4. links pointed at what they lead to; replication mode and lag applied; wait for the entry point.
A failure anywhere tears down whatever had started, and says which part failed and why.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any


from ..errors import HarnessError
from ..models import StackConfig
from ..netfault.client import Links
from ..rundir import RunDir
from . import pg_env, pg_orphans, pg_shm
from . import postgres as pg
from . import topology
from .base import Stack
from .process import Supervisor, kill_recorded, log_tail

HOST = "127.0.0.1"
PLACEHOLDER = "127.0.0.1:9"  # discard port: a link whose upstream is not up yet refuses cleanly
SCHEMA = Path(__file__).with_name("schema.sql")
TEMPLATE_LAYOUT = "4: old WAL dropped"  # part of the template's cache key: a change rebuilds it
TOXIPROXY_MODULE = "harness.netfault.server"
SERVICE_MODULES = {"app": "harness.stack.services.app", "thirdparty": "harness.stack.services.thirdparty",
                   "egress": "harness.stack.services.egress",
                   "offline": "harness.stack.services.offline"}  # node kind -> `python -m` module


class LocalStack(Stack):
    backend = "local"

    def __init__(self, run_dir: Path, config: StackConfig, time_scale: float):
        super().__init__(run_dir, config, time_scale)
        self.sup = Supervisor(run_dir)
        self.pg: dict[str, pg.PgNode] = {}
        self.own_toxiproxy = False
        # what a SIGKILLed run left in /dev/shm goes before this one takes its place
        pg_orphans.sweep((pg_env.RAM_ROOT, pg_env.CACHE_ROOT))
        self.state_dir = pg.data_root(run_dir)

    def entry_log_tail(self) -> str:
        return log_tail(RunDir(self.run_dir).log("app-primary"))

    # --- primitives -----------------------------------------------------------------------------
    def _kill_db(self, name: str) -> dict[str, Any]:
        return self.pg[name].crash()

    def _promote_db(self, name: str) -> None:
        self.pg[name].promote(timeout=30)

    def _start_db(self, name: str) -> None:
        self.pg[name].start(timeout=30)

    def backup_db(self, node: str, label: str, since: pg.Backup | None = None) -> pg.Backup:
        """Into `<state dir>/backups/local/<label>` (the backup disk; gone with the stack)."""
        if node not in self.pg:
            raise HarnessError(f"{node} is not a database node of this stack")
        dest = self.state_dir / "backups" / "local" / label
        return pg.base_backup(self.pg[node], dest, incremental_from=since, timeout=120)

    def restore_db(self, chain: list[pg.Backup], name: str = "pg-restore") -> str:
        if name in self.pg and self.pg[name].is_running():
            raise HarnessError(f"{name} is already running; a second restore needs another name")
        datadir = self.state_dir / name
        if datadir.exists():  # what an earlier, failed restore left behind
            shutil.rmtree(datadir)
        node = pg.restore(chain, datadir, pg.free_port(), name=name)
        self.pg[name] = node  # before starting: down() stops it whatever happens next
        node.start(timeout=60)  # replays the WAL inside the last backup, then opens
        self.sup.adopt(name, node.proc, node.log_path)
        self.addresses[name] = f"{HOST}:{node.port}"
        self.db_roles[name] = "restored"
        return name

    def _kill_service(self, name: str) -> dict[str, Any]:
        m = self.sup.procs.get(name)
        if m is None or m.proc.poll() is not None:
            raise HarnessError(f"{name} is not running")
        try:
            os.killpg(m.pid, signal.SIGKILL)  # its own session: the whole group, like a host
        except ProcessLookupError:
            pass
        m.proc.wait(timeout=5)
        return {"pid": m.pid, "signal": "SIGKILL"}

    def _start_service(self, name: str) -> str:
        """Again from its config file, on its old port when free (else any, and links follow)."""
        cfg_dir = RunDir(self.run_dir).config
        path, ready = cfg_dir / f"{name}.json", cfg_dir / f"{name}.ready"
        cfg = json.loads(path.read_text())
        module = SERVICE_MODULES[topology.NODES[name].kind]
        old = self.addresses.get(name)
        for port in ([int(old.rsplit(":", 1)[1])] if old else []) + [0]:
            cfg["port"] = port
            path.write_text(json.dumps(cfg, indent=2))
            ready.unlink(missing_ok=True)
            m = self.sup.start_python(name, module, "--config", str(path))
            try:
                info = self.sup.wait_ready(m, ready)
            except HarnessError:
                if port == 0:
                    raise
                self.sup.stop(name)  # the old port is taken: try any
                continue
            return f"{HOST}:{info['port']}"
        raise HarnessError(f"{name} could not be started again")

    def down(self) -> None:
        """Stop everything this stack started; safe to call twice and after a partial bring-up."""
        errors = []
        if not self.own_toxiproxy and getattr(self, "links", None) is not None:
            for name in topology.LINKS:  # a user's Toxiproxy keeps running: remove only our links
                try:
                    self.links.delete(name)
                except Exception as e:
                    errors.append(f"link {name}: {e}")
        for node in self.pg.values():
            try:
                node.stop(timeout=5)
            except Exception as e:
                errors.append(f"{node.name}: {e}")
        self.sup.stop_all()
        pg.kill_leftovers(self.run_dir)
        pg_shm.release_under(self.state_dir)  # a crashed primary's segments outlive it
        self._keep_db_logs()
        shutil.rmtree(self.state_dir, ignore_errors=True)
        pg_link = RunDir(self.run_dir).pg
        if pg_link.is_symlink():
            pg_link.unlink()
        self.pg.clear()
        if errors:
            raise HarnessError("teardown: " + "; ".join(errors))

    def _keep_db_logs(self) -> None:
        logs = RunDir(self.run_dir).logs
        logs.mkdir(parents=True, exist_ok=True)
        for log in Path(self.state_dir).glob("*.log"):
            shutil.copyfile(log, logs / f"{log.stem}.log")


# --- bring-up --------------------------------------------------------------------------------------

def up(run_dir: Path, config: StackConfig, time_scale: float, *, toxiproxy_url: str | None = None,
       detach: bool = False) -> LocalStack:
    """A running local stack. `detach` is for `hospital-drill up`: processes outlive this one."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(run_dir, config, time_scale)
    with stack.starting():
        _bring_up(stack, toxiproxy_url)
    return stack


def _bring_up(stack: LocalStack, toxiproxy_url: str | None) -> None:
    cfg_dir = RunDir(stack.run_dir).config
    cfg_dir.mkdir(exist_ok=True)
    # the forkserver imports our services while the links and the databases come up
    stack.sup.preload([TOXIPROXY_MODULE, *SERVICE_MODULES.values()])
    standbys = ["pg-samecity"] + (["pg-remote"] if stack.config.remote_dr else [])
    with ThreadPoolExecutor(max_workers=1 + len(standbys)) as pool:
        # 1. and 2. side by side: the links; the database copies and the primary
        primary_up = pool.submit(_start_primary, stack, standbys)
        _start_links(stack, cfg_dir, toxiproxy_url)
        # 3. our services (they need the links' addresses only) while the primary opens
        services = _start_services(stack, cfg_dir)
        primary = primary_up.result()
        for link in ("db", "repl-samecity", "repl-remote"):
            stack.links.repoint(link, stack.addresses["pg-primary"])
        # the standbys stream through their links, which lead to the primary only now
        for name in wait_all([pool.submit(_start_standby, stack, name) for name in standbys]):
            stack.addresses[name] = f"{HOST}:{stack.pg[name].port}"
            stack.db_roles[name] = "standby"
        for name, (m, ready) in services.items():
            info = stack.sup.wait_ready(m, ready)
            stack.addresses[name] = f"{HOST}:{info['port']}"

    # 4. point the links, set replication as configured, wait for the entry point
    wiring = {"app-vip": "app-primary", "egress-primary": "egress-gw", "egress-backup": "egress-gw",
              "offline": topology.OFFLINE.name, **{tp.name: tp.name for tp in topology.THIRD_PARTIES}}
    for link, node in wiring.items():
        stack.links.repoint(link, stack.addresses[node])
    for kind in topology.THIRD_PARTY_KINDS:
        if configured := stack.config.backup_address(kind):
            # the hospital's own configuration, typo and all
            stack.links.repoint(topology.interface(kind, "backup"), configured)
    _apply_replication(stack, primary)
    stack.wait_entry(20.0)


def wait_all(futures: list[Future]) -> list[Any]:
    """Every future's result, after all of them finished: a failure is raised only once none of
    them still runs, so the teardown that follows finds everything they started."""
    wait(futures)
    return [f.result() for f in futures]


def _start_links(stack: LocalStack, cfg_dir: Path, toxiproxy_url: str | None) -> None:
    """Every link listening, upstream not yet known: on the user's Toxiproxy one by one, on ours
    created at its start from a config file."""
    if toxiproxy_url:
        stack.links = Links(toxiproxy_url)
        try:
            stack.links.wait_ready(5)
        except Exception as e:
            raise HarnessError(f"--toxiproxy {toxiproxy_url}: not reachable ({e})") from None
        for name in topology.LINKS:
            stack.link_listen[name] = stack.links.ensure_proxy(name, PLACEHOLDER)
        return
    ready, links = cfg_dir / "toxiproxy.ready", cfg_dir / "toxiproxy-links.json"
    links.write_text(json.dumps([{"name": name, "listen": f"{HOST}:0", "upstream": PLACEHOLDER,
                                  "enabled": True} for name in topology.LINKS], indent=2))
    m = stack.sup.start_python("toxiproxy", TOXIPROXY_MODULE, "--host", HOST, "--port", "0",
                               "--ready-file", str(ready), "--config", str(links))
    info = stack.sup.wait_ready(m, ready)
    stack.links = Links(f"http://{HOST}:{info['port']}")
    stack.own_toxiproxy = True
    listening = stack.links.proxies()
    for name in topology.LINKS:
        stack.link_listen[name] = listening[name]["listen"]


def _start_primary(stack: LocalStack, standbys: list[str]) -> pg.PgNode:
    """Every database node as a copy of the cached template; the primary started (not the standbys:
    their links do not lead anywhere yet)."""
    template = _seeded_template()
    names = ["pg-primary", *standbys]
    # each copy is a cp process of its own: all of them at once
    with ThreadPoolExecutor(max_workers=len(names)) as copies:
        nodes = wait_all([copies.submit(pg.PgNode.from_copy, template, stack.state_dir / name,
                                        pg.free_port(), name=name) for name in names])
    for node in nodes:
        stack.pg[node.name] = node  # known before starting: down() stops whatever did start
    primary = stack.pg["pg-primary"]
    primary.start(timeout=30)
    stack.sup.adopt("pg-primary", primary.proc, primary.log_path)
    stack.addresses["pg-primary"] = f"{HOST}:{primary.port}"
    stack.db_roles["pg-primary"] = "primary"
    return primary


def _start_standby(stack: LocalStack, name: str) -> str:
    """A copy of the primary's template, streaming from the primary through its replication link."""
    host, port = stack.link_listen[topology.STANDBY_LINK[name]].rsplit(":", 1)
    node = stack.pg[name]
    node.follow(host, int(port))
    node.start(timeout=60)
    stack.sup.adopt(name, node.proc, node.log_path)
    return name


def _seeded_template() -> Path:
    """A stopped, seeded primary data directory, built once per server version and schema."""
    bins = pg.PgBinaries.locate()
    key = hashlib.sha1(SCHEMA.read_bytes() + str(bins.bin_dir).encode()
                       + TEMPLATE_LAYOUT.encode()).hexdigest()[:12]
    root = pg.CACHE_ROOT / "templates"
    final = root / key
    if (final / "data" / "PG_VERSION").exists():
        return final / "data"
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    tmp = root / f".{key}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    os.chmod(tmp, 0o755)
    node = pg.PgNode.init_primary(tmp / "data", pg.free_port(), name="template", bins=bins)
    try:
        node.start(timeout=60, settings=pg.DROP_OLD_WAL_SETTINGS)
        node.create_database("hospital")
        with node.connect("hospital") as conn:
            conn.execute(SCHEMA.read_text(encoding="utf-8"))
        node.drop_old_wal()  # every run copies the template three times: keep it small
        node.stop(timeout=30)
    except BaseException:
        node.stop(timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.rename(tmp, final)  # atomic: a concurrent run sees the whole template or none
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another run won the race; use theirs
    return final / "data"


def _start_services(stack: LocalStack, cfg_dir: Path) -> dict[str, tuple[Any, Path]]:
    """Launch every HTTP service of ours (not waiting); name → (process, ready file)."""
    def link_url(link: str) -> str:
        return f"http://{stack.link_listen[link]}"

    db_host, db_port = stack.link_listen["db"].rsplit(":", 1)
    configs: dict[str, tuple[str, dict]] = {}
    for app in topology.APP_NODES:
        configs[app.name] = ("harness.stack.services.app", {
            "name": app.name,
            "db": {"host": db_host, "port": int(db_port), "dbname": "hospital", "user": pg.SUPERUSER},
            "egress": {"primary": link_url("egress-primary"), "backup": link_url("egress-backup")},
            "routes": {"egress": "primary", **{kind: "primary" for kind in topology.THIRD_PARTY_KINDS}},
            "timeouts": {"db_connect_s": 1, "statement_s": 3, "third_party_s": 2},
            "offline_url": link_url("offline"),
        })
    for tp in topology.THIRD_PARTIES:
        configs[tp.name] = ("harness.stack.services.thirdparty", {"name": tp.name, "kind": tp.role})
    configs["egress-gw"] = ("harness.stack.services.egress", {
        "name": "egress-gw", "timeout_s": 2,
        "routes": {tp.name: link_url(tp.name) for tp in topology.THIRD_PARTIES},
        # each metered line, known by the address its proxy listens on (what callers dial)
        "lines": {line: {"address": stack.link_listen[f"egress-{line}"], **spec.model_dump()}
                  for line, spec in stack.config.egress_lines.items()},
    })
    configs[topology.OFFLINE.name] = ("harness.stack.services.offline", {
        "name": topology.OFFLINE.name, "store": str(offline_store_path(stack.run_dir))})
    started = {}
    for name, (module, cfg) in configs.items():
        ready = cfg_dir / f"{name}.ready"
        ready.unlink(missing_ok=True)
        cfg.update(host=HOST, port=0, ready_file=str(ready),
                   log_file=str(RunDir(stack.run_dir).log(f"{name}.service")))
        path = cfg_dir / f"{name}.json"
        path.write_text(json.dumps(cfg, indent=2))
        started[name] = (stack.sup.start_python(name, module, "--config", str(path)), ready)
    return started


def offline_store_path(run_dir: Path) -> Path:
    """The offline reception's SQLite file: in the run directory, so it outlives the stack."""
    return Path(run_dir) / "offline" / "reception.sqlite"


def _apply_replication(stack: LocalStack, primary: pg.PgNode) -> None:
    for name in stack.pg:
        if name != "pg-primary":
            pg.wait_streaming(stack.pg[name], timeout=15)
    stack.apply_replication_lag()
    pg.set_sync(primary, ["pg-samecity"] if stack.config.replication.mode == "sync" else None)


def tear_down_dir(run_dir: "RunDir | Path") -> list[str]:
    """`hospital-drill down`: stop whatever a stack or run directory left running, remove its data."""
    layout = RunDir.of(run_dir)
    run_dir = layout.path
    # databases first, with a fast shutdown, so they do not wait on clients being killed
    stopped = [f"postgres pid {p}" for p in pg.kill_leftovers(run_dir)]
    stopped += kill_recorded(run_dir)
    stopped += pg_shm.release_under(layout.pg.resolve())  # before the data that proves them ours
    pg_link = layout.pg
    if pg_link.is_symlink():
        shutil.rmtree(pg_link.resolve(), ignore_errors=True)
        pg_link.unlink()
    elif pg_link.is_dir():
        shutil.rmtree(pg_link, ignore_errors=True)
    for f in (layout.state, layout.pids):
        f.unlink(missing_ok=True)
    return stopped
