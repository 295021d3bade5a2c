"""`rrbench run` with the decision stage: which scores decide, checkpoint thresholds, calibrators, cached runs."""

from __future__ import annotations

import json
import shutil

import pytest

from rrbench.cli.main import main
from rrbench.testing.fixtures import make_mini_task
from tests.hpo.test_sweep import make_sweep_task


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return make_sweep_task(tmp_path_factory.mktemp("decision") / "decision-task")


def _record(path):
    return json.loads((path / "results.json").read_text())


def test_a_retriever_only_ranking_never_inherits_the_rerankers_threshold(tmp_path, tiny_model):
    mini = make_mini_task(tmp_path / "mini")
    out = tmp_path / "head0"
    assert main(["run", "--task", str(mini), "--reranker", str(tiny_model), "--top-k-rerank", "0", "--quiet",
                 "--output", str(out)]) == 0
    record = _record(out)
    # the cross-encoder's logits have a natural threshold of 0; the final ranking is bm25's, which has none
    assert record["decision"]["scale"] == "bm25"
    assert record["decision"]["threshold"] is None
    assert record["metrics"]["false_evidence_rate"] is None
    # a reranker at depth 0 scores nothing: the record is the retriever's own, hash and name included
    assert main(["run", "--task", str(mini), "--quiet", "--output", str(tmp_path / "alone")]) == 0
    alone = _record(tmp_path / "alone")
    assert (record["config_hash"], record["system"]) == (alone["config_hash"], alone["system"])
    out2 = tmp_path / "head3"
    assert main(["run", "--task", str(mini), "--reranker", str(tiny_model), "--top-k-rerank", "3", "--quiet",
                 "--output", str(out2)]) == 0
    decision = _record(out2)["decision"]
    assert (decision["threshold"], decision["source"], decision["scale"]) == (
        0.0, "natural boundary of logit scores", "logit")


def test_a_fully_cached_run_loads_no_model(tmp_path, tiny_model, monkeypatch):
    from rrbench.models import lazy
    mini = make_mini_task(tmp_path / "mini")
    args = ["run", "--task", str(mini), "--reranker", str(tiny_model), "--quiet"]
    assert main([*args, "--output", str(tmp_path / "first")]) == 0
    assert _record(tmp_path / "first")["provenance"]["models_loaded"] == [True]

    def forbidden(self):
        raise AssertionError("the model was loaded although every score is cached")

    monkeypatch.setattr(lazy._Deferred, "model", forbidden)
    assert main([*args, "--output", str(tmp_path / "second")]) == 0
    second = _record(tmp_path / "second")
    assert second["provenance"]["models_loaded"] == [False]
    assert second["provenance"]["cache"]["model_calls"] == 0
    assert second["metrics"] == _record(tmp_path / "first")["metrics"]
    assert second["config_hash"] == _record(tmp_path / "first")["config_hash"]


def _checkpoint(tmp_path, tiny_model, eval_split: str, threshold: float):
    folder = tmp_path / "checkpoint"
    shutil.copytree(tiny_model, folder)
    (folder / "rrbench_model.json").write_text(json.dumps({
        "format": 1, "score_kind": "logit", "max_length": 64, "weights_sha256": None,
        "training": {"eval_split": eval_split, "threshold_calibration": {"threshold": threshold}}}))
    return folder


def test_threshold_checkpoint_is_used_and_refused_on_its_own_calibration_split(tmp_path, tiny_model, task, capsys):
    folder = _checkpoint(tmp_path, tiny_model, "dev_select", 0.125)
    assert main(["run", "--task", str(task), "--reranker", str(folder), "--threshold", "checkpoint", "--quiet",
                 "--output", str(tmp_path / "own")]) == 2
    assert "calibrated on 'dev_select'" in capsys.readouterr().err
    out = tmp_path / "final"
    assert main(["run", "--task", str(task), "--split", "dev_final", "--reranker", str(folder), "--threshold",
                 "checkpoint", "--quiet", "--output", str(out)]) == 0
    record = _record(out)
    assert record["config"]["decision"]["threshold"] == {"mode": "checkpoint", "value": 0.125}
    assert record["decision"]["threshold"] == 0.125 and "checkpoint" in record["decision"]["source"]


def test_a_calibrator_is_fitted_on_the_named_split_and_recorded(tmp_path, tiny_model, task, capsys):
    assert main(["run", "--task", str(task), "--reranker", str(tiny_model), "--calibrator", "platt", "--quiet",
                 "--output", str(tmp_path / "nosplit")]) == 2
    assert "--calibrate-on" in capsys.readouterr().err
    out = tmp_path / "platt"
    assert main(["run", "--task", str(task), "--split", "dev_final", "--reranker", str(tiny_model),
                 "--calibrator", "platt", "--calibrate-on", "dev_select", "--quiet", "--output", str(out)]) == 0
    record = _record(out)
    decision = record["decision"]
    assert decision["calibrator"]["id"] == "platt" and set(decision["calibrator"]["params"]) == {"a", "b"}
    assert decision["scale"] == "probability"
    claimed = record["config"]["decision"]
    assert claimed["calibrator"]["id"] == "platt" and claimed["fit"]["split"] == "dev_select"
    assert (out / "calibration_scores.jsonl.gz").is_file()  # the fit split's raw scores: the fit is re-derivable
    for key in ("ece", "brier"):
        assert 0.0 <= record["metrics"][key] <= 1.0
    assert decision["reliability"] and main(["plot", "reliability", str(out)]) == 0
    assert (out / "reliability.png").stat().st_size > 1000


def test_temperature_on_cosine_scores_is_refused(tmp_path, task, capsys):
    assert main(["run", "--task", str(task), "--split", "dev_final", "--reranker", "minilm-l6", "--calibrator",
                 "temperature", "--calibrate-on", "dev_select", "--quiet", "--output", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot calibrate cosine" in err and len(err.splitlines()) == 1


def test_an_ensemble_with_interpolation_is_hashed_and_decided_on_z_scores(tmp_path, tiny_model, task):
    out = tmp_path / "ensemble"
    assert main(["run", "--task", str(task), "--reranker", str(tiny_model), "--reranker", "minilm-l6",
                 "--ensemble-weight", "0.7", "--ensemble-weight", "0.3", "--interpolate", "0.2", "--threshold", "0.5",
                 "--quiet", "--output", str(out)]) == 0
    record = _record(out)
    config = record["config"]
    assert config["combination"] == {"weights": [0.7, 0.3], "ensemble_norm": "minmax", "beta": 0.2,
                                     "interpolate_norm": "minmax"}
    assert len(config["rerankers"]) == 2
    assert record["decision"]["scale"] == "z-score"
    assert "--ensemble-weight 0.7" in record["provenance"]["command"]


def test_a_max_fe_threshold_is_fitted_to_its_budget_on_the_named_split(tmp_path, tiny_model, task, capsys):
    import numpy as np

    from rrbench.pipeline.decide import fit_fe_threshold
    from rrbench.tasks.resolve import get_task

    base = ["run", "--task", str(task), "--reranker", str(tiny_model), "--quiet"]
    assert main([*base, "--split", "dev_final", "--threshold", "max-fe", "--calibrate-on", "dev_select",
                 "--output", str(tmp_path / "nobudget")]) == 2
    assert "--threshold-max-fe" in capsys.readouterr().err
    assert main([*base, "--threshold", "0", "--output", str(tmp_path / "select")]) == 0
    statistic = _record(tmp_path / "select")["decision"]["statistic"]
    out = tmp_path / "final"
    assert main([*base, "--split", "dev_final", "--threshold", "max-fe", "--threshold-max-fe", "0.25",
                 "--calibrate-on", "dev_select", "--output", str(out)]) == 0
    record = _record(out)
    # the threshold is the one fitted on dev_select's statistics, and it keeps dev_select's FE rate within 0.25
    loaded = get_task(str(task))
    has = {q.query_id: any(g >= 1 for g in loaded.judged(q).values()) for q in loaded.split_queries("dev_select")}
    ids = sorted(statistic)
    x = np.asarray([statistic[q] if statistic[q] is not None else -np.inf for q in ids])
    fitted = fit_fe_threshold(x, np.asarray([has[q] for q in ids]), 0.25)
    assert fitted["false_evidence_rate"] <= 0.25
    assert record["decision"]["threshold"] == pytest.approx(fitted["threshold"], abs=1e-12)
    # the claim is the budget; the threshold it gives is derived data
    assert record["config"]["decision"]["threshold"] == {"mode": "max-fe", "value": 0.25}
    assert "--threshold max-fe --threshold-max-fe 0.25" in record["provenance"]["command"]
