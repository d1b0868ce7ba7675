"""Faults on our own services: app servers dying, bot floods on the patient API, the front end's
release and its cache (a false alarm), third-party interfaces misbehaving."""
from __future__ import annotations

import math
import time
from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..load.records import iter_records
from ..models import Duration
from ..rundir import RunDir
from ..stack.process import record_pids
from .base import Fault, register


class ModeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["slow", "error"]
    delay_ms: int = Field(3000, ge=0)


@register
class ThirdPartyMode(Fault):
    type_name = "third_party_mode"
    description = "a third-party interface answers slowly or with errors"
    Params = ModeParams
    target_kinds = ("thirdparty",)

    def inject(self, stack):
        stack.set_third_party_mode(self.target, self.params.mode, self.params.delay_ms)
        self.injected = True
        return {"service": self.target, "mode": self.params.mode}

    def revert(self, stack):
        stack.set_third_party_mode(self.target, "healthy", 0)
        return {"service": self.target, "mode": "healthy"}


# --- server down -----------------------------------------------------------------------------------

@register
class ServiceKill(Fault):
    type_name = "service_kill"
    description = "an app server (or another service of ours) dies: SIGKILL, as its host losing power"
    target_kinds = ("app", "thirdparty", "egress", "offline")
    default_target = "app-primary"

    def inject(self, stack):
        detail = stack.kill_service(self.target)
        self.injected = True
        return detail

    def revert(self, stack):
        if self.target not in stack.killed_services:
            return {"service": self.target, "already": "running"}
        return {"restarted": self.target, **stack.start_service(self.target)}


# --- malicious traffic -----------------------------------------------------------------------------

class FloodParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bots: int = Field(200, ge=1, le=1000, description="concurrent bot connections")
    clients: list[str] = Field(default_factory=lambda: ["P04998", "P04999", "P05000"], min_length=1,
                               description="the (stolen) client keys the bots present")
    path: str = Field("/api/exam-reports", pattern=r"^/api/",
                      description="what they hammer: the patient API's heaviest call")
    wait: tuple[float, float] = Field((0.0, 0.0), description="real seconds between a bot's requests")
    max_duration: Duration = Field(7200.0, description="the flood ends by itself after this (drill)")

    @field_validator("wait")
    @classmethod
    def _wait(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] <= v[1]:
            raise ValueError("wait is [min, max] seconds with 0 <= min <= max")
        return v


@register
class BotFlood(Fault):
    type_name = "bot_flood"
    description = ("a flood of bot requests on the patient API: a separate, bounded Locust process "
                   "of attacker bots (records tagged persona 'attacker', kept apart from patients')")
    Params = FloodParams
    target_links = True
    default_target = "app-vip"

    def prepare(self, stack, at_wall: float) -> None:
        """Start the bots' process now, holding them until the flood's time: a new Locust process
        takes a second or more to come up, which would otherwise count as the flood's onset."""
        from ..load.runner import PatientLoad  # the harness side of Locust: a subprocess
        p = self.params
        bound = max(0.0, at_wall - time.time()) + (self.spec.duration or p.max_duration) / stack.time_scale
        run_dir = RunDir(stack.run_dir)
        self.dir, self.records = run_dir.attack_of(self.id), run_dir.attack_records(self.id)
        self.load = PatientLoad(f"http://{stack.link_listen[self.target]}", self.records,
                                users=p.bots, spawn_rate=max(p.bots, 1) * 10,
                                config={"attack": {"clients": p.clients, "path": p.path,
                                                   "wait": list(p.wait), "start_at": at_wall}},
                                log_dir=self.dir, run_time=f"{max(10, math.ceil(bound + 5))}s")
        self.prepared = True  # from here on a revert must stop whatever started
        self.started_wall = at_wall
        self.load.start()
        # like the patient load: `hospital-drill down` finds them if this run is killed
        record_pids(stack.run_dir, {f"attack-{self.id}-{i}": pid for i, pid in enumerate(self.load.pids())})

    def inject(self, stack):
        p = self.params
        if not self.prepared:  # not prepared ahead (e.g. called alone): start now
            self.prepare(stack, time.time())
        self.injected = True
        return {"link": self.target, "bots": p.bots, "clients": p.clients, "path": p.path,
                "records": str(self.records), "pids": self.load.pids()}

    def revert(self, stack):
        codes = self.load.stop()
        seen, first = Counter(), None
        for rec in iter_records(self.records):
            seen["requests"] += 1
            seen["ok" if rec.get("ok") else f"status {rec.get('status')}"] += 1
            if isinstance(rec.get("t"), (int, float)):
                first = rec["t"] if first is None else min(first, rec["t"])
        return {"link": self.target, "stopped": codes, "bot_requests": dict(seen),
                "first_bot_request_wall": first,
                "flood_began_after_s": None if first is None else round(first - self.started_wall, 3)}


# --- a false alarm: the front end's release and the cache -------------------------------------------

class ReleaseParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(2, ge=2, description="the client version the new release's API requires")


@register
class StaleFrontend(Fault):
    type_name = "stale_frontend"
    description = ("a front-end release whose new script has not reached the cache: patients keep "
                   "the old script and only its exam bookings are refused (409) until a refresh")
    Params = ReleaseParams

    def inject(self, stack):
        answered = _post_apps(stack, "/admin/release",
                              {"version": self.params.version, "stale_cache": True})
        self.injected = True
        return {"release": self.params.version, "cache": "stale", "apps": answered}

    def revert(self, stack):
        return {"cache": "refreshed", "apps": _post_apps(stack, "/admin/cache/refresh", {})}


def _post_apps(stack, path: str, body: dict) -> dict:
    answered = stack.post_apps(path, body, apps=stack.live_app_nodes())
    if not answered or not all(v == 200 for v in answered.values()):
        raise RuntimeError(f"{path}: not taken by every running app instance: {answered}")
    return answered
