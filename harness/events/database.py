"""Events of the database: backups, split brain, the RPO."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .base import Event, _f, event


@event("backup.taken")
class BackupTaken(Event):
    """A scheduled backup finished (`wall` is when)."""
    kind: Literal["full", "incremental"] = _f("full or incremental")
    label: str = _f("on the hospital's clock: `full-d1-0100`, `incr-d1-0200`")
    node: str = _f("the primary it was taken from")
    based_on: str | None = _f("the previous backup's label (incrementals)")
    scheduled_at: float = _f("drill s")
    started_wall: float = _f("epoch s")
    size: int | None = _f("bytes")
    seconds: float = _f("real s")
    drill_seconds: float = _f("the same: a machine's work counts 1:1")
    path: str = _f("the local copy")
    offline: str | None = _f("the offline copy")
    offline_seconds: float | None = _f("real s to copy it")


@event("backup.failed")
class BackupFailed(Event):
    """A scheduled backup could not be taken."""
    kind: str = _f("full or incremental")
    label: str = _f("its label")
    node: str | None = _f("the primary")
    started_wall: float = _f("epoch s")
    error: str = _f("why")


@event("backup.copy_failed")
class BackupCopyFailed(Event):
    """A backup was taken but its offline copy failed."""
    label: str = _f("the backup's label")
    copy_: str = Field(alias="copy", description="which copy: `offline`")
    error: str = _f("why")


@event("db.split_brain")
class DbSplitBrain(Event):
    """At teardown, after a promotion: another database node still answered as a writable primary
    (not in recovery, not read-only; `stack/fencing.py`)."""
    promoted: str = _f("the node promoted")
    promoted_address: str | None = _f("its address")
    step: str | None = _f("the step that promoted it")
    promoted_wall: float | None = _f("when")
    writable: list[str] = _f("the other nodes taking writes")
    nodes: list[dict[str, Any]] = _f("each: `node`, `address`, `role` as the stack filed it, `in_recovery`, `read_only`")


@event("rpo.measured")
class RpoMeasured(Event):
    """At teardown, after a `db_crash`, a data-loss fault or any promotion (`stack/rpo.py`):
    acknowledged writes missing on the serving primary."""
    trigger: str = _f("the type of the fault that lost data (e.g. `db_crash`, `data_deletion`), or `promotion`")
    mode: str = _f("replication mode (`sync`/`async`); `backup_restore` after a data-loss fault")
    replication_lag: float | None = _f("the configured replication lag, drill s", None)
    acked_writes: int = _f("writes acknowledged to patients")
    lost_writes: int | None = _f("of those, missing; null when no primary served")
    lost_sample: list[str] | None = _f("up to 20 lost write ids", None)
    lost_seconds: float | None = _f("drill s from the oldest lost write to the trigger", None)
    crash_wall: float = _f("where the lost window ends: when a crashed host's links were down, the "
                           "fault's wall, or the promotion's")
    measured_on: str | None = _f("the primary asked", None)
    lost_patients: list[str] | None = _f("patients whose acknowledged writes were lost: the ones to "
                                         "contact (the level rule counts them as affected)", None)
    error: str | None = _f("why nothing could be measured", None)
