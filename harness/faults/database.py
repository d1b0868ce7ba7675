"""Database faults."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from .base import Fault, register


class DbCrashParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # A host that loses power takes its TCP sessions with it: what was still in flight on its links
    # (e.g. WAL not yet delivered to a standby) never arrives.
    cut_links: bool = True


@register
class DbCrash(Fault):
    type_name = "db_crash"
    description = "SIGKILL of a database server's postmaster and every backend (power loss)"
    Params = DbCrashParams
    target_kinds = ("postgres",)
    default_target = "pg-primary"
    crashes_database = True

    def inject(self, stack):
        detail = stack.crash_db(self.target, cut_links=self.params.cut_links)
        self.injected = True
        return detail

    def revert(self, stack):
        # Bringing a crashed primary back beside a promoted standby would make two primaries, so
        # the node is only restarted when nothing took over; otherwise it stays down for rebuild.
        if stack.db_role(self.target) == "crashed" and stack.current_primary() is None:
            stack.restart_db(self.target)
            return {"restarted": self.target}
        return {"left_down": self.target, "reason": "a standby took over; rebuild it as a standby"}
