"""Inference runtimes (torch, ONNX Runtime, OpenVINO) and ``--dtype auto``: same scores, cached exports, fingerprints,
one-line errors. Tiny models built here; fp32 runtimes must equal torch to 1e-5 (float32 round-off of a 2-layer model,
measured ~1e-7), int8 variants must stay within 0.1 and must actually differ from fp32 (else int8 was not applied)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from rrbench.models.factory import load_reranker
from rrbench.util.errors import UsageError

QUERIES = ["aspirin prevents heart attacks", "caffeine affects sleep", "aspirin prevents heart attacks",
           "exercise improves mood", "vitamin D prevents fractures", "caffeine affects sleep"] * 2
DOCS = ["Aspirin reduces the risk of heart attack in adults.", "Tea was not studied.",
        "Aspirin reduces the risk of heart attack in adults.", "Walking for thirty minutes a day was enough.",
        "Bone density was measured with a scanner.",
        "Sleep quality decreased with late caffeine intake and the cohort included students only."] * 2
DOCS = [d + " and more" * (i % 4) for i, d in enumerate(DOCS)]  # varied lengths: several padded widths
FP32_TOL = 1e-5


@pytest.fixture(scope="module")
def mean_head_model(tiny_model, tmp_path_factory):
    """A tiny cross-encoder with the head ``rrbench train --head mean`` writes: Transformer -> mean Pooling -> Dense."""
    from sentence_transformers.base.modules import Dense, Transformer
    from sentence_transformers.cross_encoder import CrossEncoder
    from sentence_transformers.sentence_transformer.modules import Pooling

    transformer = Transformer(str(tiny_model), transformer_task="feature-extraction")
    width = transformer.get_embedding_dimension()
    model = CrossEncoder(modules=[transformer, Pooling(width, pooling_mode="mean"),
                                 Dense(width, 1, activation_function=None, module_output_name="scores")], device="cpu")
    path = tmp_path_factory.mktemp("models") / "tiny-mean"
    model.save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def predict_reference(tiny_model, mean_head_model):
    """Plain ``CrossEncoder.predict`` (sentence-transformers' own path, no engine) for both heads."""
    out = {}
    for name, path in (("cls", tiny_model), ("mean", mean_head_model)):
        reranker = load_reranker("cross-encoder", model_path=str(path), device="cpu", engine=False)
        out[name] = reranker.score_pairs(QUERIES, DOCS)
    return out


@pytest.mark.parametrize("head", ["cls", "mean"])
def test_the_torch_engine_scores_both_heads_like_predict(head, tiny_model, mean_head_model, predict_reference,
                                                         torch_one_thread):
    path = tiny_model if head == "cls" else mean_head_model
    reranker = load_reranker("cross-encoder", model_path=str(path), device="cpu", batch_size=4)
    np.testing.assert_allclose(reranker.score_pairs(QUERIES, DOCS), predict_reference[head], atol=FP32_TOL)
    assert reranker.engine.stats.batches >= 2 and reranker.scorer.kind == ("cls" if head == "cls" else "chain")


@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
@pytest.mark.parametrize("head", ["cls", "mean"])
def test_each_runtime_equals_torch_fp32(runtime, head, tiny_model, mean_head_model, predict_reference,
                                        torch_one_thread):
    path = tiny_model if head == "cls" else mean_head_model
    reranker = load_reranker("cross-encoder", model_path=str(path), device="cpu", batch_size=3, runtime=runtime)
    scores = reranker.score_pairs(QUERIES, DOCS)
    np.testing.assert_allclose(scores, predict_reference[head], atol=FP32_TOL)
    assert reranker.engine.framework == "numpy" and reranker.engine.stats.batches >= 3
    assert reranker.describe()["runtime"] == runtime


def test_onnx_int8_is_quantised_and_close(tiny_model, predict_reference, torch_one_thread):
    reranker = load_reranker("cross-encoder", model_path=str(tiny_model), device="cpu", runtime="onnx", dtype="int8")
    scores = reranker.score_pairs(QUERIES, DOCS)
    np.testing.assert_allclose(scores, predict_reference["cls"], atol=0.1)
    assert not np.allclose(scores, predict_reference["cls"], atol=1e-6), "int8 gave fp32's exact scores"
    assert (reranker.export.directory / "model.int8.onnx").is_file()


def test_openvino_int8_is_calibrated_on_train_pairs(tiny_model, predict_reference, torch_one_thread):
    reranker = load_reranker("cross-encoder", model_path=str(tiny_model), device="cpu", runtime="openvino",
                             dtype="int8")
    scores = reranker.score_pairs(QUERIES, DOCS)
    np.testing.assert_allclose(scores, predict_reference["cls"], atol=0.1)
    assert not np.allclose(scores, predict_reference["cls"], atol=1e-6), "int8 gave fp32's exact scores"
    import json

    meta = json.loads((reranker.export.directory / "export.json").read_text())
    assert meta["calibration"]["task"] == "scifact-evidence" and meta["calibration"]["split"] == "train"
    assert meta["calibration"]["pairs"] > 0


def test_the_export_cache_is_reused(tiny_model, monkeypatch, torch_one_thread):
    from rrbench.models import runtimes
    first = load_reranker("cross-encoder", model_path=str(tiny_model), device="cpu", runtime="onnx")
    assert first.export.built and first.export.directory.parent.name == "exports"

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(runtimes, "export_onnx", no_export)
    second = load_reranker("cross-encoder", model_path=str(tiny_model), device="cpu", runtime="onnx")
    assert not second.export.built and second.export.directory == first.export.directory
    np.testing.assert_array_equal(second.score_pairs(QUERIES, DOCS), first.score_pairs(QUERIES, DOCS))
    # other export options are another export (the registry wraps the loader's error, keeping its message)
    with pytest.raises(Exception, match="exported again"):
        load_reranker("cross-encoder", model_path=str(tiny_model), device="cpu", runtime="onnx", dtype="int8")
    assert not list(first.export.directory.parent.glob(".*partial")), "a failed export left a partial folder"


def test_the_runtime_changes_the_fingerprint(tiny_model, torch_one_thread):
    from rrbench.components.identity import model_fingerprint

    prints = {}
    for runtime in ("torch", "onnx", "openvino"):
        prints[runtime] = model_fingerprint(load_reranker("cross-encoder", model_path=str(tiny_model), device="cpu",
                                                          runtime=runtime))[0]
    assert len(set(prints.values())) == 3
    default = model_fingerprint(load_reranker("cross-encoder", model_path=str(tiny_model), device="cpu"))[0]
    assert default == prints["torch"], "an explicit --runtime torch must not change the default fingerprint"


def test_unknown_runtime_suggests_a_close_match():
    from rrbench.models.runtimes import check_runtime

    with pytest.raises(UsageError, match=r"unknown runtime 'onxx'.*Did you mean: onnx"):
        check_runtime("onxx")


def test_runtime_without_its_package_names_the_extra(tiny_model, mini_task, tmp_path, cli):
    """One line, exit 2, before any model loads, naming the pip extra."""
    code = ("import sys, runpy; sys.modules['onnxruntime'] = None; "
            f"sys.argv = ['rrbench', 'run', '--task', {str(mini_task)!r}, '--reranker', {str(tiny_model)!r}, "
            f"'--runtime', 'onnx', '--output', {str(tmp_path / 'out')!r}]; "
            "runpy.run_module('rrbench.cli', run_name='__main__')")
    import subprocess

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'rrbench[onnx]'" in lines[0], result.stderr
    assert not (tmp_path / "out").exists()
    bad = cli("run", "--task", str(mini_task), "--reranker", str(tiny_model), "--runtime", "openvno",
              "--output", str(tmp_path / "out2"))
    assert bad.returncode == 2 and "Did you mean: openvino" in bad.stderr and "Traceback" not in bad.stderr


def test_runtimes_refuse_what_they_cannot_run(tiny_model, monkeypatch):
    from rrbench.models import loading
    with pytest.raises(UsageError, match="runs --dtype float32, int8 on CPU, not bfloat16"):
        load_reranker("cross-encoder", model_path=str(tiny_model), device="cpu", runtime="onnx", dtype="bfloat16")
    monkeypatch.setattr(loading, "cpu_flags", lambda: {"avx2", "fma"})
    with pytest.raises(UsageError, match="needs a CPU with AVX512_BF16 or AMX"):
        load_reranker("cross-encoder", model_path=str(tiny_model), device="cpu", runtime="openvino",
                      dtype="bfloat16")
    with pytest.raises(UsageError, match="for pointwise cross-encoders"):
        load_reranker("minilm-l6", runtime="onnx")


# -- --dtype auto ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flags, expected", [({"avx2", "fma"}, "float32"), ({"avx512f", "avx512bw"}, "float32"),
                                             ({"avx512f", "avx512_bf16"}, "bfloat16"),
                                             ({"avx512f", "amx_tile", "amx_bf16"}, "bfloat16")])
def test_dtype_auto_follows_the_cpu_flags(flags, expected, monkeypatch):
    from rrbench.models import loading
    monkeypatch.setattr(loading, "cpu_flags", lambda: flags)
    assert loading.resolve_dtype("auto", "cpu") == expected
    assert loading.resolve_dtype("auto", "cpu", runtime="onnx") == "float32"  # ORT's CPU kernels: fp32
    assert loading.resolve_dtype("int8", "cpu") == "int8"  # explicit choices are kept


@pytest.mark.parametrize("bf16, expected", [(True, "bfloat16"), (False, "float16")])
def test_dtype_auto_on_a_gpu(bf16, expected, monkeypatch):
    """GPU plumbing only (no GPU here): bf16 where the card has it, fp16 otherwise."""
    import torch

    from rrbench.models import loading
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert loading.resolve_dtype("auto", "cuda") == expected


def test_dtype_auto_is_resolved_recorded_and_fingerprinted(tiny_model, monkeypatch, torch_one_thread):
    from rrbench.components.identity import model_fingerprint
    from rrbench.models import loading
    monkeypatch.setattr(loading, "cpu_flags", lambda: {"avx2"})
    auto = load_reranker("cross-encoder", model_path=str(tiny_model), device="cpu", dtype="auto")
    assert auto.options.dtype == "float32" and auto.describe()["dtype_requested"] == "auto"
    deferred = load_reranker("cross-encoder", model_path=str(tiny_model), device="cpu", dtype="auto", deferred=True)
    assert deferred.describe()["dtype_requested"] == "auto"
    deferred.score_pairs(QUERIES[:2], DOCS[:2])  # builds the model: the record still says what was asked for
    assert deferred.describe()["dtype_requested"] == "auto" and deferred.describe()["options"]["dtype"] == "float32"
    fp32 = load_reranker("cross-encoder", model_path=str(tiny_model), device="cpu")
    assert model_fingerprint(auto)[0] == model_fingerprint(fp32)[0]  # same scores, same cache entries
    monkeypatch.setattr(loading, "cpu_flags", lambda: {"avx512_bf16"})
    bf16 = load_reranker("cross-encoder", model_path=str(tiny_model), device="cpu", dtype="auto")
    assert bf16.options.dtype == "bfloat16" and model_fingerprint(bf16)[1]["dtype"] == "bfloat16"


# -- bf16 training -----------------------------------------------------------------------------------------------------
def test_bf16_training_modes_follow_the_hardware(monkeypatch):
    from rrbench.models import loading
    monkeypatch.setattr(loading, "cpu_flags", lambda: {"avx2", "fma"})
    with pytest.warns(UserWarning, match="--bf16 auto: bf16 is not native .* training in fp32"):
        assert loading.resolve_bf16_training("auto", "cpu") is False
    with pytest.raises(UsageError, match="--bf16 on: bf16 is not native"):
        loading.resolve_bf16_training("on", "cpu")
    assert loading.resolve_bf16_training("off", "cpu") is False
    monkeypatch.setattr(loading, "_warned_emulated", set())
    with pytest.warns(UserWarning, match="emulated"):
        assert loading.resolve_bf16_training("force", "cpu") is True
    monkeypatch.setattr(loading, "cpu_flags", lambda: {"avx512f", "amx_bf16"})
    assert loading.resolve_bf16_training("auto", "cpu") is True and loading.resolve_bf16_training("on", "cpu")


def test_train_bf16_auto_falls_back_with_a_warning(monkeypatch):
    """The CLI path: `rrbench train --bf16 auto` on a CPU without bf16 trains in fp32 and says so."""
    from click.testing import CliRunner

    from rrbench.cli import train as cli_train
    from rrbench.cli.main import _add_plugin_commands, cli
    from rrbench.models import loading

    if "train" not in cli.commands:
        _add_plugin_commands()

    seen = {}

    def fake_train(config, **kwargs):
        seen["bf16"] = config.bf16
        raise SystemExit(0)

    monkeypatch.setattr(loading, "cpu_flags", lambda: {"avx2"})
    monkeypatch.setattr(loading, "pick_device", lambda requested: "cpu")
    monkeypatch.setattr(cli_train, "train", fake_train)
    with pytest.warns(UserWarning, match="training in fp32"):
        CliRunner().invoke(cli, ["train", "--bf16", "auto", "--output", "x"], catch_exceptions=False)
    assert seen == {"bf16": False}
    seen.clear()
    result = CliRunner().invoke(cli, ["train", "--bf16", "on", "--output", "x"])
    assert "bf16" not in seen and "--bf16 on: bf16 is not native" in str(result.exception)


# -- faiss on the GPU (plumbing only: no GPU here) ---------------------------------------------------------------------
def test_faiss_stays_on_cpu_with_one_line_without_faiss_gpu(monkeypatch, capsys):
    import faiss

    from rrbench.retrievers import faiss_device
    index = faiss.IndexFlatIP(4)
    assert faiss_device.faiss_on_device(index, "cpu") == (index, "cpu")
    monkeypatch.setattr(faiss_device, "_said", set())
    monkeypatch.delattr(faiss, "StandardGpuResources", raising=False)
    assert faiss_device.faiss_on_device(index, "cuda") == (index, "cpu")
    assert faiss_device.faiss_on_device(index, "cuda:0") == (index, "cpu")
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["rrbench: faiss-gpu is not installed (pip install 'rrbench[gpu]'): dense search runs on faiss-cpu"]


def test_faiss_moves_the_index_when_the_gpu_build_is_there(monkeypatch):
    import faiss

    from rrbench.retrievers import faiss_device
    moved = []
    monkeypatch.setattr(faiss, "StandardGpuResources", lambda: "resources", raising=False)
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1, raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_gpu", lambda res, gpu, index: moved.append(gpu) or "gpu-index",
                        raising=False)
    assert faiss_device.faiss_on_device(faiss.IndexFlatIP(4), "cuda:1") == ("gpu-index", "gpu") and moved == [1]


# -- training flags reach the configuration ----------------------------------------------------------------------------
@pytest.mark.parametrize("args, field, expected", [
    ([], "include_no_evidence", True),                                                  # on by default
    (["--no-no-evidence-rows"], "include_no_evidence", False),
    (["--recipe", "minilm-scifact"], "include_no_evidence", False),                     # the recipe turns it off ...
    (["--recipe", "minilm-scifact", "--no-evidence-rows"], "include_no_evidence", True),  # ... an explicit flag wins
    ([], "graded_labels", False),
    (["--graded-labels"], "graded_labels", True),
    (["--graded-labels", "--binary-labels"], "graded_labels", False),                   # the last one given
])
def test_training_data_flags_reach_the_config(monkeypatch, args, field, expected):
    from click.testing import CliRunner

    from rrbench.cli import train as cli_train
    from rrbench.cli.main import _add_plugin_commands, cli

    if "train" not in cli.commands:
        _add_plugin_commands()
    seen = {}

    def capture(config, **kwargs):
        seen[field] = getattr(config, field)
        raise SystemExit(0)

    monkeypatch.setattr(cli_train, "train", capture)
    CliRunner().invoke(cli, ["train", *args, "--output", "x"], catch_exceptions=False)
    assert seen == {field: expected}
