"""``rrbench transfer``: cells against hand-computed FE, answer rate, precision and Wilson bounds; equality with
``rrbench run --calibrate-task``; shift warnings; the label curve; the refusals."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rrbench.cli.main import main
from rrbench.hpo.transfer import ks_distance, load_splits, transfer_table
from rrbench.measures.bounds import wilson_interval
from rrbench.pipeline.combine import combine
from rrbench.pipeline.decide import fit_threshold, query_statistic
from rrbench.pipeline.runner import RunConfig
from tests.support.task_variants import make_variant_task


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    return {"short": make_variant_task(root / "short-posts", seed=3, sentences=(3, 4), no_evidence=0.2, posts=30),
            "long": make_variant_task(root / "long-posts", seed=5, sentences=(9, 12), no_evidence=0.55, posts=30)}


def _wilson_by_formula(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_wilson_bounds_match_the_reference_values():
    low, high = wilson_interval(2, 10)
    assert (round(low, 4), round(high, 4)) == (0.0567, 0.5098)  # the textbook example (Newcombe 1998, 2/10)
    assert wilson_interval(0, 5)[1] == pytest.approx(1.959963984540054 ** 2 / (5 + 1.959963984540054 ** 2))
    for k, n in ((0, 7), (3, 11), (9, 9)):
        assert wilson_interval(k, n) == pytest.approx(_wilson_by_formula(k, n))


def test_ks_distance_by_hand():
    assert ks_distance(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 1.0
    assert ks_distance(np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.5])) == 0.5


def test_cells_equal_hand_computation_and_a_run_fitted_on_the_other_task(tmp_path, tiny_model, variants):
    config = RunConfig(reranker=str(tiny_model), top_k_rerank=10, show_progress=False)
    splits = load_splits(config, [str(variants["short"]), str(variants["long"])], "dev_select", "dev_final")
    table = transfer_table(config, splits, ["fit", "max-fe"], 0.3)
    assert table["tasks"] == ["short-posts", "long-posts"] and len(table["cells"]) == 2 * 2 * 2
    got = next(c for c in table["cells"] if (c["policy"], c["source"], c["target"]) == ("fit", "short-posts",
                                                                                      "long-posts"))
    # by hand: the balanced-accuracy threshold of the source's dev_select, applied to the target's dev_final
    source, target = splits["short-posts"], splits["long-posts"]
    combination = config.combination()
    fit_stat = query_statistic(combine(source.fit, combination).decision, combine(source.fit, combination).head,
                               "max")
    threshold = fit_threshold(fit_stat, source.fit.has_evidence)["threshold"]
    combined = combine(target.eval, combination)
    stat = query_statistic(combined.decision, combined.head, "max")
    answered, has = stat >= threshold, target.eval.has_evidence
    n, false = int((~has).sum()), int((answered & ~has).sum())
    assert got["threshold"] == pytest.approx(threshold)
    assert (got["fe_n"], got["fe"]) == (n, pytest.approx(false / n))
    assert got["fe_wilson95"] == pytest.approx(list(_wilson_by_formula(false, n)))
    assert got["within_budget"] == (_wilson_by_formula(false, n)[1] <= 0.3)
    assert got["answer_rate"] == pytest.approx(answered[has].mean())
    top = [int(np.argmax(np.where(combined.head[i], combined.rank_scores[i], -np.inf))) for i in range(len(stat))]
    relevant = np.array([target.eval.grades[i, j] >= 1 for i, j in enumerate(top)])
    assert got["answered_precision"] == pytest.approx(relevant[answered].mean())
    assert got["standardised_on_target"] is False
    # the same cell as an ordinary run with --calibrate-task
    out = tmp_path / "run"
    assert main(["run", "--task", str(variants["long"]), "--split", "dev_final", "--reranker", str(tiny_model),
                 "--top-k-rerank", "10", "--threshold", "fit", "--calibrate-on", "dev_select", "--calibrate-task",
                 str(variants["short"]), "--quiet", "--output", str(out)]) == 0
    metrics = json.loads((out / "results.json").read_text())["metrics"]
    assert metrics["false_evidence_rate"] == pytest.approx(got["fe"], abs=1e-12)
    assert metrics["answer_rate_has_evidence"] == pytest.approx(got["answer_rate"], abs=1e-12)
    assert table["ndcg10"]["long-posts"] == pytest.approx(metrics["nDCG@10"], abs=1e-12)
    # shift: the variants differ in post length and no-evidence share, and are flagged for it
    pair = next(s for s in table["shift"] if (s["source"], s["target"]) == ("short-posts", "long-posts"))
    assert any("post lengths" in f for f in pair["flags"]) and any("no-evidence" in f for f in pair["flags"])
    # the label curve: 10, 20 and all of the target's labelled fit-split queries
    curve = table["label_curve"]["max-fe|long-posts"]
    assert [r["labelled_queries"] for r in curve][-1] == len(target.fit.query_ids) and curve[-1]["all"]
    assert all(r["draws"] + r["skipped"] == (1 if r["all"] else 20) for r in curve)


def test_an_interpolated_system_is_marked_as_standardised_on_the_target(tiny_model, variants):
    config = RunConfig(reranker=str(tiny_model), top_k_rerank=10, interpolate=0.3, show_progress=False)
    splits = load_splits(config, [str(variants["short"]), str(variants["long"])], "dev_select", "dev_final")
    table = transfer_table(config, splits, ["max-fe"], 0.2, curve=False)
    assert all(c["standardised_on_target"] for c in table["cells"]) and table["label_curve"] == {}


def test_the_command_writes_its_table_and_refuses_test_and_all(tmp_path, tiny_model, variants, capsys):
    tasks = f"{variants['short']},{variants['long']}"
    out = tmp_path / "out"
    assert main(["transfer", "--tasks", tasks, "--reranker", str(tiny_model), "--fe-budget", "0.2", "--no-curve",
                 "--quiet", "--output", str(out)]) == 0
    data = json.loads((out / "transfer.json").read_text())
    assert data["fe_budget"] == 0.2 and data["policies"] == ["fit", "max-fe"]
    assert "Wilson 95%" in (out / "transfer.md").read_text()
    for args, message in ((["--eval-split", "test"], "--final"), (["--fit-split", "test"], "never used for"),
                          (["--tasks", "all"], "--tasks all is not offered"),
                          (["--tasks", str(variants["short"])], "at least two")):
        argv = ["transfer", "--tasks", tasks, "--reranker", str(tiny_model), "--quiet", *args]
        capsys.readouterr()
        assert main(argv) == 2, args
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_a_task_without_no_evidence_queries_is_one_bad_cell_not_a_failed_command(tmp_path, variants, capsys):
    """The attack: such a task (many public sets have none) as a source made the whole command fail on its first
    fit, with no word of which task it was; as a target its FE rate is undefined, not NaN."""
    answers_all = make_variant_task(tmp_path / "answers-all", seed=9, sentences=(3, 5), no_evidence=0.0, posts=30)
    out = tmp_path / "out"
    assert main(["transfer", "--tasks", f"{answers_all},{variants['short']}", "--quiet", "--output", str(out)]) == 0
    data = json.loads((out / "transfer.json").read_text())
    bad = [c for c in data["cells"] if c["source"] == "answers-all"]
    assert bad and all(c["error"].startswith("cannot fit on answers-all dev_select:") and c["fe"] is None
                       for c in bad)
    into = [c for c in data["cells"] if (c["source"], c["target"]) == ("short-posts", "answers-all")]
    assert into and all(c["fe_n"] == 0 and c["fe"] is None and c["answer_rate"] is not None for c in into)
    assert all("error" not in c for c in data["cells"] if c["source"] == "short-posts")
    curve = data["label_curve"]["fit|short-posts"]
    assert all(r["draws"] + r["skipped"] == (1 if r["all"] else 20) for r in curve)
    assert all(r["fe_mean"] is None for r in data["label_curve"]["fit|answers-all"])
    assert "cannot fit on answers-all dev\\_select" in (out / "transfer.md").read_text()
