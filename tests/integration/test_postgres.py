"""Real PostgreSQL primary + streaming standbys: what a drill relies on (RPO in rows, promotion, cleanup)."""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import psycopg
import pytest

from harness.stack import postgres as pg

from tests.helpers import postgres_under
from tests.relay import Relay

pytestmark = pytest.mark.integration


def _pair(pgdir: Path, *, sync: bool) -> tuple[pg.PgNode, pg.PgNode, Relay]:
    primary = pg.PgNode.init_primary(pgdir / "primary", pg.free_port(), name="pg-primary",
                                     sync_standby_names=["pg-samecity"] if sync else None)
    primary.start()
    relay = Relay(primary.port)
    standby = pg.PgNode.create_standby("127.0.0.1", relay.port, pgdir / "samecity", pg.free_port(),
                                       app_name="pg-samecity")
    # after the standby is up: in sync mode a commit waits for it
    primary.query("CREATE TABLE visits (id int PRIMARY KEY, note text)")
    return primary, standby, relay


def _ids(node: pg.PgNode) -> set[int]:
    return {r[0] for r in node.query("SELECT id FROM visits")}


def test_sync_failover_keeps_every_acknowledged_row(pgdir):
    primary, standby, relay = _pair(pgdir, sync=True)
    [st] = pg.replication_status(primary)
    assert (st.app_name, st.state, st.sync_state) == ("pg-samecity", "streaming", "sync")

    acked: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        # one row per transaction; a row counts once its COMMIT returned (acknowledged to a patient)
        try:
            with psycopg.connect(primary.dsn(), autocommit=True) as conn:
                i = 0
                while not stop.is_set():
                    i += 1
                    conn.execute("INSERT INTO visits VALUES (%s, 'followup')", (i,))
                    acked.append(i)
        except psycopg.Error:
            pass

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.5)
    detail = primary.crash()
    relay.cut()
    stop.set()
    t.join(10)
    assert len(acked) > 5
    assert detail["pid"] in detail["killed"] and len(detail["killed"]) > 1
    assert not primary.is_running()
    assert postgres_under(primary.datadir) == []

    seconds = standby.promote()
    assert seconds < 10 and not standby.is_in_recovery()
    assert set(acked) <= _ids(standby), "a synchronously acknowledged row was lost"
    # a promoted standby must not wait for a synchronous standby of its own
    assert standby.query("SHOW synchronous_standby_names") == [("",)]
    standby.query("INSERT INTO visits VALUES (-1, 'after failover')")  # writable now
    assert -1 in _ids(standby)


def test_async_with_cut_link_loses_the_latest_rows(pgdir):
    primary, standby, relay = _pair(pgdir, sync=False)
    primary.query("INSERT INTO visits SELECT g, 'before' FROM generate_series(1, 300) g")
    pg.wait_replayed(primary, standby)
    relay.cut()  # the replication line dies first ...
    for i in range(301, 351):  # ... async commits are still acknowledged to patients ...
        primary.query("INSERT INTO visits VALUES (%s, 'after cut')", (i,))
    primary.crash()  # ... then the main DC goes down
    standby.promote()
    survived = _ids(standby)
    lost = set(range(1, 351)) - survived
    assert survived == set(range(1, 301))
    assert len(lost) == 50


def test_other_standby_follows_the_promoted_one(pgdir):
    primary, samecity, relay = _pair(pgdir, sync=False)
    remote = pg.PgNode.create_standby("127.0.0.1", primary.port, pgdir / "remote", pg.free_port(),
                                      app_name="pg-remote")
    primary.query("INSERT INTO visits SELECT g, 'x' FROM generate_series(1, 100) g")
    pg.wait_replayed(primary, samecity)
    pg.wait_replayed(primary, remote)
    primary.crash()
    samecity.promote()
    pg.repoint_standby(remote, "127.0.0.1", samecity.port)
    pg.wait_streaming(remote, from_port=samecity.port)
    samecity.query("INSERT INTO visits VALUES (101, 'on the new primary')")
    pg.wait_replayed(samecity, remote)
    assert _ids(remote) == set(range(1, 102))
    assert [s.app_name for s in pg.replication_status(samecity)] == ["pg-remote"]


def test_copies_of_a_stopped_cluster_are_a_primary_and_its_streaming_standby(pgdir):
    """What the local stack's bring-up does instead of base backups: a seeded cluster stopped once
    with its old WAL dropped, then copied per node."""
    seed = pg.PgNode.init_primary(pgdir / "template", pg.free_port(), name="template")
    seed.start(settings=pg.DROP_OLD_WAL_SETTINGS)
    seed.query("CREATE TABLE visits (id int PRIMARY KEY, note text)")
    seed.query("INSERT INTO visits VALUES (1, 'seeded')")
    seed.drop_old_wal()
    seed.stop()
    assert len([f for f in os.listdir(seed.datadir / "pg_wal") if len(f) == 24]) == 1
    primary = pg.PgNode.from_copy(seed.datadir, pgdir / "primary", pg.free_port(), name="pg-primary")
    standby = pg.PgNode.from_copy(seed.datadir, pgdir / "samecity", pg.free_port(), name="pg-samecity")
    primary.start()
    relay = Relay(primary.port)
    standby.follow("127.0.0.1", relay.port)
    standby.start()
    pg.wait_streaming(standby)
    assert standby.is_in_recovery() and not primary.is_in_recovery()
    assert [(s.app_name, s.state) for s in pg.replication_status(primary)] == [("pg-samecity", "streaming")]
    pg.set_sync(primary, ["pg-samecity"])
    primary.query("INSERT INTO visits SELECT g, 'x' FROM generate_series(2, 50) g")
    assert _ids(standby) == set(range(1, 51))  # sync: acknowledged means on the standby
    # the copies summarize their own WAL: an incremental backup works on them
    full = pg.base_backup(primary, pgdir / "backups" / "full")
    primary.query("INSERT INTO visits VALUES (51, 'after the full backup')")
    incr = pg.incremental_backup(primary, pgdir / "backups" / "incr", full)
    assert incr.kind == "incremental"
    primary.crash()
    standby.promote()
    assert standby.query("SELECT max(id) FROM visits") == [(51,)]
    standby.stop()
    relay.cut()


def test_stop_frees_the_port_and_restart_works(pgdir):
    node = pg.PgNode.init_primary(pgdir / "db", pg.free_port(), name="pg-main")
    node.start()
    node.stop()
    assert not node.is_running()
    with socket.create_server(("127.0.0.1", node.port)):
        pass  # nothing listens there any more
    again = pg.PgNode.from_datadir(node.datadir)
    assert (again.port, again.name) == (node.port, "pg-main")
    again.start()
    assert again.query("SELECT 1") == [(1,)]
    again.stop()


def test_full_and_incremental_backup_restore(pgdir):
    primary = pg.PgNode.init_primary(pgdir / "primary", pg.free_port())
    primary.start()
    primary.query("CREATE TABLE visits (id int PRIMARY KEY, note text)")
    primary.query("INSERT INTO visits SELECT g, 'night' FROM generate_series(1, 1000) g")
    full = pg.base_backup(primary, pgdir / "backups" / "full")
    primary.query("INSERT INTO visits SELECT g, 'morning' FROM generate_series(1001, 1500) g")
    incr = pg.incremental_backup(primary, pgdir / "backups" / "incr-1", full)
    assert incr.kind == "incremental" and incr.size_bytes < full.size_bytes
    primary.query("INSERT INTO visits SELECT g, 'lost' FROM generate_series(1501, 1600) g")
    primary.crash()

    from_full = pg.restore(full, pgdir / "restored-full", pg.free_port())
    from_full.start()
    assert from_full.query("SELECT count(*) FROM visits") == [(1000,)]
    assert not from_full.is_in_recovery()
    from_full.stop()

    from_chain = pg.restore([full, incr], pgdir / "restored-chain", pg.free_port())
    from_chain.start()
    assert from_chain.query("SELECT count(*) FROM visits") == [(1500,)]
    from_chain.query("INSERT INTO visits VALUES (0, 'writable')")


def test_kill_leftovers_stops_everything_under_the_run_dir(tmp_path):
    root = pg.data_root(tmp_path)
    primary = pg.PgNode.init_primary(root / "primary", pg.free_port())
    primary.start()
    standby = pg.PgNode.create_standby("127.0.0.1", primary.port, root / "standby", pg.free_port(),
                                       app_name="sb")
    # as after `hospital-drill run` was SIGKILLed: nothing but the directory is left to go by
    pids = pg.kill_leftovers(tmp_path)
    assert primary.pid is None and standby.pid is None
    assert set(pids) >= {primary.proc.pid, standby.proc.pid}
    assert postgres_under(root) == []
    pg.remove_data_root(tmp_path)
    assert not root.exists()


def test_binaries_run_unprivileged_when_root():
    bins = pg.PgBinaries.locate()
    if os.geteuid() != 0:
        assert bins.user is None
        return
    assert bins.user == pg.RUN_AS_USER
    assert bins.bin_dir.is_relative_to(pg.CACHE_ROOT)
    assert bins.can_reach(bins.bin_dir / "postgres")
