"""Builders for test data and tiny models. Everything is generated locally and deterministically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rrbench.io import sha256_file, write_jsonl_gz

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


def _vocab() -> list[str]:
    words = sorted({w.strip(".,").lower() for p in MINI_POSTS for s in p["sentences"] for w in s.split()}
                   | {w.lower() for q in MINI_QUERIES for w in q["text"].split()})
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, ".", ","]


def make_tiny_bert(directory: str | Path, seed: int = 0, num_labels: int = 1) -> Path:
    """A 2-layer, hidden-64 BertForSequenceClassification with its own vocabulary: loads as a CrossEncoder."""
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertTokenizerFast,
    )

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(_vocab()) + "\n", encoding="utf-8")
    # transformers 5 takes the vocabulary as `vocab` (a path or dict); `vocab_file` is silently ignored there,
    # which would map every word to [UNK]
    tokenizer = BertTokenizerFast(vocab=str(vocab_file), do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=128, num_labels=num_labels)
    model = BertForSequenceClassification(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def make_tiny_bi_encoder(directory: str | Path, seed: int = 0) -> Path:
    """A tiny BERT wrapped as a SentenceTransformer (mean pooling): a stand-in dense model for tests."""
    from sentence_transformers import SentenceTransformer, models

    directory = Path(directory)
    base = make_tiny_bert(directory.with_name(directory.name + "-base"), seed=seed)
    word = models.Transformer(str(base), max_seq_length=64)
    pooling = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(directory))
    return directory


def write_fake_plugin(root: str | Path, dist: str, module: str, source: str, ep_name: str | None = None,
                      version: str = "0.3") -> Path:
    """A minimal installed-looking distribution under ``root`` (put ``root`` on ``PYTHONPATH``): a module and a
    ``.dist-info`` with an ``rrbench`` entry point. Tests use it to exercise discovery without pip."""
    import textwrap

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[rrbench]\n{ep_name or module} = {module}\n", encoding="utf-8")
    return root
