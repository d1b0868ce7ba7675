"""Network faults on Toxiproxy links."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .base import Fault, register


class ToxicParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    toxic: Literal["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
                   "limit_data"]
    attributes: dict[str, Any] = Field(default_factory=dict)
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0, le=1)


@register
class LinkToxic(Fault):
    type_name = "link_toxic"
    description = "degrade a link with a Toxiproxy toxic (latency, bandwidth, timeout, …)"
    Params = ToxicParams
    target_links = True

    def inject(self, stack):
        p = self.params
        self.toxic_name = stack.links.add_toxic(self.target, p.toxic, p.attributes, stream=p.stream,
                                                toxicity=p.toxicity, name=f"{self.id}-{p.toxic}")
        self.injected = True
        return {"link": self.target, "toxic": p.toxic, "attributes": p.attributes}

    def revert(self, stack):
        stack.links.remove_toxic(self.target, self.toxic_name)
        return {"link": self.target, "removed": self.toxic_name}


@register
class LinkDown(Fault):
    type_name = "link_down"
    description = "take a link down entirely (proxy disabled: nothing listens, connections cut)"
    target_links = True

    def inject(self, stack):
        stack.links.set_enabled(self.target, False)
        self.injected = True
        return {"link": self.target, "enabled": False}

    def revert(self, stack):
        stack.links.set_enabled(self.target, True)
        return {"link": self.target, "enabled": True}
