"""The command table ``rrbench --help`` prints without importing commands agrees with the commands themselves, and
start-up stays light: listing commands or components imports neither torch nor the pipeline."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from rrbench.cli.groups import COMMANDS


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_table_line_is_the_commands_own_help(name):
    target, short_help = COMMANDS[name]
    module, _, attr = target.partition(":")
    command = getattr(importlib.import_module(module), attr)
    assert command.name == name
    assert command.get_short_help_str(limit=300) == short_help


def test_help_and_list_import_neither_torch_nor_the_pipeline():
    code = ("import sys\nfrom rrbench.cli.main import main\nmain(['--help'])\nmain(['list', 'rerankers'])\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'optuna', "
            "'pydantic') or m.startswith(('rrbench.pipeline', 'rrbench.hpo', 'rrbench.training.trainer', "
            "'rrbench.leaderboard')))\n"
            "print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
