"""Plugin discovery and the component registry.

Discovery is defensive because one broken third-party package must not take the whole CLI down: a plugin that fails
to import, implements an unknown hook or raises while registering is skipped with a warning and shown as broken by
``rrbench plugins`` (``RRBENCH_STRICT_PLUGINS=1`` makes that fatal). Ids and aliases are unique per kind; a name
claimed twice within a kind is a *clash*: listing shows it, resolving it fails naming both plugins, everything else
keeps working.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from rrbench import hookspecs
from rrbench.errors import RRBenchError, UnknownComponentError, UsageError, close_matches
from rrbench.specs import KINDS, SPEC_CLASSES, ComponentSpec

ENTRY_POINT_GROUP = "rrbench"
BUILTIN_PLUGIN = "rrbench"


@dataclass(frozen=True)
class Entry:
    """A registered component and who registered it."""

    spec: Any
    plugin: str
    distribution: str | None = None
    version: str | None = None

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass
class PluginInfo:
    name: str
    distribution: str | None
    version: str | None
    status: str = "ok"  # ok | broken | disabled
    reason: str = ""
    hooks: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Clash:
    kind: str
    name: str
    plugins: tuple[str, ...]


def _env_list(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {item.strip() for item in raw.split(",") if item.strip()}


def _strict() -> bool:
    return os.environ.get("RRBENCH_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes", "on"}


class Registry:
    """All components of all kinds, with name resolution, clash detection and plugin status."""

    def __init__(self) -> None:
        self.entries: dict[str, list[Entry]] = {kind: [] for kind in KINDS}
        self.plugins: dict[str, PluginInfo] = {}
        self._by_name: dict[str, dict[str, list[Entry]]] = {kind: {} for kind in KINDS}

    # -- building ----------------------------------------------------------------------------------------------
    def _add(self, kind: str, entry: Entry) -> None:
        self.entries[kind].append(entry)
        for name in dict.fromkeys(entry.spec.names):
            self._by_name[kind].setdefault(name, []).append(entry)

    def mark_broken(self, plugin: str, reason: str) -> None:
        """Flag a plugin as broken and drop anything it registered before it failed."""
        info = self.plugins[plugin]
        info.status, info.reason = "broken", reason
        info.counts.clear()
        for kind in KINDS:
            self.entries[kind] = [e for e in self.entries[kind] if e.plugin != plugin]
            for name in list(self._by_name[kind]):
                kept = [e for e in self._by_name[kind][name] if e.plugin != plugin]
                if kept:
                    self._by_name[kind][name] = kept
                else:
                    del self._by_name[kind][name]
        message = f"rrbench: plugin {plugin!r} ({info.distribution or 'no distribution'}) is broken and was skipped: {reason}"
        if _strict():
            raise RRBenchError(message + " (RRBENCH_STRICT_PLUGINS is set)")
        warnings.warn(message, RuntimeWarning, stacklevel=2)

    # -- queries -----------------------------------------------------------------------------------------------
    def clashes(self) -> list[Clash]:
        out = []
        for kind, names in self._by_name.items():
            for name, entries in names.items():
                if len(entries) > 1:
                    out.append(Clash(kind, name, tuple(f"{e.plugin}:{e.id}" for e in entries)))
        return out

    def list(self, kind: str) -> list[Entry]:
        self._check_kind(kind)
        return sorted(self.entries[kind], key=lambda e: e.id)

    def names(self, kind: str) -> list[str]:
        self._check_kind(kind)
        return sorted(self._by_name[kind])

    def get(self, kind: str, name: str) -> Entry:
        """Resolve an id, alias or (for models) hub id to exactly one entry, or fail with a helpful message."""
        self._check_kind(kind)
        entries = self._by_name[kind].get(name)
        if entries is None:
            by_hub = [e for e in self.entries[kind] if getattr(e.spec, "hub_id", None) == name]
            entries = by_hub or None
        if not entries:
            singular = kind[:-1]
            raise UnknownComponentError(
                f"unknown {singular} {name!r}.{close_matches(name, self._by_name[kind])} "
                f"(see `rrbench list {kind}`)"
            )
        if len(entries) > 1:
            who = " and ".join(f"plugin {e.plugin!r} ({e.distribution or 'built-in'}, id {e.id!r})" for e in entries)
            raise UsageError(
                f"the {kind[:-1]} name {name!r} is registered by both {who}; uninstall or disable one "
                f"(RRBENCH_DISABLE_PLUGINS) or use an unambiguous id"
            )
        return entries[0]

    def has(self, kind: str, name: str) -> bool:
        try:
            self.get(kind, name)
        except UsageError:
            return False
        return True

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in KINDS:
            raise UsageError(f"unknown component kind {kind!r}; choose from {', '.join(KINDS)}")


def _make_register(kind: str, plugin: str, sink: list[ComponentSpec]):
    spec_class = SPEC_CLASSES[kind]

    def register(spec: Any) -> None:
        if not isinstance(spec, spec_class):
            raise TypeError(
                f"register_{kind} expects {spec_class.__name__} objects, got {type(spec).__name__}"
            )
        sink.append(spec)

    return register


def _iter_entry_points() -> Iterable[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def build_registry(extra_plugins: Iterable[tuple[str, Any]] = ()) -> Registry:
    """Discover plugins (built-ins, entry points, ``extra_plugins``) and collect their registrations."""
    from rrbench import builtins

    registry = Registry()
    pm = pluggy.PluginManager("rrbench")
    pm.add_hookspecs(hookspecs)

    def add_plugin(name: str, obj: Any, dist: str | None, version: str | None) -> None:
        registry.plugins[name] = PluginInfo(name, dist, version)
        try:
            pm.register(obj, name=name)
        except Exception as exc:  # pluggy validation errors: bad hook signature
            registry.mark_broken(name, f"{type(exc).__name__}: {exc}")

    add_plugin(BUILTIN_PLUGIN, builtins, "rrbench", _own_version())

    allow = _env_list("RRBENCH_LOAD_PLUGINS")
    block = _env_list("RRBENCH_DISABLE_PLUGINS") or set()
    for ep in _iter_entry_points():
        dist = ep.dist.name if ep.dist else None
        version = ep.dist.version if ep.dist else None
        if ep.name in registry.plugins:
            continue  # the same entry point seen twice (e.g. duplicated sys.path entries)
        if (allow is not None and ep.name not in allow and dist not in allow) or ep.name in block or dist in block:
            registry.plugins[ep.name] = PluginInfo(ep.name, dist, version, status="disabled",
                                                   reason="disabled by RRBENCH_LOAD_PLUGINS/RRBENCH_DISABLE_PLUGINS")
            continue
        try:
            obj = ep.load()
        except Exception as exc:
            registry.plugins[ep.name] = PluginInfo(ep.name, dist, version)
            registry.mark_broken(ep.name, f"import failed: {type(exc).__name__}: {exc}")
            continue
        add_plugin(ep.name, obj, dist, version)

    for name, obj in extra_plugins:
        add_plugin(name, obj, None, None)

    # Hook implementations whose name matches no hookspec are typos: mark their plugin broken, not the tool.
    for hook_name in dir(pm.hook):
        caller = getattr(pm.hook, hook_name)
        if hook_name.startswith("_") or not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            registry.mark_broken(impl.plugin_name, f"implements unknown hook {hook_name!r}")
            pm.unregister(name=impl.plugin_name)

    for plugin_name, plugin in pm.list_name_plugin():
        info = registry.plugins[plugin_name]
        info.hooks = sorted(
            hc.name for hc in pm.get_hookcallers(plugin) or [] if hc.name.startswith("register_")
        )

    for kind in KINDS:
        caller = getattr(pm.hook, f"register_{kind}")
        for impl in caller.get_hookimpls():  # registration order: built-ins first
            info = registry.plugins[impl.plugin_name]
            if info.status != "ok":
                continue
            collected: list[ComponentSpec] = []
            try:
                impl.function(**{arg: _make_register(kind, impl.plugin_name, collected) for arg in impl.argnames})
            except Exception as exc:
                registry.mark_broken(impl.plugin_name, f"register_{kind} raised {type(exc).__name__}: {exc}")
                continue
            for spec in collected:
                registry._add(kind, Entry(spec, impl.plugin_name, info.distribution, info.version))
            info.counts[kind] = info.counts.get(kind, 0) + len(collected)
    _PLUGIN_MANAGER[0] = pm
    return registry


def _own_version() -> str:
    from rrbench import __version__

    return __version__


_CACHE: list[Registry] = []
_PLUGIN_MANAGER: list[Any] = [None]
_EXTRA: list[tuple[str, Any]] = []


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    if not _CACHE:
        _CACHE.append(build_registry(_EXTRA))
    return _CACHE[0]


def plugin_manager() -> pluggy.PluginManager:
    get_registry()
    return _PLUGIN_MANAGER[0]


def reset_registry() -> None:
    _CACHE.clear()


@contextmanager
def registered_plugin(obj: Any, name: str = "test-plugin") -> Iterator[Registry]:
    """Register ``obj`` (a module or object with hook implementations) for the duration of a ``with`` block."""
    _EXTRA.append((name, obj))
    reset_registry()
    try:
        yield get_registry()
    finally:
        _EXTRA.remove((name, obj))
        reset_registry()


def resolve(kind: str, name: str) -> Entry:
    return get_registry().get(kind, name)
