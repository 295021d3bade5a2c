"""`rrbench train` end to end on tiny models: checkpoint, reload, resume, early stopping, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rrbench.cli.main import main  # noqa: E402
from rrbench.training.regimes import resolve_config  # noqa: E402
from rrbench.training.trainer import run_training  # noqa: E402
from rrbench.util.errors import UsageError  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from rrbench.testing import make_train_task
    from rrbench.testing.fixtures import make_tiny_bert

    root = tmp_path_factory.mktemp("train")
    return {"task": str(make_train_task(root / "mini")), "bert": str(make_tiny_bert(root / "bert", seed=1))}


def _config(assets, out, **overrides):
    values = {"task": assets["task"], "base": assets["bert"], "loss": "bce", "miner": "n0-random",
              "output": str(out), "max_steps": 4, "batch_size": 2, "lr": 1e-3, "negatives": 2, "eval_steps": 2,
              "max_length": 32, "seed": 5}
    values.update(overrides)
    return resolve_config(values, values.pop("regime", None))


def test_checkpoint_reloads_to_identical_scores_and_runs(assets, tmp_path):
    from rrbench.models.factory import load_reranker
    from rrbench.pipeline.runner import RunConfig, execute
    from rrbench.util.io import sha256_file

    out = tmp_path / "ckpt"
    model, summary = run_training(_config(assets, out), show_progress=False)
    pairs = [("aspirin prevents heart attacks", "Tea was not studied."),
             ("caffeine affects sleep", "Caffeine blocks adenosine receptors in the brain.")]
    model.eval()
    in_memory = model.predict(pairs, activation_fn=torch.nn.Identity(), convert_to_numpy=True)
    reloaded = load_reranker(str(out)).score_pairs([p[0] for p in pairs], [p[1] for p in pairs])
    np.testing.assert_allclose(reloaded, in_memory, rtol=1e-5, atol=1e-6)

    meta = json.loads((out / "rrbench_model.json").read_text())
    assert meta["weights_sha256"] == sha256_file(out / "model.safetensors")
    assert meta["score_kind"] == "logit" and meta["training"]["loss"] == "bce"
    assert summary["threshold_calibration"]["threshold"] is not None
    assert 0.0 <= summary["threshold_calibration"]["false_evidence_rate"] <= 1.0
    assert (out / "train_config.json").is_file() and (out / "train_log.jsonl").is_file()
    evals = [json.loads(line) for line in (out / "train_metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [2, 4] and all("nDCG@10" in e for e in evals)
    assert not (out / ".checkpoints").exists()

    record = execute(RunConfig(reranker=str(out), task=assets["task"], split="dev_select", use_cache=False,
                               output=str(tmp_path / "run"), show_progress=False))
    claim = record["config"]["rerankers"][0]
    assert claim["checkpoint"]["weights_sha256"] == meta["weights_sha256"]
    assert claim["id"] == f"trained:bce@{meta['weights_sha256'][:8]}" or claim["id"].startswith("trained:")
    assert record["metrics"]["nDCG@10"] is not None


class _Interrupt:
    """Raise KeyboardInterrupt after a given optimiser step (a checkpoint exists from an earlier step)."""

    def __new__(cls, at_step: int):
        from transformers import TrainerCallback

        class Stop(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == at_step:
                    raise KeyboardInterrupt

        return Stop()


def test_interrupted_run_resumes_to_the_same_weights(assets, tmp_path):
    settings = {"max_steps": 6, "eval_steps": 2, "select_best": False, "loss": "listnet"}
    straight, _ = run_training(_config(assets, tmp_path / "a", **settings), show_progress=False)
    with pytest.raises(KeyboardInterrupt):
        run_training(_config(assets, tmp_path / "b", **settings), show_progress=False, callbacks=[_Interrupt(3)])
    assert (tmp_path / "b" / ".checkpoints").is_dir() and not (tmp_path / "b" / "rrbench_model.json").exists()
    resumed, summary = run_training(_config(assets, tmp_path / "b", **settings), show_progress=False)
    assert summary["phases"][0]["resumed_from"].endswith("checkpoint-2")
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    # A different seed really gives different weights (the comparison above can fail).
    other, _ = run_training(_config(assets, tmp_path / "c", seed=6, **settings), show_progress=False)
    assert any(not torch.allclose(a[k], other.state_dict()[k]) for k in a)
    # Same folder, other configuration: refused instead of silently mixing two runs.
    with pytest.raises(UsageError, match="different configuration"):
        run_training(_config(assets, tmp_path / "b", **{**settings, "lr": 5e-4}), show_progress=False)


def test_early_stopping_on_selection_metric(assets, tmp_path):
    # With a vanishing learning rate nDCG@10 never improves after the first evaluation: patience 1 stops at step 2.
    _, summary = run_training(_config(assets, tmp_path / "es", max_steps=20, eval_steps=1, lr=1e-12, patience=1),
                              show_progress=False)
    assert summary["phases"][0]["steps"] == 2 and summary["phases"][0]["best_checkpoint_step"] == 1


def test_no_evidence_queries_never_reach_a_listwise_loss(assets, tmp_path, monkeypatch):
    from sentence_transformers.cross_encoder.losses import ListNetLoss

    seen: list[str] = []
    original = ListNetLoss.forward

    def spy(self, inputs, labels, *args, **kwargs):
        seen.extend(inputs[0])
        return original(self, inputs, labels, *args, **kwargs)

    monkeypatch.setattr(ListNetLoss, "forward", spy)
    run_training(_config(assets, tmp_path / "ln", loss="listnet", max_steps=3), show_progress=False)
    assert seen and set(seen) <= {"aspirin prevents heart attacks", "caffeine affects sleep"}


def test_generative_reranker_trains_and_is_evaluable(assets, tmp_path):
    from rrbench.models.factory import load_reranker
    from rrbench.testing import make_tiny_causal_lm

    base = make_tiny_causal_lm(tmp_path / "qwen")
    out = tmp_path / "gen"
    model, _ = run_training(_config(assets, out, base=str(base), loss="gen-listwise", max_steps=2,
                                    loss_options={"temperature": 0.5}), show_progress=False)
    model.eval()
    pair = ("caffeine affects sleep", "Tea was not studied.")
    expected = model.predict([pair], activation_fn=torch.nn.Identity(), convert_to_numpy=True)
    np.testing.assert_allclose(load_reranker(str(out)).score_pairs([pair[0]], [pair[1]]), expected, rtol=1e-4,
                               atol=1e-5)


def _cli(capsys, *args) -> tuple[int, str]:
    code = main(["train", "--quiet", *args])
    return code, capsys.readouterr().err.strip()


def test_cli_bad_input_is_a_one_line_usage_error(assets, tmp_path, capsys):
    base = ["--task", assets["task"], "--base", assets["bert"], "--output", str(tmp_path / "x")]
    code, err = _cli(capsys, *base, "--loss", "lambaloss")
    assert code == 2 and "Did you mean: lambdaloss" in err and "\n" not in err
    code, err = _cli(capsys, *base, "--loss", "listnet", "--negatives", "0")
    assert code == 2 and "at least 2 sentences" in err and "\n" not in err
    code, err = _cli(capsys, *base, "--loss", "gen-listwise", "--negatives", "2", "--loss-option", "min_group_size=4")
    assert code == 2 and "at least 4 sentences" in err
    code, err = _cli(capsys, *base, "--loss", "bce", "--loss-option", "temperature=2")
    assert code == 2 and "has no option 'temperature'" in err
    code, err = _cli(capsys, *base, "--regime", "r5-mse")
    assert code == 2 and "--teacher" in err
    code, err = _cli(capsys, *base, "--regime", "r5-mse", "--teacher", assets["bert"], "--cache-dir",
                     str(tmp_path / "empty-cache"))
    assert code == 2 and "has no cached scores" in err and "\n" not in err


def test_mean_pooled_head_trains_and_reloads_to_identical_scores(assets, tmp_path):
    from rrbench.models.factory import load_reranker
    out = tmp_path / "mean"
    model, _ = run_training(_config(assets, out, head="mean", max_steps=2), show_progress=False)
    model.eval()
    pair = ("aspirin prevents heart attacks", "Participants were recruited from three hospitals.")
    expected = model.predict([pair], activation_fn=torch.nn.Identity(), convert_to_numpy=True)
    meta = json.loads((out / "rrbench_model.json").read_text())
    assert meta["reranker_options"] == {}  # scored by rrbench's engine, not a bypass
    reranker = load_reranker(str(out))
    assert reranker.use_engine and reranker.scorer.kind == "chain"
    np.testing.assert_allclose(reranker.score_pairs([pair[0]], [pair[1]]), expected, rtol=1e-5, atol=1e-6)
