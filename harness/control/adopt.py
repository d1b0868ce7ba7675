"""Promotions a hospital's script made itself, with psql (`SELECT pg_promote()`) or `pg_ctl promote`,
rather than through `hospital-drill ctl promote`: found by asking each database the drill files as a
standby whether it still is one, and filed like the built-in promotion (Stack.file_promotion).

Without this the drill would not know its new primary: the RPO measurement would find none serving,
the back-entry would have no main database, and the split-brain check nothing to compare with. Asked
once an exec step's program has ended, so that its step's `step.finished` names the promotion
(`detail.promoted`, which stack/rpo.py counts like a built-in one).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..stack.fencing import write_state

if TYPE_CHECKING:
    from ..stack.base import Stack


def adopt_promotions(stack: "Stack",
                     ask: Callable[[str], dict[str, bool] | None] = write_state) -> list[str]:
    """The databases filed as standbys that answer as primaries now, each filed primary in turn
    (the last one found is the primary of record; two of them are the split brain fencing.py
    reports). A node that does not answer keeps its role."""
    promoted = []
    for node, role in sorted(stack.db_roles.items()):
        if role != "standby":
            continue
        state = ask(stack.db_dsn(node))
        if state is not None and not state["in_recovery"]:
            stack.file_promotion(node)
            promoted.append(node)
    return promoted
