"""pytest fixtures for rrbench plugin authors (loaded automatically through the ``pytest11`` entry point).

- ``rrbench_mini_task``: path to a freshly written mini task (graded labels, no-evidence queries).
- ``rrbench_register``: ``rrbench_register(plugin_obj)`` registers hook implementations for the current test only.
- ``rrbench_tiny_cross_encoder``: path to a tiny random BERT cross-encoder.
"""

from __future__ import annotations

from typing import Any

import pytest

from rrbench.components.registry import registered_plugin
from rrbench.testing.fixtures import make_mini_task, make_tiny_bert


@pytest.fixture
def rrbench_mini_task(tmp_path: Any) -> Any:
    return make_mini_task(tmp_path / "mini-task")


@pytest.fixture
def rrbench_register() -> Any:
    stack = []

    def register(plugin: Any, name: str = "test-plugin") -> Any:
        ctx = registered_plugin(plugin, name)
        registry = ctx.__enter__()
        stack.append(ctx)
        return registry

    yield register
    while stack:
        stack.pop().__exit__(None, None, None)


@pytest.fixture(scope="session")
def rrbench_tiny_cross_encoder(tmp_path_factory: Any) -> Any:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny") / "tiny-bert")
