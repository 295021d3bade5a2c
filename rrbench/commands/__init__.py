"""Sub-commands beyond the core ones in :mod:`rrbench.cli`, one module per area.

Each module defines ``register(cli)`` that adds its click commands. Modules must import nothing heavy at import time.
"""

from __future__ import annotations

import importlib
from typing import Any

COMMAND_MODULES = (
    "rrbench.commands.cache",        # cache stats/clear
    "rrbench.commands.records",      # publish, leaderboard build, reproduce, evaluate
    "rrbench.commands.candidates",   # candidates, tasks import-beir
    "rrbench.commands.check",        # reranker conformance check
    "rrbench.commands.train",        # train
    "rrbench.commands.new_plugin",   # new-plugin (plugin package scaffold)
    "rrbench.commands.task_export",  # tasks export --format hf
    "rrbench.commands.matrix",       # matrix plan/run/status (issue 11)
    "rrbench.commands.sweep",        # sweep, sweep fill, plot reliability
)


def register_all(cli: Any) -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(cli)
