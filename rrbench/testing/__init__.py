"""The public face for testing rrbench plugins: stable, like :mod:`rrbench.plugin`.

A plugin's tests import from here (and from :mod:`rrbench.plugin` and the top-level API: ``rrbench.run``,
``rrbench.get_task``, ``rrbench.get_retriever``, ...). Everything is generated locally and deterministically, so a
plugin's CI needs no network:

- a mini task with graded labels and no-evidence queries (``make_mini_task``, ``make_train_task``, ``write_task``);
- tiny random models built on the spot (``make_tiny_bert`` and friends);
- a plugin registered for one test (``registered_plugin``; the pytest fixtures ``rrbench_register``,
  ``rrbench_mini_task`` and ``rrbench_tiny_cross_encoder`` come from :mod:`rrbench.testing.pytest_plugin`);
- the conformance checks ``rrbench check`` runs (``check_component``), and the registry's view of a plugin
  (``plugin_info``, ``resolve_component``).
"""

from __future__ import annotations

from rrbench.checks.conformance import check_component
from rrbench.components.registry import Entry, PluginInfo, get_registry, registered_plugin, reset_registry, resolve
from rrbench.testing.fixtures import (
    MINI_POSTS,
    MINI_QRELS,
    MINI_QUERIES,
    MINI_TRAIN_SPLITS,
    make_mini_task,
    make_tiny_bert,
    make_tiny_bi_encoder,
    make_tiny_causal_lm,
    make_train_task,
    mini_vocab,
    write_fake_plugin,
    write_task,
)

__all__ = [
    "MINI_POSTS",
    "MINI_QRELS",
    "MINI_QUERIES",
    "MINI_TRAIN_SPLITS",
    "check_component",
    "make_mini_task",
    "make_tiny_bert",
    "make_tiny_bi_encoder",
    "make_tiny_causal_lm",
    "make_train_task",
    "mini_vocab",
    "plugin_info",
    "registered_plugin",
    "reset_registry",
    "resolve_component",
    "write_fake_plugin",
    "write_task",
]


def plugin_info(name: str) -> PluginInfo:
    """What discovery found for plugin ``name``: distribution, version, status (``ok``, ``partial``, ``broken``),
    problems and what each hook registered."""
    return get_registry().plugins[name]


def resolve_component(kind: str, name: str) -> Entry:
    """The registry entry a name resolves to (``spec``, ``plugin``, ``distribution``), as ``rrbench run`` sees it."""
    return resolve(kind, name)
