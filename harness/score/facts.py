"""The journal's key moments, and the reading of drill time from it.

Conventions of the score card:
- drill time = real seconds × time_scale (the effective scale of the journal's `run.started`);
- t_fault = the wall time of the first `fault.injected`; every measured time is counted from it;
- T+ = drill seconds from the scenario start (`scenario.started`), the x axis of the charts.
"""
from __future__ import annotations

from collections.abc import Iterator

from ..journal import JournalRead
from .values import wall_of


class Facts:
    """The journal's key moments, and converters to drill seconds.

    Time model v2 (DESIGN.md: compress the plan's waits, never the machines' work): an event's figure
    is its own causal drill time (`drill`, stamped by the lane that did the work) minus the fault's.
    Journals of the v1 model (no `time_model` in run.started) keep v1's wall × scale reading."""

    def __init__(self, journal: JournalRead, scale: float):
        self.events = journal.events
        self.scale = scale
        started = journal.first("run.started") or {}
        self.time_model = str(started.get("time_model") or "v1")
        self.by_seq = {e["seq"]: e for e in self.events if isinstance(e.get("seq"), int)}
        fault = journal.first("fault.injected")
        self.fault = fault
        self.t_fault = wall_of(fault)
        self.t0 = wall_of(journal.first("scenario.started"))
        self.recovery = next((e for e in journal.of_type("recovery")
                              if self.t_fault is not None and (self._at(e) or 0) >= self.t_fault), None)
        self.t_recovered = self._at(self.recovery)
        self.finished = journal.first("run.finished")
        walls = [w for w in map(wall_of, self.events) if w is not None]
        self.t_start = min(walls) if walls else None
        self.t_end = max(walls) if walls else None
        self.origin = self.t0 if self.t0 is not None else self.t_start

    @staticmethod
    def _at(e: dict | None) -> float | None:
        # the monitor journals recovery once it is sure; `at_wall` is when it really began
        if e and isinstance(e.get("at_wall"), (int, float)):
            return float(e["at_wall"])
        return wall_of(e)

    def rel(self, wall: float | None) -> float | None:
        """Scenario-timeline drill seconds from t_fault (T+0 when no fault was injected): for what
        has no lane of its own, e.g. patients' requests."""
        ref = self.t_fault if self.t_fault is not None else self.t0
        # rounded to the ms: float noise of wall × scale must not show as '12.0s' for 12 s
        return None if wall is None or ref is None else round((wall - ref) * self.scale, 3)

    def since_fault(self, e: dict | None, *, drill_key: str = "drill",
                    wall_key: str = "wall") -> float | None:
        """An event's figure: its causal drill time minus the fault's (v2), else rel(wall)."""
        if e is None:
            return None
        d, ref = e.get(drill_key), (self.fault or {}).get("drill")
        if (self.time_model != "v1" and isinstance(d, (int, float)) and isinstance(ref, (int, float))
                and isinstance(e.get("chain" if drill_key == "drill" else "at_chain"), dict)):
            return round(d - ref, 3)
        w = e.get(wall_key)
        return self.rel(float(w) if isinstance(w, (int, float)) else None)

    def breakdown(self, e: dict | None, chain_key: str = "chain") -> dict[str, float] | None:
        """Declared waits and real work along the event's causal chain back to the fault: each
        event's `chain` names the event its lane was anchored at (`cause`)."""
        if e is None or self.fault is None or not isinstance(e.get(chain_key), dict):
            return None
        declared = real = 0.0
        links = 0
        own = self.fault.get("chain") if isinstance(self.fault.get("chain"), dict) else None
        for node, chain in self.causal_chain(e, chain_key):
            d, r = float(chain.get("declared") or 0.0), float(chain.get("real") or 0.0)
            links += 1
            if self._on_fault_lane(chain):
                # an event on the fault's own lane and anchor (a second fault at the same scenario
                # time): only what that lane did after the fault counts, not its wait from T+0
                declared += max(0.0, d - float(own.get("declared") or 0.0))
                real += max(0.0, r - float(own.get("real") or 0.0))
                break
            declared, real = declared + d, real + r
        return {"declared": round(declared, 3), "real": round(real, 3), "links": links}

    def _on_fault_lane(self, chain: dict) -> bool:
        own = (self.fault or {}).get("chain")
        return isinstance(own, dict) and chain.get("lane") == own.get("lane") \
            and chain.get("cause") == own.get("cause")

    def causal_chain(self, e: dict | None, chain_key: str = "chain") -> Iterator[tuple[dict, dict]]:
        """(event, its lane's account) from `e` back along the causes to the fault: the events a
        figure's time passed through (an alert, the steps that followed it, what patients saw)."""
        if e is None or self.fault is None:
            return
        node, chain, seen = e, e.get(chain_key), set()
        fault_seq = self.fault.get("seq")
        while isinstance(chain, dict) and node.get("seq") not in seen:
            seen.add(node.get("seq"))
            yield node, chain
            cause = chain.get("cause")
            if self._on_fault_lane(chain) or cause is None or cause == fault_seq or cause not in self.by_seq:
                return
            node = self.by_seq[cause]
            chain = node.get("chain")

    def tplus(self, wall: float | None) -> float | None:
        return None if wall is None or self.origin is None else round((wall - self.origin) * self.scale, 3)

    def tplus_of_rel(self, at: float | None) -> float | None:
        """F+ drill s → T+ drill s."""
        ref = self.t_fault if self.t_fault is not None else self.t0
        if at is None or ref is None or self.origin is None:
            return None
        return round(at + (ref - self.origin) * self.scale, 3)
