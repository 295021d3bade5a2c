"""Helpers for testing rrbench and rrbench plugins: a mini task with no-evidence queries, tiny models built on the
spot (no network), and a way to register a plugin for one test. Also exposed as pytest fixtures (``pytest_plugin``)."""

from rrbench.registry import registered_plugin
from rrbench.testing.fixtures import make_mini_task, make_tiny_bert, make_tiny_bi_encoder

__all__ = ["make_mini_task", "make_tiny_bert", "make_tiny_bi_encoder", "registered_plugin"]
