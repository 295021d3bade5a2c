"""The matrix file: strict validation, expansion with the compatibility rules, Tier B studies and their pruners."""

from __future__ import annotations

import optuna
import pytest

from rrbench.hpo.matrix import build_plan, estimate_cost, read_matrix
from rrbench.hpo.matrix_tier_b import cell_counts, cell_space, objective_for, open_cell_study, run_study, tier_b_budget
from rrbench.util.errors import UsageError
from rrbench.util.storage import open_storage
from tests.support.tiny_matrix import tier_b, write_matrix
from tests.support.tiny_matrix import tiny_assets as make_assets

optuna.logging.set_verbosity(optuna.logging.WARNING)


write = write_matrix


FULL = """
    name: demo
    factors:
      G: [bm25]
      M: [minilm-l6]
      R: [r0, r1, r2, r3-lambdaloss, r4-lambdaloss, r5-mse]
      L: [default, bce, listnet]
      N: [n0-random, n3-mixed]
    teacher: {R: r1, L: bce, N: n3-mixed}
"""


def test_expansion_applies_the_compatibility_rules(tmp_path):
    plan = build_plan(write(tmp_path, FULL))
    by = {(c.R, c.L, c.N): c for c in plan.cells}
    # R0 trains nothing: exactly one cell, without loss or miner, the other L/N combinations listed as skipped
    r0 = [c for c in plan.cells if c.R == "r0"]
    assert len(r0) == 1 and r0[0].L is None and r0[0].N is None and r0[0].train_key is None
    assert sum("R0 trains nothing" in s.reason for s in plan.skipped) == 5
    # R2 is RankNet, whatever L says
    assert {c.L for c in plan.cells if c.R == "r2"} == {"ranknet"}
    assert any(s.combination["R"] == "r2" and s.combination["L"] == "listnet" and "RankNet" in s.reason
               for s in plan.skipped)
    # R3 takes listwise losses only; L overrides the regime's default within the shape
    assert {c.L for c in plan.cells if c.R == "r3-lambdaloss"} == {"lambdaloss", "listnet"}
    assert any(s.combination["R"] == "r3-lambdaloss" and s.combination["L"] == "bce" for s in plan.skipped)
    # R4 is a curriculum with a ranking main loss
    assert {c.shape for c in plan.cells if c.R == "r4-lambdaloss"} == {"curriculum"}
    # R1 pointwise rejects listnet
    assert ("r1", "listnet", "n0-random") not in by
    # R5 needs a teacher: here another cell, which becomes a dependency and runs first
    teacher = by[("r1", "bce", "n3-mixed")]
    students = [c for c in plan.cells if c.R == "r5-mse"]
    assert students and all(c.teacher == f"cell:{teacher.key}" and teacher.key in c.needs for c in students)
    order = [c.key for c in plan.ordered()]
    assert all(order.index(teacher.key) < order.index(c.key) for c in students)
    # keys are content hashes: unique, stable across reads
    assert len({c.key for c in plan.cells}) == len(plan.cells)
    assert [c.key for c in build_plan(write(tmp_path, FULL, "again.yaml")).cells] == [c.key for c in plan.cells]


def test_r5_without_teacher_is_skipped_with_the_reason(tmp_path):
    plan = build_plan(write(tmp_path, """
        name: t
        factors: {M: [minilm-l6], R: [r1, r5-mse]}
    """))
    assert [c.R for c in plan.cells] == ["r1"]
    assert any("teacher" in s.reason for s in plan.skipped)


def test_cost_estimate_uses_named_throughput(tmp_path):
    plan = build_plan(write(tmp_path, FULL))
    cost = estimate_cost(plan)
    assert "benchmarks" in cost["source"] and cost["total_s"] > 0
    plan2 = build_plan(write(tmp_path, FULL + "    throughput: 24.2\n", "fast.yaml"))
    cost2 = estimate_cost(plan2)
    assert cost2["source"].startswith("matrix file")
    r1 = next(c.key for c in plan.cells if c.R == "r1")
    assert cost2["per_cell_s"][r1] < cost["per_cell_s"][r1]


@pytest.mark.parametrize("text, words", [
    ("name: x\nfactors: {M: [minilm-l6], R: [r9]}\n", "factors.R: unknown regime 'r9'"),
    ("name: x\nfactors: {M: [minilm-l6], R: [r1], N: [n7]}\n", "factors.N: unknown miner 'n7'"),
    ("name: x\nfactors: {M: [minilm-l6], R: [r1], L: [bcee]}\n", "Did you mean: bce"),
    ("name: x\nfactors: {M: [no-such-model], R: [r1]}\n", "factors.M: unknown reranker"),
    ("name: x\nfactors: {G: [bm26], M: [minilm-l6], R: [r1]}\n", "factors.G: unknown retriever"),
    ("name: x\nfactors: {M: [minilm-l6], R: []}\n", "field 'factors.R': must not be empty"),
    ("", "empty matrix file"),
    ("name: x\nfactors: {M: [minilm-l6], R: [r1]}\ncolour: red\n", "field 'colour': unknown field"),
    ("name: x\nfactors: {M: [minilm-l6], R: [r2], L: [bce]}\n", "no runnable cell"),
    ("name: x\nfactors: {M: [minilm-l6], R: [r1]}\nbudgets: {tier_b: {space: {lr: {low: 1, high: 0.1}}}}\n",
     "empty range"),
    ("name: x\nfactors: {M: [minilm-l6], R: [r1]}\ntransfer_tasks: [nope]\n", "task"),
])
def test_bad_matrix_files_are_one_line_errors(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as info:
        build_plan(path)
    message = str(info.value)
    assert words in message and str(path) in message and "\n" not in message


def test_bad_matrix_file_exits_2_through_the_cli(tmp_path, cli):
    path = write(tmp_path, "name: x\nfactors: {M: [minilm-l6], R: [r1, r9]}\n")
    done = cli("matrix", "plan", str(path))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "unknown regime 'r9'" in done.stderr


def test_space_comes_from_option_schemas_and_overrides(tmp_path):
    plan = build_plan(write(tmp_path, """
        name: s
        factors: {M: [minilm-l6], R: [r3-lambdaloss, r1], N: [n3-mixed]}
        budgets:
          tier_b:
            fixed: {negatives: 4}
            space: {lr: {low: 0.00002, high: 0.00003}, loss.sigma: {choices: [1.0]}}
    """))
    listwise = next(c for c in plan.cells if c.R == "r3-lambdaloss")
    space = cell_space(listwise, plan.spec)
    assert space["loss.weighting_scheme"]["choices"][-1] == "ndcg2pp"  # declared by the loss plugin
    assert "loss.min_group_size" not in space                           # not searchable
    assert space["miner.hard_fraction"] == {"low": 0.0, "high": 1.0, "log": False, "integer": False}
    assert space["lr"]["high"] == 0.00003 and space["loss.sigma"] == {"choices": [1.0]}
    assert "negatives" not in space and "group_size" in space           # fixed; listwise only
    pointwise = cell_space(next(c for c in plan.cells if c.R == "r1"), plan.spec)
    assert "group_size" not in pointwise and "loss.pos_weight" in pointwise


# -- Tier B with a fake trainer: pruners stop a trial that reports a bad intermediate value -----------------------
def _fake_trainer(calls):
    def trainer(values, report):
        good = values["lr"] > 1e-5
        curve = [0.5, 0.6, 0.7, 0.8] if good else [0.05, 0.06, 0.07, 0.08]
        # the good trials differ slightly so that the pruners have a strict order
        curve = [v + values["lr"] for v in curve]
        calls.append((values["lr"], []))
        for v in curve:
            calls[-1][1].append(v)
            report(v)
        return {"eval": {"nDCG@10": curve[-1]}, "phases": []}
    return trainer


@pytest.mark.parametrize("pruner", ["median", "successive-halving", "hyperband"])
def test_pruner_stops_a_trial_with_a_bad_intermediate_value(tmp_path, pruner):
    # Hyperband spreads trials over brackets: give every bracket some good trials to compare the bad one with.
    n_good = 12 if pruner == "hyperband" else 6
    good = "\n".join(f"              - {{lr: {2e-5 + i * 1e-6}}}" for i in range(n_good))
    path = write(tmp_path, f"""
        name: prune-{pruner}
        factors: {{M: [minilm-l6], R: [r1]}}
        budgets:
          tier_b:
            pruner: {pruner}
            evaluations: 4
            sample: false
            space: {{lr: {{low: 0.000001, high: 0.001, log: true}}}}
            fixed: {{warmup: 0.1, epochs: 1, negatives: 4, loss.pos_weight: 1, miner.hard_fraction: 0.5}}
            enqueue:
{good}
              - {{lr: 0.000001}}
    """)
    plan = build_plan(path)
    cell = plan.cells[0]
    space = cell_space(cell, plan.spec)
    assert set(space) == {"lr"}
    storage = open_storage(None, tmp_path / "hpo" / "study.sqlite")
    study = open_cell_study(cell, plan.spec, storage, space, "test storage")
    calls: list = []
    counts = run_study(study, objective_for(cell, plan.spec, space, tmp_path / "trials", _fake_trainer(calls)),
                       *tier_b_budget(plan.spec))
    assert counts["complete"] + counts["pruned"] == n_good + 1 and counts["fail"] == 0
    bad = [t for t in study.trials if t.params["lr"] == 1e-6]
    assert len(bad) == 1 and bad[0].state == optuna.trial.TrialState.PRUNED
    # stopped before returning a final value (Hyperband may stop it at the last rung, after its 4th report)
    assert calls[-1][0] == 1e-6 and len(calls[-1][1]) <= (4 if pruner == "hyperband" else 3)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials[:2])
    # a finished cell is not recomputed: running it again does no work
    before = len(calls)
    run_study(study, objective_for(cell, plan.spec, space, tmp_path / "trials", _fake_trainer(calls)),
              *tier_b_budget(plan.spec))
    assert len(calls) == before


def test_edited_matrix_clashes_with_the_stored_study(tmp_path):
    text = """
        name: clash
        factors: {{M: [minilm-l6], R: [r1]}}
        seeds: [{seed}]
    """
    storage = open_storage(None, tmp_path / "study.sqlite")
    plan = build_plan(write(tmp_path, text.format(seed=13)))
    cell = plan.cells[0]
    open_cell_study(cell, plan.spec, storage, cell_space(cell, plan.spec), "sqlite")
    # the same file opens the same study
    open_cell_study(cell, plan.spec, storage, cell_space(cell, plan.spec), "sqlite")
    edited = read_matrix(write(tmp_path, text.format(seed=99), "edited.yaml"))
    with pytest.raises(UsageError, match="different version of the matrix file.*rename the matrix"):
        open_cell_study(cell, edited, storage, cell_space(cell, edited), "sqlite")
    assert cell_counts(optuna.load_study(study_name=f"clash:tier-b:{cell.key}", storage=storage))["complete"] == 0


# -- a real (tiny) matrix end to end ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_assets(tmp_path_factory):
    pytest.importorskip("torch")
    from rrbench.testing import make_train_task

    root = tmp_path_factory.mktemp("matrix-assets")
    return make_assets(root, make_train_task(root / "mini"))


TINY = """
    name: tiny
    task: {task}
    factors: {{G: [bm25], M: ["{bert}"], R: [r0, r1], N: [n0-random]}}
    seeds: [5]
    budgets:
      tier_c: {{confirm_on: dev_select}}   # the mini task has no dev_final; these tests stop after Tier B
""" + tier_b(steps=4, evaluations=2, enqueue="{lr: 0.001}, {lr: 0.003}")


@pytest.mark.usefixtures("torch_one_thread")
def test_tiny_matrix_runs_end_to_end_and_never_recomputes(tmp_path, tiny_assets, capsys):
    import json

    from rrbench.hpo.matrix_run import matrix_status, run_matrix
    from rrbench.hpo.matrix_tier_b import real_trainer

    path = write(tmp_path, TINY.format(**tiny_assets))
    plan = build_plan(path)
    assert [c.R for c in plan.cells] == ["r0", "r1"]
    calls = []
    inner = real_trainer(evaluations=2)

    def counting(values, report):
        calls.append(values["lr"])
        return inner(values, report)

    status = run_matrix(plan, tmp_path / "out", trainer=counting, log=lambda line: None, later=False)
    assert sorted(calls) == [0.001, 0.003]
    assert [row["state"] for row in status["cells"]] == ["done", "done"]
    out = tmp_path / "out"
    for name in ("candidates", "reranker_scores", "train_runs", "hpo", "leaderboards", "plots"):
        assert (out / name).is_dir()
    r1 = next(c for c in plan.cells if c.R == "r1")
    info = json.loads((out / "train_runs" / r1.key / "cell.json").read_text())
    assert info["trials"]["complete"] == 2 and info["best_params"]["lr"] in (0.001, 0.003)
    assert (out / "train_runs" / r1.key / "model" / "rrbench_model.json").is_file()
    record = json.loads((out / "leaderboards" / r1.key / "results.json").read_text())
    assert record["metrics"]["nDCG@10"] == info["dev_select"]["nDCG@10"]
    # the value the trainer selected on (and Optuna saw) is what `rrbench run` reports for the checkpoint
    for key in ("nDCG@10", "RR@10", "R@10"):
        assert info["best_eval"][key] == pytest.approx(record["metrics"][key], abs=1e-9), key
    # the selection-split value Optuna saw comes from the trainer's evaluation of the same checkpoint
    assert info["best_value"] == pytest.approx(info["best_eval"]["nDCG@10"], abs=1e-12)
    # again: nothing is recomputed
    again = run_matrix(build_plan(path), tmp_path / "out", trainer=counting, log=lambda line: None,
                       later=False)
    assert len(calls) == 2 and [row["state"] for row in again["cells"]] == ["done", "done"]
    assert matrix_status(plan, tmp_path / "out")["cells"][1]["trials"]["complete"] == 2
    # the CLI shows the same
    from rrbench.cli.main import main

    assert main(["matrix", "status", str(path), "--output", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(c["key"], c["state"]) for c in shown["cells"]] == [(c.key, "done") for c in plan.ordered()]


@pytest.mark.usefixtures("torch_one_thread")
def test_killed_single_worker_resumes_to_identical_records(tmp_path, tiny_assets):
    """kill -9 a lone worker mid-trial, start it again: the final records equal an uninterrupted run's."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    path = write(tmp_path, TINY.format(**tiny_assets).replace("max_steps: 4", "max_steps: 12"))
    env = {**os.environ, "RRBENCH_HEARTBEAT_INTERVAL": "1", "RRBENCH_HEARTBEAT_GRACE": "3", "OMP_NUM_THREADS": "1"}

    def worker(out):
        return subprocess.Popen([sys.executable, "-m", "rrbench.cli", "matrix", "run", str(path), "--stop-after", "tier-b", "--output",
                                 str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)

    whole = worker(tmp_path / "whole")
    output, _ = whole.communicate(timeout=600)
    assert whole.returncode == 0, output[-3000:]

    victim = worker(tmp_path / "resumed")
    deadline = time.monotonic() + 300
    while not list((tmp_path / "resumed").glob("hpo/*/trial-*/train_config.json")):
        assert victim.poll() is None and time.monotonic() < deadline, "the worker never started a trial"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    again = worker(tmp_path / "resumed")
    output, _ = again.communicate(timeout=600)
    assert again.returncode == 0, output[-3000:]

    plan = build_plan(path)
    for cell in plan.cells:
        a = json.loads((tmp_path / "whole" / "train_runs" / cell.key / "cell.json").read_text())
        b = json.loads((tmp_path / "resumed" / "train_runs" / cell.key / "cell.json").read_text())
        for key in ("best_value", "best_params", "best_eval", "dev_select"):
            assert a.get(key) == b.get(key), key
        ra = json.loads((tmp_path / "whole" / "leaderboards" / cell.key / "results.json").read_text())
        rb = json.loads((tmp_path / "resumed" / "leaderboards" / cell.key / "results.json").read_text())
        assert ra["metrics"] == rb["metrics"] and ra["per_query"] == rb["per_query"]
        # the same weights, bit for bit (the records' config hashes differ only because a checkpoint's reranker id
        # is its folder path, which differs between the two output folders)
        if cell.shape != "none":
            ma = json.loads((tmp_path / "whole" / "train_runs" / cell.key / "model" / "rrbench_model.json").read_text())
            mb = json.loads((tmp_path / "resumed" / "train_runs" / cell.key / "model" / "rrbench_model.json")
                            .read_text())
            assert ma["weights_sha256"] == mb["weights_sha256"]
    r1 = next(c for c in plan.cells if c.R == "r1")
    resumed = json.loads((tmp_path / "resumed" / "train_runs" / r1.key / "cell.json").read_text())
    assert resumed["trials"]["fail"] <= 1 and resumed["trials"]["complete"] == 2


@pytest.mark.usefixtures("torch_one_thread")
def test_r5_cell_distils_from_another_cell(tmp_path, tiny_assets):
    import json

    from rrbench.hpo.matrix_run import run_matrix

    text = TINY.format(**tiny_assets).replace("R: [r0, r1]", "R: [r1, r5-mse]") + "    teacher: {R: r1}\n"
    plan = build_plan(write(tmp_path, text))
    teacher, student = plan.ordered()
    assert (teacher.R, student.R) == ("r1", "r5-mse") and teacher.key in student.needs
    status = run_matrix(plan, tmp_path / "out", log=lambda line: None, later=False)
    assert [row["state"] for row in status["cells"]] == ["done", "done"]
    info = json.loads((tmp_path / "out" / "train_runs" / student.key / "cell.json").read_text())
    assert info["trials"]["complete"] == 2
    config = json.loads((tmp_path / "out" / "train_runs" / student.key / "model" / "train_config.json").read_text())
    # the student distilled from the teacher cell's exported record (scores travel as files, not caches)
    assert config["config"]["teacher"] == str(tmp_path / "out" / "reranker_scores" / teacher.key / "train")
    record = json.loads((tmp_path / "out" / "reranker_scores" / teacher.key / "train" / "results.json").read_text())
    (teacher_claim,) = record["config"]["rerankers"]
    assert teacher_claim["id"].startswith("trained:") and teacher_claim["checkpoint"] is not None
    assert config["config"]["loss"] == "mse"
    assert (tmp_path / "out" / "reranker_scores" / teacher.key / "train" / "run.trec").is_file()
