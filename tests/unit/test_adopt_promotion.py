"""A promotion a script made with psql is filed as the drill's own; the env names each standby's
replication link for the script that moves it."""
from __future__ import annotations

from harness.control.adopt import adopt_promotions
from harness.control.env import script_env
from harness.stack.rpo import promotions
from test_exec_steps import FakeStack, make_ctx


def answers(**in_recovery: bool):
    """A fake `write_state`: each node by its port, as the FakeStack addresses them."""
    by_port = {"5501": "pg-primary", "5502": "pg-samecity", "5503": "pg-remote"}

    def ask(dsn: str):
        port = dict(p.split("=", 1) for p in dsn.split())["port"]
        node = by_port[port].removeprefix("pg-")
        return None if node not in in_recovery else {"in_recovery": in_recovery[node], "read_only": False}
    return ask


def stack_with_remote(tmp_path) -> FakeStack:
    stack = FakeStack(tmp_path)
    stack.addresses["pg-remote"] = "127.0.0.1:5503"
    stack.db_roles.update({"pg-primary": "crashed", "pg-remote": "standby"})
    return stack


def test_a_standby_that_answers_as_primary_is_filed_primary(tmp_path):
    stack = stack_with_remote(tmp_path)
    assert adopt_promotions(stack, answers(samecity=False, remote=True)) == ["pg-samecity"]
    assert stack.current_primary() == "pg-samecity"
    assert stack.db_roles == {"pg-primary": "crashed", "pg-samecity": "primary", "pg-remote": "standby"}


def test_standbys_still_in_recovery_or_silent_keep_their_roles(tmp_path):
    stack = stack_with_remote(tmp_path)
    assert adopt_promotions(stack, answers(samecity=True)) == []  # pg-remote does not answer
    assert stack.current_primary() is None
    assert stack.db_roles["pg-samecity"] == stack.db_roles["pg-remote"] == "standby"


def test_a_living_primary_of_record_is_filed_stopped(tmp_path):
    stack = FakeStack(tmp_path)  # pg-primary filed primary, pg-samecity standby
    assert adopt_promotions(stack, answers(samecity=False)) == ["pg-samecity"]
    assert stack.db_roles == {"pg-primary": "stopped", "pg-samecity": "primary"}
    # a second look finds nothing more to adopt
    assert adopt_promotions(stack, answers(samecity=False)) == []


def test_the_step_naming_it_counts_as_a_promotion_for_rpo():
    finished = {"type": "step.finished", "ok": True, "step": "promote-same-city", "wall": 1.0,
                "detail": {"promoted": "pg-samecity", "promoted_outside_ctl": ["pg-samecity"]}}
    failed = {**finished, "ok": False}
    assert promotions([failed, finished]) == [finished]


def test_each_standby_is_told_its_replication_link(tmp_path):
    ctx = make_ctx(tmp_path)
    ctx.stack.link_listen.update({"repl-samecity": "127.0.0.1:6003"})
    env = script_env(ctx)
    assert env["HD_PG_SAMECITY_UPSTREAM_LINK"] == "repl-samecity"
    assert "HD_PG_PRIMARY_UPSTREAM_LINK" not in env
    # a node that is not up in this stack (no remote DR) gets none
    assert "HD_PG_REMOTE_UPSTREAM_LINK" not in env
