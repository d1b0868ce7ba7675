"""Two primaries: a `db.split_brain` event (stack/fencing.py: after a promotion, another database
node still answered as a writable primary) is a critical finding that costs score
(policy.overall_score, COSTS['split_brain']). Patients whose sessions, scripts or caches still
reach the old primary write where the new one never sees it: data diverges and is lost on rebuild.
"""
from __future__ import annotations

from typing import Callable

from .card import Finding


def split_brain_findings(events: list[dict],
                         since_fault: Callable[[dict], float | None]) -> list[Finding]:
    out = []
    for e in events:
        if e.get("type") != "db.split_brain":
            continue
        nodes = [n for n in e.get("nodes") or [] if isinstance(n, dict)]
        others = ", ".join(f"{n.get('node')} ({n.get('address') or '?'})" for n in nodes) or \
            ", ".join(map(str, e.get("writable") or [])) or "another node"
        new = f"{e.get('promoted')} ({e.get('promoted_address') or '?'})"
        step = e.get("step")
        promo = {"wall": e.get("promoted_wall")} if isinstance(e.get("promoted_wall"), (int, float)) else None
        out.append(Finding(
            kind="split_brain", severity="critical", capability="plan", owner="technical",
            at=since_fault(promo) if promo else None, step=step if isinstance(step, str) else None,
            text="two primaries: the old primary still accepted writes after the promotion",
            evidence=f"after step {step or '?'} promoted {new}, {others} still answered as a "
                     f"primary (not in recovery, not read-only)",
            action="Fence the old primary before (or as part of) the promotion: stop it, or make it "
                   "read-only, or rebuild it as a standby of the new primary; make the promotion "
                   "step fail when fencing does not succeed.",
            text_zh="双主：主备切换后原主库仍可写入",
            evidence_zh=f"步骤 {step or '?'} 提升 {new} 后，{others} 仍以主库身份应答（非恢复模式、非只读）",
            action_zh="在切换前（或切换步骤中）隔离原主库：停止它、设为只读或重建为新主库的备库；隔离失败时切换步骤应判为失败。"))
    return out
