"""Faults on our own services (app instances, third parties)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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
