"""``rrbench evaluate``: outside TREC runs get the same metrics as pytrec_eval and the same record format."""

from __future__ import annotations

from pathlib import Path

import pytest

import rrbench
from rrbench.cli.main import main
from rrbench.leaderboard.reproduce import reproduce
from rrbench.records.record import load_record

# A hand-written run on the mini task (docnos '<post_id>:<sentence index>'), with ties (q1, q3) that trec_eval breaks
# by docno descending, a short ranking, and a no-evidence query above and one below the threshold.
RUN = """\
q1 Q0 p1:2 1 3.0 other-system
q1 Q0 p1:0 2 3.0 other-system
q1 Q0 p1:3 3 2.5 other-system
q1 Q0 p1:1 4 -1 other-system
q2 Q0 p2:1 1 0.9 other-system
q2 Q0 p2:2 2 0.8 other-system
q2 Q0 p2:0 3 0.1 other-system
q3 Q0 p3:4 1 7 other-system
q3 Q0 p3:3 2 7 other-system
q3 Q0 p3:1 3 7 other-system
q4 Q0 p3:0 1 0.7 other-system
q4 Q0 p3:2 2 0.2 other-system
q5 Q0 p4:0 1 0.3 other-system
q6 Q0 p2:0 1 0.3 other-system
"""
#: the same run without its q5 lines: incomplete, so refused
PARTIAL = "".join(line + "\n" for line in RUN.splitlines() if not line.startswith("q5 "))


def _pytrec(qrels_file: Path, run_file: Path) -> dict[str, dict[str, float]]:
    import pytrec_eval

    qrels: dict[str, dict[str, int]] = {}
    for line in qrels_file.read_text().splitlines():
        qid, _, docno, grade = line.split()
        qrels.setdefault(qid, {})[docno] = int(grade)
    run: dict[str, dict[str, float]] = {}
    for line in run_file.read_text().splitlines():
        qid, _, docno, _, score, _ = line.split()
        run.setdefault(qid, {})[docno] = float(score)
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10", "recip_rank", "recall_10"})
    return evaluator.evaluate(run)


def test_outside_run_matches_pytrec_eval(mini_task, tmp_path):
    run_file = tmp_path / "other.trec"
    run_file.write_text(RUN)
    record = rrbench.evaluate(run=str(run_file), task=str(mini_task), split="dev_select", threshold=0.5,
                              output=str(tmp_path / "out"))
    reference = _pytrec(tmp_path / "out" / "qrels.trec", run_file)
    assert set(reference) == {"q1", "q2", "q3", "q5"}
    for qid, values in reference.items():
        mine = record["per_query"][qid]
        assert mine["nDCG@10"] == pytest.approx(values["ndcg_cut_10"], abs=1e-9)
        assert mine["RR@10"] == pytest.approx(values["recip_rank"], abs=1e-9)
        assert mine["R@10"] == pytest.approx(values["recall_10"], abs=1e-9)
    assert record["metrics"]["nDCG@10"] == pytest.approx(sum(v["ndcg_cut_10"] for v in reference.values()) / 4)
    # q4's top score 0.7 >= 0.5 is false evidence, q6's 0.3 is not
    assert record["metrics"]["false_evidence_rate"] == 0.5
    assert record["kind"] == "outside" and record["config"]["run"]["tags"] == ["other-system"]
    assert record["system"].startswith("run other-system@")
    assert (tmp_path / "out" / "run.trec").read_text() == RUN
    assert load_record(tmp_path / "out").config_hash == record["config_hash"]
    again = reproduce(tmp_path / "out", task_dir=mini_task)
    assert again["ok"]


def test_a_run_missing_a_query_of_the_split_is_refused(mini_task, tmp_path, capsys):
    (tmp_path / "partial.trec").write_text(PARTIAL)
    assert main(["evaluate", "--task", str(mini_task), "--run", str(tmp_path / "partial.trec"),
                 "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "1 queries of split 'dev_select' have no ranking" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_without_threshold_false_evidence_rate_is_null(mini_task, tmp_path):
    (tmp_path / "r.trec").write_text(RUN)
    record = rrbench.evaluate(run=str(tmp_path / "r.trec"), task=str(mini_task), output=str(tmp_path / "o"))
    assert record["metrics"]["false_evidence_rate"] is None
    assert record["decision"] is None and record["config"]["threshold"] is None  # an outside run has no decision stage


@pytest.mark.parametrize("line, message", [
    ("q1 Q0 p9:0 1 1.0 x", "is not a candidate of task"),
    ("q1 Q0 p1:17 1 1.0 x", "is not a candidate of task"),
    ("q1 Q0 p2:0 1 1.0 x", "not a sentence of the query's post"),
    ("nope Q0 p1:0 1 1.0 x", "not a query of task"),
    ("q1 Q0 p1:0 1 NaN x", "not a TREC run line"),
    ("q1 Q0 p1:0 1 1.0", "not a TREC run line"),
])
def test_bad_runs_fail_with_one_line_and_write_nothing(mini_task, tmp_path, capsys, line, message):
    (tmp_path / "bad.trec").write_text(line + "\n")
    code = main(["evaluate", "--task", str(mini_task), "--run", str(tmp_path / "bad.trec"),
                 "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_evaluate_cli_prints_a_table(mini_task, tmp_path, capsys):
    (tmp_path / "r.trec").write_text(RUN)
    assert main(["evaluate", "--task", str(mini_task), "--run", str(tmp_path / "r.trec"), "--threshold", "0.5",
                 "--output", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "nDCG@10" in out and "results in" in out
