"""Two primaries, asked of real PostgreSQL nodes: a promoted standby next to an old primary that still
takes writes is found; fencing the old one (read-only, or stopped) leaves nothing to find."""
from __future__ import annotations

import pytest

from harness.stack import postgres as pg
from harness.stack.fencing import split_brain, write_state

pytestmark = pytest.mark.integration



class NodesStack:
    """What split_brain reads of a stack, over real nodes."""

    def __init__(self, nodes: dict[str, pg.PgNode], roles: dict[str, str]):
        self.nodes, self.db_roles = nodes, roles
        self.addresses = {n: f"127.0.0.1:{node.port}" for n, node in nodes.items()}

    def current_primary(self):
        return next((n for n, r in self.db_roles.items() if r == "primary"), None)

    def db_dsn(self, node: str) -> str:
        return self.nodes[node].dsn()


def test_an_unfenced_old_primary_is_two_primaries(pgdir):
    primary = pg.PgNode.init_primary(pgdir / "primary", pg.free_port(), name="pg-primary")
    primary.start()
    standby = pg.PgNode.create_standby("127.0.0.1", primary.port, pgdir / "samecity", pg.free_port(),
                                       app_name="pg-samecity")
    assert write_state(standby.dsn()) == {"in_recovery": True, "read_only": True}
    standby.promote()
    # the stack files the old primary as stopped the moment it promotes: the node says otherwise
    stack = NodesStack({"pg-primary": primary, "pg-samecity": standby},
                       {"pg-primary": "stopped", "pg-samecity": "primary"})
    events = [{"type": "step.finished", "wall": 1.0, "step": "promote", "ok": True,
               "action": "promote_standby", "detail": {"promoted": "pg-samecity"}}]
    found = split_brain(events, stack)
    assert found is not None and found["writable"] == ["pg-primary"]
    assert found["nodes"][0]["in_recovery"] is False and found["nodes"][0]["read_only"] is False
    # fenced read-only: no longer a primary that takes writes
    primary.query("ALTER SYSTEM SET default_transaction_read_only = on")
    primary.query("SELECT pg_reload_conf()")
    assert write_state(primary.dsn())["read_only"] is True
    assert split_brain(events, stack) is None
    primary.stop()
    assert write_state(primary.dsn()) is None and split_brain(events, stack) is None
    standby.stop()
