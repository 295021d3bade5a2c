"""Local checkpoints: a folder given as ``--reranker DIR``. rrbench-trained folders carry ``rrbench_model.json``
(base spec, weights hash, training manifest); any other folder is treated as a plain cross-encoder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, get_args

from rrbench.components.identity import weight_files
from rrbench.components.specs import RerankerSpec, ScoreKind
from rrbench.util.errors import MissingWeightsError, UsageError
from rrbench.util.io import read_json_object

CHECKPOINT_META = "rrbench_model.json"


#: Suffixes of files that hold model weights (at any depth: sentence-transformers nests modules in folders).
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".gguf")


def spec_for_checkpoint(path: Path, generic: RerankerSpec) -> RerankerSpec:
    if path.is_dir() and not any(f.suffix in _WEIGHT_SUFFIXES for f in weight_files(path)):
        raise MissingWeightsError(f"{path}: no model weights in this checkpoint folder (expected *.safetensors or "
                                  f"pytorch_model.bin; a training still running or interrupted has none yet)")
    meta_file = path / CHECKPOINT_META
    if meta_file.is_file():
        meta = _checked_meta(meta_file)
        return replace(generic, id=str(path), hub_id=None, revision=meta.get("weights_sha256"),
                       score_kind=meta.get("score_kind", generic.score_kind),
                       max_length=meta.get("max_length", generic.max_length),
                       # backend knobs the trainer knows the model needs (e.g. a causal-LM yes/no head)
                       options={**generic.options, **meta.get("reranker_options", {})},
                       description=f"rrbench-trained checkpoint {path}")
    return replace(generic, id=str(path), hub_id=None, revision=None,
                   description=f"local cross-encoder checkpoint {path}")


def _checked_meta(meta_file: Path) -> dict[str, Any]:
    """The fields of ``rrbench_model.json`` that steer loading, checked: a hand-edited or damaged file is a user
    error naming the file and field (exit 2), not a traceback from deep inside the loader."""
    meta = read_json_object(meta_file)
    kinds = get_args(ScoreKind)
    if "score_kind" in meta and meta["score_kind"] not in kinds:
        raise UsageError(f"{meta_file}: field 'score_kind' {meta['score_kind']!r} is not one of {', '.join(kinds)}")
    max_length = meta.get("max_length")
    if max_length is not None and (not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1):
        raise UsageError(f"{meta_file}: field 'max_length' must be a positive integer, got {max_length!r}")
    if not isinstance(meta.get("reranker_options", {}), dict):
        raise UsageError(f"{meta_file}: field 'reranker_options' must be an object")
    for key in ("weights_sha256",):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise UsageError(f"{meta_file}: field {key!r} must be a string")
    return meta
