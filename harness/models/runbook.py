"""Runbook steps: their trigger and their one kind (built-in action, manual, exec, http)."""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from ..checks import slug
from .base import Duration, Group, Strict


class Trigger(Strict):
    alert: str | None = Field(None, description="an alert name, or 'any'")
    after: str | None = Field(None, description="a previous step id, finished ok")
    level: list[int] | None = Field(None, description="run only when one of these levels is declared")

    @field_validator("level", mode="before")
    @classmethod
    def _one_level(cls, v: Any) -> Any:
        return [v] if isinstance(v, int) else v

    @field_validator("level")
    @classmethod
    def _levels(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(x not in (1, 2, 3) for x in v):
            raise ValueError("levels are 1, 2 or 3")
        return v

    @model_validator(mode="after")
    def _something(self) -> "Trigger":
        if not (self.alert or self.after or self.level):
            raise ValueError("a trigger needs alert, after or level")
        return self


class ManualStep(Strict):
    duration: Duration = Field(description="how long the simulated operator takes (drill time)")
    instructions: str = ""


class ExecStep(Strict):
    """The hospital's own automation: a program run on this machine with the control surface's
    environment (harness/control/env.py, docs/runbook-scripts.md). Exit 0 is success."""
    argv: list[str] | None = Field(None, min_length=1, description="the command and its arguments "
                                                                   "(the command found on PATH)")
    script: str | None = Field(None, description="an executable file, relative to the drill file; "
                                                 "resolved to an absolute path when the drill loads")
    args: list[str] = Field(default_factory=list, description="arguments after `script`")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables")
    cwd: str | None = Field(None, description="working directory, relative to the drill file; "
                                              "default: the drill file's directory")
    timeout: Duration = Field(300.0, gt=0, description="the plan's budget (drill time); the program "
                                                       "and its children are killed past it")

    @field_validator("env")
    @classmethod
    def _own_names(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ValueError(f"{key!r} is not an environment variable name")
            if key.startswith("HD_"):
                raise ValueError(f"{key}: the HD_ names are the drill's own (docs/runbook-scripts.md)")
        return v

    @model_validator(mode="after")
    def _one_program(self) -> "ExecStep":
        if (self.argv is None) == (self.script is None):
            raise ValueError("give exactly one of 'argv' or 'script'")
        if self.argv is not None and self.args:
            raise ValueError("'args' go with 'script'; with 'argv' put them in argv")
        if self.argv is not None and not self.argv[0].strip():
            raise ValueError("argv: the command is empty")
        return self

    def command(self) -> list[str]:
        return list(self.argv) if self.argv is not None else [str(self.script), *self.args]


HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


def _template(v: Any) -> Any:
    from ..control.env import check_template
    return check_template(v) if isinstance(v, str) else v


class HttpStep(Strict):
    """One HTTP call of the hospital's tools against the stack, e.g. `POST {app.app-primary}/admin/notice`.
    The URL is a template over the stack's addresses (docs/runbook-scripts.md)."""
    method: HttpMethod = "GET"
    url: Annotated[str, BeforeValidator(_template)]
    json_: Any = Field(None, alias="json", description="a JSON body")
    body: str | None = Field(None, description="a text body")
    headers: dict[str, str] = Field(default_factory=dict)
    expect: list[int] | None = Field(None, min_length=1,
                                     description="statuses that count as success; default: any 2xx")
    timeout: Duration = Field(30.0, gt=0, description="the plan's budget for the answer (drill time)")

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("expect")
    @classmethod
    def _statuses(cls, v: list[int] | None) -> list[int] | None:
        for status in v or []:
            if not 100 <= status <= 599:
                raise ValueError(f"{status} is not an HTTP status (100-599)")
        return v

    @model_validator(mode="after")
    def _one_body(self) -> "HttpStep":
        if self.json_ is not None and self.body is not None:
            raise ValueError("give 'json' or 'body', not both")
        return self

    def accepts(self, status: int) -> bool:
        return status in self.expect if self.expect else 200 <= status < 300


StepFailure = Literal["end_incident", "continue"]
GoldenMove = Literal["identify", "classify", "reassure", "take_over"]
GOLDEN_MOVES: tuple[GoldenMove, ...] = ("identify", "classify", "reassure", "take_over")
GOLDEN_HOUR = 3600.0  # the plan's first 60 minutes (drill s) for the four moves
StepKind = Literal["auto", "manual", "exec", "http"]
STEP_KINDS = {"action": "auto", "manual": "manual", "exec_": "exec", "http": "http"}  # field → kind


class RunbookStep(Strict):
    id: str
    title: str = ""
    group: Group
    when: Trigger
    action: str | None = Field(None, description="a named harness action")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    manual: ManualStep | None = None
    exec_: ExecStep | None = Field(None, alias="exec", description="run the hospital's own program")
    http: HttpStep | None = Field(None, description="call an HTTP endpoint of the stack")
    deadline: Duration | None = Field(None, description="from the moment the step is triggered")
    needs: str | None = Field(None, description="the skill or role of the person who must claim "
                                                "the step before its action runs (a member's "
                                                "skills, or words of a member's role)")
    on_failure: StepFailure | None = Field(
        None, description="what the step's failure does to the run: `end_incident` ends the incident "
                          "phase (no step can bring patients back after it), `continue` waits on; "
                          "default: the drill's `safeguards.failed_critical_step` for a step that a "
                          "critical target measures, else `continue`")
    golden_hour: GoldenMove | None = Field(
        None, description="the golden hour's move (黄金响应期: identify → classify → reassure → take "
                          "over) this step makes: the score times the move from the fault to the "
                          "person's done (or the step's finish) and names who made it")

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)
    @field_validator("id")
    @classmethod
    def _slug_id(cls, v: str) -> str:
        return slug(v)

    @field_validator("needs")
    @classmethod
    def _needs_someone(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("name the skill or role, or leave 'needs' out")
        return v if v is None else v.strip()

    @model_validator(mode="after")
    def _one_kind(self) -> "RunbookStep":
        given = [f for f in STEP_KINDS if getattr(self, f) is not None]
        if len(given) != 1:
            names = ", ".join(repr(f.rstrip("_")) for f in STEP_KINDS)
            raise ValueError(f"a step has exactly one of {names}"
                             + (f" (it has {' and '.join(g.rstrip('_') for g in given)})" if given else ""))
        if self.with_ and self.action is None:
            raise ValueError("'with' gives an action its parameters: this step has no 'action'")
        return self

    @property
    def kind(self) -> StepKind:
        """`auto` (a built-in action), `manual`, `exec` or `http`: which of the four the step is."""
        return next(STEP_KINDS[f] for f in STEP_KINDS if getattr(self, f) is not None)  # type: ignore[return-value]
