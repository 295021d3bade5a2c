"""Score bundles: scores filled on a (PostgreSQL) cluster store, exported as Parquet, imported into an empty SQLite cache
on a laptop, give the same sweep; records that read them name the bundle; a bundle that does not fit is refused."""

from __future__ import annotations

import json
import uuid

import pytest

import rrbench
from rrbench.cli.main import main
from tests.hpo.test_sweep import make_sweep_task
from tests.support.score_stores import pair_scores

pytestmark = pytest.mark.usefixtures("torch_one_thread")
pytest.importorskip("pyarrow")

# the tiny task has too few no-evidence queries for a Wilson bound within 0.5: judge the FE rate itself
SWEEP = ["--trials", "12", "--sampler", "random", "--max-fe", "0.5", "--fe-confidence", "0"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_model, postgres_url):
    from tests.support.pg_server import create_database

    root = tmp_path_factory.mktemp("bundles")
    task = make_sweep_task(root / "task")
    args = ["--task", str(task), "--reranker", str(tiny_model), "--quiet"]
    url = create_database(postgres_url, f"bundle_{uuid.uuid4().hex[:8]}")
    assert main(["sweep", "fill", *args, "--cache-dir", url]) == 0
    ((fingerprint, scores),) = pair_scores(url).items()
    assert main(["cache", "export", "--cache-dir", url, "--task", str(task), "--split", "dev_select",
                 "--model", fingerprint[:10], "--output", str(root)]) == 0
    (bundle,) = root.glob("rrbench-scores-*.parquet")
    return {"root": root, "task": task, "args": args, "url": url, "bundle": bundle, "fingerprint": fingerprint,
            "scores": scores}


def test_export_import_into_empty_sqlite_then_sweep_gives_the_same_best_trial(exported, tmp_path, capsys):
    from rrbench.pipeline.score_bundle import read_bundle

    meta = read_bundle(exported["bundle"]).meta
    assert exported["bundle"].name == f"rrbench-scores-{meta['content_sha256'][:16]}.parquet"
    assert meta["pairs"] == len(exported["scores"]) and meta["fingerprint"] == exported["fingerprint"]
    laptop = tmp_path / "laptop-cache"
    capsys.readouterr()
    assert main(["cache", "import", str(exported["bundle"]), "--cache-dir", str(laptop)]) == 2
    assert "pass --task" in capsys.readouterr().err  # the bundle names task 'task', a folder only this test knows
    assert main(["cache", "import", str(exported["bundle"]), "--cache-dir", str(laptop), "--task",
                 str(exported["task"])]) == 0
    assert f"{meta['pairs']} new, 0 already stored" in capsys.readouterr().out
    assert pair_scores(laptop) == {exported["fingerprint"]: exported["scores"]}  # bit for bit

    cluster, local = tmp_path / "cluster-sweep", tmp_path / "laptop-sweep"
    assert main(["sweep", *exported["args"], *SWEEP, "--output", str(cluster), "--cache-dir", exported["url"]]) == 0
    assert main(["sweep", *exported["args"], *SWEEP, "--output", str(local), "--cache-dir", str(laptop)]) == 0
    a, b = (json.loads((folder / "best.json").read_text()) for folder in (cluster, local))
    assert a["feasible"] and (a["trial"], a["params"], a["metrics"]) == (b["trial"], b["params"], b["metrics"])
    assert "provenance" not in a  # computed on the cluster store, not imported there
    assert b["provenance"] == {"score_bundles": [meta["content_sha256"]]}

    # an ordinary run of the best configuration on the laptop reads only the bundle's scores and names it
    config = {**b["config"], "output": str(tmp_path / "run"), "show_progress": False, "cache_dir": str(laptop)}
    record = rrbench.run(**config)
    assert record["provenance"]["cache"]["misses"] == 0 and record["provenance"]["cache"]["hits"] > 0
    assert record["provenance"]["score_bundles"] == [meta["content_sha256"]]
    assert record["metrics"]["nDCG@10"] == pytest.approx(b["metrics"]["nDCG@10"], abs=1e-9)
    # importing again adds nothing and agrees with itself
    capsys.readouterr()
    assert main(["cache", "import", str(exported["bundle"]), "--cache-dir", str(laptop), "--task",
                 str(exported["task"])]) == 0
    assert f"0 new, {meta['pairs']} already stored" in capsys.readouterr().out


def test_a_bundle_for_other_task_data_is_refused(exported, tmp_path, capsys):
    from rrbench.testing import make_mini_task

    changed = make_mini_task(tmp_path / "task")  # another task's data under the same name
    capsys.readouterr()
    code = main(["cache", "import", str(exported["bundle"]), "--cache-dir", str(tmp_path / "c"), "--task",
                 str(changed)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "other data of task" in err, err


def test_an_edited_bundle_is_refused(exported, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(exported["bundle"])
    scores = table.column("score").to_pylist()
    scores[0] += 1.0
    edited = table.set_column(1, "score", pa.array(scores, type=pa.float64()))
    pq.write_table(edited.replace_schema_metadata(table.schema.metadata), tmp_path / "edited.parquet")
    capsys.readouterr()
    assert main(["cache", "import", str(tmp_path / "edited.parquet"), "--cache-dir", str(tmp_path / "c"), "--task",
                 str(exported["task"])]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not match its hash" in err, err
    assert not (tmp_path / "c" / "scores.sqlite").exists() or pair_scores(tmp_path / "c") == {}


def test_export_of_a_model_the_store_does_not_hold_is_one_line(exported, tmp_path, capsys):
    capsys.readouterr()
    assert main(["cache", "export", "--cache-dir", exported["url"], "--task", str(exported["task"]), "--split",
                 "dev_select", "--model", "no-such-model", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds no model 'no-such-model'" in err
