"""The drill's roster: every member of the emergency command's groups, core and backup, with skills,
location and phone; who is absent (named by the drill, or drawn from a seed); and who is next in line
for a step.

Next in line for a step: a present member of the step's group who has the skill or role the step
`needs` (any member of the group when it needs none), core before backup, nearest first. Nearest is
the shortest call-out of the member's location (`people.call_out`), ties in roster order.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from ..plan.static import has_skill

if TYPE_CHECKING:
    from ..models import Drill, People, RunbookStep

Tier = Literal["core", "backup"]
Absence = Literal["named", "drawn"]


@dataclass(frozen=True)
class Person:
    name: str
    group: str
    tier: Tier
    role: str
    skills: tuple[str, ...]
    location: str
    phone: str
    absent: Absence | None = None  # why they cannot be reached, None: present

    def able(self, needs: str | None) -> bool:
        return needs is None or has_skill(self, needs)

    def card(self) -> dict:
        """As the board shows them."""
        return {"name": self.name, "group": self.group, "tier": self.tier, "role": self.role,
                "skills": list(self.skills), "location": self.location, "phone": self.phone,
                "absent": self.absent is not None}


class Roster:
    def __init__(self, people: list[Person], plan: "People | None" = None, seed: int | None = None):
        self.people = people
        self.seed = seed  # the draw's seed (None when nobody was drawn)
        self._call_out = dict(plan.call_out) if plan else {}
        self._call_out_default = plan.call_out_default if plan else 0.0
        self._by_name = {p.name: p for p in people}

    @classmethod
    def of(cls, drill: "Drill | None") -> "Roster":
        """The drill's teams in roster order, with the absences its `people` makes."""
        if drill is None:
            return cls([])
        everyone = [Person(m.name, group, tier, m.role, tuple(m.skills), m.location, m.phone)
                    for group, team in drill.teams.items()
                    for tier, members in (("core", team.core), ("backup", team.backup))
                    for m in members]
        plan = drill.people
        named = set(plan.absent)
        seed = plan.seed
        drawn: set[str] = set()
        if plan.absent_drawn:
            if seed is None:
                seed = random.SystemRandom().randrange(2 ** 31)
            left = [p.name for p in everyone if p.name not in named]
            drawn = set(random.Random(seed).sample(left, min(plan.absent_drawn, len(left))))
        people = [p if p.name not in named | drawn else
                  replace(p, absent="named" if p.name in named else "drawn")
                  for p in everyone]
        return cls(people, plan, seed if drawn else None)

    # --- asking ---------------------------------------------------------------------------------
    def get(self, name: str) -> Person | None:
        return self._by_name.get(name)

    @property
    def absent(self) -> list[Person]:
        return [p for p in self.people if p.absent]

    def call_out(self, person: Person) -> float:
        """Drill s from the call to the person being on the step (modeled), by their location."""
        return self._call_out.get(person.location, self._call_out_default)

    def next_in_line(self, step: "RunbookStep") -> list[Person]:
        """Who can take `step`, the first to call first."""
        able = [p for p in self.people
                if p.group == step.group and not p.absent and p.able(step.needs)]
        order = {p.name: i for i, p in enumerate(self.people)}
        return sorted(able, key=lambda p: (p.tier != "core", self.call_out(p), order[p.name]))

    def refusal(self, person: Person, step: "RunbookStep") -> str | None:
        """Why `person` cannot take `step`, or None when they can."""
        if person.absent:
            line = ", ".join(p.name for p in self.next_in_line(step)[:3]) or "nobody present"
            return f"{person.name} is absent in this drill ({person.absent}); next in line: {line}"
        if person.group != step.group:
            return f"{person.name} is in {person.group}; step {step.id!r} is {step.group}'s"
        if not person.able(step.needs):
            return f"{person.name} lacks {step.needs!r}, which step {step.id!r} needs"
        return None

    def unable(self, step: "RunbookStep") -> str:
        """Why nobody is in line for `step` (when `next_in_line` is empty)."""
        gone = [p.name for p in self.people if p.group == step.group and p.absent and p.able(step.needs)]
        what = f"with {step.needs!r}" if step.needs else "at all"
        return (f"nobody present in {step.group} {what}"
                + (f" (absent: {', '.join(gone)})" if gone else ""))
