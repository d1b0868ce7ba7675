"""Everything the harness finds by name, in one shape: faults, runbook actions, alert rules, board
samplers and backends each live in a `Registry`.

A registry maps a name to an entry and remembers where each entry came from (its origin: the
module, and the class or function, that registered it). It fills itself at the first lookup: first
the built-in modules it names (importing one registers its entries), then the installed plugins of
its entry-point group (`hospital_drill.faults`, …; see docs/plugins.md). Importing plugins lazily,
from here rather than from the bottom of the base module, is what keeps harness/ free of import
cycles.

Iteration is in registration order, module by module in the order the registry names its built-in
modules, plugins last: a module may be imported early by someone else (a runbook action importing a
rule module), and the board evaluates its rules in the same order whoever imported what first.

What a plugin can do is declared on its entry (a fault's `loses_data`, an action's `failover`), and
asked of the registry by name (`declares`), so that no list of names is kept anywhere else.
"""
from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from typing import Generic, TypeVar

from .errors import InputError

T = TypeVar("T")

class DuplicateName(ValueError):
    """Two entries registered under one name."""


class UnknownName(KeyError):
    """A name no entry is registered under; a KeyError, so that `Mapping.get` answers None."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class PluginError(InputError):
    """An installed plugin that cannot be loaded (exit 2: the environment is wrong, not the run)."""


class Registry(Mapping[str, T], Generic[T]):
    """Name → entry of one kind ("fault", "action", …), in registration order."""

    def __init__(self, kind: str, *, group: str | None = None, builtin: tuple[str, ...] = ()):
        self.kind = kind
        self.group = group  # the entry-point group third-party plugins register under
        self.builtin = builtin  # modules whose import registers the harness's own entries
        self._entries: dict[str, T] = {}
        self._origins: dict[str, str] = {}
        self._order: dict[str, tuple[int, int]] = {}  # name → (rank of its module, arrival)
        self._builtin_loaded = False
        self._plugins_loaded = False
        self._loading = False
        # loading imports modules: one thread loads, the others wait for the full registry
        self._lock = threading.RLock()

    # --- registering ------------------------------------------------------------------------------
    def add(self, name: str, entry: T, origin: str | None = None) -> T:
        """Register `entry` as `name`; `origin` defaults to the entry's module."""
        origin = origin or getattr(entry, "__module__", None) or "?"
        if name in self._entries:
            raise DuplicateName(f"{self.kind} {name!r} registered twice: by {self._origins[name]} "
                                f"and by {origin}")
        self._entries[name] = entry
        self._origins[name] = origin
        self._order[name] = (self._rank(origin), len(self._order))
        return entry

    def remove(self, name: str) -> None:
        for held in (self._entries, self._origins, self._order):
            held.pop(name, None)

    def _rank(self, origin: str) -> int:
        """The place of the built-in module `origin` lies in (the longest that holds it)."""
        held = [(len(m), i) for i, m in enumerate(self.builtin)
                if origin == m or origin.startswith(m + ".")]
        return max(held)[1] if held else len(self.builtin)

    # --- asking -----------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> T:
        self.load()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownName(f"unknown {self.kind} {name!r} (known: {', '.join(sorted(self._entries))})"
                              ) from None

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self.load()
        # a copy: a plugin may register while someone iterates
        return iter(sorted(list(self._entries), key=self._order.__getitem__))

    def __len__(self) -> int:
        self.load()
        return len(self._entries)

    def origin(self, name: str) -> str:
        self[name]  # unknown: UnknownName
        return self._origins[name]

    def declares(self, name: object, capability: str) -> bool:
        """Whether the entry registered as `name` declares `capability` (an attribute set true).
        An unknown name declares nothing: a journal may name a plugin that is not installed now."""
        entry = self.get(name) if isinstance(name, str) else None
        return entry is not None and getattr(entry, capability, False) is True

    # --- filling ----------------------------------------------------------------------------------
    def load(self) -> None:
        """Import the built-in modules, then the plugins of the entry-point group (once; a failed
        load is tried again, and fails the same way, at the next lookup)."""
        if self._plugins_loaded:
            return
        with self._lock:
            if self._loading:
                return  # a module this load imports looks itself up: it sees what is there so far
            self._loading = True
            try:
                if not self._builtin_loaded:
                    for module in self.builtin:
                        importlib.import_module(module)
                    self._builtin_loaded = True
                if not self._plugins_loaded:
                    self._load_plugins()
                    self._plugins_loaded = True
            finally:
                self._loading = False

    def _load_plugins(self) -> None:
        if not self.group:
            return
        for ep in metadata.entry_points(group=self.group):
            try:
                ep.load()  # importing the plugin's module registers its entries
            except Exception as e:
                why = " ".join(str(e).split()) or "no detail"
                raise PluginError(f"plugin {ep.name!r} ({self.group} = {ep.value}) does not load: "
                                  f"{e.__class__.__name__}: {why}") from e

    @contextmanager
    def isolated(self) -> Iterator["Registry[T]"]:
        """Within the block, the group's plugins are read again at the next lookup, and whatever
        was registered is forgotten at its end: for trying a plugin in a test."""
        self.load()
        with self._lock:
            saved = dict(self._entries), dict(self._origins), dict(self._order)
            self._plugins_loaded = False
        try:
            yield self
        finally:
            with self._lock:
                self._entries, self._origins, self._order = saved
                self._plugins_loaded = True

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"

