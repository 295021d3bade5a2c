"""Task data as Hugging Face ``datasets`` files: Parquet files or a ``datasets`` folder (``Dataset.save_to_disk``).

Why: a task package may want to ship, or pull from a hub, its data in the form the ``datasets`` ecosystem uses. The
task spec names such a file exactly like a JSONL one (``files.posts.path: posts.parquet``), with the same sha256 pin
(a folder's hash covers every file in it, by relative path) and the same row validation, because rows are handed to
the loader exactly as JSONL rows are. ``rrbench tasks export NAME --format hf DIR`` converts any task into Parquet
files plus a ``task.yaml`` that points at them, ready to upload.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rrbench.tasks.spec import SPEC_FILENAME
from rrbench.util.errors import TaskSpecError, UsageError
from rrbench.util.extras import check_extra
from rrbench.util.io import atomic_dir, read_jsonl, sha256_file
from rrbench.util.strict_yaml import read_yaml_document

if TYPE_CHECKING:
    from rrbench.tasks.loader import Task

DATA_FIELDS = ("posts", "queries", "qrels")


def is_hf_data(path: Path) -> bool:
    """A Parquet file, or a folder written by ``datasets.Dataset.save_to_disk``."""
    return path.suffix == ".parquet" or (path.is_dir() and (path / "dataset_info.json").is_file())


def data_sha256(path: str | Path) -> str:
    """The pin of a data file; for a ``datasets`` folder, a hash over its files' relative paths and hashes."""
    path = Path(path)
    if not path.is_dir():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()


def read_rows(path: str | Path, error: type[Exception] = TaskSpecError) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row_number, row)`` from JSONL, Parquet or a ``datasets`` folder; numbers are 1-based like JSONL lines."""
    path = Path(path)
    if not is_hf_data(path):
        yield from read_jsonl(path, error)
        return
    check_extra("hf", "datasets" if path.is_dir() else "pyarrow", f"reading {path}")
    try:
        if path.is_dir():
            from datasets import load_from_disk  # lazy: optional (hf extra)

            rows = load_from_disk(str(path)).to_list()
        else:
            import pyarrow.parquet as pq  # lazy: optional (hf extra)

            rows = pq.read_table(path).to_pylist()
    except Exception as exc:
        raise error(f"{path}: cannot read {'datasets folder' if path.is_dir() else 'Parquet file'}: "
                    f"{type(exc).__name__}: {exc}") from None
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise error(f"{path} row {number}: expected a record, got {type(row).__name__}")
        yield number, {k: v for k, v in row.items() if v is not None}


def export_hf(task: Task, output: str | Path) -> Path:
    """Write the task as Parquet files + ``task.yaml`` (same id, version and metadata) into ``output``.

    Takes the loaded task (the caller resolves its name), so this module, which the task loader imports, never
    imports the loader's package back."""
    check_extra("hf", "pyarrow", "exporting a task as Parquet (--format hf)")
    import pyarrow as pa  # lazy: optional (hf extra)
    import pyarrow.parquet as pq  # lazy: optional (hf extra)

    root = Path(task.root)
    raw = read_yaml_document(root / SPEC_FILENAME, "task spec")
    sources = {field: getattr(task.spec.files, field).path for field in DATA_FIELDS}
    if task.spec.splits.assignment is not None:
        sources["splits"] = task.spec.splits.assignment.path
    with atomic_dir(Path(output)) as tmp:
        for field, rel in sources.items():
            rows = [row for _, row in read_rows(root / rel)]
            if not rows:
                raise UsageError(f"task {task.id!r}: {rel} has no rows to export")
            target = tmp / f"{field}.parquet"
            pq.write_table(pa.Table.from_pylist(rows), target)
            entry = {"path": target.name, "sha256": sha256_file(target)}
            if field == "splits":
                raw["splits"]["assignment"] = entry
            else:
                raw["files"][field] = entry
        (tmp / SPEC_FILENAME).write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        (tmp / "README.md").write_text(_dataset_card(task), encoding="utf-8")
    return Path(output)


def _dataset_card(task: Any) -> str:
    spec = task.spec
    return (f"---\nlicense: {spec.license}\n---\n\n# {task.id} (version {task.version})\n\n{spec.description}\n\n"
            f"An rrbench task: `posts.parquet`, `queries.parquet`, `qrels.parquet` and `task.yaml`, which pins each "
            f"file's sha256. Load it with `rrbench validate-task DIR` or register it with `TaskRef.from_path`.\n\n"
            + (f"Citation: {spec.citation}\n" if spec.citation else "")
            + (f"\nAttribution: {spec.attribution}\n" if spec.attribution else ""))
