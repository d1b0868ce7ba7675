"""Faults: reversible injections, found by type name in a registry.

A fault validates its own parameters (a pydantic model) and target before anything starts, injects
into a running stack, and knows how to revert. The run reverts every injected fault on every exit path.
What a fault does to patient data it declares itself (`loses_data`, `crashes_database`): the run and
the RPO measurement ask the registry, by the journal's fault type.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import FieldErrors
from ..models import FaultSpec
from ..registry import Registry, UnknownName
from ..stack import topology

if TYPE_CHECKING:
    from ..stack.base import Stack


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Fault:
    type_name: ClassVar[str]
    description: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams
    target_kinds: ClassVar[tuple[str, ...]] = ()  # node kinds a target may be
    target_links: ClassVar[bool] = False  # whether a link name is a valid target
    default_target: ClassVar[str | None] = None
    # destroys patient data in place, so that only a backup has it: the board reconciles patients'
    # acknowledged writes, and RPO is what the runbook's restore could not bring back
    loses_data: ClassVar[bool] = False
    # kills a database server: the acknowledged writes its standbys had not received are lost
    crashes_database: ClassVar[bool] = False

    def __init__(self, spec: FaultSpec, params: BaseModel):
        self.spec, self.params = spec, params
        self.target = spec.target or self.default_target
        self.injected = False
        self.prepared = False  # something set up ahead by `prepare` that a revert must undo

    @property
    def id(self) -> str:
        return self.spec.id or self.type_name

    def prepare(self, stack: "Stack", at_wall: float) -> None:
        """Set up, before the scenario's time comes, what takes the harness real time to start (a
        process), so that the fault takes hold at its time (`at_wall`) and the setup's duration never
        counts into the response's figures. Sets `prepared` when there is something to undo."""

    def inject(self, stack: "Stack") -> dict[str, Any]:
        raise NotImplementedError

    def revert(self, stack: "Stack") -> dict[str, Any]:
        raise NotImplementedError


FAULTS: Registry[type[Fault]] = Registry(
    "fault", group="hospital_drill.faults",
    builtin=tuple(f"{__package__}.{m}" for m in ("data", "database", "network", "offline", "services")))


def register(cls: type[Fault]) -> type[Fault]:
    """Class decorator: the fault is found by its `type_name`."""
    FAULTS.add(cls.type_name, cls, origin=f"{cls.__module__}.{cls.__qualname__}")
    return cls


def build(spec: FaultSpec) -> Fault:
    """A fault from its spec; FieldErrors (a ValueError) names each field that is wrong."""
    try:
        cls = FAULTS[spec.type]
    except UnknownName as e:
        raise ValueError(f"type: {e}") from None
    problems: list[str] = []
    params = None
    try:
        params = cls.Params.model_validate(spec.params)
    except ValidationError as e:
        problems += FieldErrors.of(e, "params").items
    target = spec.target or cls.default_target
    if cls.target_kinds or cls.target_links:
        why = ("required for this fault" if target is None else
               topology.require(target, kinds=cls.target_kinds, links=cls.target_links))
        if why:
            problems.append(f"target: {why}")
    if problems:
        raise FieldErrors(problems)
    return cls(spec, params)

