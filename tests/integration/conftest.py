import pytest

from harness.stack import pg_shm
from harness.stack import postgres as pg
from tests.helpers import postgres_under


@pytest.fixture
def pgdir(tmp_path):
    """PostgreSQL data under tmp_path (relocated by data_root when root cannot lend it to the run-as
    user). Afterwards no server of it may be left running; its shared memory and data are removed."""
    root = pg.data_root(tmp_path)
    yield root
    pg.kill_leftovers(tmp_path)
    leftover = postgres_under(root)
    pg_shm.release_under(root)
    pg.remove_data_root(tmp_path)
    assert not leftover, f"postgres processes left running: {leftover}"
