"""Every step that runs component code -- importing its loader, constructing it, calling it -- goes through here.

Why: a plugin's mistake must surface as one line that names the plugin, its distribution and the component, not as a
31-line traceback from inside rrbench. The exit code tells a CI script which side failed: a component that cannot be
built (loader import fails, wrong constructor or method signature, missing method) is a :class:`PluginBuildError`,
exit 2; one that fails while running is a :class:`~rrbench.util.errors.PluginError`, exit 1. rrbench's own errors
(already one line, e.g. missing weights) pass through unchanged. Built-in components go through the same code.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rrbench.components.registry import get_registry
from rrbench.components.specs import singular
from rrbench.util.errors import PluginError, RRBenchError


class PluginBuildError(PluginError):
    """A component that cannot be built as declared (exit 2: nothing ran)."""

    exit_code = 2


#: Per kind: the methods rrbench calls and the arguments it passes (besides ``self``).
INTERFACES: dict[str, dict[str, tuple[str, ...]]] = {
    "retrievers": {"index": ("documents",), "score_all": ("query",)},
    "fusers": {"fuse": ("runs",)},
    "miners": {"mine": ("task", "queries", "k")},
    "calibrators": {"fit": ("x", "y"), "transform": ("x",)},
}
PAIRWISE: dict[str, tuple[str, ...]] = {"score_pairs": ("queries", "documents")}
LISTWISE: dict[str, tuple[str, ...]] = {"score_list": ("query", "documents")}


def owner_label(kind: str, spec: Any) -> str:
    """``plugin 'X' (distribution rrbench-x 0.1), reranker 'id'`` for a registered spec, else ``reranker 'id'``."""

    entries = get_registry().entries.get(kind, [])
    entry = next((e for e in entries if e.spec is spec), None) or next((e for e in entries if e.spec == spec), None)
    return entry.label() if entry is not None else f"{singular(kind)} {getattr(spec, 'id', spec)!r}"


def component_label(component: Any) -> str:
    """The label of a built component (a reranker, retriever, fuser or miner holding its ``spec``)."""
    spec = getattr(component, "spec", None)
    kind = getattr(spec, "kind", None)
    if spec is None or kind is None:
        return type(component).__name__
    return owner_label(kind, spec)


def load_factory(kind: str, spec: Any) -> Any:
    """Import what the spec's loader string points at."""
    try:
        return spec.load()
    except Exception as exc:
        raise PluginBuildError(f"{owner_label(kind, spec)}: its loader {spec.loader!r} cannot be imported: "
                               f"{type(exc).__name__}: {exc}") from exc


def build(kind: str, spec: Any, *args: Any, **kwargs: Any) -> Any:
    """Load the factory, call it, and check the result has the methods rrbench will call, with usable signatures."""
    factory = load_factory(kind, spec)
    label = owner_label(kind, spec)
    try:
        obj = factory(*args, **kwargs)
    except RRBenchError:
        raise
    except Exception as exc:
        raise PluginBuildError(f"{label}: cannot be built by {spec.loader}: {type(exc).__name__}: {exc}") from exc
    check_interface(kind, obj, label)
    return obj


def check_interface(kind: str, obj: Any, label: str) -> None:
    if kind == "rerankers":
        methods = LISTWISE if hasattr(obj, "score_list") and not hasattr(obj, "score_pairs") else PAIRWISE
    else:
        methods = INTERFACES.get(kind, {})
    for name, params in methods.items():
        method = getattr(obj, name, None)
        if not callable(method):
            raise PluginBuildError(f"{label}: {type(obj).__name__} has no method {name}({', '.join(params)})")
        try:
            inspect.signature(method).bind(*params)
        except TypeError:
            raise PluginBuildError(f"{label}: {type(obj).__name__}.{name}{inspect.signature(method)} cannot be "
                                   f"called as {name}({', '.join(params)})") from None
        except ValueError:  # builtins without a signature: nothing to check
            continue


@contextmanager
def running(label: str, what: str) -> Iterator[None]:
    """Turn an exception raised by component code into a one-line :class:`PluginError` (exit 1) naming it."""
    try:
        yield
    except RRBenchError:
        raise
    except Exception as exc:
        raise PluginError(f"{label}: {what} raised {type(exc).__name__}: {exc}") from exc
