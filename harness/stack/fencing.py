"""Two primaries (split brain): after a promotion, another database node that still takes writes.

Asked of the nodes themselves, not of the stack's bookkeeping (which files the old primary as
'stopped' the moment a standby is promoted, whether it stopped or not): a node that answers, is not
in recovery and is not read-only accepts writes. A runbook fences the old primary by stopping it,
rebuilding it as a standby, or making it read-only; then there is nothing to find here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

import psycopg

from .rpo import promotions

if TYPE_CHECKING:
    from .base import Stack

WRITE_STATE = ("SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only'), "
               "current_setting('transaction_read_only')")


def write_state(dsn: str) -> dict[str, bool] | None:
    """{'in_recovery', 'read_only'} as the node itself answers, or None when it does not answer."""
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            in_recovery, default_ro, ro = conn.execute(WRITE_STATE).fetchone()
    except psycopg.Error:
        return None
    return {"in_recovery": bool(in_recovery), "read_only": "on" in (default_ro, ro)}


def split_brain(events: Iterable[dict], stack: "Stack",
                ask: Callable[[str], dict[str, bool] | None] = write_state) -> dict[str, Any] | None:
    """The `db.split_brain` event's fields when a database node other than the last promoted one
    still accepts writes after a promotion; None when there was no promotion or every other node is
    fenced (down, in recovery or read-only). Restored scratch copies (a backup restore's target) are
    not candidates: patients never wrote to them."""
    promoted = promotions(events)
    if not promoted:
        return None
    last = promoted[-1]
    detail = last.get("detail") if isinstance(last.get("detail"), dict) else {}
    primary = detail.get("promoted") or stack.current_primary()
    writable = []
    for node, role in sorted(stack.db_roles.items()):
        if node == primary or role == "restored":
            continue
        state = ask(stack.db_dsn(node))
        if state is not None and not state["in_recovery"] and not state["read_only"]:
            writable.append({"node": node, "address": stack.addresses.get(node), "role": role, **state})
    if not writable:
        return None
    return {"promoted": primary, "promoted_address": stack.addresses.get(primary),
            "step": last.get("step"), "promoted_wall": last.get("wall"),
            "writable": [w["node"] for w in writable], "nodes": writable}
