"""Rerankers that load their model only when a score is missing from the cache.

Why: a sweep or a re-run whose every score is cached must not spend 20 s loading weights it will never use. The
score cache keys scores by a fingerprint of the model (:func:`rrbench.components.identity.model_fingerprint`); everything in it can
be known without loading the model: the spec, the options, the weight files' content hash, and what a backend adds
through its ``fingerprint_extra(spec, options)`` class method (the resolved instruction text, the implementation...).
A backend that declares ``fingerprint_extra`` can therefore be deferred; others are loaded at once, as before.

The deferred model is built on the first call that needs it, and its own ``cache_fingerprint()`` is checked against
the one computed up front, so a backend whose two answers drift apart fails loudly instead of caching under a wrong key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rrbench.components.bases import ListwiseReranker, ModelOptions, PointwiseReranker, Reranker
from rrbench.components.specs import RerankerSpec
from rrbench.models.resolve import resolve_weights
from rrbench.util.errors import RRBenchError, UsageError


class _Deferred:
    """Shared state of a deferred reranker: the factory, the precomputed fingerprint parts and the loaded model."""

    weights_path: str | None
    weights_source: str | None

    def _defer(self, factory: Any, spec: RerankerSpec, options: ModelOptions, extra: dict[str, Any] | None) -> None:
        if spec.requires_remote_code and not options.trust_remote_code:
            raise UsageError(f"reranker {spec.id} runs Python code from its model repository; pass "
                             "--trust-remote-code to allow it")
        path, source = resolve_weights(spec.hub_id, spec.revision, options.model_path,
                                       packaged=spec.packaged_weights, what=f"reranker {spec.id}")
        self._factory = factory
        self._extra = extra
        self._loaded: Reranker | None = None
        self.weights_path = str(path)
        self.weights_source = source
        self.max_length = options.max_length or spec.max_length
        self.interaction = getattr(factory, "interaction", spec.interaction)

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def model(self) -> Reranker:
        if self._loaded is None:
            model = self._factory(self.spec, self.options)  # type: ignore[attr-defined]
            actual = model.cache_fingerprint() if callable(getattr(model, "cache_fingerprint", None)) else None
            if actual != self._extra:
                raise RRBenchError(f"reranker {self.spec.id}: fingerprint_extra() and cache_fingerprint() disagree "  # type: ignore[attr-defined]
                                   f"({self._extra!r} vs {actual!r}); this is a bug in its backend")
            model.dtype_requested = getattr(self, "dtype_requested", None)  # set on this proxy by load_reranker
            self._loaded = model
        return self._loaded

    def describe(self) -> dict[str, Any]:
        if self._loaded is not None:
            return self._loaded.describe()
        out = Reranker.describe(self)  # type: ignore[arg-type]
        out["weights_source"], out["weights_path"] = self.weights_source, self.weights_path
        out["loaded"] = False  # every score came from the cache: the model was never built
        if self._extra:
            out.update({k: v for k, v in self._extra.items() if k not in out})
        return out


class DeferredPointwiseReranker(_Deferred, PointwiseReranker):
    def __init__(self, factory: Any, spec: RerankerSpec, options: ModelOptions, extra: dict[str, Any] | None) -> None:
        PointwiseReranker.__init__(self, spec, options)
        self._defer(factory, spec, options, extra)

    def score_pairs(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        return self.model().score_pairs(queries, documents)  # type: ignore[attr-defined]


class DeferredListwiseReranker(_Deferred, ListwiseReranker):
    def __init__(self, factory: Any, spec: RerankerSpec, options: ModelOptions, extra: dict[str, Any] | None) -> None:
        ListwiseReranker.__init__(self, spec, options)
        self._defer(factory, spec, options, extra)

    def score_list(self, query: str, documents: Sequence[str]) -> np.ndarray:
        return self.model().score_list(query, documents)  # type: ignore[attr-defined]


def unwrap(reranker: Reranker) -> Reranker:
    """The model behind a deferred reranker, built now (what a timing or a backend's own attributes need); any other
    reranker as it is."""
    return reranker.model() if isinstance(reranker, _Deferred) else reranker


def _with_custom(cls: type, extra: dict[str, Any] | None) -> type:
    """The deferred class, with ``cache_fingerprint`` only when the backend has one (the fingerprint differs)."""
    if extra is None:
        return cls
    return type(cls.__name__, (cls,), {"cache_fingerprint": lambda self: dict(self._extra)})


def defer(factory: Any, spec: RerankerSpec, options: ModelOptions) -> Reranker:
    """A deferred reranker when ``factory`` supports it (has ``fingerprint_extra``), else the loaded model."""
    static = getattr(factory, "fingerprint_extra", None)
    if not callable(static):
        return factory(spec, options)
    extra = static(spec, options)
    base = DeferredListwiseReranker if spec.interaction == "listwise" else DeferredPointwiseReranker
    return _with_custom(base, extra)(factory, spec, options, extra)
