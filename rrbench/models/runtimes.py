"""Inference runtimes for pointwise cross-encoders: torch (default), ONNX Runtime and OpenVINO.

On a CPU, users who want fast cross-encoder scoring reach for ONNX Runtime or OpenVINO rather than eager torch, so
rrbench runs them *inside* its engine (same batching, de-duplication, length buckets and OOM handling) instead of
being compared against them from outside:

- the graph is exported from the loaded torch module (:func:`rrbench.models.pair_scorer.pair_scorer`, head included) with
  ``torch.onnx.export`` or ``openvino.convert_model``: local weights, no hub, no optimum (whose releases pin
  transformers < 5);
- exports are cached content-addressed under ``<cache root>/exports/`` (beside the score cache), keyed by the weights'
  content hash and every export option (runtime, int8 variant and its calibration data, head, exporter versions), so
  each is built once; a folder appears only when complete (built under a temporary name, then renamed);
- ``--dtype int8`` means ONNX Runtime's dynamic quantisation (weights int8, activations quantised per batch) or
  OpenVINO/NNCF post-training quantisation calibrated on pairs of a task's ``train`` split (option
  ``calibration_task``, default ``scifact-evidence``; never data fetched from a hub). Both change scores: the
  benchmark measures their fidelity, and neither is a default.

This module imports no heavy library at import time: :func:`check_runtime` only asks whether a package is installed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.tasks.resolve import candidate_text, get_task
from rrbench.util.cache_paths import cache_disabled_by_env, cache_root
from rrbench.util.errors import UsageError, close_matches
from rrbench.util.extras import check_extra
from rrbench.util.io import canonical_hash

RUNTIMES = ("torch", "onnx", "openvino")
#: runtime -> (module that must be importable, pip extra that installs it)
_REQUIRES = {"onnx": ("onnxruntime", "onnx"), "openvino": ("openvino", "openvino")}
#: bump when the export procedure changes, so old exports are not reused
EXPORT_FORMAT = 1
#: the ONNX opset of exported graphs (ONNX Runtime and OpenVINO both read it)
OPSET = 17
CALIBRATION_PAIRS = 256


def check_runtime(name: str) -> str:
    """The normalised runtime name; one-line errors for an unknown runtime or a missing package."""
    runtime = str(name).strip().lower()
    if runtime not in RUNTIMES:
        raise UsageError(f"unknown runtime {name!r}; choose from {', '.join(RUNTIMES)}.{close_matches(runtime, RUNTIMES)}")
    if runtime in _REQUIRES:
        module, extra = _REQUIRES[runtime]
        check_extra(extra, module, f"--runtime {runtime}")
    return runtime


def runtime_dtype(runtime: str, dtype: str, native_bf16: bool) -> str:
    """Check that ``runtime`` can run ``dtype`` on the CPU; returns the dtype. ONNX Runtime's CPU kernels are fp32
    (and int8 after quantisation); OpenVINO runs bf16 only where the CPU has bf16 instructions (elsewhere it would
    silently run fp32 while the record said bf16)."""
    allowed = {"onnx": ("float32", "int8"), "openvino": ("float32", "int8", "bfloat16")}[runtime]
    dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(dtype, dtype)
    if dtype not in allowed:
        raise UsageError(f"--runtime {runtime} runs --dtype {', '.join(allowed)} on CPU, not {dtype}")
    if dtype == "bfloat16" and not native_bf16:
        raise UsageError(f"--runtime {runtime} --dtype bfloat16 needs a CPU with AVX512_BF16 or AMX; this one has "
                         f"neither (use --dtype auto to pick what is native)")
    return dtype


# -- the export cache ------------------------------------------------------------------------------------------------
def exports_root() -> Path | None:
    """``<cache root>/exports``, or None when caching is off (exports then live in a temporary folder)."""

    return None if cache_disabled_by_env() else cache_root() / "exports"


def export_key(options: dict[str, Any]) -> str:
    return canonical_hash({"format": EXPORT_FORMAT, **options})


class ExportedModel:
    """A built export: its folder, its options, and whether this process built it (False: reused from the cache)."""

    def __init__(self, directory: Path, built: bool, seconds: float, keep: Any = None) -> None:
        self.directory = directory
        self.built = built
        self.seconds = seconds
        self._keep = keep  # a TemporaryDirectory kept alive while the export is in use (cache off)

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.directory), "built_now": self.built, "build_seconds": round(self.seconds, 2)}


def cached_export(options: dict[str, Any], build: Callable[[Path], None]) -> ExportedModel:
    """The export for ``options``: reused when its folder exists, else ``build(tmp)`` then renamed into place.

    Two processes building the same export at once both succeed: the second rename finds the folder complete and
    keeps the first one's (the contents are equal by construction).
    """
    key = export_key(options)
    root = exports_root()
    started = time.perf_counter()
    if root is None:
        holder = tempfile.TemporaryDirectory(prefix="rrbench-export-")
        build(Path(holder.name))
        return ExportedModel(Path(holder.name), True, time.perf_counter() - started, keep=holder)
    final = root / f"{options['runtime']}-{key[:24]}"
    if (final / "export.json").is_file():
        return ExportedModel(final, False, 0.0)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{final.name}.", suffix=".partial"))
    except OSError as exc:
        raise UsageError(f"cannot write the export cache {root}: {exc.strerror or exc}") from None
    try:
        build(tmp)
        (tmp / "export.json").write_text(json.dumps({"key": key, **options}, indent=1, sort_keys=True,
                                                    default=str), encoding="utf-8")
        try:
            os.replace(tmp, final)
        except OSError:
            if not (final / "export.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished the same export first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportedModel(final, True, time.perf_counter() - started)


# -- exporting -------------------------------------------------------------------------------------------------------
def example_inputs(input_names: list[str]) -> dict[str, Any]:
    """A small padded batch to trace with (2 rows of different lengths; the axes are declared dynamic)."""
    import torch  # lazy: torch costs seconds at start-up

    ids = torch.tensor([[1, 4, 5, 2, 6, 2], [1, 4, 2, 6, 2, 0]], dtype=torch.int64)  # small ids: any vocabulary
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]], dtype=torch.int64)
    out = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in input_names:
        out["token_type_ids"] = torch.tensor([[0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 0]], dtype=torch.int64)
    return out


def export_onnx(scorer: Any, input_names: list[str], target: Path, int8: bool) -> None:
    """``model.onnx`` (fp32) in ``target``; with ``int8``, ``model.int8.onnx`` by ONNX Runtime dynamic quantisation."""

    import torch  # lazy: torch costs seconds at start-up

    example = example_inputs(input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in example}
    axes["scores"] = {0: "batch"}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python-side shape checks (constant for BERT)
        # dynamo=False: the TorchScript exporter handles dynamic batch and sequence axes of HF encoders directly
        torch.onnx.export(scorer, tuple(example.values()), str(target / "model.onnx"),
                          input_names=list(example), output_names=["scores"], dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic  # lazy: optional runtime (onnx extra)
        from onnxruntime.quantization.shape_inference import quant_pre_process  # lazy: optional runtime (onnx extra)

        # ORT's recipe: optimise + shape-infer first (its symbolic pass cannot follow HF attention masks: skipped)
        quant_pre_process(str(target / "model.onnx"), str(target / "model.pre.onnx"), skip_symbolic_shape=True)
        quantize_dynamic(str(target / "model.pre.onnx"), str(target / "model.int8.onnx"), weight_type=QuantType.QInt8)
        (target / "model.pre.onnx").unlink()


def export_openvino(scorer: Any, input_names: list[str], target: Path,
                    calibration: list[dict[str, np.ndarray]] | None) -> None:
    """``model.xml``/``.bin`` in ``target``, converted from the torch module; with ``calibration`` batches,
    quantised to int8 by NNCF (transformer preset, calibrated on those batches)."""

    import openvino as ov  # lazy: optional runtime (openvino extra)
    import torch  # lazy: torch costs seconds at start-up

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        model = ov.convert_model(scorer, example_input=example_inputs(input_names))
    if calibration is not None:
        import nncf  # lazy: optional runtime (openvino extra)

        logging.getLogger("nncf").setLevel(logging.WARNING)

        model = nncf.quantize(model, nncf.Dataset(calibration), model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(calibration))
    ov.save_model(model, str(target / "model.xml"), compress_to_fp16=False)  # fp16 storage would change scores


# -- running ---------------------------------------------------------------------------------------------------------
class OnnxForward:
    """An ONNX Runtime CPU session as an engine ``forward``: dict of int64 arrays -> scores."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort  # lazy: optional runtime (onnx extra)

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, {k: arrays[k] for k in self.inputs})[0]


class OpenVinoForward:
    """A compiled OpenVINO CPU model as an engine ``forward``; ``precision`` is its inference precision hint."""

    def __init__(self, path: Path, precision: str = "f32", threads: int | None = None) -> None:
        import openvino as ov  # lazy: optional runtime (openvino extra)

        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = ov.Core().compile_model(str(path), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.inputs = [p.get_any_name() for p in self.compiled.inputs]

    def __call__(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        result = self.request.infer({k: arrays[k] for k in self.inputs})
        return np.array(result[self.compiled.output(0)], copy=True)


def calibration_batches(task_id: str, encode: Callable, pad_token_id: int, n: int = CALIBRATION_PAIRS,
                        batch_rows: int = 8) -> tuple[list[dict[str, np.ndarray]], dict[str, Any]]:
    """Padded batches of ``n`` (query, sentence) pairs from ``task_id``'s ``train`` split, the same every time
    (queries in id order, each with the sentences of its post in order), and what identifies them for the export key.
    """

    task = get_task(task_id)
    if "train" not in task.split_names:
        raise UsageError(f"calibration task {task_id!r} has no train split to calibrate int8 on")
    queries, docs = [], []
    for query in sorted(task.split_queries("train"), key=lambda q: q.query_id):
        for i in task.candidates(query):
            queries.append(query.text)
            docs.append(candidate_text(task, int(i), 0))
        if len(queries) >= n:
            break
    features = encode(queries[:n], docs[:n])
    batches = []
    for start in range(0, len(features), batch_rows):
        rows = features[start:start + batch_rows]
        width = max(len(f["input_ids"]) for f in rows)
        batch = {"input_ids": np.full((len(rows), width), pad_token_id, dtype=np.int64),
                 "attention_mask": np.zeros((len(rows), width), dtype=np.int64)}
        if "token_type_ids" in rows[0]:
            batch["token_type_ids"] = np.zeros((len(rows), width), dtype=np.int64)
        for r, f in enumerate(rows):
            m = len(f["input_ids"])
            batch["input_ids"][r, :m] = f["input_ids"]
            batch["attention_mask"][r, :m] = 1
            if "token_type_ids" in batch:
                batch["token_type_ids"][r, :m] = f["token_type_ids"]
        batches.append(batch)
    return batches, {"task": task.id, "version": task.version, "data_sha256": task.data_sha256, "split": "train",
                     "pairs": len(features)}


def versions(runtime: str) -> dict[str, str]:
    """Library versions that shape an export (part of its key)."""

    names = ["torch", "transformers", "sentence-transformers"]
    names += {"onnx": ["onnxruntime"], "openvino": ["openvino", "nncf"]}.get(runtime, [])
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out
