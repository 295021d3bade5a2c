"""The ``rrbench`` command line: ``main.py`` holds the group and the core commands, one module per command group
beside it (each adds its commands in ``register(cli)``), ``groups.py`` lists them."""

from rrbench.cli.main import cli, main

__all__ = ["cli", "main"]
