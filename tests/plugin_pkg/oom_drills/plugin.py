"""The kernel's OOM killer takes the app server that serves patients; the runbook moves the VIP to
the standby instance and brings the killed one back as the new standby; the report lists each rebuild.

Registered through entry points (pyproject.toml), with the harness's own decorators.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from harness.faults.base import Fault, register
from harness.report.sections import section
from harness.runbook.actions import ActionContext, ActionFailed, Params, action
from harness.runbook.service_actions import SwitchAppParams, switch_app


@register
class AppOomKill(Fault):
    type_name = "app_oom_kill"
    description = "the OOM killer ends an app server's process (SIGKILL); its host stays up"
    target_kinds = ("app",)
    default_target = "app-primary"

    def inject(self, stack) -> dict[str, Any]:
        detail = stack.kill_service(self.target)
        self.injected = True
        return {**detail, "killed_by": "oom-killer"}

    def revert(self, stack) -> dict[str, Any]:
        if self.target not in stack.killed_services:  # the runbook already brought it back
            return {"service": self.target, "already": "running"}
        return {"restarted": self.target, **stack.start_service(self.target)}


class RebuildParams(SwitchAppParams):
    crashed: str = "app-primary"


@action("rebuild_app", RebuildParams,
        "move the VIP to the standby app server, then start the killed one again as the new standby",
        refs=(("to", ("app",), False), ("crashed", ("app",), False), ("link", (), True)), failover=True)
def rebuild_app(ctx: ActionContext, p: RebuildParams) -> dict[str, Any]:
    if p.crashed not in ctx.stack.killed_services:
        raise ActionFailed(f"{p.crashed} is running: nothing to rebuild")
    switched = switch_app(ctx, SwitchAppParams(to=p.to, link=p.link, wait=p.wait))
    started = ctx.stack.start_service(p.crashed)
    health = requests.get(f"{ctx.stack.url(p.crashed)}/health", timeout=2.0)
    if health.status_code != 200:
        raise ActionFailed(f"{p.crashed} started again but answers HTTP {health.status_code}")
    return {"serving": switched["serving"], "rebuilt": p.crashed, "standby_address": started["address"]}


section("oom_rebuilds", "steps", "analysis", "OOM rebuilds 内存溢出重建",
        path=Path(__file__).with_name("rebuilds.j2"))
