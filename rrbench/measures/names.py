"""One name per metric: the spellings users and libraries use, mapped onto the names records carry.

Record keys are the ir_measures names (``nDCG@10``, ``RR@10``, ``R@10``) plus rrbench's decision metrics
(``false_evidence_rate`` ...). Everything that shows or takes a metric name goes through this table: the leaderboard
columns, ``rrbench compare`` / ``rrbench gate --metric`` (one set, :data:`COMPARABLE`, with each metric's direction),
and the trainer's evaluation logs (the Trainer prefixes
``eval_``, so they log ``eval_nDCG@10``). Other spellings (``MRR@10``, ``ndcg@10``, ``recall@10`` ...) are accepted
on input and resolved here, never written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rrbench.util.errors import UsageError

#: Rank metrics of every record (averaged over has-evidence queries; per-query values too).
RANK_METRICS = ("nDCG@10", "RR@10", "R@10")
#: Decision metrics of a record with a threshold (aggregates only).
DECISION_METRICS = ("false_evidence_rate", "answer_rate_has_evidence", "ece", "brier")
#: Names a record's ``per_query`` values use: the rank metrics (``R@k`` for other pool depths too) and, for
#: no-evidence queries, ``false_evidence`` (1 when the query got an answer).
PER_QUERY_METRICS = (*RANK_METRICS, "false_evidence")
CANONICAL = (*RANK_METRICS, *DECISION_METRICS, "false_evidence")

#: Accepted spellings (matched case-insensitively) -> canonical name.
ALIASES = {
    "ndcg@10": "nDCG@10", "ndcg_cut_10": "nDCG@10", "ndcg_cut.10": "nDCG@10",
    "rr@10": "RR@10", "mrr@10": "RR@10", "recip_rank@10": "RR@10",
    "r@10": "R@10", "recall@10": "R@10", "recall_10": "R@10", "recall.10": "R@10",
    "false_evidence_rate": "false_evidence_rate", "fer": "false_evidence_rate", "falseevid": "false_evidence_rate",
    "false-evidence-rate": "false_evidence_rate",
    "answer_rate_has_evidence": "answer_rate_has_evidence", "answer_rate": "answer_rate_has_evidence",
    "ece": "ece", "brier": "brier", "false_evidence": "false_evidence",
}
#: What ``rrbench compare`` and ``rrbench gate`` accept (the same set, with ``R@k`` for any k): every metric a
#: record carries. ``false_evidence`` (the per-query key) names the false-evidence rate there.
COMPARABLE = (*RANK_METRICS, *DECISION_METRICS)
#: Metrics where a lower value is better; every other metric is better higher.
LOWER_IS_BETTER = frozenset({"false_evidence_rate", "false_evidence", "ece", "brier"})
#: Aggregates a record keeps without per-query values (they pool sentence pairs, not queries).
AGGREGATE_ONLY = frozenset({"ece", "brier"})


def higher_is_better(metric: str) -> bool:
    """The direction of a (canonical) metric: a lower false-evidence rate, ECE or Brier score is better."""
    return metric not in LOWER_IS_BETTER


def per_query_key(metric: str) -> str:
    """The key of ``metric`` in a record's ``per_query`` values (the false-evidence rate is ``false_evidence`` there:
    1 when a no-evidence query got an answer)."""
    return "false_evidence" if metric in ("false_evidence_rate", "false_evidence") else metric


_RECALL_AT = re.compile(r"^(?:r|recall)[@_.]([0-9]+)$", re.IGNORECASE)
#: What the Hugging Face / sentence-transformers Trainer puts before an evaluator's metric names.
TRAINER_PREFIX = "eval_"


def canonical_metric(name: str, allowed: Iterable[str] = CANONICAL, what: str = "metric") -> str:
    """The canonical name of ``name`` (any accepted spelling); ``R@k`` for any depth k when ``R@10`` is allowed.

    An unknown or not-``allowed`` name is a one-line :class:`UsageError` listing the names that are.
    """
    allowed = tuple(allowed)
    text = str(name).strip()
    found = text if text in allowed else ALIASES.get(text.lower())
    if found == "false_evidence" and "false_evidence" not in allowed and "false_evidence_rate" in allowed:
        found = "false_evidence_rate"  # the per-query key names the rate it averages to
    if found is None and "R@10" in allowed:
        match = _RECALL_AT.match(text)
        if match and int(match.group(1)) > 0:
            found = f"R@{int(match.group(1))}"
    if found is None or (found not in allowed and not (found.startswith("R@") and "R@10" in allowed)):
        spellings = sorted(k for k, v in ALIASES.items() if v in allowed and k != v.lower())
        raise UsageError(f"unknown {what} {name!r}; known: {', '.join(allowed)}"
                         + (" (R@k for any k)" if "R@10" in allowed else "")
                         + (f"; also accepted: {', '.join(spellings)}" if spellings else ""))
    return found


def trainer_key(name: str) -> str:
    """The key under which the Trainer reports an evaluator metric: ``eval_`` + its canonical name."""
    return TRAINER_PREFIX + canonical_metric(name, RANK_METRICS)
