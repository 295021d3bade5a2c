"""Import a BEIR-format folder as a corpus-scope rrbench task, so standard IR data sets run through the same
pipeline and can be compared with published numbers.

BEIR layout: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and
``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``; a header line is optional). The task gets:

- one post per document whose single text is ``title + " " + text`` (``unit: document``: the docno in TREC files is
  the BEIR ``corpus-id`` itself);
- one query per query id that has judgements in some split (queries without any are left out and counted);
- the BEIR split names as splits (``assigned`` method); a query judged in two splits is an error;
- negative BEIR grades (some sets mark "harmful" documents) become 0, i.e. judged non-relevant, and are counted.

Everything is validated before anything is written, and the task folder appears atomically.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from rrbench.util.errors import UsageError
from rrbench.util.io import atomic_dir, read_jsonl, sha256_file, write_jsonl_gz

TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


#: Largest BEIR file imported (``RRBENCH_MAX_IMPORT_BYTES`` overrides it): an import reads every document into
#: memory, so a wrong folder or a hostile file should stop with a clear line, not exhaust the machine.
MAX_IMPORT_BYTES = 8 << 30


def _check_size(path: Path) -> None:
    limit = int(os.environ.get("RRBENCH_MAX_IMPORT_BYTES", MAX_IMPORT_BYTES))
    size = path.stat().st_size
    if size > limit:
        raise UsageError(f"{path}: {size} bytes is more than the import limit of {limit} bytes "
                         f"(raise it with RRBENCH_MAX_IMPORT_BYTES)")


def _read_id(row: dict[str, Any], where: str) -> str:
    value = row.get("_id")
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise UsageError(f"{where}: missing or invalid field '_id'")
    if any(c.isspace() for c in str(value)):
        raise UsageError(f"{where}: field '_id' {str(value)!r} contains whitespace (ids become TREC columns)")
    return str(value)


def _read_qrels(path: Path) -> list[tuple[str, str, int, int]]:
    _check_size(path)
    try:
        return _qrels_rows(path)
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise UsageError(f"{path}: malformed TSV: {exc}") from None


def _qrels_rows(path: Path) -> list[tuple[str, str, int, int]]:
    rows = []
    with open(path, encoding="utf-8", newline="") as handle:
        for number, parts in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not parts or not "".join(parts).strip():
                continue
            if len(parts) < 3:
                raise UsageError(f"{path} line {number}: expected query-id, corpus-id, score; got {len(parts)} column(s)")
            query_id, doc_id, score = parts[0].strip(), parts[1].strip(), parts[-1].strip()
            try:
                grade = int(float(score))
            except ValueError:
                if number == 1:
                    continue  # the header line
                raise UsageError(f"{path} line {number}: score {score!r} is not a number") from None
            rows.append((query_id, doc_id, grade, number))
    return rows


def import_beir(source: str | Path, task_id: str, dest_root: str | Path, force: bool = False) -> dict[str, Any]:
    """Write ``dest_root/task_id`` (task.yaml + data) from a BEIR folder; returns a summary."""
    source, dest_root = Path(source), Path(dest_root)
    if not TASK_ID.match(task_id):
        raise UsageError(f"--id {task_id!r}: use letters, digits, '.', '_' or '-', starting with a letter or digit")
    if not source.is_dir():
        raise UsageError(f"{source}: not a directory")
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (source / name).is_file():
            raise UsageError(f"{source}: {name} not found (a BEIR folder has corpus.jsonl, queries.jsonl, qrels/)")
        _check_size(source / name)
    qrel_files = sorted((source / "qrels").glob("*.tsv")) if (source / "qrels").is_dir() else []
    if not qrel_files:
        raise UsageError(f"{source / 'qrels'}: no qrels/<split>.tsv file found")
    dest = dest_root / task_id
    if dest.exists() and any(dest.iterdir()) and not force:
        raise UsageError(f"{dest}: task {task_id!r} already exists; pass --force to replace it")

    notes: list[str] = []
    documents: dict[str, str] = {}
    empty: set[str] = set()
    for line, row in read_jsonl(source / "corpus.jsonl", error=UsageError):
        where = f"{source / 'corpus.jsonl'} line {line}"
        doc_id = _read_id(row, where)
        if doc_id in documents or doc_id in empty:
            raise UsageError(f"{where}: duplicate _id {doc_id!r}")
        text = " ".join(str(row.get(k) or "").strip() for k in ("title", "text")).strip()
        if text:
            documents[doc_id] = text
        else:
            empty.add(doc_id)
    if not documents:
        raise UsageError(f"{source / 'corpus.jsonl'}: no documents with text")

    query_text: dict[str, str] = {}
    for line, row in read_jsonl(source / "queries.jsonl", error=UsageError):
        where = f"{source / 'queries.jsonl'} line {line}"
        query_id = _read_id(row, where)
        text = str(row.get("text") or "").strip()
        if not text:
            raise UsageError(f"{where}: query {query_id!r} has empty text")
        query_text[query_id] = text

    split_of: dict[str, str] = {}
    judged: dict[str, dict[str, int]] = {}
    clamped = 0
    for path in qrel_files:
        split = path.stem
        for query_id, doc_id, grade, number in _read_qrels(path):
            where = f"{path} line {number}"
            if query_id not in query_text:
                raise UsageError(f"{where}: query-id {query_id!r} is absent from queries.jsonl")
            if doc_id in empty:
                raise UsageError(f"{where}: corpus-id {doc_id!r} has no title or text in corpus.jsonl")
            if doc_id not in documents:
                raise UsageError(f"{where}: corpus-id {doc_id!r} is absent from corpus.jsonl")
            if split_of.setdefault(query_id, split) != split:
                raise UsageError(f"{where}: query-id {query_id!r} is judged in two splits "
                                 f"({split_of[query_id]!r} and {split!r}); a query must belong to one split")
            if doc_id in judged.setdefault(query_id, {}):
                raise UsageError(f"{where}: duplicate judgement for query {query_id!r} and document {doc_id!r}")
            if grade < 0:
                clamped += 1
                grade = 0
            judged[query_id][doc_id] = grade
    if not judged:
        raise UsageError(f"{source / 'qrels'}: the qrels files hold no judgements")

    unjudged = len(query_text) - len(judged)
    if unjudged:
        notes.append(f"{unjudged} queries of queries.jsonl have no judgement in any split and were left out")
    if empty:
        notes.append(f"{len(empty)} documents without title or text were left out")
    if clamped:
        notes.append(f"{clamped} negative grades were imported as 0 (judged non-relevant)")

    split_names = sorted(set(split_of.values()))
    queries = [{"query_id": q, "text": query_text[q]} for q in query_text if q in judged]
    posts = [{"post_id": d, "sentences": [t]} for d, t in documents.items()]
    qrels = [{"query_id": q, "post_id": d, "sentence": 0, "grade": g}
             for q in query_text if q in judged for d, g in judged[q].items()]
    splits = [{"query_id": q["query_id"], "split": split_of[q["query_id"]]} for q in queries]
    source_hashes = {p.relative_to(source).as_posix(): sha256_file(p)
                     for p in [source / "corpus.jsonl", source / "queries.jsonl", *qrel_files]}

    if dest.exists() and force:
        shutil.rmtree(dest)
    with atomic_dir(dest) as tmp:
        hashes = {}
        tables: dict[str, list[dict[str, Any]]] = {"posts": posts, "queries": queries, "qrels": qrels,
                                                   "splits": splits}
        for name, rows in tables.items():
            write_jsonl_gz(tmp / f"{name}.jsonl.gz", rows)
            hashes[name] = sha256_file(tmp / f"{name}.jsonl.gz")
        provenance = "; ".join(f"{name} sha256 {digest}" for name, digest in source_hashes.items())
        spec = "\n".join([
            "# Written by `rrbench tasks import-beir`; re-import instead of editing by hand.",
            f"id: {task_id}",
            "version: 1",
            f"description: {_yaml_str(f'BEIR-format import of {source.resolve()}: whole documents as candidates')}",
            "scope: corpus",
            "unit: document",
            "main_score: nDCG@10",
            f"license: {_yaml_str('see the terms of the source data set')}",
            f"attribution: {_yaml_str(f'Imported from {source.resolve()} ({provenance})')}",
            "files:",
            *(f"  {name}: {{path: {name}.jsonl.gz, sha256: {hashes[name]}}}" for name in ("posts", "queries", "qrels")),
            "splits:",
            "  method: assigned",
            f"  assignment: {{path: splits.jsonl.gz, sha256: {hashes['splits']}}}",
            "",
        ])
        (tmp / "task.yaml").write_text(spec, encoding="utf-8")
    counts = {s: sum(1 for q in queries if split_of[q["query_id"]] == s) for s in split_names}
    return {"path": str(dest), "documents": len(posts), "queries": len(queries), "qrels": len(qrels),
            "splits": counts, "notes": notes}


def _yaml_str(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""

    return json.dumps(text, ensure_ascii=False)
