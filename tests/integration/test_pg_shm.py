"""A SIGKILLed PostgreSQL server's shared memory: found as its data directory's own, and removed."""
from __future__ import annotations

import pytest

from harness.stack import pg_shm
from harness.stack import postgres as pg

pytestmark = pytest.mark.integration



def _started(pgdir, name: str) -> pg.PgNode:
    node = pg.PgNode.init_primary(pgdir / name, pg.free_port(), name=name)
    node.start()
    node.query("SELECT count(*) FROM pg_stat_activity")
    return node


def test_a_crashed_server_leaves_segments_that_release_removes(pgdir):
    node = _started(pgdir, "primary")
    assert pg_shm.leftover(node.datadir) is None  # alive: its processes are still attached
    node.crash()  # waits until every process of the server is gone

    found = pg_shm.leftover(node.datadir)
    assert found is not None, "the killed server's shim was not found"
    assert found.files and all(f.exists() for f in found.files)
    assert found.files[0].name.startswith("PostgreSQL.")
    assert found.shmid in pg_shm.sysv_segments()

    removed = pg_shm.release_under(pgdir)
    assert len(removed) == len(found.files) + 1
    assert not any(f.exists() for f in found.files)
    assert found.shmid not in pg_shm.sysv_segments()
    assert pg_shm.release_under(pgdir) == []  # nothing is claimed twice


def test_a_clean_shutdown_leaves_nothing_to_claim(pgdir):
    node = _started(pgdir, "primary")
    node.stop()
    assert pg_shm.leftover(node.datadir) is None
    assert pg_shm.release_under(pgdir) == []


def test_another_directory_never_claims_a_segment(pgdir):
    # a second directory with the first one's postmaster.pid copied in: the inode does not match
    node = _started(pgdir, "primary")
    node.crash()
    other = pgdir / "impostor"
    other.mkdir()
    (other / "postmaster.pid").write_text((node.datadir / "postmaster.pid").read_text())
    assert pg_shm.leftover(other) is None
    assert pg_shm.leftover(node.datadir) is not None
