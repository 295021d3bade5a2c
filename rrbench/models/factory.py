"""Building a reranker by registered id or alias, hub id or local checkpoint, with its options resolved."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from rrbench.components.bases import ListwiseReranker, ModelOptions, PointwiseReranker, Reranker
from rrbench.components.calls import build, load_factory
from rrbench.components.registry import get_registry
from rrbench.components.specs import RerankerSpec
from rrbench.models.checkpoint import spec_for_checkpoint
from rrbench.models.lazy import defer
from rrbench.models.loading import pick_device, resolve_dtype
from rrbench.models.runtimes import check_runtime
from rrbench.util.errors import MissingWeightsError, UnknownComponentError, UsageError

GENERIC_CROSS_ENCODER = "cross-encoder"


def resolve_reranker_spec(name: str) -> tuple[RerankerSpec, str | None]:
    """A registered spec for ``name``; or the generic cross-encoder for a local path or an unregistered hub id.

    Returns ``(spec, implied_model_path)``.
    """

    registry = get_registry()
    try:
        return registry.get("rerankers", name).spec, None
    except UnknownComponentError:
        path = Path(name).expanduser()
        generic = registry.get("rerankers", GENERIC_CROSS_ENCODER).spec
        if path.exists():
            return spec_for_checkpoint(path, generic), str(path.resolve())
        if looks_like_path(name):
            raise MissingWeightsError(f"reranker {name!r}: no such folder {path} (an argument that looks like a "
                                      f"path is read as a local checkpoint; a hub id is ORG/NAME)") from None
        if "/" in name:
            return replace(generic, id=name, hub_id=name, revision=None,
                           description=f"{name} through the generic cross-encoder backend (unpinned)"), None
        raise


def looks_like_path(name: str) -> bool:
    """Whether a model argument means a local folder rather than a hub id (``ORG/NAME``): it starts with ``.``,
    ``~`` or ``/``, holds a separator a hub id cannot (``\\``, a second ``/``, ``os.sep``), or its first part is
    a folder here (``runs/does-not-exist`` where ``runs/`` exists)."""
    if name.startswith((".", "~", "/")) or "\\" in name or name.count("/") > 1:
        return True
    if os.sep != "/" and os.sep in name:
        return True
    head, slash, _ = name.partition("/")
    return bool(slash) and Path(head).is_dir()


def load_reranker(name: str, model_path: str | None = None, deferred: bool = False, **options: Any) -> Reranker:
    """Instantiate a reranker by registered id/alias, full hub id or local checkpoint path.

    ``options`` are :class:`ModelOptions` fields; unknown keys go to ``ModelOptions.extra`` (backend knobs).
    """
    spec, implied_path = resolve_reranker_spec(name)
    known = {f for f in ModelOptions.__dataclass_fields__ if f != "extra"}
    base = {k: v for k, v in options.items() if k in known and v is not None}
    extra = {k: v for k, v in options.items() if k not in known and v is not None}
    if "runtime" in extra:
        extra["runtime"] = check_runtime(extra["runtime"])
        if extra["runtime"] == "torch":  # the default leaves no trace, so fingerprints and config hashes stay
            del extra["runtime"]
        elif spec.backend != "cross-encoder":
            raise UsageError(f"--runtime {extra['runtime']} is for pointwise cross-encoders; reranker {spec.id} "
                             f"has backend {spec.backend} (use --runtime torch)")
    requested_dtype = base.get("dtype")
    if requested_dtype == "auto":
        base["dtype"] = resolve_dtype("auto", pick_device(base.get("device")),
                                      str({**spec.options, **extra}.get("runtime", "torch")))
    model_options = ModelOptions(model_path=model_path or implied_path, extra={**spec.options, **extra}, **base)

    factory = load_factory("rerankers", spec)
    if deferred and callable(getattr(factory, "fingerprint_extra", None)):
        # built only when a score is missing from the cache (rrbench.models.lazy)

        reranker = defer(factory, spec, model_options)
    else:
        reranker = build("rerankers", spec, spec, model_options)
    if requested_dtype == "auto":
        reranker.dtype_requested = "auto"  # the options (fingerprint, manifest) hold the resolved dtype
    return reranker


__all__ = ["ListwiseReranker", "ModelOptions", "PointwiseReranker", "Reranker", "load_reranker",
           "resolve_reranker_spec"]
