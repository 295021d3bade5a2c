"""The plugin hooks. A plugin implements any of these with ``@rrbench.hookimpl``.

Every registration hook receives a ``register`` callable and calls it once per component with a spec from
:mod:`rrbench.components.specs`. Registration must stay cheap: put heavy imports behind the spec's loader string.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("rrbench")
hookimpl = pluggy.HookimplMarker("rrbench")

Register = Callable[[Any], None]


@hookspec
def register_rerankers(register: Register) -> None:
    """Register rerankers: ``register(RerankerSpec(id=..., loader="pkg.mod:Factory", ...))``."""


@hookspec
def register_retrievers(register: Register) -> None:
    """Register candidate generators: ``register(RetrieverSpec(...))``."""


@hookspec
def register_fusers(register: Register) -> None:
    """Register fusion methods that combine several retrievers' rankings: ``register(FuserSpec(...))``."""


@hookspec
def register_losses(register: Register) -> None:
    """Register training losses: ``register(LossSpec(...))``."""


@hookspec
def register_miners(register: Register) -> None:
    """Register hard-negative miners: ``register(MinerSpec(...))``."""


@hookspec
def register_regimes(register: Register) -> None:
    """Register training regimes (named recipes): ``register(RegimeSpec(...))``."""


@hookspec
def register_tasks(register: Register) -> None:
    """Register tasks: ``register(TaskRef.from_path("my-task", "/path/to/dir_with_task.yaml"))``."""


@hookspec
def register_calibrators(register: Register) -> None:
    """Register calibrators of the decision stage: ``register(CalibratorSpec(...))``."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add click commands to the ``rrbench`` command group: ``@cli.command() def mycmd(): ...``."""
