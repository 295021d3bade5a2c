"""Tasks as Hugging Face datasets files: Parquet or a ``datasets`` folder, hashed and validated like JSONL."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from rrbench.tasks.hf import data_sha256
from rrbench.tasks.resolve import load_task_dir
from rrbench.util.errors import TaskSpecError


def test_export_round_trip_gives_the_same_task(mini_task, tmp_path, cli):
    result = cli("tasks", "export", str(mini_task), str(tmp_path / "hf"), "--format", "hf")
    assert result.returncode == 0, result.stderr
    spec = yaml.safe_load((tmp_path / "hf" / "task.yaml").read_text(encoding="utf-8"))
    assert spec["files"]["posts"]["path"] == "posts.parquet"
    assert spec["splits"]["assignment"]["path"] == "splits.parquet"
    original, copy = load_task_dir(mini_task), load_task_dir(tmp_path / "hf")
    assert (copy.id, copy.version) == (original.id, original.version)
    assert copy.sentences == original.sentences and copy.post_ids == original.post_ids
    assert copy.qrels == original.qrels and copy.split_stats() == original.split_stats()
    # the same run on both gives the same metrics
    runs = []
    for i, path in enumerate((mini_task, tmp_path / "hf")):
        out = tmp_path / f"out{i}"
        run = cli("run", "--task", str(path), "--quiet", "--no-cache", "--output", str(out))
        assert run.returncode == 0, run.stderr
        runs.append(json.loads((out / "results.json").read_text(encoding="utf-8"))["metrics"])
    assert runs[0]["nDCG@10"] == runs[1]["nDCG@10"]


def test_parquet_hash_and_rows_are_checked(mini_task, tmp_path, cli):
    import pyarrow as pa
    import pyarrow.parquet as pq

    cli("tasks", "export", str(mini_task), str(tmp_path / "hf"))
    posts = tmp_path / "hf" / "posts.parquet"
    rows = pq.read_table(posts).to_pylist()
    pq.write_table(pa.Table.from_pylist(rows[:-1]), posts)
    with pytest.raises(TaskSpecError, match="sha256 mismatch"):
        load_task_dir(tmp_path / "hf")
    spec_path = tmp_path / "hf" / "task.yaml"
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    pq.write_table(pa.Table.from_pylist([{"post_id": "p1"}, *rows[1:]]), posts)  # a row without sentences
    spec["files"]["posts"]["sha256"] = data_sha256(posts)
    spec_path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    with pytest.raises(TaskSpecError, match=r"posts.parquet line 1: missing field 'sentences'"):
        load_task_dir(tmp_path / "hf")


def test_a_datasets_folder_works_as_a_data_file(mini_task, tmp_path):
    datasets = pytest.importorskip("datasets")
    from rrbench.util.io import read_jsonl

    task = load_task_dir(mini_task)
    folder = tmp_path / "task"
    folder.mkdir()
    spec = yaml.safe_load((mini_task / "task.yaml").read_text(encoding="utf-8"))
    for field in ("posts", "queries", "qrels"):
        rows = [row for _, row in read_jsonl(mini_task / spec["files"][field]["path"])]
        datasets.Dataset.from_list(rows).save_to_disk(str(folder / field))
        spec["files"][field] = {"path": field, "sha256": data_sha256(folder / field)}
    (folder / spec["splits"]["assignment"]["path"]).write_bytes(
        (mini_task / spec["splits"]["assignment"]["path"]).read_bytes())
    (folder / "task.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    copy = load_task_dir(folder)
    assert copy.sentences == task.sentences and copy.qrels == task.qrels
    assert np.array_equal(copy.post_offsets, task.post_offsets)
