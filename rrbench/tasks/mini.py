"""The mini task: four posts, six queries (two with no evidence), graded labels, written to a task folder.

Production code needs it, not only tests: ``rrbench check`` runs a plugin's component against it and
``rrbench new-plugin`` writes an example task with :func:`write_task`. ``rrbench.testing`` re-exports these names
for plugin authors' tests, so the package itself never imports its testing helpers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rrbench.util.io import sha256_file, write_jsonl_gz

MINI_POSTS = [
    {"post_id": "p1", "sentences": [
        "Aspirin reduces the risk of heart attack in adults.",
        "The weather was sunny on the day of the trial.",
        "Participants were recruited from three hospitals.",
        "Daily aspirin lowered myocardial infarction rates by a quarter.",
    ]},
    {"post_id": "p2", "sentences": [
        "Vitamin D supplements did not prevent fractures.",
        "Bone density was measured with a scanner.",
        "The study followed patients for five years.",
    ]},
    {"post_id": "p3", "sentences": [
        "Coffee consumption is associated with alertness.",
        "Caffeine blocks adenosine receptors in the brain.",
        "Tea was not studied.",
        "Sleep quality decreased with late caffeine intake.",
        "The cohort included students only.",
    ]},
    {"post_id": "p4", "sentences": [
        "Exercise improves mood in older adults.",
        "Walking for thirty minutes a day was enough.",
    ]},
]

MINI_QUERIES = [
    {"query_id": "q1", "post_id": "p1", "text": "aspirin prevents heart attacks", "criterion_id": "c1"},
    {"query_id": "q2", "post_id": "p2", "text": "vitamin D prevents fractures", "criterion_id": "c2"},
    {"query_id": "q3", "post_id": "p3", "text": "caffeine affects sleep", "criterion_id": "c3"},
    {"query_id": "q4", "post_id": "p3", "text": "coffee improves memory in mice", "criterion_id": "c4"},
    {"query_id": "q5", "post_id": "p4", "text": "exercise improves mood", "criterion_id": "c5"},
    {"query_id": "q6", "post_id": "p2", "text": "aspirin prevents heart attacks", "criterion_id": "c6"},
]

MINI_QRELS = [
    {"query_id": "q1", "sentence": 0, "grade": 1},
    {"query_id": "q1", "sentence": 3, "grade": 2},
    {"query_id": "q2", "sentence": 0, "grade": 1},
    {"query_id": "q3", "sentence": 1, "grade": 1},
    {"query_id": "q3", "sentence": 3, "grade": 2},
    {"query_id": "q5", "sentence": 0, "grade": 1},
    {"query_id": "q5", "sentence": 1, "grade": 1},
]

#: q1, q3 (has evidence) and q4 (no evidence) train; q2, q5 (has evidence) and q6 (no evidence) select.
MINI_TRAIN_SPLITS = {"q1": "train", "q3": "train", "q4": "train", "q2": "dev_select", "q5": "dev_select",
                     "q6": "dev_select"}


def write_task(directory: str | Path, posts: list[dict], queries: list[dict], qrels: list[dict],
               splits: dict[str, str] | None = None, **spec_overrides: Any) -> Path:
    """Write a task directory (data files + ``task.yaml`` with correct hashes); returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_jsonl_gz(directory / "posts.jsonl.gz", posts)
    write_jsonl_gz(directory / "queries.jsonl.gz", queries)
    write_jsonl_gz(directory / "qrels.jsonl.gz", qrels)
    spec: dict[str, Any] = {
        "id": directory.name, "version": 1, "scope": "post", "main_score": "nDCG@10", "license": "CC0-1.0",
        "files": {name: {"path": f"{name}.jsonl.gz", "sha256": sha256_file(directory / f"{name}.jsonl.gz")}
                  for name in ("posts", "queries", "qrels")},
    }
    if splits is None:
        splits = {q["query_id"]: "dev_select" for q in queries}
    rows = [{"query_id": qid, "split": split} for qid, split in splits.items()]
    write_jsonl_gz(directory / "splits.jsonl.gz", rows)
    spec["splits"] = {"method": "assigned",
                      "assignment": {"path": "splits.jsonl.gz", "sha256": sha256_file(directory / "splits.jsonl.gz")}}
    spec.update(spec_overrides)
    (directory / "task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return directory


def make_mini_task(directory: str | Path) -> Path:
    """A 4-post task with graded labels and two no-evidence queries (q4, q6); every query is in ``dev_select``."""
    splits = {"q1": "dev_select", "q2": "dev_select", "q3": "dev_select", "q4": "dev_select",
              "q5": "dev_select", "q6": "dev_select"}
    return write_task(directory, MINI_POSTS, MINI_QUERIES, MINI_QRELS, splits=splits)


def make_train_task(directory: str | Path) -> Path:
    """The mini task, split into ``train`` and ``dev_select`` (each with a no-evidence query)."""
    return write_task(directory, MINI_POSTS, MINI_QUERIES, MINI_QRELS, splits=MINI_TRAIN_SPLITS)


def make_corpus_task(directory: str | Path) -> Path:
    """The mini task in corpus scope: every query's candidates are all 14 sentences of the four posts, so a
    retriever's ``search()`` is what finds them (``rrbench check --kind retrievers`` calls it here)."""
    post_of = {q["query_id"]: q["post_id"] for q in MINI_QUERIES}
    qrels = [{**row, "post_id": post_of[str(row["query_id"])]} for row in MINI_QRELS]
    return write_task(directory, MINI_POSTS, MINI_QUERIES, qrels, splits=MINI_TRAIN_SPLITS, scope="corpus")


def mini_vocab() -> list[str]:
    """Every word of the mini task (lowercased) after BERT's special tokens: the tiny models' vocabulary."""
    words = sorted({w.strip(".,").lower() for p in MINI_POSTS for s in p["sentences"] for w in s.split()}
                   | {w.lower() for q in MINI_QUERIES for w in q["text"].split()})
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, ".", ","]
