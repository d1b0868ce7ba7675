"""The control surface's environment and URL templates, read off a fake stack's addresses."""
from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from harness.control.env import check_template, expand, script_env, url_names
from test_exec_steps import FakeStack, make_ctx


def test_every_variable_is_read_off_the_stack(tmp_path):
    ctx = make_ctx(tmp_path, http="127.0.0.1:18080")
    env = script_env(ctx)
    run = str((tmp_path / "run").resolve())
    assert env["HD_RUN_DIR"] == run
    assert env["HD_STEP"] == "s1" and env["HD_STEP_OUTPUT"] == f"{run}/steps/s1"
    assert env["HD_BACKEND"] == "fake" and env["HD_TIME_SCALE"] == "60"
    assert float(env["HD_T0_WALL"]) == pytest.approx(ctx.lane.clock.t0)
    assert float(env["HD_STEP_DRILL"]) >= 0
    assert env["HD_VIP_URL"] == "http://127.0.0.1:18080"
    assert env["HD_TOXIPROXY_URL"] == "http://127.0.0.1:8474"
    assert env["HD_APP_PRIMARY_URL"] == "http://127.0.0.1:18080"
    assert env["HD_APP_BACKUP_URL"] == "http://127.0.0.1:8"
    assert env["HD_APPS"] == "app-primary app-backup"
    assert env["HD_OFFLINE_URL"] == "http://127.0.0.1:6002"
    # the primary is reached through the link that leads to it; the standby has none: direct
    assert env["HD_DB_DSN"].startswith("host=127.0.0.1 port=6001 dbname=hospital user=hospital")
    assert env["HD_PG_PRIMARY_DSN"].startswith("host=127.0.0.1 port=6001 ")
    assert env["HD_PG_PRIMARY_LINK"] == "db"
    assert env["HD_PG_PRIMARY_DIRECT_DSN"].startswith("host=127.0.0.1 port=5501 ")
    assert env["HD_PG_SAMECITY_DSN"] == env["HD_PG_SAMECITY_DIRECT_DSN"]
    assert env["HD_PG_SAMECITY_DIRECT_DSN"].startswith("host=127.0.0.1 port=5502 ")
    assert env["HD_PG_SAMECITY_LINK"] == ""
    assert env["HD_PG_NODES"] == "pg-primary pg-samecity"
    assert (env["HD_PG_PRIMARY"], env["HD_PG_STANDBY"]) == ("pg-primary", "pg-samecity")
    assert env["HD_PG_STANDBYS"] == "pg-samecity pg-remote"
    assert all(k.startswith("HD_") for k in env)


def test_a_drill_without_the_remote_dr_names_one_standby(tmp_path):
    ctx = make_ctx(tmp_path)
    ctx.stack.config.remote_dr = False
    assert script_env(ctx)["HD_PG_STANDBYS"] == "pg-samecity"


def test_a_failover_moves_the_link_and_the_env_follows(tmp_path):
    ctx = make_ctx(tmp_path)
    ctx.stack.links.proxies = lambda: {"db": {"upstream": "127.0.0.1:5502"}}
    env = script_env(ctx)
    assert env["HD_PG_SAMECITY_LINK"] == "db" and env["HD_PG_PRIMARY_LINK"] == ""
    assert env["HD_PG_SAMECITY_DSN"].startswith("host=127.0.0.1 port=6001 ")


def test_toxiproxy_down_leaves_every_dsn_direct(tmp_path):
    ctx = make_ctx(tmp_path)

    def down():
        raise ConnectionError("refused")
    ctx.stack.links.proxies = down
    env = script_env(ctx)
    assert env["HD_PG_PRIMARY_DSN"] == env["HD_PG_PRIMARY_DIRECT_DSN"]


def test_hd_ctl_runs_this_harness_from_anywhere(tmp_path):
    ctx = make_ctx(tmp_path)
    env = script_env(ctx)
    argv = shlex.split(env["HD_CTL"])
    assert argv[:4] == [sys.executable, "-m", "harness.cli", "ctl"]
    assert argv[4] == env["HD_RUN_DIR"]
    from harness.control.env import harness_pythonpath
    r = subprocess.run([sys.executable, "-m", "harness.cli", "--help"], cwd=tmp_path, capture_output=True,
                       env={"PYTHONPATH": harness_pythonpath(None), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert r.returncode == 0, r.stderr


def test_url_templates_name_the_stacks_addresses(tmp_path):
    stack = FakeStack(tmp_path, "127.0.0.1:18080")
    assert expand("{vip}/health", stack) == "http://127.0.0.1:18080/health"
    assert expand("{app.app-backup}/admin/notice", stack) == "http://127.0.0.1:8/admin/notice"
    assert expand("{link.offline}/records?since=0", stack) == "http://127.0.0.1:6002/records?since=0"
    assert expand("{toxiproxy}/proxies", stack) == "http://127.0.0.1:8474/proxies"
    with pytest.raises(ValueError, match=r"\{node.payment-backup\} is not up"):
        expand("{node.payment-backup}/_mode", stack)


@pytest.mark.parametrize("template,why", [
    ("{app.app-9}/x", "unknown address {app.app-9}"),
    ("{vip/x", "a brace that opens no address name"),
    ("http://db.hospital.example/x", "on this machine"),
    ("http://127.hospital.example/x", "on this machine"),
    ("https://example.org/x", "on this machine"),
    ("/admin/notice", "start with a stack address"),
])
def test_bad_templates_are_refused_with_the_reason(template, why):
    with pytest.raises(ValueError, match=why.replace("{", r"\{").replace("}", r"\}")):
        check_template(template)


def test_loopback_urls_and_every_documented_name_pass():
    assert check_template("http://127.0.0.1:9000/hook") == "http://127.0.0.1:9000/hook"
    assert check_template("http://localhost:9000/hook")
    assert check_template("http://[::1]:9000/hook")
    for name in url_names():
        assert check_template(f"{{{name}}}/x")
    assert {"vip", "toxiproxy", "app.app-primary", "node.egress-gw", "link.db"} <= set(url_names())
