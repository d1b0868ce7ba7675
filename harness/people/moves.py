"""The people's moves as journal records, written alike by the live desk (measured) and the
simulated operator of an automatic run (`modeled: true`): absences, claims, completions, blocks.

A claim and a completion are on the step's lane, so that the person's time is on the step's causal
chain: measured in a live drill (a person's real time counts 1:1), a declared wait when modeled.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..clock import Lane
    from ..journal import Journal
    from ..models import RunbookStep
    from .roster import Person, Roster


def journal_absences(journal: "Journal", roster: "Roster") -> None:
    for p in roster.absent:
        journal.record("person.absent", person=p.name, group=p.group, tier=p.tier, why=p.absent,
                       seed=roster.seed if p.absent == "drawn" else None)


def claimed(journal: "Journal", lane: "Lane", step: "RunbookStep", person: "Person", opened: float,
            *, modeled: bool) -> dict:
    """`opened`: the step's drill time on its lane when it opened; the call-out runs from there."""
    call_out = max(0.0, lane.now() - opened)
    return journal.record("person.claimed", lane=lane, step=step.id, person=person.name,
                          group=person.group, tier=person.tier, call_out=round(call_out, 3),
                          modeled=modeled)


def done(journal: "Journal", lane: "Lane", step: "RunbookStep", person: "Person", note: str = "",
         *, modeled: bool) -> dict:
    return journal.record("person.done", lane=lane, step=step.id, person=person.name, note=note,
                          modeled=modeled)


def outcome(claim: dict, finish: dict, **extra) -> dict:
    """A manual step's `step.finished` detail: who took it, their call-out and who finished it."""
    return {"by": finish["person"], "claimed_by": claim["person"], "call_out": claim["call_out"],
            "modeled": finish["modeled"], **extra}
