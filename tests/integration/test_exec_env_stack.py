"""The exec step's environment against a real local stack: a script reaches each PostgreSQL node with
the wheel's psql through the DSNs it is given (through the `db` link and direct), the patient entry,
and `hospital-drill ctl` through HD_CTL; an http step's template reaches an app's admin call."""
from __future__ import annotations

import threading

import pytest

from harness.clock import DrillClock
from harness.models import ExecStep, HttpStep, StackConfig
from harness.rundir import RunDir
from harness.runbook.actions import ActionContext
from harness.runbook.exec_steps import run_exec, run_http
from harness.stack import local
from tests.helpers import assert_nothing_left

SCRIPT = """#!/bin/sh
set -eu
q() { "$HD_PG_BIN/psql" "$1" -Atc "$2"; }
echo "hd: primary_in_recovery=$(q "$HD_PG_PRIMARY_DSN" 'select pg_is_in_recovery()')"
echo "hd: standby_in_recovery=$(q "$HD_PG_SAMECITY_DIRECT_DSN" 'select pg_is_in_recovery()')"
echo "hd: db_port=$(q "$HD_DB_DSN" 'show port')"
echo "hd: direct_port=$(q "$HD_PG_PRIMARY_DIRECT_DSN" 'show port')"
python3 -c 'import json, os, urllib.request
print(json.dumps({"vip": json.load(urllib.request.urlopen(os.environ["HD_VIP_URL"] + "/health"))["status"]}))'
$HD_CTL --help > /dev/null && echo "hd: ctl=runs"
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("stack")
    s = local.up(run_dir, StackConfig(remote_dr=False), time_scale=60)
    addresses = [*s.addresses.values(), *s.link_listen.values()]
    yield s
    s.down()
    assert_nothing_left(run_dir, addresses)


def _ctx(stack) -> ActionContext:
    clock = DrillClock(60)
    clock.start()
    return ActionContext(stack, None, None, None, 60, lane=clock.lane("step:failover"),  # type: ignore[arg-type]
                         stop=threading.Event(), run_dir=RunDir(stack.run_dir), step="failover")


def test_a_script_reaches_the_stack_through_its_environment(stack, tmp_path):
    script = tmp_path / "check.sh"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    ok, detail = run_exec(_ctx(stack), ExecStep(script=str(script), cwd=str(tmp_path)))
    assert ok, detail
    pg_port = int(stack.addresses["pg-primary"].rsplit(":", 1)[1])
    assert detail["reported"] == {"primary_in_recovery": "f", "standby_in_recovery": "t",
                                  "db_port": pg_port, "direct_port": pg_port, "vip": "ok", "ctl": "runs"}


def test_an_http_step_sets_the_apps_notice(stack):
    ok, detail = run_http(_ctx(stack), HttpStep(method="POST", url="{app.app-primary}/admin/notice",
                                                json={"text": "系统维护中"}))
    assert ok and detail["status"] == 200
    ok, detail = run_http(_ctx(stack), HttpStep(url="{vip}/api/notice"))
    assert ok and "系统维护中" in detail["body"]
