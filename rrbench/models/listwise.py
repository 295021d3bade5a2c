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

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
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
        # the weights first: missing ones are one line within seconds, before transformers loads
        path, self.weights_source = resolve_weights(spec.hub_id, spec.revision, options.model_path,
                                                    packaged=spec.packaged_weights, what=f"reranker {spec.id}")
        self.weights_path = str(path)
        self.device = pick_device(options.device)
        self.model = self._load_model(str(path), options)
        self.model.to(self.device).eval()
        if not callable(getattr(self.model, "rerank", None)):
            raise PluginError(f"reranker {spec.id}: the model at {path} has no rerank(query, documents) method; "
                              "is it a jina-reranker-v3 checkpoint?")

    def _load_model(self, path: str, options: ModelOptions) -> Any:
        """The model object with ``rerank(query, documents, top_n)``: the repository's own code."""
        from transformers import AutoModel  # lazy: heavy: pulls in torch

        return AutoModel.from_pretrained(path, trust_remote_code=options.trust_remote_code,
                                         dtype=torch_dtype(options.dtype, self.device))

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


# -- the replica (rrbench.models.replica) ----------------------------------------------------------------------------
#: the listwise prompt of the stand-in, after jina-reranker-v3's paper: a system turn, every passage followed by an
#: embedding marker, then the query followed by the rerank marker, in one user turn of Qwen's chat format
LISTWISE_SYSTEM = ("You are a search relevance expert who can determine a ranking of the passages based on how "
                   "relevant they are to the query.")


def listwise_prompt(query: str, documents: Sequence[str]) -> str:
    """The stand-in's prompt for one group (documents in order, then the query)."""
    passages = "".join(f'<passage id="{i}">\n{doc}<|embed_token|>\n</passage>\n' for i, doc in enumerate(documents))
    return (f"<|im_start|>system\n{LISTWISE_SYSTEM}<|im_end|>\n<|im_start|>user\nI will provide you with "
            f"{len(documents)} passages. Rank them by their relevance to the query: {query}\n{passages}<query>\n"
            f"{query}<|rerank_token|>\n</query><|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")


def _stand_in_class() -> type:
    import torch  # lazy: torch costs seconds at start-up

    class ListwiseStandIn(torch.nn.Module):
        """jina-reranker-v3's data flow on standard parts: a Qwen3 body, a two-layer projector, cosine scores."""

        def __init__(self, body: Any, tokenizer: Any, sizes: list[int]) -> None:
            super().__init__()
            self.body = body
            self.tokenizer = tokenizer
            layers: list[torch.nn.Module] = []
            for i, (a, b) in enumerate(itertools.pairwise(sizes)):
                layers += ([torch.nn.ReLU()] if i else []) + [torch.nn.Linear(a, b, bias=False)]
            self.projector = torch.nn.Sequential(*layers).to(body.dtype)
            self.embed_id = tokenizer.convert_tokens_to_ids("<|embed_token|>")
            self.rerank_id = tokenizer.convert_tokens_to_ids("<|rerank_token|>")

        def rerank(self, query: str, documents: list[str], top_n: int | None = None) -> list[dict[str, Any]]:
            ids = self.tokenizer(listwise_prompt(query, documents), add_special_tokens=False,
                                 return_tensors="pt")["input_ids"].to(self.body.device)
            hidden = self.body(input_ids=ids).last_hidden_state[0]
            docs = self.projector(hidden[ids[0] == self.embed_id])
            q = self.projector(hidden[ids[0] == self.rerank_id][-1:])
            scores = torch.nn.functional.cosine_similarity(docs.float(), q.float(), dim=-1).tolist()
            out = [{"document": d, "relevance_score": s, "index": i}
                   for i, (d, s) in enumerate(zip(documents, scores, strict=True))]
            out.sort(key=lambda r: r["relevance_score"], reverse=True)
            return out[:top_n] if top_n else out

    return ListwiseStandIn


class ListwiseReplica(JinaListwiseReranker):
    """jina-reranker-v3's replica (speed only): a standard ``Qwen3Model`` loaded from the replica folder plus
    rrbench's own ``rerank()`` (:func:`listwise_prompt`); the real model's repository code is never run."""

    def _load_model(self, path: str, options: ModelOptions) -> Any:
        from transformers import AutoModel, AutoTokenizer  # lazy: heavy: pulls in torch

        info = json.loads((Path(path) / "replica.json").read_text(encoding="utf-8"))
        body = AutoModel.from_pretrained(path, dtype=torch_dtype(options.dtype, self.device))
        return _stand_in_class()(body, AutoTokenizer.from_pretrained(path), info["projector_sizes"])
