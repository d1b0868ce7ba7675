"""Load scenario and drill files into models, with errors that name the file, line and field.

Parsing is bounded, so that no file can make the harness hang, exhaust memory or recurse without end:
a document has a size limit, a nesting limit and a limit on the nodes it expands to (an alias bomb is
refused, not built); duplicate keys and non-finite numbers are errors; `extends:` chains are finite
and acyclic; a file that one file names must be a regular YAML file, or the naming field is blamed.

A file that parses as YAML is checked whole: every field the model refuses is reported, each on its
own line (`Problems` collects them, `InputErrors` carries them to the command line).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import InputError

M = TypeVar("M", bound=BaseModel)
Loc = tuple[Any, ...]

MAX_BYTES = 1 << 20  # a drill is a few KB; this is room for a long roster, not for a data set
MAX_DEPTH = 40  # mappings and lists nested in one another
MAX_NODES = 50_000  # after aliases are expanded
MAX_EXTENDS = 8  # length of an `extends:` chain
MAX_NUMBER_CHARS = 40  # Python refuses to parse ints past 4300 digits; drills need far fewer
YAML_SUFFIXES = (".yaml", ".yml")

_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"
_INT_TAG, _FLOAT_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing nesting deeper than MAX_DEPTH while it composes (the composer
    recurses once per level, so a deep document would otherwise end in RecursionError)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Inspector:
    """One walk over the composed node graph, before anything is built from it: counts the nodes
    the document expands to, finds recursive aliases, duplicate and non-scalar keys, and builds
    each scalar once so that a bad number is reported at its line."""

    def __init__(self, loader: _BoundedLoader, fail):
        self.loader, self.fail = loader, fail
        self.sizes: dict[int, int] = {}
        self.on_path: set[int] = set()

    def size(self, node: yaml.Node, path: Loc = ()) -> int:
        key = id(node)
        if key in self.sizes:
            return self.sizes[key]
        if key in self.on_path:
            self.fail("an alias refers to a node that contains it (recursive alias)", path, node)
        if len(path) > 4 * MAX_DEPTH:
            self.fail(f"nested deeper than {MAX_DEPTH} levels (through aliases)", path, node)
        self.on_path.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for k, v in node.value:
                if not isinstance(k, yaml.ScalarNode):
                    self.fail("a key must be a plain name, not a list or mapping", path, k)
                if k.tag not in (_MERGE_TAG, _VALUE_TAG):
                    self._scalar(k, path)
                    if k.value in first:
                        self.fail(f"duplicate key (first at line {first[k.value]})", path + (k.value,), k)
                    first[k.value] = k.start_mark.line + 1
                total += self.size(v, path + (k.value,))
                self._guard(total, path, node)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                total += self.size(item, path + (i,))
                self._guard(total, path, node)
        else:
            self._scalar(node, path)
        self.on_path.discard(key)
        self.sizes[key] = total
        return total

    def _guard(self, total: int, path: Loc, node: yaml.Node) -> None:
        if total > MAX_NODES:
            self.fail(f"expands to more than {MAX_NODES} values (aliases multiply a document)", path,
                      node)

    def _scalar(self, node: yaml.ScalarNode, path: Loc) -> None:
        if node.tag in (_INT_TAG, _FLOAT_TAG) and len(node.value) > MAX_NUMBER_CHARS:
            self.fail(f"number longer than {MAX_NUMBER_CHARS} characters", path, node)
        try:
            value = self.loader.construct_object(node)
        except yaml.YAMLError as e:
            self.fail(getattr(e, "problem", None) or str(e), path, node)
        except (ValueError, TypeError, OverflowError) as e:
            self.fail(f"not a valid {node.tag.rsplit(':', 1)[-1]}: {e}", path, node)
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(f"numbers must be finite, not {node.value!r}", path, node)


def _line_map(node: yaml.Node, path: Loc = (), out: dict[Loc, int] | None = None) -> dict[Loc, int]:
    """Every path in the document → the 1-based line where its value starts (for a key: the key's
    line). Only called on a graph that _Inspector found finite and small."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _line_map(value, path + (key.value,), out)
            out[path + (key.value,)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, path + (i,), out)
    return out


def merge(base: Any, over: Any) -> Any:
    """Mappings merge key by key; anything else (lists included) is replaced whole."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: merge(base.get(k), v) for k, v in over.items()}}
    return over


class InputErrors(InputError):
    """Several input errors found in one pass; `str()` gives one `file:line: field: why` per line."""

    def __init__(self, errors: list[InputError]):
        self.errors = list(errors)
        first = self.errors[0]
        Exception.__init__(self, "\n".join(str(e) for e in self.errors))
        self.file, self.field, self.line = first.file, first.field, first.line


class Problems:
    """The input errors of a check that carries on past the first one: each once, in the order found."""

    def __init__(self, errors: list[InputError] | None = None) -> None:
        self.errors: list[InputError] = []
        for e in errors or ():
            self.add(e)

    def add(self, error: InputError) -> None:
        for e in getattr(error, "errors", [error]):
            if all(str(e) != str(seen) for seen in self.errors):
                self.errors.append(e)

    @contextmanager
    def collect(self) -> Iterator[None]:
        """Run a check whose first error ends it, keeping that error."""
        try:
            yield
        except InputError as e:
            self.add(e)

    def raise_any(self) -> None:
        """One error as itself (a single line), several as InputErrors: file by file in the order
        met, each file's by line."""
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            files: dict[str | None, int] = {}
            for e in self.errors:
                files.setdefault(e.file, len(files))
            raise InputErrors(sorted(self.errors, key=lambda e: (files[e.file], e.line or 0)))


Referrer = tuple["Document", Loc]
"""The file and field that named a file: where a target that is no drill or scenario is blamed."""


def _blame(referrer: Referrer | None, path: Path, message: str, line: int | None = None) -> InputError:
    if referrer is not None:
        doc, loc = referrer
        return doc.error(f"{message} ({path})", loc)
    return InputError(message, file=str(path), line=line)


class Document:
    """A parsed YAML file that can say where any of its fields is."""

    base: "Document | None" = None

    def __init__(self, path: Path, referrer: Referrer | None = None):
        self.path = Path(path)
        text = self._read(referrer)
        loader = None
        try:
            loader = _BoundedLoader(text)
            node = loader.get_single_node()
            if node is None:
                raise _blame(referrer, self.path, "empty document: expected a drill or scenario")
            _Inspector(loader, self._fail).size(node)
            self.data = loader.construct_document(node)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            raise InputError(f"malformed YAML: {e.problem or e.context}", file=str(path),
                             line=mark.line + 1 if mark else None) from None
        except yaml.reader.ReaderError as e:
            raise InputError(f"malformed YAML: character {e.character!r} is not allowed",
                             file=str(path), line=text.count("\n", 0, e.position) + 1) from None
        except yaml.YAMLError as e:
            raise InputError(f"malformed YAML: {e}", file=str(path)) from None
        except (ValueError, TypeError, OverflowError, RecursionError) as e:
            raise InputError(f"malformed YAML: {e.__class__.__name__}: {e}", file=str(path)) from None
        finally:
            if loader is not None:
                loader.dispose()
        if not isinstance(self.data, dict):
            raise _blame(referrer, self.path, "not a drill or scenario: expected a mapping at the top "
                         "level", line=1)
        self.lines = _line_map(node)

    def _read(self, referrer: Referrer | None) -> str:
        """The file's text, read only when it is a regular file of bounded size (never a device or a
        pipe that would block or never end)."""
        try:
            if not self.path.exists():
                raise _blame(referrer, self.path, "no such file")
            if not self.path.is_file():
                raise _blame(referrer, self.path, "not a regular file")
            if self.path.stat().st_size > MAX_BYTES:
                raise _blame(referrer, self.path, f"larger than {MAX_BYTES // 1024} KiB: not a drill "
                             "or scenario")
            with self.path.open("rb") as f:
                raw = f.read(MAX_BYTES + 1)
        except (OSError, ValueError) as e:  # ValueError: a NUL byte in the name
            raise _blame(referrer, self.path, f"cannot read: {e}") from None
        if len(raw) > MAX_BYTES:
            raise _blame(referrer, self.path, f"larger than {MAX_BYTES // 1024} KiB")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _blame(referrer, self.path, "not UTF-8 text: not a drill or scenario") from None

    def _fail(self, message: str, loc: Loc, node: yaml.Node) -> None:
        field = ".".join(str(p) for p in loc) or None
        raise InputError(message, file=str(self.path), field=field, line=node.start_mark.line + 1)

    def resolve(self, loc: Loc, name: Any) -> Path:
        """The file that field `loc` names, relative to this file: a .yaml file, or an error on
        the field."""
        if not isinstance(name, str) or not name.strip():
            raise self.error("must be the path of a YAML file", loc)
        if "\0" in name:
            raise self.error("a path cannot contain a NUL character", loc)
        path = self.path.parent / name
        if path.suffix.lower() not in YAML_SUFFIXES:
            raise self.error(f"{name!r} is not a YAML file (.yaml, .yml)", loc)
        try:
            real = path.resolve()
            path.exists()  # a name too long for the file system fails here, not later
        except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop
            raise self.error(f"{name!r} cannot be resolved: {e}", loc) from None
        if real.suffix.lower() not in YAML_SUFFIXES:
            raise self.error(f"{name!r} leads to {real}, which is not a YAML file", loc)
        return path

    def extend(self, _chain: tuple[Path, ...] = ()) -> "Document":
        """Apply `extends: BASE.yaml`: the base's fields, overridden key by key by this file's.

        An error in a field this file does not set is reported against the base file.
        """
        if "extends" not in self.data:
            return self
        here = self.path.resolve()
        chain = _chain + (here,)
        base_path = self.resolve(("extends",), self.data["extends"])
        if base_path.resolve() in chain:
            names = " → ".join(p.name for p in chain + (base_path.resolve(),))
            raise self.error(f"extends itself ({names})" if base_path.resolve() == here
                             else f"extends cycle: {names}", ("extends",))
        if len(chain) > MAX_EXTENDS:
            raise self.error(f"more than {MAX_EXTENDS} files deep", ("extends",))
        del self.data["extends"]
        base = Document(base_path, referrer=(self, ("extends",))).extend(chain)
        self.base = base
        self.data = merge(base.data, self.data)
        return self

    def origin(self, loc: Loc) -> "Document":
        """The file of the `extends` chain that sets field `loc` (paths in it are relative to it)."""
        doc: Document = self
        while doc.base is not None and tuple(loc)[:1] not in doc.lines:
            doc = doc.base
        return doc

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

    def check(self, model: type[M]) -> tuple[M | None, list[InputError]]:
        """The model, or every field it refuses as an error at that field's line."""
        try:
            return model.model_validate(self.data), []
        except ValidationError as e:
            return None, Problems([self._field_error(err) for err in e.errors()]).errors

    def parse(self, model: type[M]) -> M:
        parsed, errors = self.check(model)
        Problems(errors).raise_any()
        return parsed  # type: ignore[return-value]

    def _field_error(self, err: Any) -> InputError:
        # pydantic puts a model-level check's location on the model; tagged unions add a tag
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "required field missing"
        return self.error(msg, loc)
