"""Local checkpoints: a folder given as ``--reranker DIR``. rrbench-trained folders carry ``rrbench_model.json``
(base spec, weights hash, training manifest); any other folder is treated as a plain cross-encoder."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from rrbench.specs import RerankerSpec

CHECKPOINT_META = "rrbench_model.json"


def spec_for_checkpoint(path: Path, generic: RerankerSpec) -> RerankerSpec:
    meta_file = path / CHECKPOINT_META
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        return replace(generic, id=str(path), hub_id=None, revision=meta.get("weights_sha256"),
                       score_kind=meta.get("score_kind", generic.score_kind),
                       max_length=meta.get("max_length", generic.max_length),
                       # backend knobs the trainer knows the model needs (e.g. a causal-LM yes/no head)
                       options={**generic.options, **meta.get("reranker_options", {})},
                       description=f"rrbench-trained checkpoint {path}")
    return replace(generic, id=str(path), hub_id=None, revision=None,
                   description=f"local cross-encoder checkpoint {path}")
