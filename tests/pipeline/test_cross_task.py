"""Decisions fitted on another task (``--calibrate-task``), the budget-aware threshold, and the guards on raw-score
thresholds: on mini-task variants with different post lengths and no-evidence shares."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rrbench.cli.main import main
from rrbench.pipeline.claims import task_claim
from rrbench.pipeline.decide import DecisionConfig, decide
from rrbench.pipeline.derive import checkpoint_threshold_of, derive
from rrbench.records.evidence import read_evidence
from rrbench.records.record import load_record
from rrbench.records.schema import CALIBRATION_SCORES_FILE, SCORES_FILE, RecordError
from rrbench.tasks.resolve import get_task
from rrbench.util.errors import UsageError
from tests.support.task_variants import make_variant_task


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("variants")
    return {"short": make_variant_task(root / "short-posts", seed=3, sentences=(3, 4), no_evidence=0.2),
            "long": make_variant_task(root / "long-posts", seed=5, sentences=(8, 12), no_evidence=0.5)}


def _record(path):
    return json.loads((path / "results.json").read_text())


# -- the budget-aware threshold (main's max-fe mode) ------------------------------------------------------------
def test_balanced_accuracy_ignores_the_budget_and_the_max_fe_threshold_holds_it():
    rng = np.random.default_rng(0)
    has = rng.random(400) < 0.6
    x = rng.normal(size=400) + 1.2 * has
    config = DecisionConfig(threshold_mode="max-fe", threshold_max_fe=0.05, fit_split="dev_select")
    decision = decide(config, x, "logit", fit=(x, has))
    assert decision.answered[~has].mean() <= 0.05
    balanced = decide(DecisionConfig(threshold_mode="fit", fit_split="dev_select"), x, "logit", fit=(x, has))
    assert balanced.answered[~has].mean() > 0.05  # balanced accuracy overshoots a tight budget on this data


# -- fitting on another task ---------------------------------------------------------------------------------------
def test_a_threshold_fitted_on_another_task_is_claimed_named_and_re_derived(tmp_path, tiny_model, tasks):
    out = tmp_path / "transfer"
    assert main(["run", "--task", str(tasks["long"]), "--split", "dev_final", "--reranker", str(tiny_model),
                 "--threshold", "max-fe", "--threshold-max-fe", "0.25", "--calibrate-on", "dev_select", "--calibrate-task",
                 str(tasks["short"]), "--quiet", "--output", str(out)]) == 0
    record = _record(out)
    fit = record["config"]["decision"]["fit"]
    short = get_task(str(tasks["short"]))
    assert fit["split"] == "dev_select"
    assert fit["task"] == {"id": "short-posts", "version": 1, "data_sha256": short.data_sha256}
    assert record["config"]["decision"]["threshold"] == {"mode": "max-fe", "value": 0.25}
    assert "fit@short-posts:dev_select" in record["system"] and "thr-maxfe0.25" in record["system"]
    assert "--calibrate-task" in record["provenance"]["command"]
    # the fit evidence is the other task's split, and the verifier's derivation gives the same numbers
    calibration = read_evidence(out / CALIBRATION_SCORES_FILE)
    assert set(calibration.by_query()) == {q.query_id for q in short.split_queries("dev_select")}
    claims = load_record(out).run_claims
    long = get_task(str(tasks["long"]))
    derived = derive(claims, long, read_evidence(out / SCORES_FILE), short, calibration)
    assert derived.metrics == pytest.approx(record["metrics"], abs=1e-12)
    assert derived.decision.threshold == record["decision"]["threshold"]
    assert "short-posts:dev_select" in derived.decision.source
    # without the other task, or with the wrong one, the claims cannot be re-derived
    with pytest.raises(RecordError, match=r"fit\.task"):
        derive(claims, long, read_evidence(out / SCORES_FILE), None, calibration)
    with pytest.raises(RecordError, match=r"fit\.task"):
        derive(claims, long, read_evidence(out / SCORES_FILE), long, calibration)
    # the same split name of another task is another split: allowed; of the evaluated task it is refused
    assert main(["run", "--task", str(tasks["long"]), "--reranker", str(tiny_model), "--threshold", "fit",
                 "--calibrate-on", "dev_select", "--calibrate-task", str(tasks["short"]), "--quiet", "--output",
                 str(tmp_path / "same-name")]) == 0
    assert main(["run", "--task", str(tasks["long"]), "--reranker", str(tiny_model), "--threshold", "fit",
                 "--calibrate-on", "dev_select", "--calibrate-task", str(tasks["long"]), "--quiet", "--output",
                 str(tmp_path / "own")]) == 2


@pytest.mark.parametrize("args, message", [
    (["--threshold", "fit", "--calibrate-on", "test"], "never used for fitting"),
    (["--threshold", "fit", "--calibrate-on", "test", "--final"], "never used for fitting"),
    (["--threshold", "fit"], "--calibrate-task TASK needs --calibrate-on"),
    (["--calibrate-on", "dev_select"], "nothing to fit"),
    (["--threshold", "fit", "--calibrate-on", "dev_select", "--cross-fit", "3"], "--calibrate-task names"),
    (["--threshold", "max-fe", "--calibrate-on", "dev_select"], "--threshold-max-fe"),
])
def test_fits_on_another_task_are_refused_where_they_cannot_be_honest(tmp_path, tiny_model, tasks, capsys, args,
                                                                      message):
    code = main(["run", "--task", str(tasks["long"]), "--split", "dev_final", "--reranker", str(tiny_model),
                 "--calibrate-task", str(tasks["short"]), *args, "--quiet", "--output", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


def test_a_fit_task_that_cannot_fit_is_named_and_nothing_is_written(tmp_path, tasks, capsys):
    answers_all = make_variant_task(tmp_path / "answers-all", seed=9, no_evidence=0.0)
    code = main(["run", "--task", str(tasks["long"]), "--split", "dev_final", "--threshold", "fit", "--calibrate-on",
                 "dev_select", "--calibrate-task", str(answers_all), "--quiet", "--output", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "(its decision is fitted on answers-all dev_select): cannot fit a threshold" in err
    assert not (tmp_path / "x").exists()


# -- checkpoint thresholds -----------------------------------------------------------------------------------------
def _checkpoint(tmp_path, tiny_model, fitted_on, threshold=0.125):
    folder = tmp_path / "checkpoint"
    shutil.copytree(tiny_model, folder)
    training = {"eval_split": "dev_select", "threshold_calibration": {"threshold": threshold}}
    if fitted_on is not None:
        training["threshold_fitted_on"] = fitted_on
    (folder / "rrbench_model.json").write_text(json.dumps({
        "format": 1, "score_kind": "logit", "max_length": 64, "weights_sha256": None, "training": training}))
    return folder


def test_the_checkpoint_guard_compares_task_and_split(tmp_path, tiny_model, tasks, capsys):
    short = get_task(str(tasks["short"]))
    fitted_on = {"task": short.id, "version": 1, "data_sha256": short.data_sha256, "split": "dev_select"}
    folder = _checkpoint(tmp_path, tiny_model, fitted_on)
    own = ["run", "--task", str(tasks["short"]), "--reranker", str(folder), "--threshold", "checkpoint", "--quiet"]
    assert main([*own, "--output", str(tmp_path / "own")]) == 2
    assert "fitted on short-posts:dev_select" in capsys.readouterr().err
    other = tmp_path / "other"
    assert main(["run", "--task", str(tasks["long"]), "--reranker", str(folder), "--threshold", "checkpoint",
                 "--quiet", "--output", str(other)]) == 0  # another task's dev_select: a transfer, allowed
    record = _record(other)
    assert record["decision"]["threshold"] == 0.125
    manifest = record["config"]["rerankers"][0]["checkpoint"]["training_manifest"]
    assert manifest["threshold_fitted_on"]["task"] == "short-posts"  # the record says where it was fitted
    # the verifier re-derives the value from the claimed checkpoint: an edited value is refused
    claims = load_record(other).run_claims
    forged = claims.model_copy(update={"decision": claims.decision.model_copy(update={
        "threshold": claims.decision.threshold.model_copy(update={"value": 0.5})})})
    with pytest.raises(RecordError, match=r"training manifest carries 0\.125"):
        derive(forged, get_task(str(tasks["long"])), read_evidence(other / SCORES_FILE))
    # the check the verifier repeats: the task and split it was fitted on, or a copy of its data under another id
    assert checkpoint_threshold_of(manifest, claims.task, "dev_select", "ck") == 0.125
    for claim in (task_claim(short), claims.task.model_copy(update={"data_sha256": short.data_sha256})):
        with pytest.raises(UsageError, match="fitted on"):
            checkpoint_threshold_of(manifest, claim, "dev_select", "ck")
    assert checkpoint_threshold_of(manifest, task_claim(short), "dev_final", "ck") == 0.125


def test_an_old_checkpoint_without_its_task_is_refused_on_the_split_name_only(tmp_path, tiny_model, tasks, capsys):
    folder = _checkpoint(tmp_path, tiny_model, None)
    assert main(["run", "--task", str(tasks["long"]), "--reranker", str(folder), "--threshold", "checkpoint",
                 "--quiet", "--output", str(tmp_path / "old")]) == 2
    assert "does not record" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--interpolate", "0.3"], "combined z-scores"),
    (["--calibrator", "platt", "--calibrate-on", "dev_select"], "cannot be compared with the probabilities"),
])
def test_a_raw_checkpoint_threshold_is_refused_on_combined_or_calibrated_scores(tmp_path, tiny_model, tasks, capsys,
                                                                               args, message):
    folder = _checkpoint(tmp_path, tiny_model, None)
    code = main(["run", "--task", str(tasks["long"]), "--split", "dev_final", "--reranker", str(folder),
                 "--threshold", "checkpoint", *args, "--quiet", "--output", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err


def test_the_decision_stage_itself_refuses_a_checkpoint_threshold_on_z_scores():
    config = DecisionConfig(threshold_mode="checkpoint", threshold=0.1)
    with pytest.raises(UsageError, match="raw-score threshold"):
        decide(config, np.zeros(3), "z-score")
