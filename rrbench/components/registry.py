"""Plugin discovery and the component registry.

Discovery is defensive because one broken third-party package must not take the whole CLI down:

- a plugin that fails to import, implements an unknown hook or has a hook with a bad signature is *broken*: skipped
  and shown by ``rrbench plugins``;
- each hook call is isolated: a ``register_*`` hook that raises loses only what that call registered (the plugin is
  then *partial*), so one failing hook never takes a plugin's -- or rrbench's own -- other components with it;
- silent mistakes (a hook without ``@hookimpl``, a hook taking no argument, an id registered twice by one plugin, a
  misspelt name in ``RRBENCH_LOAD_PLUGINS``, a hook wrapper on a ``register_*`` hook) become *notices*.

Each problem is one line on stderr, printed once per process (the first time the registry is built); ``rrbench
plugins`` shows the details and ``--trace`` the loading order. ``RRBENCH_STRICT_PLUGINS=1`` turns any problem --
clashes included -- into an error, but only when a component is actually resolved, so ``--help``, ``rrbench
plugins`` and ``rrbench list`` keep working for diagnosis.

Names: ids win over aliases; a third-party alias that shadows a built-in name is refused whatever the loading order;
every component also answers to ``PLUGIN:ID`` (``rrbench:bm25``, ``sklearn:tfidf``), which is what an ambiguous name's
error message suggests. Hooks are called in pluggy's order (``tryfirst``/``trylast`` honoured), one implementation at a
time so a failure names its plugin.
"""

from __future__ import annotations

import builtins
import difflib
import importlib
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from rrbench import __version__
from rrbench.components import hookspecs
from rrbench.components.specs import KINDS, SPEC_CLASSES, ComponentSpec, singular
from rrbench.util.errors import UnknownComponentError, UsageError, close_matches

ENTRY_POINT_GROUP = "rrbench"
BUILTIN_PLUGIN = "rrbench"
#: rrbench's own components, registered through the same hooks as any plugin (datasette's default plugins)
BUILTINS_MODULE = "rrbench.builtins"
HOOK_NAMES = (*tuple(f"register_{kind}" for kind in KINDS), "register_commands")


@dataclass(frozen=True)
class Entry:
    """A registered component and who registered it."""

    spec: Any
    plugin: str
    distribution: str | None = None
    version: str | None = None
    editable: bool = False

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def qualified_name(self) -> str:
        """``PLUGIN:ID``: unambiguous whatever else is installed."""
        return f"{self.plugin}:{self.spec.id}"

    def provenance(self) -> dict[str, Any]:
        """Who made this component, for result records (and for ``reproduce`` to say what to install)."""
        return {"plugin": self.plugin, "distribution": self.distribution, "version": self.version,
                "editable": self.editable}

    def label(self) -> str:
        """``plugin 'X' (distribution rrbench-x 0.1), reranker 'id'``: the prefix of every plugin error."""
        dist = f"distribution {self.distribution} {self.version or ''}".strip() if self.distribution else \
            "no distribution"
        return f"plugin {self.plugin!r} ({dist}), {singular(self.spec.kind)} {self.spec.id!r}"


@dataclass
class PluginInfo:
    name: str
    distribution: str | None
    version: str | None
    status: str = "ok"  # ok | partial (some hook calls failed) | broken | disabled
    reason: str = ""
    hooks: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    editable: bool = False
    #: what each kind's hook registered, in registration order (``rrbench plugins --trace``)
    registered: dict[str, list[str]] = field(default_factory=dict)
    #: one line per problem found while loading this plugin
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        dist = f"{self.distribution} {self.version or ''}".strip() if self.distribution else "no distribution"
        return f"plugin {self.name!r} (distribution {dist})" if self.distribution else f"plugin {self.name!r} ({dist})"


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


def strict_mode() -> bool:
    return os.environ.get("RRBENCH_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes", "on"}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class Registry:
    """All components of all kinds, with name resolution, clash detection and plugin status."""

    def __init__(self) -> None:
        self.entries: dict[str, list[Entry]] = {kind: [] for kind in KINDS}
        self.plugins: dict[str, PluginInfo] = {}
        self._by_name: dict[str, dict[str, list[Entry]]] = {kind: {} for kind in KINDS}
        #: one-line warnings not tied to one broken plugin (misspelt env lists, refused aliases, ...)
        self.notices: list[str] = []
        #: loading events in order, for ``rrbench plugins --trace``
        self.trace: list[str] = []
        self._problems: list[str] = []

    # -- building ----------------------------------------------------------------------------------------------
    def notice(self, plugin: str | None, message: str, problem: str | None = None) -> None:
        """Record a one-line warning; ``problem`` is how strict mode words it (default: the same)."""
        message = _one_line(message)
        if plugin is not None and plugin in self.plugins:
            self.plugins[plugin].problems.append(message)
        self.notices.append(message)
        self._problems.append(_one_line(problem or message))
        self.trace.append(f"  notice: {message}")

    def mark_broken(self, plugin: str, reason: str) -> None:
        """Flag a plugin as broken and drop anything it registered."""
        info = self.plugins[plugin]
        info.status, info.reason = "broken", _one_line(reason)
        info.counts.clear()
        info.registered.clear()
        for kind in KINDS:
            self.entries[kind] = [e for e in self.entries[kind] if e.plugin != plugin]
        self.notice(plugin, f"{info.describe()} is broken and was skipped: {info.reason}",
                    problem=f"{info.describe()} is broken: {info.reason}")

    def hook_failed(self, plugin: str, hook: str, exc: BaseException) -> None:
        """A single hook call raised: only what that call registered is lost."""
        info = self.plugins[plugin]
        what = f"{hook} raised {type(exc).__name__}: {exc}"
        info.status = "partial" if info.status == "ok" else info.status
        info.reason = _one_line("; ".join(filter(None, [info.reason, what])))
        self.notice(plugin, f"{info.describe()}: {what} (its other hooks still count; see `rrbench plugins`)",
                    problem=f"{info.describe()}: {what}")

    def _index(self) -> None:
        """Build the name index: ids first, then aliases that neither shadow an id nor a built-in name."""
        for kind in KINDS:
            by_name: dict[str, list[Entry]] = {}
            builtin_names = {n for e in self.entries[kind] if e.plugin == BUILTIN_PLUGIN for n in e.spec.names}
            what = singular(kind)
            for entry in self.entries[kind]:
                if entry.plugin != BUILTIN_PLUGIN and entry.id in builtin_names:
                    # a plain command must keep meaning the built-in: the plugin's component answers to PLUGIN:ID
                    self.notice(entry.plugin, f"plugin {entry.plugin!r}: {what} id {entry.id!r} is a built-in "
                                              f"{what} name, which keeps meaning rrbench's own; use "
                                              f"{entry.qualified_name} for the plugin's")
                    continue
                by_name.setdefault(entry.id, []).append(entry)
            ids = set(by_name)
            for entry in self.entries[kind]:
                for alias in dict.fromkeys(entry.spec.aliases):
                    if alias == entry.id:
                        continue
                    if entry.plugin != BUILTIN_PLUGIN and alias in builtin_names:
                        owner = next(e for e in self.entries[kind] if e.plugin == BUILTIN_PLUGIN and alias in
                                     e.spec.names)
                        self.notice(entry.plugin, f"plugin {entry.plugin!r}: alias {alias!r} of {what} {entry.id!r} "
                                                  f"shadows the built-in {what} {owner.id!r} (plugin 'rrbench') and "
                                                  f"is refused; use {entry.qualified_name}")
                        continue
                    if alias in ids:
                        owner = by_name[alias][0]
                        self.notice(entry.plugin, f"plugin {entry.plugin!r}: alias {alias!r} of {what} {entry.id!r} "
                                                  f"is ignored: it is the id of {owner.qualified_name}")
                        continue
                    by_name.setdefault(alias, []).append(entry)
            self._by_name[kind] = by_name

    # -- queries -----------------------------------------------------------------------------------------------
    def clashes(self) -> list[Clash]:
        out = []
        for kind, names in self._by_name.items():
            for name, entries in names.items():
                if len(entries) > 1:
                    out.append(Clash(kind, name, tuple(sorted(e.qualified_name for e in entries))))
        return out

    def problems(self) -> list[str]:
        """Everything strict mode refuses: broken or partial plugins, notices and clashes."""
        out = list(self._problems)
        for clash in self.clashes():
            out.append(f"{singular(clash.kind)} name {clash.name!r} is registered by {', '.join(clash.plugins)}")
        return out

    def list(self, kind: str) -> builtins.list[Entry]:  # the method's own name shadows the builtin in the class
        self._check_kind(kind)
        return sorted(self.entries[kind], key=lambda e: (e.id, e.plugin))

    def names(self, kind: str) -> builtins.list[str]:
        self._check_kind(kind)
        return sorted(self._by_name[kind])

    def get(self, kind: str, name: str) -> Entry:
        """Resolve an id, alias, ``PLUGIN:ID`` or (for models) hub id to exactly one entry, or fail helpfully."""
        self._check_kind(kind)
        self._enforce_strict()
        what = singular(kind)
        plugin, colon, ident = name.partition(":")
        if colon and plugin in self.plugins:
            own = [e for e in self.entries[kind] if e.plugin == plugin]
            found = [e for e in own if e.id == ident] or [e for e in own if ident in e.spec.aliases]
            if not found:
                raise UnknownComponentError(
                    f"plugin {plugin!r} registers no {what} {ident!r}."
                    f"{close_matches(ident, [n for e in own for n in e.spec.names])} (see `rrbench list {kind}`)")
            return found[0]
        entries = self._by_name[kind].get(name)
        if entries is None:
            by_hub = [e for e in self.entries[kind] if getattr(e.spec, "hub_id", None) == name]
            entries = by_hub or None
        if not entries:
            raise UnknownComponentError(f"unknown {what} {name!r}.{self.suggest(kind, name)} "
                                        f"(see `rrbench list {kind}`)")
        if len(entries) > 1:
            who = " and ".join(f"plugin {e.plugin!r} ({e.distribution or 'no distribution'}, id {e.id!r})"
                               for e in entries)
            raise UsageError(
                f"the {what} name {name!r} is ambiguous: it is registered by {who}; use a qualified name "
                f"({' or '.join(e.qualified_name for e in entries)}) or disable one (RRBENCH_DISABLE_PLUGINS)"
            )
        return entries[0]

    def suggest(self, kind: str, name: str) -> str:
        """A "did you mean" suffix naming each close component once: its id when that resolves to it, else its
        qualified name (an alias and ``PLUGIN:ID`` spellings of the same component are not listed again)."""
        spellings: dict[str, Entry] = {}
        for entry in self.entries[kind]:
            for spelling in (*entry.spec.names, entry.qualified_name):
                spellings.setdefault(spelling, entry)
        shown: dict[int, str] = {}
        for match in difflib.get_close_matches(name, sorted(spellings), n=len(spellings), cutoff=0.5):
            entry = spellings[match]
            if id(entry) in shown:
                continue
            plain = self._by_name[kind].get(entry.id) == [entry]
            shown[id(entry)] = entry.id if plain else entry.qualified_name
            if len(shown) == 3:
                break
        return f" Did you mean: {', '.join(shown.values())}?" if shown else ""

    def has(self, kind: str, name: str) -> bool:
        try:
            self.get(kind, name)
        except UsageError:
            return False
        return True

    def _enforce_strict(self) -> None:
        if not strict_mode():
            return
        problems = self.problems()
        if problems:
            raise UsageError(f"RRBENCH_STRICT_PLUGINS is set and {len(problems)} plugin problem(s) were found: "
                             f"{'; '.join(problems)} (see `rrbench plugins`; unset RRBENCH_STRICT_PLUGINS or "
                             f"fix or disable the plugin)")

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in KINDS:
            raise UsageError(f"unknown component kind {kind!r}; choose from {', '.join(KINDS)}")


def _make_register(kind: str, sink: list[ComponentSpec]) -> Any:
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


def _is_editable(dist: Any) -> bool:
    """PEP 610: an editable install says so in ``direct_url.json``."""
    try:
        raw = dist.read_text("direct_url.json") if dist is not None else None
        return bool(raw and json.loads(raw).get("dir_info", {}).get("editable"))
    except Exception:
        return False


def _undecorated_hooks(obj: Any) -> list[str]:
    """Functions named like a hook but lacking ``@hookimpl``: pluggy silently never calls them."""
    marker = f"{hookspecs.hookimpl.project_name}_impl"
    out = []
    for name in HOOK_NAMES:
        fn = getattr(obj, name, None)
        if callable(fn) and not hasattr(fn, marker):
            out.append(name)
    return out


def _impls_in_order(pm: pluggy.PluginManager, hook_name: str) -> list[Any]:
    """Implementations in the order pluggy itself calls them (``tryfirst`` first, later-registered first)."""
    return list(reversed(getattr(pm.hook, hook_name).get_hookimpls()))


def _is_wrapper(impl: Any) -> bool:
    return bool(getattr(impl, "hookwrapper", False) or getattr(impl, "wrapper", False))


def build_registry(extra_plugins: Iterable[tuple[str, Any]] = ()) -> Registry:
    """Discover plugins (built-ins, entry points, ``extra_plugins``) and collect their registrations."""
    own_plugin = importlib.import_module(BUILTINS_MODULE)  # by name: rrbench's own plugin sits above every layer

    registry = Registry()
    pm = pluggy.PluginManager("rrbench")
    pm.add_hookspecs(hookspecs)

    def add_plugin(name: str, obj: Any, dist: str | None, version: str | None, editable: bool = False) -> None:
        registry.plugins[name] = PluginInfo(name, dist, version, editable=editable)
        registry.trace.append(f"load {name} ({dist or 'no distribution'} {version or ''})".rstrip())
        try:
            pm.register(obj, name=name)
        except Exception as exc:
            registry.mark_broken(name, f"{type(exc).__name__}: {exc}")
            return
        for hook in _undecorated_hooks(obj):
            registry.notice(name, f"plugin {name!r}: {hook} is not decorated with @rrbench.hookimpl, so it is "
                                  f"never called; add the decorator")

    add_plugin(BUILTIN_PLUGIN, own_plugin, "rrbench", _own_version())

    allow = _env_list("RRBENCH_LOAD_PLUGINS")
    block = _env_list("RRBENCH_DISABLE_PLUGINS") or set()
    known: set[str] = {BUILTIN_PLUGIN}
    for ep in _iter_entry_points():
        dist = ep.dist.name if ep.dist else None
        version = ep.dist.version if ep.dist else None
        known.update(filter(None, (ep.name, dist)))
        if ep.name in registry.plugins:
            continue  # the same entry point seen twice (e.g. duplicated sys.path entries)
        if (allow is not None and ep.name not in allow and dist not in allow) or ep.name in block or dist in block:
            registry.plugins[ep.name] = PluginInfo(ep.name, dist, version, status="disabled",
                                                   reason="disabled by RRBENCH_LOAD_PLUGINS/RRBENCH_DISABLE_PLUGINS")
            registry.trace.append(f"skip {ep.name} ({dist}): disabled by RRBENCH_LOAD_PLUGINS/RRBENCH_DISABLE_PLUGINS")
            continue
        try:
            obj = ep.load()
        except Exception as exc:
            registry.plugins[ep.name] = PluginInfo(ep.name, dist, version, editable=_is_editable(ep.dist))
            registry.trace.append(f"load {ep.name} ({dist} {version or ''})".rstrip())
            registry.mark_broken(ep.name, f"import failed: {type(exc).__name__}: {exc}")
            continue
        add_plugin(ep.name, obj, dist, version, _is_editable(ep.dist))

    for var, names in (("RRBENCH_LOAD_PLUGINS", allow or set()), ("RRBENCH_DISABLE_PLUGINS", block)):
        for name in sorted(names - known):
            registry.notice(None, f"{var} names {name!r}, which is no installed plugin or distribution."
                                  f"{close_matches(name, known)} (installed: {', '.join(sorted(known))})")

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
        info.hooks = sorted(hc.name for hc in pm.get_hookcallers(plugin) or [] if hc.name.startswith("register_"))

    for kind in KINDS:
        hook = f"register_{kind}"
        for impl in _impls_in_order(pm, hook):
            info = registry.plugins[impl.plugin_name]
            if info.status in ("broken", "disabled"):
                continue
            if _is_wrapper(impl):
                registry.notice(impl.plugin_name, f"plugin {impl.plugin_name!r}: {hook} is a hook wrapper, which "
                                                  f"registration hooks do not support; it was not called (drop "
                                                  f"wrapper=True/hookwrapper=True)")
                continue
            if not impl.argnames:
                registry.notice(impl.plugin_name, f"plugin {impl.plugin_name!r}: {hook}() takes no argument, so it "
                                                  f"cannot register anything; declare it as {hook}(register)")
            collected: list[ComponentSpec] = []
            try:
                impl.function(**{arg: _make_register(kind, collected) for arg in impl.argnames})
            except Exception as exc:
                registry.hook_failed(impl.plugin_name, hook, exc)
                continue
            kept = _drop_duplicates(registry, impl.plugin_name, kind, collected)
            for spec in kept:
                registry.entries[kind].append(Entry(spec, impl.plugin_name, info.distribution, info.version,
                                                    info.editable))
            info.counts[kind] = info.counts.get(kind, 0) + len(kept)
            info.registered.setdefault(kind, []).extend(s.id for s in kept)
            registry.trace.append(f"  {impl.plugin_name}.{hook}: {', '.join(s.id for s in kept) or 'nothing'}")
    registry._index()
    _PLUGIN_MANAGER[0] = pm
    return registry


def _drop_duplicates(registry: Registry, plugin: str, kind: str, specs: list[ComponentSpec]) -> list[ComponentSpec]:
    """The same id twice from one plugin is a mistake in that plugin, not a clash between plugins."""
    seen = {e.id for e in registry.entries[kind] if e.plugin == plugin}
    kept = []
    for spec in specs:
        if spec.id in seen:
            registry.notice(plugin, f"plugin {plugin!r} registers {singular(kind)} {spec.id!r} twice; the second "
                                    f"registration is ignored (remove one register() call)")
            continue
        seen.add(spec.id)
        kept.append(spec)
    return kept


def register_commands(cli: Any) -> None:
    """Call every plugin's ``register_commands(cli)`` (rrbench's own first, in pluggy's order), one at a time.

    A plugin that raises loses only its own commands and is reported; a command that would replace an existing one
    is refused, so a plugin cannot silently take over ``run``.
    """
    registry = get_registry()
    pm = plugin_manager()
    applied: set[str] = getattr(cli, "_rrbench_command_plugins", set())
    impls = _impls_in_order(pm, "register_commands")
    impls.sort(key=lambda impl: impl.plugin_name != BUILTIN_PLUGIN)  # stable: built-in commands win on names
    for impl in impls:
        name = impl.plugin_name
        info = registry.plugins.get(name)
        if name in applied or info is None or info.status in ("broken", "disabled"):
            continue
        if _is_wrapper(impl):
            _report(registry, name, f"plugin {name!r}: register_commands is a hook wrapper; it was not called")
            continue
        before = dict(cli.commands)
        lazy: dict[str, Any] = getattr(cli, "lazy", {})  # commands registered by name (rrbench's own among them)
        lazy_before = dict(lazy)
        try:
            impl.function(**{arg: cli for arg in impl.argnames})
        except Exception as exc:
            for added in set(cli.commands) - set(before):
                del cli.commands[added]
            cli.commands.update(before)
            lazy.clear()
            lazy.update(lazy_before)
            registry.hook_failed(name, "register_commands", exc)
            _print_notice(registry.notices[-1])
            continue
        for cmd, obj in before.items():
            if cli.commands.get(cmd) is not obj:
                cli.commands[cmd] = obj
                _report(registry, name, f"plugin {name!r}: command {cmd!r} already exists; the plugin's version is "
                                        f"refused")
        for cmd in sorted((set(cli.commands) - set(before)) & set(lazy)):
            del cli.commands[cmd]
            _report(registry, name, f"plugin {name!r}: command {cmd!r} already exists; the plugin's version is "
                                    f"refused")
        added = sorted((set(cli.commands) - set(before)) | (set(lazy) - set(lazy_before)))
        info.registered.setdefault("commands", []).extend(added)
        registry.trace.append(f"  {name}.register_commands: {', '.join(added) or 'nothing'}")
        applied.add(name)
    cli._rrbench_command_plugins = applied


def _report(registry: Registry, plugin: str, message: str) -> None:
    registry.notice(plugin, message)
    _print_notice(registry.notices[-1])


def _print_notice(message: str) -> None:
    print(f"rrbench: warning: {message}", file=sys.stderr)


def _own_version() -> str:
    return __version__


_CACHE: list[Registry] = []
_PLUGIN_MANAGER: list[Any] = [None]
_EXTRA: list[tuple[str, Any]] = []


def get_registry() -> Registry:
    """The process-wide registry, built on first use; its problems are printed to stderr once, one line each."""
    if not _CACHE:
        registry = build_registry(_EXTRA)
        _CACHE.append(registry)
        for message in registry.notices:
            _print_notice(message)
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


def provenance(kind: str, name: str) -> dict[str, Any] | None:
    """Who provides the component called ``name``: plugin, distribution, version, editable flag and qualified name.

    A reranker given as a hub id or checkpoint path runs through the built-in generic cross-encoder, so that is its
    provider. ``None`` when nothing registered answers to the name.
    """
    registry = get_registry()
    try:
        entry = registry.get(kind, name)
    except UsageError:
        if kind != "rerankers":
            return None
        try:
            entry = registry.get(kind, "cross-encoder")
        except UsageError:
            return None
    return {"id": entry.id, "qualified_name": entry.qualified_name, **entry.provenance()}


def component_plugins(components: Mapping[str, Any]) -> dict[str, Any]:
    """Per component of a run record (``manifest.components``): the plugin that provided it (see :func:`provenance`)."""
    out: dict[str, Any] = {}
    retriever = components.get("retriever")
    if isinstance(retriever, dict):
        options = retriever.get("options") or {}
        fusion = options.get("fusion") if isinstance(options, dict) else None
        if isinstance(fusion, dict) and "id" in fusion:
            out["fusion"] = provenance("fusers", fusion["id"])
            out["retrievers"] = [provenance("retrievers", r["id"]) for r in options.get("retrievers") or []]
        elif "id" in retriever:
            out["retriever"] = provenance("retrievers", retriever["id"])
    reranker = components.get("reranker")
    if isinstance(reranker, dict) and "id" in reranker:
        out["reranker"] = provenance("rerankers", reranker["id"])
    return out


def missing_plugins(plugins: dict[str, Any]) -> list[str]:
    """For a record's ``manifest.plugins``: one line per component whose plugin is not loaded here, saying what to
    install. Used by ``reproduce`` before it spends compute."""
    registry = get_registry()
    wanted = []
    for role, value in plugins.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and item.get("plugin"):
                wanted.append((role, item))
    out = []
    for role, item in wanted:
        info = registry.plugins.get(item["plugin"])
        if info is not None and info.status in ("ok", "partial"):
            continue
        dist, version = item.get("distribution"), item.get("version")
        pin = f"{dist}=={version}" if dist and version else (dist or item["plugin"])
        state = "is not installed" if info is None else f"is {info.status}"
        out.append(f"{role} {item.get('id')!r} comes from plugin {item['plugin']!r} (distribution "
                   f"{dist or '?'} {version or ''}), which {state} here; install it: pip install '{pin}'"
                   + (" (the record was made with a local editable install)" if item.get("editable") else ""))
    return out
