"""``rrbench run --tasks A,B``: one record per task, equal to single-task runs, a shared run id outside the hash,
per-task settings from the configuration file, and the refusals."""

from __future__ import annotations

import json

import pytest
import yaml

from rrbench.cli.main import main
from tests.support.task_variants import make_variant_task


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    root = tmp_path_factory.mktemp("tasks")
    return {"short": make_variant_task(root / "short-posts", seed=3, sentences=(3, 4), no_evidence=0.2),
            "long": make_variant_task(root / "long-posts", seed=5, sentences=(9, 12), no_evidence=0.55)}


def _record(path):
    return json.loads((path / "results.json").read_text())


def test_per_task_records_equal_single_task_runs(tmp_path, tiny_model, variants):
    short, long = str(variants["short"]), str(variants["long"])
    config = tmp_path / "system.yaml"
    config.write_text(yaml.safe_dump({"reranker": str(tiny_model), "threshold": 0.0,
                                      "per_task": {long: {"top_k_rerank": 5}}}))
    out = tmp_path / "both"
    assert main(["run", "--tasks", f"{short},{long}", "--config", str(config), "--quiet", "--output", str(out)]) == 0
    records = {name: _record(out / name) for name in ("short-posts", "long-posts")}
    groups = [r["provenance"]["run_options"] for r in records.values()]
    assert groups[0]["run_id"] == groups[1]["run_id"] and groups[0]["run_tasks"] == ["short-posts", "long-posts"]
    assert records["long-posts"]["config"]["top_k_rerank"] == 5  # the per-task setting, claimed as resolved
    for name, path, extra in (("short-posts", short, []), ("long-posts", long, ["--top-k-rerank", "5"])):
        single = tmp_path / f"single-{name}"
        assert main(["run", "--task", path, "--reranker", str(tiny_model), "--threshold", "0.0", *extra, "--quiet",
                     "--output", str(single)]) == 0
        alone = _record(single)
        assert alone["config_hash"] == records[name]["config_hash"]  # the run id is kept out of the hash
        assert alone["metrics"] == records[name]["metrics"] and alone["system"] == records[name]["system"]
        assert "run_id" not in alone["provenance"]["run_options"]


@pytest.mark.parametrize("args, message", [
    (["--tasks", "all"], "--tasks all is not offered"),
    (["--tasks", "{short},{short}"], "twice"),
    (["--tasks", "{short},{long}", "--task", "{short}"], "not both"),
    (["--tasks", "{short},{long}", "--split", "test"], "--final"),
    (["--tasks", "{short},{long}", "--threshold", "fit", "--calibrate-on", "test", "--final", "--split", "dev_final"],
     "never used for fitting"),
])
def test_run_tasks_refusals(tmp_path, variants, capsys, args, message):
    argv = [a.format(short=variants["short"], long=variants["long"]) for a in args]
    assert main(["run", *argv, "--quiet", "--output", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


def test_a_per_task_map_must_name_given_tasks(tmp_path, variants, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"per_task": {"elsewhere": {"top_k_rerank": 5}}}))
    assert main(["run", "--tasks", f"{variants['short']},{variants['long']}", "--config", str(config),
                 "--quiet"]) == 2
    assert "per_task names 'elsewhere'" in capsys.readouterr().err
    assert main(["run", "--task", str(variants["short"]), "--config", str(config), "--quiet"]) == 2
    assert "--tasks only" in capsys.readouterr().err
