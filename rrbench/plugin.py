"""The stable face of rrbench for plugin authors: everything a plugin needs to import, from one module.

A plugin imports only from here (and, in its tests, from :mod:`rrbench.testing`). The modules behind these names
may move between releases; these names do not, and a name that must go is deprecated here for one minor version
first. Importing this module is cheap: nothing heavier than numpy is loaded until a component is used.

Example::

    from rrbench.plugin import PointwiseReranker, RerankerSpec, hookimpl

    @hookimpl
    def register_rerankers(register):
        register(RerankerSpec(id="overlap", loader="my_plugin.reranker:Overlap", score_kind="similarity"))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rrbench.components.bases import (
    Calibrator,
    Fuser,
    ListwiseReranker,
    Miner,
    ModelOptions,
    PointwiseReranker,
    Reranker,
    Retriever,
    Run,
    non_evidence,
)
from rrbench.components.hookspecs import hookimpl
from rrbench.components.specs import (
    CalibratorSpec,
    ComponentSpec,
    FuserSpec,
    LossSpec,
    MinerSpec,
    OptionSpec,
    RegimeSpec,
    RerankerSpec,
    RetrieverSpec,
    TaskRef,
    validate_options,
)
from rrbench.util.deprecation import forwarding
from rrbench.util.errors import MissingWeightsError, PluginError, UsageError

if TYPE_CHECKING:
    from rrbench.models.resolve import resolve_weights
    from rrbench.retrievers.encoding import encode_with_progress
    from rrbench.retrievers.fusion import competition_ranks
    from rrbench.tasks.loader import Query, Task
    from rrbench.tasks.mini import write_task

#: Helpers whose modules pull in more (pydantic task specs, tqdm): imported on first use, so that every plugin's
#: ``from rrbench.plugin import ...`` at registration time stays as cheap as the hook specs themselves.
_ON_FIRST_USE = {
    "Query": "rrbench.tasks.loader",
    "Task": "rrbench.tasks.loader",
    "competition_ranks": "rrbench.retrievers.fusion",
    "encode_with_progress": "rrbench.retrievers.encoding",
    "resolve_weights": "rrbench.models.resolve",
    "write_task": "rrbench.tasks.mini",
}

__all__ = [
    "Calibrator",
    "CalibratorSpec",
    "ComponentSpec",
    "Fuser",
    "FuserSpec",
    "ListwiseReranker",
    "LossSpec",
    "Miner",
    "MinerSpec",
    "MissingWeightsError",
    "ModelOptions",
    "OptionSpec",
    "PluginError",
    "PointwiseReranker",
    "Query",
    "RegimeSpec",
    "Reranker",
    "RerankerSpec",
    "Retriever",
    "RetrieverSpec",
    "Run",
    "Task",
    "TaskRef",
    "UsageError",
    "competition_ranks",
    "encode_with_progress",
    "hookimpl",
    "non_evidence",
    "resolve_weights",
    "validate_options",
    "write_task",
]

_deprecated_getattr, _ = forwarding("rrbench.plugin", "rrbench.plugin",
                                    {"PairwiseReranker": "rrbench.components.bases:PointwiseReranker"})


def __getattr__(name: str) -> Any:
    """Import a helper of ``_ON_FIRST_USE`` on first use, or forward a deprecated name.

    ``PairwiseReranker`` was a misnomer (it is the pointwise interface); it is now ``PointwiseReranker``.
    """
    if name in _ON_FIRST_USE:
        value = getattr(importlib.import_module(_ON_FIRST_USE[name]), name)
        globals()[name] = value
        return value
    if name == "PairwiseReranker":
        return _deprecated_getattr(name)
    raise AttributeError(f"module 'rrbench.plugin' has no attribute {name!r}")
