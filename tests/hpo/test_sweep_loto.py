"""Leave-one-task-out selection: ``rrbench sweep --tasks A,B,C --holdout-task C`` on mini-task variants."""

from __future__ import annotations

import json

import pytest
import yaml

from rrbench.cli.main import main
from rrbench.hpo.sweep_tasks import pick, selection_value
from tests.support.task_variants import make_variant_task


def _row(number, deltas, fe=0.0):
    return {"number": number, "per_task": {f"t{i}": {"delta": d, "false_evidence_rate": fe}
                                           for i, d in enumerate(deltas)}, "config": {}}


def test_worst_task_and_mean_selection_differ_on_a_constructed_case():
    # A wins big on one task and loses on the other; B wins a little on both
    a, b = [0.10, -0.05], [0.02, 0.01]
    rows = {"worst": [], "mean": []}
    for select in rows:
        rows[select] = [{**_row(0, a), "value": selection_value(a, select)},
                        {**_row(1, b), "value": selection_value(b, select)}]
    assert pick(rows["mean"], 0.1)["number"] == 0  # mean 0.025 beats 0.015
    assert pick(rows["worst"], 0.1)["number"] == 1  # worst 0.01 beats -0.05
    # the budget holds on each task: a trial over it on any one task is never picked
    over = [{**_row(0, b), "value": 1.0, "per_task": {"t0": {"delta": 1, "false_evidence_rate": 0.5},
                                                       "t1": {"delta": 1, "false_evidence_rate": 0.0}}},
            {**_row(1, b), "value": 0.0}]
    assert pick(over, 0.1)["number"] == 1


@pytest.fixture(scope="module")
def loto(tmp_path_factory, tiny_model):
    import os

    root = tmp_path_factory.mktemp("loto")
    tasks = [make_variant_task(root / name, seed=seed, sentences=sentences, no_evidence=share)
             for name, seed, sentences, share in (("task-a", 3, (3, 5), 0.3), ("task-b", 5, (6, 9), 0.4),
                                                  ("task-c", 7, (4, 7), 0.35))]
    old = os.environ.get("RRBENCH_CACHE")
    os.environ["RRBENCH_CACHE"] = str(root / "cache")
    space = root / "space.yaml"
    space.write_text(yaml.safe_dump({"threshold_mode": ["fit", "max-fe"], "calibrator": ["none"],
                                     "top_k_retriever": [4, 50], "top_k_rerank": [5, 10],
                                     "interpolate": [0.0, 0.5]}))
    args = ["--reranker", str(tiny_model), "--space", str(space), "--quiet"]
    try:
        for task in tasks[:2]:
            assert main(["sweep", "fill", "--task", str(task), *args]) == 0
        yield {"root": root, "tasks": tasks, "args": args}
    finally:
        if old is None:
            os.environ.pop("RRBENCH_CACHE", None)
        else:
            os.environ["RRBENCH_CACHE"] = old


def test_loto_selects_on_the_others_confirms_each_and_evaluates_the_holdout(loto, monkeypatch, capsys):
    monkeypatch.setenv("RRBENCH_CACHE", str(loto["root"] / "cache"))
    a, b, c = (str(t) for t in loto["tasks"])
    out = loto["root"] / "out"
    assert main(["sweep", "--tasks", f"{a},{b},{c}", "--holdout-task", c, *loto["args"], "--trials", "6",
                 "--sampler", "random", "--max-fe", "0.6", "--output", str(out)]) == 0
    body = json.loads((out / "loto.json").read_text())
    assert body["selection_tasks"] == [a, b] and body["holdout_task"] == c and body["select"] == "worst"
    best = body["best"]
    assert best["value"] == pytest.approx(min(p["delta"] for p in best["per_task"].values()))
    assert all(p["false_evidence_rate"] <= 0.6 for p in best["per_task"].values())
    assert set(body["confirm"]) == {a, b, c} and body["confirm"][c]["held_out"]
    for task, confirm in body["confirm"].items():
        record = json.loads((out / "confirm" / task.rsplit("/", 1)[-1] / "results.json").read_text())
        assert record["config"]["split"] == "dev_final" and record["metrics"]["nDCG@10"] == confirm["nDCG@10"]
    assert "held out" in capsys.readouterr().out
    assert body["space_note"] is None  # the space named fit and budget only


def test_the_bm25_reference_is_pinned_to_each_trials_pool_size(loto, tmp_path, monkeypatch):
    """A trial at pool 4 is compared with BM25 at pool 4, not with a BM25 that ranks the whole post: on posts of 8
    sentences whose evidence BM25 ranks 8th (it shares no word with the claim), pool 4 drops it."""
    from rrbench.hpo.sweep_tasks import Bm25Reference, bm25_baseline
    from rrbench.tasks.mini import write_task

    monkeypatch.setenv("RRBENCH_CACHE", str(tmp_path / "cache"))
    posts = [{"post_id": f"p{p}", "sentences": [f"coffee sleep mood {p}."] + [f"filler line number {i}." for i in
                                                                                range(6)] + ["insulin glucose."]}
             for p in range(3)]
    queries = [{"query_id": f"q{p}", "post_id": f"p{p}", "text": "coffee sleep"} for p in range(3)]
    qrels = [{"query_id": f"q{p}", "sentence": 7, "grade": 1} for p in range(3)]
    task = str(write_task(tmp_path / "far-evidence", posts, queries, qrels))
    reference = Bm25Reference(task, "dev_select")
    small, whole = reference.at(4), reference.at(50)
    assert small == 0.0 and whole > 0.0  # the pin matters here
    assert reference.values == {4: small, 50: whole} and whole == bm25_baseline(task, "dev_select", 50)

    monkeypatch.setenv("RRBENCH_CACHE", str(loto["root"] / "cache"))
    body = json.loads((loto["root"] / "out" / "loto.json").read_text())
    for task_name, cell in body["best"]["per_task"].items():
        assert cell["bm25"] == bm25_baseline(task_name, "dev_select", cell["pool"])
        assert cell["delta"] == pytest.approx(cell["nDCG@10"] - cell["bm25"])
    for task_name, confirm in body["confirm"].items():
        assert confirm["bm25"] == bm25_baseline(task_name, "dev_final", confirm["pool"])


def test_fixed_raw_thresholds_are_left_out_of_a_loto_space():
    from rrbench.hpo.space import parse_space
    from rrbench.hpo.sweep_tasks import task_free_space
    from rrbench.util.errors import UsageError

    space, note = task_free_space(parse_space({}, ["r"], where="default"))  # [max-fe]: solved per task
    assert space.dims["threshold_mode"] == ["fit", "max-fe"] and "one decision" in note
    space, note = task_free_space(parse_space({"threshold_mode": ["fixed", "fit"]}, ["r"], where="space"))
    assert space.dims["threshold_mode"] == ["fit"] and note is not None
    with pytest.raises(UsageError, match="only 'fixed'"):
        task_free_space(parse_space({"threshold_mode": ["fixed"]}, ["r"], where="space"))


@pytest.mark.parametrize("extra, message", [
    (["--holdout-task", "elsewhere"], "is not one of --tasks"),
    (["--holdout-task", "{a}", "--split", "test"], "never used for selecting"),
    ([], "go together"),
])
def test_loto_refusals(loto, tmp_path, capsys, extra, message):
    a, b, c = (str(t) for t in loto["tasks"])
    argv = [x.format(a=a) for x in extra]
    assert main(["sweep", "--tasks", f"{a},{b},{c}", *argv, *loto["args"], "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_a_selection_task_no_trial_can_run_on_is_named(tmp_path, monkeypatch, capsys):
    """The attack: a selection task without no-evidence queries (no threshold can be fitted there) made every trial
    invalid, and the sweep said only that no trial met the FE budget, with exit 0."""
    monkeypatch.setenv("RRBENCH_CACHE", str(tmp_path / "cache"))
    none, a, b = (str(make_variant_task(tmp_path / name, seed=seed, no_evidence=share))
                  for name, seed, share in (("answers-all", 3, 0.0), ("task-a", 5, 0.4), ("task-b", 11, 0.4)))
    out = tmp_path / "out"
    assert main(["sweep", "--tasks", f"{none},{a},{b}", "--holdout-task", b, "--trials", "3", "--quiet",
                 "--fe-confidence", "0", "--max-fe", "0.5", "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"task {none}: cannot fit a threshold" in err, err
    assert json.loads((out / "loto.json").read_text())["best"] is None
