"""Load a task directory (``task.yaml`` + data files) into arrays that the runner and metrics can use directly.

Sentences of all posts live in one flat list; a post is a contiguous slice of it. Candidate sets are therefore plain
integer arrays, which keeps scoring, caching and metric computation vectorised.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.tasks.hf import data_sha256, is_hf_data, read_rows
from rrbench.tasks.spec import SPEC_FILENAME, DataFile, TaskSpec, read_spec
from rrbench.tasks.splits import grouped_kfold, grouped_split
from rrbench.util.errors import TaskSpecError, UsageError, close_matches
from rrbench.util.io import canonical_hash

#: ``train~fold2of5`` is the second held-out fold of a grouped 5-fold over ``train``; ``train~rest2of5`` is the
#: other four folds (what a model of that fold trains on).
_FOLD_SPLIT = re.compile(r"^(?P<base>.+)~(?P<part>fold|rest)(?P<index>[0-9]+)of(?P<k>[0-9]+)$")


def fold_split(base: str, part: str, index: int, k: int) -> str:
    """The split name of one part of a grouped k-fold over ``base`` (``part`` is ``fold``, held out, or ``rest``).

    Folds are named splits rather than a separate mechanism so that every command (``run``, ``train``,
    ``evaluate``, ``verify``) accepts them and the config hash records them; the folds group queries by post and
    criterion like the task's own splits and are seeded by the task's split seed, so they are the same everywhere.
    """
    if part not in ("fold", "rest") or not 1 <= index <= k or k < 2:
        raise UsageError(f"no fold {part}{index}of{k}: folds are numbered 1..k, k >= 2")
    return f"{base}~{part}{index}of{k}"


def parse_fold_split(split: str) -> tuple[str, str, int, int] | None:
    """``(base, part, index, k)`` of a fold split name, or None for an ordinary split."""
    match = _FOLD_SPLIT.match(split)
    if match is None:
        return None
    base, part, index, k = match["base"], match["part"], int(match["index"]), int(match["k"])
    if k < 2 or not 1 <= index <= k:
        raise UsageError(f"split {split!r}: folds are numbered 1..k with k >= 2")
    return base, part, index, k


_ASCII_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Query:
    query_id: str
    post_id: str
    text: str
    criterion_id: str | None = None


@dataclass
class Task:
    """A loaded, validated task."""

    spec: TaskSpec
    root: Path
    post_ids: list[str]
    post_offsets: np.ndarray  # post i owns sentences[post_offsets[i]:post_offsets[i+1]]
    sentences: list[str]
    queries: dict[str, Query]
    #: query_id -> {sentence: grade}; the sentence is its index within the query's post in post scope, and its
    #: *global* index (into ``sentences``) in corpus scope. Use :meth:`judged` for global indices in both scopes.
    qrels: dict[str, dict[int, int]]
    split_of: dict[str, str]
    file_hashes: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def version(self) -> int:
        return self.spec.version

    @cached_property
    def post_index(self) -> dict[str, int]:
        return {post_id: i for i, post_id in enumerate(self.post_ids)}

    @cached_property
    def sentence_post(self) -> np.ndarray:
        """Post number of every global sentence index."""
        return np.repeat(np.arange(len(self.post_ids)), np.diff(self.post_offsets))

    @property
    def data_sha256(self) -> str:
        """One hash over the spec's identity and every data file: a result is tied to exactly this data."""
        return canonical_hash({"id": self.id, "version": self.version, "scope": self.spec.scope,
                               "files": self.file_hashes})

    @property
    def split_names(self) -> list[str]:
        if self.spec.splits.fractions:
            return list(self.spec.splits.fractions)
        return sorted(set(self.split_of.values()))

    def split_queries(self, split: str) -> list[Query]:
        """The queries of a split, or of one part of a grouped k-fold over a split (see :func:`fold_split`)."""
        fold = parse_fold_split(split)
        base = fold[0] if fold else split
        if base not in self.split_names:
            raise UsageError(
                f"task {self.id!r} has no split {base!r}.{close_matches(base, self.split_names)} "
                f"Splits: {', '.join(self.split_names)}"
            )
        queries = [q for q in self.queries.values() if self.split_of[q.query_id] == base]
        if fold is None:
            return queries
        _, part, index, k = fold
        folds = grouped_kfold(((q.query_id, q.post_id, q.criterion_id) for q in queries), k, self.spec.splits.seed)
        keep = set(folds[index - 1][1 if part == "fold" else 0])
        return [q for q in queries if q.query_id in keep]

    def post_slice(self, post_id: str) -> tuple[int, int]:
        i = self.post_index[post_id]
        return int(self.post_offsets[i]), int(self.post_offsets[i + 1])

    def candidates(self, query: Query) -> np.ndarray:
        """Global sentence indices a reranker may rank for this query (the post's sentences, or all of them)."""
        if self.spec.scope == "corpus":
            return np.arange(len(self.sentences))
        start, end = self.post_slice(query.post_id)
        return np.arange(start, end)

    def docno(self, global_index: int) -> str:
        """TREC docno of a sentence: ``<post_id>:<sentence index within the post>`` (``<post_id>`` alone when the
        task's unit is a whole document, e.g. an imported BEIR task, so runs compare with published ones)."""
        post = int(self.sentence_post[global_index])
        if self.spec.unit == "document":
            return self.post_ids[post]
        return f"{self.post_ids[post]}:{global_index - int(self.post_offsets[post])}"

    def index_of(self, docno: str) -> int | None:
        """The global sentence index of a docno (:meth:`docno`'s inverse), or None when the task has no such
        candidate. Only ASCII digits count as a sentence index (``str.isdigit`` would take Unicode digits too)."""
        if self.spec.unit == "document":
            index = self.post_index.get(docno)
            return None if index is None else int(self.post_offsets[index])
        post_id, sep, local = docno.rpartition(":")
        if not sep or post_id not in self.post_index or not _ASCII_DIGITS.fullmatch(local):
            return None
        start, end = self.post_slice(post_id)
        return start + int(local) if int(local) < end - start else None

    def judged(self, query: Query) -> dict[int, int]:
        """The query's judgements keyed by global sentence index, in either scope."""
        judged = self.qrels.get(query.query_id, {})
        if self.spec.scope == "corpus":
            return dict(judged)
        return {self.global_index(query.post_id, s): g for s, g in judged.items()}

    def global_index(self, post_id: str, local_index: int) -> int:
        return int(self.post_offsets[self.post_index[post_id]]) + local_index

    def relevance(self, query: Query, global_indices: np.ndarray) -> np.ndarray:
        """Graded relevance of the given candidates for the query (0 where not judged)."""
        out = np.zeros(len(global_indices), dtype=np.float64)
        by_global = self.judged(query)
        if not by_global:
            return out
        for i, idx in enumerate(global_indices):
            out[i] = by_global.get(int(idx), 0)
        return out

    def has_evidence(self, query_id: str) -> bool:
        return any(g >= 1 for g in self.qrels.get(query_id, {}).values())

    def split_stats(self) -> dict[str, dict[str, int]]:
        """Per split: posts, sentences, queries, has-evidence, no-evidence, evidence sentences."""
        stats: dict[str, dict[str, int]] = {}
        for split in self.split_names:
            queries = self.split_queries(split)
            posts = {q.post_id for q in queries} if self.spec.scope == "post" else set(self.post_ids)
            evidence = sum(sum(1 for g in self.qrels.get(q.query_id, {}).values() if g >= 1) for q in queries)
            with_evidence = sum(1 for q in queries if self.has_evidence(q.query_id))
            stats[split] = {
                "posts": len(posts),
                "sentences": sum(self.post_slice(p)[1] - self.post_slice(p)[0] for p in posts),
                "queries": len(queries),
                "has_evidence": with_evidence,
                "no_evidence": len(queries) - with_evidence,
                "evidence_sentences": evidence,
            }
        return stats


def _checked_path(root: Path, spec_path: Path, field_name: str, data_file: DataFile) -> Path:
    """A data file of the spec: inside the task folder (no absolute path, no ``..``, no symlink leading out), present,
    and with the sha256 the spec declares. A spec must not make rrbench read files elsewhere on the machine."""
    path = (root / data_file.path).resolve()
    if not path.is_relative_to(root.resolve()):
        raise TaskSpecError(f"{spec_path}: field '{field_name}': data file {data_file.path} lies outside the task "
                            f"folder {root} (absolute paths, '..' and symlinks out are refused)")
    if not (path.is_file() or is_hf_data(path)):
        raise TaskSpecError(f"{spec_path}: field '{field_name}': data file {data_file.path} not found in {root}")
    actual = data_sha256(path)
    if actual != data_file.sha256:
        raise TaskSpecError(
            f"{path}: sha256 mismatch (spec field '{field_name}' says {data_file.sha256[:12]}..., "
            f"file is {actual[:12]}...): the data changed; bump the task version and update the hash"
        )
    return path


def _require(obj: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise TaskSpecError(f"{where}: missing field '{key}'")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise TaskSpecError(f"{where}: field '{key}' must be {names}, got {type(value).__name__}")
    return value


def _require_id(obj: dict, key: str, where: str) -> str:
    """An id field: a string or integer without whitespace and not empty. Ids become TREC query ids and docnos,
    whose columns are separated by whitespace, so ``"q 1"`` would write run lines no TREC tool can read."""
    value = str(_require(obj, key, (str, int), where))
    if not value or any(c.isspace() for c in value):
        raise TaskSpecError(f"{where}: field '{key}' {value!r} must be non-empty and contain no whitespace")
    return value


def load_task_dir(path: str | Path) -> Task:
    """Validate and load a task from a directory holding ``task.yaml`` (or the spec file itself)."""
    path = Path(path)
    spec_path = path / SPEC_FILENAME if path.is_dir() else path
    spec = read_spec(spec_path)
    root = spec_path.parent
    hashes: dict[str, str] = {}

    posts_path = _checked_path(root, spec_path, "files.posts", spec.files.posts)
    hashes["posts"] = spec.files.posts.sha256
    post_ids: list[str] = []
    sentences: list[str] = []
    offsets = [0]
    seen_posts: set[str] = set()
    for line, row in read_rows(posts_path):
        where = f"{posts_path} line {line}"
        post_id = _require_id(row, "post_id", where)
        if post_id in seen_posts:
            raise TaskSpecError(f"{where}: duplicate post_id {post_id!r}")
        seen_posts.add(post_id)
        sents = _require(row, "sentences", list, where)
        if not sents:
            raise TaskSpecError(f"{where}: post {post_id!r} is empty (no sentences)")
        for i, sentence in enumerate(sents):
            if not isinstance(sentence, str) or not sentence.strip():
                raise TaskSpecError(f"{where}: post {post_id!r} sentence {i} is empty or not a string")
        extra = set(row) - {"post_id", "sentences", "title"}
        if extra:
            raise TaskSpecError(f"{where}: unknown field(s) {', '.join(sorted(extra))}")
        post_ids.append(post_id)
        sentences.extend(sents)
        offsets.append(len(sentences))
    if not post_ids:
        raise TaskSpecError(f"{posts_path}: no posts")
    sizes = dict(zip(post_ids, np.diff(offsets).tolist(), strict=True))
    post_start = dict(zip(post_ids, offsets[:-1], strict=True))
    if spec.unit == "document" and len(sentences) != len(post_ids):
        raise TaskSpecError(f"{posts_path}: unit 'document' needs exactly one text per post "
                            f"({len(sentences)} texts in {len(post_ids)} posts)")

    queries_path = _checked_path(root, spec_path, "files.queries", spec.files.queries)
    hashes["queries"] = spec.files.queries.sha256
    queries: dict[str, Query] = {}
    for line, row in read_rows(queries_path):
        where = f"{queries_path} line {line}"
        query_id = _require_id(row, "query_id", where)
        if query_id in queries:
            raise TaskSpecError(f"{where}: duplicate query_id {query_id!r}")
        text = _require(row, "text", str, where)
        if not str(text).strip():
            raise TaskSpecError(f"{where}: query {query_id!r} has empty text")
        query_post = row.get("post_id")
        if spec.scope == "post":
            query_post = str(_require(row, "post_id", (str, int), where))
            if query_post not in sizes:
                raise TaskSpecError(f"{where}: query {query_id!r} refers to unknown post_id {query_post!r}")
        criterion = row.get("criterion_id")
        extra = set(row) - {"query_id", "post_id", "text", "criterion_id"}
        if extra:
            raise TaskSpecError(f"{where}: unknown field(s) {', '.join(sorted(extra))}")
        queries[query_id] = Query(query_id, str(query_post) if query_post is not None else "",
                                  str(text), None if criterion is None else str(criterion))
    if not queries:
        raise TaskSpecError(f"{queries_path}: no queries")

    qrels_path = _checked_path(root, spec_path, "files.qrels", spec.files.qrels)
    hashes["qrels"] = spec.files.qrels.sha256
    qrels: dict[str, dict[int, int]] = {}
    for line, row in read_rows(qrels_path):
        where = f"{qrels_path} line {line}"
        query_id = str(_require(row, "query_id", (str, int), where))
        if query_id not in queries:
            raise TaskSpecError(f"{where}: qrel for unknown query_id {query_id!r}")
        sentence = _require(row, "sentence", int, where)
        grade = _require(row, "grade", int, where)
        if grade < 0:
            raise TaskSpecError(f"{where}: field 'grade' must be an integer >= 0, got {grade}")
        if spec.scope == "post":
            post_id = queries[query_id].post_id
        else:  # corpus scope: a judgement names the post of its sentence, and is stored by global index
            post_id = str(_require(row, "post_id", (str, int), where))
            if post_id not in sizes:
                raise TaskSpecError(f"{where}: qrel for query {query_id!r} names unknown post_id {post_id!r}")
        if not 0 <= sentence < sizes[post_id]:
            raise TaskSpecError(
                f"{where}: sentence {sentence} is past the end of post {post_id!r} ({sizes[post_id]} sentences)"
            )
        if spec.scope == "corpus":
            sentence = post_start[post_id] + sentence
        judged = qrels.setdefault(query_id, {})
        if sentence in judged:
            raise TaskSpecError(f"{where}: duplicate qrel for query {query_id!r} sentence {sentence}")
        judged[sentence] = grade

    split_of = _load_splits(spec, spec_path, root, queries, hashes)
    return Task(spec, root, post_ids, np.asarray(offsets, dtype=np.int64), sentences, queries, qrels, split_of, hashes)


def _load_splits(spec: TaskSpec, spec_path: Path, root: Path, queries: dict[str, Query],
                 hashes: dict[str, str]) -> dict[str, str]:
    splits = spec.splits
    if splits.assignment is not None:
        path = _checked_path(root, spec_path, "splits.assignment", splits.assignment)
        hashes["splits"] = splits.assignment.sha256
        split_of: dict[str, str] = {}
        allowed = set(splits.fractions) if splits.fractions else None
        for line, row in read_rows(path):
            where = f"{path} line {line}"
            query_id = str(_require(row, "query_id", (str, int), where))
            split = str(_require(row, "split", str, where))
            if query_id not in queries:
                raise TaskSpecError(f"{where}: split assignment for unknown query_id {query_id!r}")
            if query_id in split_of:
                raise TaskSpecError(f"{where}: query {query_id!r} assigned twice")
            if allowed is not None and split not in allowed:
                raise TaskSpecError(f"{where}: split {split!r} is not listed in the spec's splits.fractions")
            split_of[query_id] = split
        missing = [q for q in queries if q not in split_of]
        if missing:
            raise TaskSpecError(f"{path}: {len(missing)} queries have no split (first: {missing[0]!r})")
    else:
        assert splits.fractions is not None
        split_of = grouped_split(((q.query_id, q.post_id, q.criterion_id) for q in queries.values()),
                                 splits.fractions, splits.seed)
        hashes["splits"] = canonical_hash({"seed": splits.seed, "fractions": splits.fractions})
    if splits.method == "grouped" and spec.scope == "post":
        _check_grouping(spec_path, queries, split_of)
    return split_of


def _check_grouping(spec_path: Path, queries: dict[str, Query], split_of: dict[str, str]) -> None:
    """A grouped split must never put one post (or one criterion) in two splits."""
    for attr in ("post_id", "criterion_id"):
        seen: dict[str, str] = {}
        for q in queries.values():
            key = getattr(q, attr)
            if key is None:
                continue
            split = split_of[q.query_id]
            if seen.setdefault(key, split) != split:
                raise TaskSpecError(
                    f"{spec_path}: grouped split leaks {attr.replace('_id', '')} {key!r} across splits "
                    f"{seen[key]!r} and {split!r}"
                )


def candidate_text(task: Task, index: int, context: int = 0) -> str:
    """The text scored for a candidate: the sentence plus ``context`` neighbours each side *within its post*.

    The unit that is ranked and judged stays the sentence; only the text a model reads grows.
    """
    if context <= 0:
        return task.sentences[index]
    post = int(task.sentence_post[index])
    start = max(int(task.post_offsets[post]), index - context)
    end = min(int(task.post_offsets[post + 1]), index + context + 1)
    return " ".join(task.sentences[start:end])


def candidate_texts(task: Task, indices: Sequence[int] | np.ndarray, context: int = 0) -> list[str]:
    return [candidate_text(task, int(i), context) for i in indices]
