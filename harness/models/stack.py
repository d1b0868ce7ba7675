"""The hospital's configuration of the mock stack: replication, backups, lines, addresses."""
from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator

from ..checks import drill_seconds
from .base import Duration, Strict


class Replication(Strict):
    mode: Literal["sync", "async"] = "async"
    lag: Duration = Field(0.0, description="extra delay on the replication link (drill time)")


def _at_start(v: Any) -> float:
    """'at start' (or 'start') is T+0; anything else is a duration."""
    if isinstance(v, str) and v.strip().lower() in ("start", "at start"):
        return 0.0
    return drill_seconds(v)


class BackupPlan(Strict):
    """The hospital's backup schedule (全量/增量备份), in drill time: a full pg_basebackup at `full`
    (T+0 by default: the daily 01:00 full) and every `full_every` after it, an incremental one
    (`pg_basebackup --incremental` on the previous backup) every `incremental_every` in between."""
    full: Annotated[float, BeforeValidator(_at_start)] = Field(
        0.0, description="drill time of the first full backup: 'at start' (T+0) or a duration")
    full_every: Duration = Field(86400.0, gt=0, description="a new full backup this often (daily)")
    incremental_every: Duration | None = Field(3600.0, gt=0, description="null: full backups only")
    offline_copy: bool = Field(True, description="also copy each backup to the 'offline' (tape) store")
    clock_start: str | None = Field(
        "01:00", pattern=r"^\d{2}:\d{2}$", description="the hospital's clock at T+0, for backup labels")


class EgressLine(Strict):
    """An egress line's capacity, shared by every flow on it (metered by the egress gateway)."""
    capacity_kbps: float = Field(gt=0, description="KB/s, KB = 1000 bytes (e.g. 2000 ≈ 16 Mbit/s)")
    buffer_kb: float | None = Field(
        None, gt=0, description="what a full line holds queued (default 3 s of capacity): how long "
                                "every call on a saturated line waits")


def _loopback_address(v: Any) -> Any:
    """host:port on this machine (127.0.0.0/8 or localhost): a drill never reaches out of it."""
    if not isinstance(v, str):
        return v
    host, sep, port = v.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{v!r} is not a host:port address")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"{v!r}: a drill's addresses stay on this machine (127.x.x.x or localhost)")
    return v.strip()


LoopbackAddress = Annotated[str, BeforeValidator(_loopback_address)]
ThirdPartyKind = Literal["insurance", "payment", "notification"]


class StackConfig(Strict):
    """The hospital's configuration of the mock stack (what a drill can find wrong)."""
    replication: Replication = Field(default_factory=Replication)
    backups: BackupPlan | None = Field(None, description="take real backups on this schedule")
    remote_dr: bool = True
    backup_addresses: dict[ThirdPartyKind, LoopbackAddress] = Field(
        default_factory=dict, description="host:port configured for a third party's backup "
                                          "interface, e.g. {payment: 127.0.0.9:18091}; default: ours")
    insurance_backup_address: LoopbackAddress | None = Field(
        None, description="the same as backup_addresses.insurance (the older spelling)")
    egress_lines: dict[Literal["primary", "backup"], EgressLine] = Field(
        default_factory=dict, description="capacity of the egress lines; a line not named is unmetered")

    @field_validator("insurance_backup_address")
    @classmethod
    def _one_insurance_address(cls, v: str | None, info: ValidationInfo) -> str | None:
        other = (info.data.get("backup_addresses") or {}).get("insurance")
        if v is not None and other is not None and other != v:
            raise ValueError(f"{v!r} differs from backup_addresses.insurance {other!r}: give one")
        return v

    def backup_address(self, kind: str) -> str | None:
        """The address configured for `kind`'s backup interface; None: the stack's own."""
        if kind == "insurance" and self.insurance_backup_address:
            return self.insurance_backup_address
        return self.backup_addresses.get(kind)  # type: ignore[call-overload]

    def backup_address_field(self, kind: str) -> str:
        """Where the drill file sets it, for a corrective action to point at."""
        if kind == "insurance" and self.insurance_backup_address:
            return "stack.insurance_backup_address"
        return f"stack.backup_addresses.{kind}"
