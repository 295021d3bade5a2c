"""Cross-encoder backend: sentence-transformers loads the model, rrbench's engine scores it.

Loading goes through ``sentence_transformers.CrossEncoder`` (the field's loader: it knows every architecture class,
max length and head configuration); scoring goes through :class:`rrbench.models.engine.InferenceEngine`, which batches pairs
of many queries, de-duplicates, buckets by length and handles OOM (see its docstring). Option ``engine: false`` keeps
the plain ``CrossEncoder.predict`` path (a fidelity reference; the benchmark compares both).

Scores are the model's raw output (no sigmoid), so the natural decision boundary is 0 and stored scores keep their full
resolution; a spec can declare ``score_kind="probability"`` with option ``activation: sigmoid`` instead. Two-class heads
give the log-odds of the positive class. Option ``implementation: flag`` scores with FlagEmbedding's ``FlagReranker``
(the BGE authors' reference implementation) instead.

Both [CLS]-head checkpoints and the mean-pooled head that ``rrbench train --head mean`` writes are scored through one
torch module (:func:`rrbench.models.pair_scorer.pair_scorer`); ``--runtime onnx|openvino`` exports that module and runs the
export inside the same engine (:mod:`rrbench.models.runtimes`).

Instruction-aware use: ``--instruction`` text (or a named variant) is prepended to the query, as MTEB does for
cross-encoders without an instruction slot.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from rrbench.components.bases import ModelOptions, PointwiseReranker
from rrbench.components.identity import weights_fingerprint
from rrbench.components.specs import RerankerSpec
from rrbench.models import runtimes
from rrbench.models.engine import InferenceEngine, autocast_dtype_for, quantize_int8
from rrbench.models.loading import bf16_is_native, clipped_max_length, pick_device, torch_dtype
from rrbench.models.memory import batch_plan, plan_before_load
from rrbench.models.pair_scorer import apply_head, pair_scorer
from rrbench.models.prompts import QUERY_PREFIX_INSTRUCTIONS, resolve_instruction
from rrbench.models.resolve import resolve_weights
from rrbench.models.runtimes import ExportedModel, check_runtime, runtime_dtype
from rrbench.util.errors import UsageError
from rrbench.util.extras import check_extra, require_extra

IMPLEMENTATIONS = ("sentence-transformers", "flag")


def check_remote_code(spec: RerankerSpec, options: ModelOptions) -> None:
    """Models whose repository ships code run it only on explicit opt-in, and say so."""
    if spec.requires_remote_code and not options.trust_remote_code:
        raise UsageError(f"reranker {spec.id} runs Python code from its model repository; pass --trust-remote-code "
                         "to allow it")
    if spec.requires_remote_code:
        warnings.warn(f"reranker {spec.id}: --trust-remote-code lets the model repository run its own Python code",
                      UserWarning, stacklevel=3)


def truthy(value: Any) -> bool:
    return str(value).strip().lower() not in {"0", "false", "no", "off", "none", ""}


class CrossEncoderReranker(PointwiseReranker):
    def __init__(self, spec: RerankerSpec, options: ModelOptions) -> None:
        super().__init__(spec, options)
        import torch  # lazy: torch costs seconds at start-up
        from sentence_transformers import CrossEncoder  # lazy: heavy: pulls in torch

        implementation = str(options.extra.get("implementation", "sentence-transformers"))
        if implementation not in IMPLEMENTATIONS:
            raise UsageError(f"reranker {spec.id}: option implementation must be one of {', '.join(IMPLEMENTATIONS)}, "
                             f"got {implementation!r}")
        check_remote_code(spec, options)
        path, self.weights_source = resolve_weights(spec.hub_id, spec.revision, options.model_path,
                                                    packaged=spec.packaged_weights, what=f"reranker {spec.id}")
        self.weights_path = str(path)
        self.instruction = resolve_instruction(options.instruction, QUERY_PREFIX_INSTRUCTIONS, spec.instruction,
                                               spec.id)
        self.max_length = options.max_length or spec.max_length
        self.device = pick_device(options.device)
        self.implementation = implementation
        if implementation == "flag":
            from transformers import AutoConfig  # lazy: heavy: pulls in torch

            config = AutoConfig.from_pretrained(str(path), trust_remote_code=options.trust_remote_code)
            self.token_limit = clipped_max_length(self.max_length or 512, None, config, f"reranker {spec.id}",
                                                  warn=options.max_length is not None)
            self._init_flag(str(path))
            return
        self.sigmoid = spec.options.get("activation") == "sigmoid" or options.extra.get("activation") == "sigmoid"
        memory = plan_before_load(path, options.dtype, self.device, self.max_length, f"reranker {spec.id}",
                                  enabled=truthy(options.extra.get("memory_plan", True)))
        self.model = CrossEncoder(str(path), device=self.device, max_length=self.max_length,
                                  activation_fn=torch.nn.Identity(), trust_remote_code=options.trust_remote_code)
        # Never more tokens than the model has positions, whatever the tokenizer claims. ``max_length`` stays what
        # was asked for (the score fingerprint is computed from it before any model loads); ``token_limit`` is what
        # truncation uses.
        self.token_limit = clipped_max_length(self.max_length, getattr(self.model.tokenizer, "model_max_length", None),
                                              self.model.model.config, f"reranker {spec.id}",
                                              warn=options.max_length is not None)
        if self.token_limit is not None and self.model.max_seq_length != self.token_limit:
            self.model.max_seq_length = self.token_limit  # CrossEncoder.predict (engine: false) truncates with it
        self.runtime = check_runtime(options.extra.get("runtime", "torch"))
        # a non-torch runtime runs only through the engine (its export is the engine's forward)
        self.use_engine = truthy(options.extra.get("engine", True)) or self.runtime != "torch"
        # ``CrossEncoder.model`` is a read-only view of the Transformer module's model: quantisation must change that
        # module in place (assigning ``.model`` would register a stray copy that nothing calls).
        hf_model = self.model.model
        if self.runtime != "torch":
            if torch.device(self.device).type != "cpu":
                raise UsageError(f"--runtime {self.runtime} runs on the CPU; use --runtime torch with --device "
                                 f"{self.device}")
            runtime_dtype(self.runtime, options.dtype, bf16_is_native("cpu"))  # the torch module stays fp32
        elif options.dtype == "int8":
            if torch.device(self.device).type != "cpu":
                raise UsageError("--dtype int8 (dynamic quantisation) is CPU only")
            quantize_int8(hf_model)
        elif options.dtype not in ("float32", "fp32"):
            autocast_dtype_for(options.dtype, self.device)  # validates the dtype for this device
            hf_model.to(torch_dtype(options.dtype, self.device))
        hf_model.eval()
        self.tokenizer = self.model.processor
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = 0 if pad is None else pad
        self.scorer = pair_scorer(self.model, self.sigmoid) if self.use_engine else None
        self.export: ExportedModel | None = None
        forward = self._runtime_forward() if self.runtime != "torch" else self._forward
        self.engine = InferenceEngine(forward, pad_token_id=self.pad_token_id,
                                      batch_size=options.batch_size, device=self.device,
                                      token_budget=options.extra.get("token_budget"), name=f"reranker {spec.id}",
                                      framework="torch" if self.runtime == "torch" else "numpy",
                                      memory_plan=batch_plan(memory, self.device))

    def _runtime_forward(self) -> Any:
        """Export the scorer for ONNX Runtime / OpenVINO (or reuse the cached export) and open a CPU session."""
        import torch  # lazy: torch costs seconds at start-up

        if self.weights_path is None or self.scorer is None:
            raise UsageError(f"--runtime {self.runtime} exports the engine's scorer from weights on disk; "
                             f"{self.spec.id!r} has neither (pass --runtime torch)")
        dtype = runtime_dtype(self.runtime, self.options.dtype, bf16_is_native("cpu"))
        names = ["input_ids", "attention_mask"]
        if "token_type_ids" in getattr(self.tokenizer, "model_input_names", []):
            names.append("token_type_ids")
        options: dict[str, Any] = {
            "runtime": self.runtime, "weights_sha256": weights_fingerprint(self.weights_path),
            "head": self.scorer.kind, "sigmoid": self.sigmoid, "inputs": names, "opset": runtimes.OPSET,
            "int8": dtype == "int8", "versions": runtimes.versions(self.runtime)}
        calibration = None
        if self.runtime == "openvino" and dtype == "int8":
            task = str(self.options.extra.get("calibration_task", "scifact-evidence"))
            calibration, options["calibration"] = runtimes.calibration_batches(task, self._encode, self.pad_token_id)
        if self.runtime == "onnx":
            self.export = runtimes.cached_export(
                options, lambda target: runtimes.export_onnx(self.scorer, names, target, int8=dtype == "int8"))
            name = "model.int8.onnx" if dtype == "int8" else "model.onnx"
            return runtimes.OnnxForward(self.export.directory / name, threads=torch.get_num_threads())
        self.export = runtimes.cached_export(
            options, lambda target: runtimes.export_openvino(self.scorer, names, target, calibration))
        return runtimes.OpenVinoForward(self.export.directory / "model.xml", threads=torch.get_num_threads(),
                                        precision="bf16" if dtype == "bfloat16" else "f32")

    def _init_flag(self, path: str) -> None:
        require_extra("flag", "FlagEmbedding", f"reranker {self.spec.id} with implementation=flag")
        from FlagEmbedding import FlagReranker  # lazy: heavy: pulls in torch

        dtype = self.options.dtype
        if dtype not in ("float32", "fp32", "float16", "fp16"):
            raise UsageError(f"reranker {self.spec.id}: implementation=flag supports --dtype float32 or float16, "
                             f"got {dtype}")
        self.flag = FlagReranker(self.weights_path, use_fp16=dtype in ("float16", "fp16"), devices=[self.device],
                                 batch_size=self.options.batch_size, max_length=self.token_limit,
                                 trust_remote_code=self.options.trust_remote_code)

    # -- scoring ----------------------------------------------------------------------------------------------------
    def _queries(self, queries: Sequence[str]) -> list[str]:
        return [self.instruction + q for q in queries] if self.instruction else list(queries)

    def _encode(self, queries: Sequence[str], documents: Sequence[str]) -> list[dict[str, list[int]]]:
        enc = self.tokenizer(list(queries), list(documents), truncation=True, max_length=self.token_limit,
                             padding=False)
        keys = [k for k in ("input_ids", "token_type_ids") if k in enc]
        return [{k: enc[k][i] for k in keys} for i in range(len(queries))]

    def _forward(self, inputs: dict[str, Any]) -> Any:
        if self.scorer is None:  # only the engine path (use_engine) forwards through here
            raise RuntimeError("the pair scorer exists only when the inference engine is used")
        return self.scorer(**inputs)

    def _head(self, logits: Any) -> Any:
        return apply_head(logits, self.sigmoid)

    def score_pairs(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        queries = self._queries(queries)
        if self.implementation == "flag":
            scores = self.flag.compute_score([[q, d] for q, d in zip(queries, documents, strict=True)],
                                             batch_size=self.options.batch_size, max_length=self.token_limit,
                                             normalize=self.spec.score_kind == "probability")
            return np.atleast_1d(np.asarray(scores, dtype=np.float64))
        if self.use_engine:
            return self.engine.score_pairs(queries, documents, self._encode)
        scores = self.model.predict([[q, d] for q, d in zip(queries, documents, strict=True)], batch_size=self.options.batch_size,
                                    show_progress_bar=False, convert_to_tensor=True)
        return self._head(scores.reshape(len(queries), -1)).float().cpu().numpy().astype(np.float64).reshape(-1)

    @classmethod
    def fingerprint_extra(cls, spec: RerankerSpec, options: ModelOptions) -> dict[str, Any]:
        """What changes scores beyond the spec and options, known without loading the model (rrbench.models.lazy
        builds the cache key from it): the resolved instruction text, implementation, activation and runtime."""

        implementation = str(options.extra.get("implementation", "sentence-transformers"))
        if implementation == "flag":  # before any work: a missing extra is one line, not a crash at model load
            check_extra("flag", "FlagEmbedding", f"reranker {spec.id} with implementation=flag")
        sigmoid = implementation != "flag" and (spec.options.get("activation") == "sigmoid"
                                                or options.extra.get("activation") == "sigmoid")
        out: dict[str, Any] = {
            "instruction_text": resolve_instruction(options.instruction, QUERY_PREFIX_INSTRUCTIONS, spec.instruction,
                                                    spec.id),
            "implementation": implementation, "sigmoid": bool(sigmoid)}
        runtime = check_runtime(options.extra.get("runtime", "torch"))
        if runtime != "torch":  # only then, so fingerprints of torch runs stay as they were
            out["runtime"] = runtime
        return out

    def cache_fingerprint(self) -> dict[str, Any]:
        return type(self).fingerprint_extra(self.spec, self.options)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["instruction_text"] = self.instruction
        out["implementation"] = self.implementation
        if getattr(self, "engine", None) is not None and self.implementation != "flag":
            out["engine"] = self.engine.stats.as_dict()
            out["runtime"] = self.runtime
            if self.export is not None:
                out["export"] = self.export.describe()
        return out
