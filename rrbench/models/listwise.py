"""jina-reranker-v3: a listwise reranker that reads the query and many candidates in one forward pass.

A candidate's score depends on the other candidates in its window, so this backend implements
:meth:`ListwiseReranker.score_list` (one query, its candidate list in, one score per candidate out, input order) and
is never driven through pair scoring. The model's own code (``trust_remote_code``) provides
``rerank(query, documents, top_n)``, returning ``{"index", "relevance_score", "document"}`` records; rrbench maps
them back to input order by ``index``.

Knobs (plan section 9.4; part of the config hash):

- ``group_size``: candidates per forward pass (16/32/64 in the plan; any positive integer is accepted). A list
  longer than ``group_size`` is split into groups, each scored with the query.
- ``packing``: which candidates share a group. ``sequential`` keeps the retriever order (group 1 = ranks 1..g),
  ``strided`` deals candidates round-robin (rank r goes to group r mod n_groups), so every group mixes strong and
  weak candidates and groups are more comparable.

The score is the model's query/candidate cosine similarity (``score_kind="cosine"``), comparable across groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rrbench.components.bases import ListwiseReranker, ModelOptions
from rrbench.components.specs import RerankerSpec
from rrbench.models.cross_encoder import check_remote_code
from rrbench.models.loading import pick_device, torch_dtype
from rrbench.models.resolve import resolve_weights
from rrbench.util.errors import PluginError, UsageError

PACKINGS = ("sequential", "strided")


def plan_groups(n: int, group_size: int, packing: str) -> list[np.ndarray]:
    """Indices of the candidates in each forward pass."""
    if group_size < 1:
        raise UsageError(f"option group_size must be a positive integer, got {group_size}")
    if packing not in PACKINGS:
        raise UsageError(f"option packing must be one of {', '.join(PACKINGS)}, got {packing!r}")
    if n == 0:
        return []
    n_groups = -(-n // group_size)
    if packing == "sequential":
        return [np.arange(i * group_size, min(n, (i + 1) * group_size)) for i in range(n_groups)]
    return [np.arange(g, n, n_groups) for g in range(n_groups)]


def parse_group_size(value: Any, model: str) -> int:
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"reranker {model}: option group_size must be a positive integer, got {value!r}") from None
    if size < 1 or str(value).strip() != str(size):
        raise UsageError(f"reranker {model}: option group_size must be a positive integer, got {value!r}")
    return size


class JinaListwiseReranker(ListwiseReranker):
    def __init__(self, spec: RerankerSpec, options: ModelOptions) -> None:
        super().__init__(spec, options)
        self.group_size = parse_group_size(options.extra.get("group_size", 32), spec.id)
        self.packing = str(options.extra.get("packing", "sequential"))
        if self.packing not in PACKINGS:
            raise UsageError(f"reranker {spec.id}: option packing must be one of {', '.join(PACKINGS)}, "
                             f"got {self.packing!r}")
        check_remote_code(spec, options)
        from transformers import AutoModel  # lazy: heavy: pulls in torch

        path, self.weights_source = resolve_weights(spec.hub_id, spec.revision, options.model_path,
                                                    packaged=spec.packaged_weights, what=f"reranker {spec.id}")
        self.weights_path = str(path)
        self.device = pick_device(options.device)
        self.model = AutoModel.from_pretrained(str(path), trust_remote_code=options.trust_remote_code,
                                               dtype=torch_dtype(options.dtype, self.device))
        self.model.to(self.device).eval()
        if not callable(getattr(self.model, "rerank", None)):
            raise PluginError(f"reranker {spec.id}: the model at {path} has no rerank(query, documents) method; "
                              "is it a jina-reranker-v3 checkpoint?")

    def _score_group(self, query: str, documents: list[str]) -> np.ndarray:
        results = self.model.rerank(query, documents, top_n=None)
        scores = np.full(len(documents), np.nan, dtype=np.float64)
        for item in results:
            scores[int(item["index"])] = float(item["relevance_score"])
        if np.isnan(scores).any():
            raise PluginError(f"reranker {self.spec.id}: rerank() returned {len(results)} results for "
                              f"{len(documents)} documents")
        return scores

    def score_list(self, query: str, documents: Sequence[str]) -> np.ndarray:
        import torch  # lazy: torch costs seconds at start-up

        documents = list(documents)
        scores = np.empty(len(documents), dtype=np.float64)
        with torch.inference_mode():
            for group in plan_groups(len(documents), self.group_size, self.packing):
                scores[group] = self._score_group(query, [documents[i] for i in group])
        return scores

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update({"group_size": self.group_size, "packing": self.packing})
        return out
