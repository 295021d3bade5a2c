"""bge-reranker-v2.5-gemma2-lightweight through FlagEmbedding's ``LightWeightFlagLLMReranker``.

The model's speed/quality trade-off lives in three knobs that FlagEmbedding implements and rrbench only forwards (they
are part of the config hash): ``cutoff_layers`` (which layer's score head to read: fewer layers, faster),
``compress_ratio`` (token compression factor, 1/2/4/8) and ``compress_layers`` (where compression happens). Defaults
are the model card's (cutoff [28], ratio 2, layers [24, 40]). The prompt (option ``instruction``) is FlagEmbedding's
``prompt`` argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rrbench.errors import PluginError, UsageError
from rrbench.models.base import ModelOptions, PairwiseReranker
from rrbench.models.cross_encoder import check_remote_code
from rrbench.models.loading import pick_device
from rrbench.models.resolve import resolve_weights
from rrbench.specs import RerankerSpec

COMPRESS_RATIOS = (1, 2, 4, 8)


def int_list(value: Any, name: str, model: str) -> list[int]:
    """Accept 28, "28", "24,40", [24, 40]; reject anything else with a one-line error."""
    if isinstance(value, int):
        value = [value]
    if isinstance(value, str):
        value = [v for v in value.replace(" ", "").split(",") if v]
    try:
        out = [int(v) for v in value]
    except (TypeError, ValueError):
        raise UsageError(f"reranker {model}: option {name} must be a list of layer numbers, got {value!r}") from None
    if not out or any(v < 1 for v in out):
        raise UsageError(f"reranker {model}: option {name} must hold layer numbers >= 1, got {value!r}")
    return out


def check_transformers_version() -> None:
    """FlagEmbedding 1.4.2's CostWiseGemma model code targets transformers 4.x (its own message says 4.46): under
    transformers 5 its decoder loop no longer passes the rotary position embeddings the Gemma2 layers need and it fails
    deep inside the forward pass. Say so up front, in one line, instead of a traceback."""
    import transformers

    major = int(transformers.__version__.split(".")[0])
    if major >= 5:
        raise PluginError(f"bge-gemma2-lightweight needs FlagEmbedding's CostWiseGemma model code, which does not run "
                          f"with transformers {transformers.__version__} (it targets 4.x); use an environment with "
                          f"transformers<5 for this reranker")


class LightweightLLMReranker(PairwiseReranker):
    def __init__(self, spec: RerankerSpec, options: ModelOptions) -> None:
        super().__init__(spec, options)
        from FlagEmbedding import LightWeightFlagLLMReranker

        extra = options.extra
        self.cutoff_layers = int_list(extra.get("cutoff_layers", [28]), "cutoff_layers", spec.id)
        self.compress_layers = int_list(extra.get("compress_layers", [24, 40]), "compress_layers", spec.id)
        try:
            self.compress_ratio = int(extra.get("compress_ratio", 2))
        except (TypeError, ValueError):
            self.compress_ratio = -1
        if self.compress_ratio not in COMPRESS_RATIOS:
            raise UsageError(f"reranker {spec.id}: option compress_ratio must be one of "
                             f"{', '.join(map(str, COMPRESS_RATIOS))}, got {extra.get('compress_ratio')!r}")
        check_remote_code(spec, options)
        check_transformers_version()
        path, self.weights_source = resolve_weights(spec.hub_id, spec.revision, options.model_path,
                                                    packaged=spec.packaged_weights, what=f"reranker {spec.id}")
        self.weights_path = str(path)
        self.instruction = options.instruction or spec.instruction
        self.max_length = options.max_length or spec.max_length or 512
        device = pick_device(options.device)
        # FlagEmbedding refuses fp32 for this model class; bf16 is the CPU choice, fp16 is its GPU default.
        use_bf16 = options.dtype in ("bfloat16", "bf16") or device == "cpu"
        self.flag = LightWeightFlagLLMReranker(
            self.weights_path, use_fp16=not use_bf16, use_bf16=use_bf16, devices=[device],
            batch_size=options.batch_size, max_length=self.max_length, cutoff_layers=self.cutoff_layers,
            compress_ratio=self.compress_ratio, compress_layers=self.compress_layers, prompt=self.instruction,
            trust_remote_code=options.trust_remote_code)

    def score_pairs(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        scores = self.flag.compute_score([[q, d] for q, d in zip(queries, documents)],
                                         batch_size=self.options.batch_size, max_length=self.max_length)
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim == 2:  # one row per cutoff layer: the last requested layer is the model's answer
            scores = scores[-1]
        return np.atleast_1d(scores)

    def cache_fingerprint(self) -> dict[str, Any]:
        return {"prompt": self.instruction, "cutoff_layers": self.cutoff_layers, "compress_ratio": self.compress_ratio,
                "compress_layers": self.compress_layers}

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update({"instruction_text": self.instruction, "cutoff_layers": self.cutoff_layers,
                    "compress_ratio": self.compress_ratio, "compress_layers": self.compress_layers})
        return out
