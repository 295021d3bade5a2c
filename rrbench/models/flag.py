"""bge-reranker-v2.5-gemma2-lightweight through FlagEmbedding's ``LightWeightFlagLLMReranker``.

The model's speed/quality trade-off lives in three knobs that FlagEmbedding implements and rrbench only forwards (they
are part of the config hash): ``cutoff_layers`` (which layer's score head to read: fewer layers, faster),
``compress_ratio`` (token compression factor, 1/2/4/8) and ``compress_layers`` (where compression happens). Defaults
are the model card's (cutoff [28], ratio 2, layers [24, 40]). The prompt (option ``instruction``) is FlagEmbedding's
``prompt`` argument.

FlagEmbedding 1.4.2's model code for it was written for transformers 4.x; under transformers 5 rrbench patches it at
load time (:mod:`rrbench.models.flag_gemma_compat`) and refuses other FlagEmbedding versions with a one-line error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.components.bases import ModelOptions, PointwiseReranker
from rrbench.components.specs import RerankerSpec
from rrbench.models.cross_encoder import check_remote_code, truthy
from rrbench.models.flag_gemma_compat import patch_costwise_gemma
from rrbench.models.loading import pick_device, warn_if_bf16_emulated
from rrbench.models.memory import plan_before_load
from rrbench.models.resolve import resolve_weights
from rrbench.util.errors import PluginError, UsageError
from rrbench.util.extras import check_extra

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


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Only errors from transformers' logger inside the block; the previous verbosity afterwards."""
    from transformers.utils import logging as hf_logging  # lazy: heavy: pulls in torch

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)


class LightweightLLMReranker(PointwiseReranker):
    def __init__(self, spec: RerankerSpec, options: ModelOptions) -> None:
        super().__init__(spec, options)
        check_extra("flag", "FlagEmbedding", f"reranker {spec.id}")
        # the weights first: missing ones are one line within seconds, before FlagEmbedding (and torch) load
        path, self.weights_source = resolve_weights(spec.hub_id, spec.revision, options.model_path,
                                                    packaged=spec.packaged_weights, what=f"reranker {spec.id}")
        from FlagEmbedding import LightWeightFlagLLMReranker  # lazy: heavy: pulls in torch

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
        patched = patch_costwise_gemma()  # transformers 5 only; before FlagEmbedding loads the model
        self.weights_path = str(path)
        self.instruction = options.instruction or spec.instruction
        self.max_length = options.max_length or spec.max_length or 512
        device = pick_device(options.device)
        # FlagEmbedding insists on one of its two half-precision flags for this class. With use_fp16 it loads fp32
        # weights and halves them only on a GPU, so on a CPU that flag gives the fp32 that --dtype float32 asks for
        # (bf16 on a CPU without bf16 instructions is emulated and far slower). On a GPU fp32 is not offered: fp16.
        use_bf16 = options.dtype in ("bfloat16", "bf16")
        if options.dtype not in ("float32", "fp32", "bfloat16", "bf16", "float16", "fp16"):
            raise UsageError(f"reranker {spec.id}: --dtype {options.dtype} is not supported (float32, bfloat16, "
                             f"float16)")
        if use_bf16:
            warn_if_bf16_emulated(device)
        self.effective_dtype = "bfloat16" if use_bf16 else ("float32" if device == "cpu" else "float16")
        with quiet_transformers():
            # lazy: heavy: pulls in torch
            from FlagEmbedding.inference.reranker.decoder_only.models.gemma_config import CostWiseGemmaConfig

            # lazy: heavy: pulls in torch
            from FlagEmbedding.inference.reranker.decoder_only.models.gemma_model import CostWiseGemmaForCausalLM

            if (Path(self.weights_path) / "config.json").is_file():
                plan_before_load(self.weights_path, self.effective_dtype, device, self.max_length,
                                 f"reranker {spec.id}", enabled=truthy(extra.get("memory_plan", True)),
                                 cls=CostWiseGemmaForCausalLM,
                                 config=CostWiseGemmaConfig.from_pretrained(self.weights_path))
        # FlagEmbedding's class predates transformers 5, which warns about it at length on every load (model type,
        # GenerationMixin, use_return_dict); the patch above is what makes it run, so those warnings say nothing new.
        with quiet_transformers():
            self.flag = LightWeightFlagLLMReranker(
                self.weights_path, use_fp16=not use_bf16, use_bf16=use_bf16, devices=[device],
                batch_size=options.batch_size, max_length=self.max_length, cutoff_layers=self.cutoff_layers,
                compress_ratio=self.compress_ratio, compress_layers=self.compress_layers, prompt=self.instruction,
                trust_remote_code=options.trust_remote_code)
        # FlagEmbedding falls back to AutoModelForCausalLM (repository code) when its own class fails to load; the
        # transformers-5 patch covers only its own class, so anything else would fail deep in the forward pass.
        if patched:
            # lazy: heavy: pulls in torch
            from FlagEmbedding.inference.reranker.decoder_only.models.gemma_model import CostWiseGemmaForCausalLM

            if not isinstance(self.flag.model, CostWiseGemmaForCausalLM):
                raise PluginError(f"reranker {spec.id}: FlagEmbedding loaded {type(self.flag.model).__module__}."
                                  f"{type(self.flag.model).__name__} from {self.weights_path} instead of its own "
                                  f"CostWiseGemmaForCausalLM, the only class rrbench can run under transformers 5")

    def score_pairs(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        with quiet_transformers():  # FlagEmbedding's forward reads the deprecated config.use_return_dict
            scores = self.flag.compute_score([[q, d] for q, d in zip(queries, documents, strict=True)],
                                             batch_size=self.options.batch_size, max_length=self.max_length)
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim == 2:  # one row per cutoff layer: the last requested layer is the model's answer
            scores = scores[-1]
        return np.atleast_1d(scores)

    def cache_fingerprint(self) -> dict[str, Any]:
        return {"prompt": self.instruction, "cutoff_layers": self.cutoff_layers, "compress_ratio": self.compress_ratio,
                "compress_layers": self.compress_layers, "effective_dtype": self.effective_dtype}

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update({"instruction_text": self.instruction, "effective_dtype": self.effective_dtype,
                    "cutoff_layers": self.cutoff_layers,
                    "compress_ratio": self.compress_ratio, "compress_layers": self.compress_layers})
        return out
