"""Mini-task variants for cross-task tests: the same vocabulary, different post lengths and no-evidence shares.

Each variant is a post-scope task whose posts are split into ``dev_select`` (the first two thirds) and ``dev_final``
(the rest), with a few posts in ``test`` so the test-split refusals have something to refuse.
"""

from __future__ import annotations

import random
from pathlib import Path

from rrbench.testing.fixtures import write_task

WORDS = ["aspirin", "heart", "attack", "vitamin", "bone", "fracture", "coffee", "sleep", "caffeine", "mood",
         "exercise", "walking", "insulin", "glucose", "diabetes", "tumour", "growth", "cell", "mouse", "trial", "dose",
         "placebo", "risk", "blood", "pressure", "kidney", "liver", "protein", "gene", "expression", "immune",
         "response", "infection", "virus", "vaccine", "antibody"]


def make_variant_task(directory: Path, seed: int, sentences: tuple[int, int] = (4, 7), no_evidence: float = 0.35,
                      posts: int = 24) -> Path:
    """``posts`` posts of ``sentences`` (min, max) sentences, one or two claims each, a share ``no_evidence`` of
    them without evidence; the task id is the folder name."""
    rng = random.Random(seed)
    rows, queries, qrels, splits = [], [], [], {}
    final_from, test_from = (2 * posts) // 3, posts - 2
    for p in range(posts):
        text = [" ".join(rng.sample(WORDS, 6)) + "." for _ in range(rng.randint(*sentences))]
        rows.append({"post_id": f"p{p}", "sentences": text})
        for c in range(rng.randint(1, 2)):
            qid = f"q{p}-{c}"
            if rng.random() < no_evidence:
                claim = " ".join(rng.sample(WORDS, 4))
            else:
                target = rng.randrange(len(text))
                claim = " ".join(text[target].rstrip(".").split()[:3] + rng.sample(WORDS, 1))
                qrels.append({"query_id": qid, "sentence": target, "grade": rng.choice([1, 2])})
            queries.append({"query_id": qid, "post_id": f"p{p}", "text": claim})
            splits[qid] = "test" if p >= test_from else ("dev_final" if p >= final_from else "dev_select")
    return write_task(directory, rows, queries, qrels, splits=splits)
