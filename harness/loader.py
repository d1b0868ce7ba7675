"""Load scenario and drill files into models, with errors that name the file, line and field."""
from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import InputError

M = TypeVar("M", bound=BaseModel)
Loc = tuple[Any, ...]


def _line_map(node: yaml.Node, path: Loc = (), out: dict[Loc, int] | None = None) -> dict[Loc, int]:
    """Every path in the document → the 1-based line where its value starts."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            out[path + (k,)] = key.start_mark.line + 1
            _line_map(value, path + (k,), out)
            out[path + (k,)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, path + (i,), out)
    return out


def _merge(base: Any, over: Any) -> Any:
    """Mappings merge key by key; anything else (lists included) is replaced whole."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in over.items()}}
    return over


class Document:
    """A parsed YAML file that can say where any of its fields is."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError("no such file", file=str(path)) from None
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read: {e}", file=str(path)) from None
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as e:
            line = e.problem_mark.line + 1 if e.problem_mark else None
            raise InputError(f"malformed YAML: {e.problem}", file=str(path), line=line) from None
        except yaml.YAMLError as e:
            raise InputError(f"malformed YAML: {e}", file=str(path)) from None
        if not isinstance(self.data, dict):
            raise InputError("expected a mapping at the top level", file=str(path), line=1)
        self.lines = _line_map(node) if node is not None else {}

    def extend(self) -> "Document":
        """Apply `extends: BASE.yaml`: the base's fields, overridden key by key by this file's.

        An error in a field this file does not set is reported against the base file.
        """
        base_name = self.data.pop("extends", None)
        if base_name is None:
            return self
        base = Document(self.path.parent / str(base_name)).extend()
        self.base = base
        self.data = _merge(base.data, self.data)
        return self

    base: "Document | None" = None

    def line_of(self, loc: Loc) -> int | None:
        loc = tuple(loc)
        while loc and loc not in self.lines:
            loc = loc[:-1]
        return self.lines.get(loc)

    def error(self, message: str, loc: Loc) -> InputError:
        field = ".".join(str(p) for p in loc) or None
        if self.base is not None and tuple(loc)[:1] and tuple(loc) not in self.lines \
                and tuple(loc)[:1] not in self.lines:
            return self.base.error(message, loc)
        return InputError(message, file=str(self.path), field=field, line=self.line_of(loc))

    def parse(self, model: type[M]) -> M:
        try:
            return model.model_validate(self.data)
        except ValidationError as e:
            err = e.errors()[0]
            # pydantic puts a model-level check's location on the model; tagged unions add a tag
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            elif err["type"] == "missing":
                msg = "required field missing"
            raise self.error(msg, loc) from None
