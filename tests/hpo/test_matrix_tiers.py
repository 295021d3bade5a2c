"""The matrix after Tier B: exports, finalists, Tier A, Tier C (seeds and grouped folds), confirmation with paired
tests, transfer, and ``matrix report`` - on a tiny model and a tiny three-split task."""

from __future__ import annotations

import json
import textwrap

import optuna
import pytest

from rrbench.hpo.matrix import build_plan
from rrbench.util.errors import UsageError
from tests.support.tiny_matrix import tier_b, tiny_assets, write_matrix

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _three_split_task(directory):
    """The fixture's mini task three times over (train / dev_select / dev_final), criteria distinct per copy."""
    from rrbench.testing.fixtures import MINI_POSTS, MINI_QRELS, MINI_QUERIES, write_task

    posts, queries, qrels, splits = [], [], [], {}
    for copy, split in (("a", "train"), ("b", "dev_select"), ("c", "dev_final"), ("d", "train")):
        posts += [{**p, "post_id": f"{p['post_id']}{copy}"} for p in MINI_POSTS]
        for q in MINI_QUERIES:
            qid = f"{q['query_id']}{copy}"
            queries.append({**q, "query_id": qid, "post_id": f"{q['post_id']}{copy}",
                            "criterion_id": f"{q['criterion_id']}{copy}"})
            splits[qid] = split
        qrels += [{**r, "query_id": f"{r['query_id']}{copy}"} for r in MINI_QRELS]
    return write_task(directory, posts, queries, qrels, splits=splits)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("tiers")
    return tiny_assets(root, _three_split_task(root / "task"))


MATRIX = """
    name: tiers
    task: {task}
    factors: {{G: [bm25], M: ["{bert}"], R: [r0, r1], N: [n0-random]}}
    seeds: [5, 6]
    exports: [dev_select, train]
    baselines:
      bm25: {{retriever: bm25}}
    transfer_tasks:
      - {{task: {task}, split: dev_final, top_k: 50}}
    budgets:
""" + tier_b(steps=3, evaluations=1, enqueue="{lr: 0.001}") + """
      tier_a: {{trials: 6, max_fe: 1.0, sampler: random,
               space: {{calibrator: [platt], interpolate: [0.0, 0.5]}}}}
      tier_c: {{finalists: 2, folds: 2}}
"""


_write = write_matrix


def test_fold_splits_partition_a_split_by_post(assets):
    from rrbench.tasks.resolve import fold_split, load_task_dir
    task = load_task_dir(assets["task"])
    train = {q.query_id for q in task.split_queries("train")}
    held = [{q.query_id for q in task.split_queries(fold_split("train", "fold", i, 2))} for i in (1, 2)]
    rest = [{q.query_id for q in task.split_queries(fold_split("train", "rest", i, 2))} for i in (1, 2)]
    assert held[0] | held[1] == train and not held[0] & held[1]
    assert rest[0] == held[1] and rest[1] == held[0]
    posts = [{task.queries[q].post_id for q in h} for h in held]
    assert not posts[0] & posts[1]
    with pytest.raises(UsageError, match="numbered 1..k"):
        task.split_queries("train~fold3of2")


def test_test_split_folds_are_refused():
    from rrbench.records.ledger import check_split

    with pytest.raises(UsageError, match="never in folds"):
        check_split("test~fold1of5", final=True)


@pytest.mark.usefixtures("torch_one_thread")
def test_matrix_runs_every_tier_and_reports(tmp_path, assets, capsys):
    from rrbench.hpo.matrix_run import run_matrix
    from rrbench.hpo.matrix_tier_b import real_trainer
    from rrbench.measures.significance import compare_pair, mean_std, per_query_values

    path = _write(tmp_path, MATRIX.format(**assets))
    plan = build_plan(path)
    out = tmp_path / "out"
    calls: list[dict] = []
    inner = real_trainer(evaluations=1)

    def counting(values, report):
        calls.append(dict(values))
        return inner(values, report)

    run_matrix(plan, out, trainer=counting, log=lambda line: None)
    # Tier B trained the one r1 set; Tier C retrained it with seed 6 and on each fold's remainder
    assert [c["seed"] for c in calls] == [5, 6, 5, 5]
    assert [c.get("train_split", "train") for c in calls] == ["train", "train", "train~rest1of2", "train~rest2of2"]
    assert [c.get("eval_split", "dev_select") for c in calls][2:] == ["train~fold1of2", "train~fold2of2"]
    assert all(c["lr"] == 0.001 for c in calls)
    # every cell exported its scores on both splits
    for cell in plan.cells:
        for split in ("dev_select", "train"):
            record = json.loads((out / "reranker_scores" / cell.key / split / "results.json").read_text())
            assert record["config"]["split"] == split
    # both cells are finalists (in dev_select order); Tier A chose each one's configuration
    infos = {c.key: json.loads((out / "train_runs" / c.key / "cell.json").read_text()) for c in plan.cells}
    order = sorted(infos, key=lambda k: (-infos[k]["dev_select"]["nDCG@10"], k))
    for key in order:
        selected = json.loads((out / "train_runs" / key / "selected.json").read_text())
        assert selected["tier_a"]["trials"] == 6 and selected["tier_a"]["feasible"]
        assert selected["config"]["selected_on"] == "dev_select"
    # Tier C of the trained cell: mean +- std computed from the seed records on disk, folds on held-out folds
    trained = next(c for c in plan.cells if c.R == "r1").key
    tier_c = json.loads((out / "train_runs" / trained / "tier_c.json").read_text())
    assert sorted(tier_c["seeds"]) == ["5", "6"]
    values = [json.loads((out / "leaderboards" / trained / f"seed-{seed}" / "dev_final" / "results.json")
                         .read_text())["metrics"]["nDCG@10"] for seed in (5, 6)]
    assert tier_c["dev_final_nDCG@10_mean_std"] == pytest.approx(list(mean_std(values)), abs=1e-12)
    # the Platt fit Tier A chose is cross-fitted on dev_select (as the sweep measured it) and fitted on dev_select
    # for dev_final: never on the queries it is scored on
    configs = {split: json.loads((out / "leaderboards" / trained / "seed-6" / split / "results.json").read_text())
               ["config"] for split in ("dev_select", "dev_final")}
    measured = json.loads((out / "train_runs" / trained / "selected.json").read_text())["tier_a"]["best"]["config"]
    assert measured["cross_fit"] == 4  # the toy dev_select has 4 posts: fewer folds than the default 5
    decisions = {split: config["decision"] for split, config in configs.items()}
    assert decisions["dev_select"]["calibrator"]["id"] == decisions["dev_final"]["calibrator"]["id"] == "platt"
    assert decisions["dev_select"]["fit"]["cross_fit"] == 4 and decisions["dev_select"]["fit"]["split"] is None
    assert decisions["dev_final"]["fit"]["split"] == "dev_select" and decisions["dev_final"]["fit"]["cross_fit"] is None
    assert sorted(tier_c["folds"]) == ["fold-1-of-2", "fold-2-of-2"]
    fold = json.loads((out / "leaderboards" / trained / "fold-1-of-2" / "results.json").read_text())
    assert fold["config"]["split"] == "train~fold1of2"
    assert fold["metrics"]["nDCG@10"] == tier_c["folds"]["fold-1-of-2"]["nDCG@10"]
    r0 = next(c for c in plan.cells if c.R == "r0").key  # R0 trains nothing: one model, no retraining
    assert list(json.loads((out / "train_runs" / r0 / "tier_c.json").read_text())["seeds"]) == ["5"]
    finalist = order[0]
    # the report's paired test equals one computed here from the two records
    report = json.loads((out / "report.json").read_text())
    assert [row["key"] for row in report["cells"]][0] == finalist
    system = json.loads((out / "leaderboards" / finalist / "seed-5" / "dev_final" / "results.json").read_text())
    bm25 = json.loads((out / "leaderboards" / "baselines" / "bm25" / "dev_final" / "results.json").read_text())
    expected = compare_pair(per_query_values(system["per_query"], "nDCG@10"),
                            per_query_values(bm25["per_query"], "nDCG@10"), "nDCG@10")
    shown = report["finalists"][0]["confirm"]["against"]["bm25"]
    assert shown["p"] == expected.p_value and shown["diff"] == pytest.approx(expected.mean_diff, abs=1e-12)
    assert report["finalists"][0]["transfer"][0]["task"] == assets["task"]
    decision = report["finalists"][0]["transfer"][0]["decision"]  # the decision fitted on dev_select, carried
    assert {c["policy"] for c in decision["cells"]} == {"fit", "max-fe"} and decision["eval_split"] == "dev_final"
    assert all(c["fe_n"] > 0 and c["fe_wilson95"] is not None for c in decision["cells"])
    # the label curve of the target: a refit on n of its own labelled dev_select queries, then all of them
    target_id = decision["tasks"][-1]
    assert set(decision["label_curve"]) == {f"fit|{target_id}", f"max-fe|{target_id}"}
    assert all(rows[-1]["all"] for rows in decision["label_curve"].values())
    text = (out / "report.md").read_text()
    assert "Label curve" in text and "precision of answered" in text
    assert "## Tier B" in text and "mean +- std" in text and "| bm25 |" in text
    # a second worker (or a re-run) recomputes nothing
    before = len(calls)
    run_matrix(build_plan(path), out, trainer=counting, log=lambda line: None)
    assert len(calls) == before
    # the CLI report reads the artifacts only
    from rrbench.cli.main import main

    assert main(["matrix", "report", str(path), "--output", str(out)]) == 0
    assert "# Matrix tiers" in capsys.readouterr().out
    # benchmarks/levers_scifact.py retrains the r1 cell with exactly one option changed
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "levers_scifact.py"
    module_spec = importlib.util.spec_from_file_location("levers_scifact", script)
    levers = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(levers)
    assert levers.main(["--matrix-run", str(out), "--output", str(tmp_path / "levers"), "--lever", "pos-weight-4",
                        "--lever", "one-epoch"]) == 0   # the cell already trains one epoch: skipped
    rows = json.loads((tmp_path / "levers" / "levers.json").read_text())["rows"]
    assert [row["lever"] for row in rows][1:] == ["pos-weight-4"]
    assert rows[0]["nDCG@10"] == infos[trained]["dev_select"]["nDCG@10"]
    base = json.loads((out / "train_runs" / trained / "model" / "train_config.json").read_text())["config"]
    variant = json.loads((tmp_path / "levers" / "pos-weight-4" / "train_config.json").read_text())["config"]
    assert {key for key in base if base[key] != variant[key]} == {"output", "loss_options"}
    assert variant["loss_options"] == {**base["loss_options"], "pos_weight": 4.0}


def test_report_without_a_run_is_a_one_line_error(tmp_path, assets, capsys):
    from rrbench.cli.main import main

    path = _write(tmp_path, MATRIX.format(**assets))
    assert main(["matrix", "report", str(path), "--output", str(tmp_path / "none")]) == 2
    assert "holds no matrix run" in capsys.readouterr().err


@pytest.mark.parametrize("old, new", [
    ("tier_c: {finalists: 2, folds: 2}", "tier_c: {finalists: 2, confirm_on: test}"),
    ("bm25: {retriever: bm25}", "bm25: {retriever: bm25, top_k_retriever: 0}"),
    ("bm25: {retriever: bm25}", "bm25: {retriever: bm25, split: dev_final}"),
    ("bm25: {retriever: bm25}", "bm25: {retriever: bm25, warp: 9}"),
    ("space: {calibrator: [platt], interpolate: [0.0, 0.5]}", "space: {calibratr: [none]}"),
    ("tier_c: {finalists: 2, folds: 2}", "tier_c: {finalists: 2, folds: 1}"),
    ("tier_c: {finalists: 2, folds: 2}", "tier_c: {finalists: 2, confirm_on: dev_finl}"),
    ("exports: [dev_select, train]", "exports: [dev_select, trian]"),
])
def test_bad_later_tier_settings_are_refused_at_plan_time(tmp_path, assets, old, new):
    text = textwrap.dedent(MATRIX.format(**assets))
    assert old in text
    with pytest.raises(UsageError):
        build_plan(_write(tmp_path, text.replace(old, new)))


@pytest.mark.usefixtures("torch_one_thread")
def test_a_recorded_teacher_gives_the_cached_teachers_scores(tmp_path, assets):
    """Scores travel between workers as run records: reading one gives exactly the scores the cache holds."""
    from rrbench.pipeline.runner import RunConfig, execute
    from rrbench.tasks.resolve import load_task_dir
    from rrbench.training.teacher import cached_teacher, recorded_teacher

    cache = str(tmp_path / "cache")
    folder = tmp_path / "teacher"
    execute(RunConfig(task=assets["task"], split="train", reranker=assets["bert"], top_k_retriever=1000,
                      top_k_rerank=1000, output=str(folder), cache_dir=cache, show_progress=False))
    task = load_task_dir(assets["task"])
    queries = task.split_queries("train")
    pairs = [(q.query_id, int(i)) for q in queries for i in task.candidates(q)]
    ids, indices = [p[0] for p in pairs], [p[1] for p in pairs]
    from_file = recorded_teacher(folder, task, "train")(ids, indices)
    from_cache = cached_teacher(assets["bert"], task, "train", cache)(ids, indices)
    assert len(from_file) == len(pairs) > 10
    assert from_file.tolist() == pytest.approx(from_cache.tolist(), abs=1e-12)
    with pytest.raises(UsageError, match="has no score for"):
        recorded_teacher(folder, task, "dev_select")(["q1b"], [int(task.candidates(task.queries["q1b"])[0])])
    calibrated = tmp_path / "calibrated"
    execute(RunConfig(task=assets["task"], split="train", reranker=assets["bert"], top_k_retriever=1000,
                      top_k_rerank=1000, output=str(calibrated), cache_dir=cache, show_progress=False,
                      interpolate=0.5))
    with pytest.raises(UsageError, match="only a plain record"):
        recorded_teacher(calibrated, task, "train")


def test_the_matrix_report_escapes_every_name():
    """A reranker named by a hostile path cannot add rows or links to the report the README quotes."""
    from rrbench.hpo.matrix_report import render

    hostile = "x | fake | row |\n| 9 | [link](http://e.x) |"
    cell = {"rank": 1, "key": hostile, "R": hostile, "L": None, "N": None, "G": "bm25", "trials": {},
            "best_params": {"reranker": hostile}, "dev_select": {"nDCG@10": 0.5, "RR@10": 0.5, "R@10": 0.5}}
    data = {"name": hostile, "task": "mini", "task_data_sha256": "0" * 64, "cells": [cell], "unfinished": [],
            "skipped": [], "levers": [{"factor": "R", "level": hostile, "mean_gap_to_best": 0.0, "comparisons": 1}],
            "finalists": [{"cell": cell}], "baselines": {hostile: {"nDCG@10": 0.4, "RR@10": 0.4, "R@10": 0.4,
                                                                   "false_evidence_rate": None}},
            "confirm_on": "dev_final"}
    text = render(data)
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert all(line.count("|") - line.count("\\|") in (8, 11, 5, 6) for line in rows), rows
    assert "](http" not in text.replace("\\]", "")
    assert "\n| 9 |" not in text
