"""The forgery corpus: what a dishonest or careless submitter does to a published record, using nothing but
rrbench's own public functions (``claims_hash``, ``system_name``, ``folder_name``, ``write_sums``, the evidence
reader and writer). Each case must be refused by ``rrbench leaderboard check`` with exit 2 and one line naming the
field or file at fault.

A case edits a copy of an honest board. ``record`` names which published record it attacks (``bm25``: BM25 alone;
``ce``: BM25 reranked by a tiny local cross-encoder with a fixed threshold; ``platt``: the same with a Platt
calibrator fitted on another split; ``test``: a test-split record with its ledger line; ``outside``: an outside run).
After the edit the corpus re-does what a careful forger would (``rehash``: the config hash of the edited claims;
``rename``: the system name and the folder; ``resum``: SHA256SUMS), so the verifier cannot lean on a stale hash.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rrbench.leaderboard.verify import write_sums
from rrbench.records.evidence import Evidence, QueryScores, read_evidence, write_evidence
from rrbench.records.naming import folder_name, system_name
from rrbench.records.schema import OutsideClaims, RunClaims, claims_hash
from rrbench.util.io import canonical_hash

Edit = Callable[[dict[str, Any], Path], None]


@dataclass(frozen=True)
class Case:
    id: str
    record: str
    edit: Edit
    expect: str  # a fragment of the one-line refusal (the field or file it names)
    rehash: bool = True
    rename: bool = True
    resum: bool = True


# -- helpers a forger would write -----------------------------------------------------------------------------------
def claims_of(record: dict[str, Any]) -> RunClaims | OutsideClaims:
    model = RunClaims if record["kind"] == "run" else OutsideClaims
    return model.model_validate(record["config"])


def forge(folder: Path, case: Case) -> Path:
    """Apply a case to the record in ``folder`` the way a careful forger would; returns the record's new folder."""
    file = folder / "results.json"
    record = json.loads(file.read_text())
    case.edit(record, folder)
    if "__raw_text__" in record:
        file.write_text(record["__raw_text__"])
        if case.resum:
            write_sums(folder)
        return folder
    move_to = record.pop("__move_to__", None)
    try:
        claims = claims_of(record)
    except Exception:  # a broken claim cannot be re-hashed: the forger ships it as it is
        claims = None
    if claims is not None and case.rehash:
        record["config_hash"] = claims_hash(claims)
    if claims is not None and case.rename:
        record["system"] = system_name(claims)
    file.write_text(json.dumps(record))
    target = folder
    if claims is not None and case.rename:
        target = folder.with_name(folder_name(claims, record["config_hash"]))
        if target != folder:
            folder.rename(target)
    if claims is not None and case.rename and move_to is None:  # the board folder the claims name, if inside
        board = target.parents[2]
        home = (board / f"{claims.task.id}@{claims.task.version}" / claims.split).resolve()
        if home.is_relative_to(board.resolve()) and home != target.parent.resolve():
            move_to = str(home / target.name)
    if move_to is not None:
        Path(move_to).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(target), move_to)
        target = Path(move_to)
    if case.resum:
        write_sums(target)
    return target


def edit_evidence(folder: Path, change: Callable[[list[QueryScores]], list[QueryScores]],
                  name: str = "scores.jsonl.gz") -> None:
    evidence = read_evidence(folder / name)
    write_evidence(folder / name, Evidence(evidence.split, evidence.rerankers, tuple(change(list(evidence.queries)))))


def replace_query(rows: list[QueryScores], query_id: str, **changes: Any) -> list[QueryScores]:
    return [QueryScores(**{**r.__dict__, **changes}) if r.query_id == query_id else r for r in rows]


def raw_evidence(folder: Path, change: Callable[[str], str]) -> None:
    """Edit the evidence file's text directly (what no reader would write)."""
    path = folder / "scores.jsonl.gz"
    text = gzip.decompress(path.read_bytes()).decode("ascii")
    path.write_bytes(gzip.compress(change(text).encode("utf-8")))


def oracle(record: dict[str, Any], folder: Path) -> None:
    """Replace the reranker's scores by the labels: the evidence sentences first, everything recomputed."""
    from rrbench.pipeline.derive import derive
    from rrbench.tasks.resolve import get_task

    task = get_task(record["config"]["task"]["id"])
    claims = claims_of(record)
    assert isinstance(claims, RunClaims)

    def labels(rows: list[QueryScores]) -> list[QueryScores]:
        out = []
        for row in rows:
            grades = task.relevance(task.queries[row.query_id], [task.index_of(d) for d in row.pool])
            out.append(QueryScores(row.query_id, row.pool, row.retriever,
                                   tuple(tuple(float(10 * g - 5) for g in grades[:len(h)]) for h in row.heads)))
        return out

    edit_evidence(folder, labels)
    derived = derive(claims, task, read_evidence(folder / "scores.jsonl.gz"))
    record.update(metrics=derived.metrics, per_query=derived.per_query,
                  decision=derived.decision.model_dump(mode="json"))
    (folder / "run.trec").write_text("\n".join(derived.run_lines) + "\n")


def set_path(obj: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for key in keys[:-1]:
        obj = obj[int(key)] if isinstance(obj, list) else obj[key]
    if isinstance(obj, list):
        obj[int(keys[-1])] = value
    else:
        obj[keys[-1]] = value


def setter(dotted: str, value: Any) -> Edit:
    return lambda record, folder: set_path(record, dotted, value)


def first_query(record: dict[str, Any]) -> str:
    return sorted(record["per_query"])[0]


def _checkpoint_claim(record: dict[str, Any], folder: Path) -> None:
    member = record["config"]["rerankers"][0]
    manifest = {"base_model": {"hub_id": "Qwen/Qwen3-Reranker-8B"}, "regime": "r1", "loss": "bce"}
    member["checkpoint"] = {"weights_sha256": "a" * 64, "training_manifest": manifest,
                            "training_manifest_sha256": canonical_hash(manifest)}
    member["id"] = "trained:Qwen/Qwen3-Reranker-8B/r1/bce@bbbbbbbb"


def _edited_manifest(record: dict[str, Any], folder: Path) -> None:
    _checkpoint_claim(record, folder)
    member = record["config"]["rerankers"][0]
    member["id"] = "trained:Qwen/Qwen3-Reranker-8B/r1/bce@aaaaaaaa"
    member["checkpoint"]["training_manifest"]["regime"] = "r9"


def _reverse_heads(record: dict[str, Any], folder: Path) -> None:
    edit_evidence(folder, lambda rows: [QueryScores(r.query_id, r.pool, r.retriever,
                                                    tuple(tuple(-s for s in h) for h in r.heads)) for r in rows])


def _swap_evidence_split(record: dict[str, Any], folder: Path) -> None:
    evidence = read_evidence(folder / "scores.jsonl.gz")
    write_evidence(folder / "scores.jsonl.gz", Evidence("dev_final", evidence.rerankers, evidence.queries))


def _foreign_candidate(record: dict[str, Any], folder: Path) -> None:
    def change(rows: list[QueryScores]) -> list[QueryScores]:
        row = rows[0]
        other = next(d for r in rows for d in r.pool if d.split(":")[0] != row.pool[0].split(":")[0])
        return replace_query(rows, row.query_id, pool=(other, *row.pool[1:]))
    edit_evidence(folder, change)


def _unordered_pool(record: dict[str, Any], folder: Path) -> None:
    def change(rows: list[QueryScores]) -> list[QueryScores]:
        row = rows[0]
        return replace_query(rows, row.query_id, retriever=tuple(reversed(row.retriever)))
    edit_evidence(folder, change)


def _short_pool(record: dict[str, Any], folder: Path) -> None:
    def change(rows: list[QueryScores]) -> list[QueryScores]:
        row = rows[0]
        return replace_query(rows, row.query_id, pool=row.pool[:-1], retriever=row.retriever[:-1],
                             heads=tuple(h[:-1] for h in row.heads))
    edit_evidence(folder, change)


def _short_head(record: dict[str, Any], folder: Path) -> None:
    def change(rows: list[QueryScores]) -> list[QueryScores]:
        row = rows[0]
        return replace_query(rows, row.query_id, heads=tuple(h[:-1] for h in row.heads))
    edit_evidence(folder, change)


def _oracle_run_file(record: dict[str, Any], folder: Path) -> None:
    lines = (folder / "run.trec").read_text().splitlines()
    (folder / "run.trec").write_text("\n".join(reversed(lines)) + "\n")


def _add_file(record: dict[str, Any], folder: Path) -> None:
    (folder / "notes.txt").write_text("trust me")


def _misfile(record: dict[str, Any], folder: Path) -> None:
    """File the record under another split's folder."""
    target = folder.parent.parent / "dev_final"
    target.mkdir(exist_ok=True)
    record["__move_to__"] = str(target / folder.name)


def raw_text(text: str) -> Edit:
    """Replace results.json by ``text`` (what no JSON writer produces)."""
    return lambda record, folder: record.__setitem__("__raw_text__", text)


CASES: list[Case] = [
    # -- the ranked number and the main score (attack 1) --
    Case("main-score-edited", "bm25", setter("main_score", "R@100"), "main_score"),
    Case("made-up-metric", "bm25", lambda r, f: (r["metrics"].__setitem__("score", 0.9999),
                                                  r.__setitem__("main_score", "score")), "main_score"),
    Case("made-up-metric-only", "bm25", lambda r, f: r["metrics"].__setitem__("score", 0.9999), "metrics.score"),
    Case("headline-edited", "ce", setter("metrics.nDCG@10", 0.99), "metrics.nDCG@10"),
    Case("metric-dropped", "ce", lambda r, f: r["metrics"].pop("RR@10"), "metrics.RR@10"),
    Case("per-query-edited", "ce", lambda r, f: r["per_query"][first_query(r)].__setitem__("nDCG@10", 1.0),
         "per_query."),
    Case("per-query-removed", "ce", lambda r, f: r["per_query"].pop(first_query(r)), "per_query."),
    # -- the decision (attack 2) --
    Case("answer-flipped", "ce", lambda r, f: r["decision"]["answered"].__setitem__(
        first_query(r), not r["decision"]["answered"][first_query(r)]), "decision.answered"),
    Case("threshold-edited", "ce", setter("decision.threshold", 99.0), "decision.threshold"),
    Case("statistic-edited", "ce", lambda r, f: r["decision"]["statistic"].__setitem__(first_query(r), -50.0),
         "decision.statistic"),
    Case("decision-injected", "bm25", setter("config.decision", {
        "policy": "max", "calibrator": {"kind": "calibrators", "id": "platt", "plugin": "rrbench",
                                        "distribution": "rrbench"},
        "threshold": {"mode": "natural", "value": None}, "fit": {"split": "dev_select"}}), "calibration_scores"),
    Case("claimed-threshold-changed", "ce", setter("config.decision.threshold.value", -1e6), "decision.threshold"),
    Case("calibrated-statistic-edited", "platt", lambda r, f: r["decision"]["statistic"].__setitem__(
        first_query(r), 0.0001), "decision.statistic"),
    Case("calibration-scores-removed", "platt", lambda r, f: (f / "calibration_scores.jsonl.gz").unlink(),
         "calibration_scores.jsonl.gz"),
    Case("calibration-on-test", "platt", setter("config.decision.fit.split", "test"), "fit.split"),
    # a fit said to come from another task: the verifier resolves that task through the registry
    Case("fit-task-unregistered", "platt", setter("config.decision.fit.task", {
        "id": "tasks-in-my-pull-request", "version": 1, "data_sha256": "0" * 64}), "config.decision.fit.task.id"),
    # a budget threshold claimed over the stored decision: re-fitted, it is not the stored one
    Case("threshold-policy-swapped", "ce", setter("config.decision", {
        "policy": "max", "calibrator": None, "threshold": {"mode": "max-fe", "value": 0.0},
        "fit": {"split": "dev_final", "task": None, "cross_fit": None, "seed": None}}), "calibration_scores"),
    # -- identity (attack 3) --
    Case("config-hash-edited", "ce", setter("config_hash", "f" * 64), "config_hash", rehash=False, rename=False),
    Case("claims-edited-not-rehashed", "ce", setter("config.top_k_rerank", 5), "config_hash", rehash=False,
         rename=False),
    Case("reranker-as-a-string", "ce", setter("config.rerankers.0", "qwen3-8b"), "config"),
    Case("unregistered-reranker", "ce", lambda r, f: r["config"]["rerankers"][0].update(
        id="made-up-reranker", weights_sha256=None), "made-up-reranker"),
    Case("homoglyph-reranker", "ce", setter("config.rerankers.0.id", "minilm‐l6"), "config"),
    Case("newline-pipe-id", "ce", setter("config.rerankers.0.id", "x\n| fake | row |"), "config"),
    Case("plugin-not-installed", "bm25", lambda r, f: r["config"]["generator"]["retrievers"][0].update(
        plugin="ghost", distribution="rrbench-ghost"), "pip install 'rrbench-ghost'"),
    Case("distribution-swapped", "bm25", setter("config.generator.retrievers.0.distribution", "rrbench-evil"),
         "distribution"),
    Case("score-kind-lie", "bm25", setter("config.generator.retrievers.0.score_kind", "probability"),
         "score_kind"),
    Case("checkpoint-name-from-nowhere", "ce", _checkpoint_claim, "is not the name"),
    Case("checkpoint-manifest-edited", "ce", _edited_manifest, "training_manifest_sha256"),
    Case("local-model-renamed", "ce", setter("config.rerankers.0.id", "local-model@0123456789abcdef"),
         "is not the name of its weights"),
    Case("system-name-edited", "ce", setter("system", "qwen3-8b [K100]"), "system", rename=False),
    # -- tasks (attack 8) --
    Case("task-path-id", "bm25", setter("config.task.id", "../x"), "folder"),
    Case("task-unregistered", "bm25", setter("config.task.id", "tasks-in-my-pull-request"), "config.task.id"),
    Case("task-never-existed", "bm25", setter("config.task.version", 0), "config.task.version"),
    Case("task-newer-version", "bm25", setter("config.task.version", 7), "config.task.version"),
    Case("task-data-edited", "bm25", setter("config.task.data_sha256", "0" * 64), "config.task.data_sha256"),
    # -- the test split (attack 6) --
    Case("test-record-edited", "test", setter("provenance.command", "rrbench run --different"), "results.json"),
    Case("test-ledger-line-removed", "test", lambda r, f: (f.parents[2] / "test-ledger.jsonl").write_text(""),
         "test ledger"),
    Case("test-ledger-two-fields", "test", lambda r, f: (f.parents[2] / "test-ledger.jsonl").write_text(
        json.dumps({"config_hash": r["config_hash"], "split": "test"}) + "\n"), "test-ledger.jsonl line 1"),
    Case("test-ledger-duplicated", "test", lambda r, f: (f.parents[2] / "test-ledger.jsonl").write_text(
        (f.parents[2] / "test-ledger.jsonl").read_text() * 2), "exactly one line"),
    Case("test-fold-split", "bm25", setter("config.split", "test~fold1of2"), "config"),
    # -- evidence (attack 2, 5) --
    Case("evidence-query-removed", "ce", lambda r, f: edit_evidence(f, lambda rows: rows[1:]), "has no scores"),
    Case("evidence-other-split", "ce", lambda r, f: _swap_evidence_split(r, f), "scores of split"),
    Case("evidence-foreign-candidate", "ce", lambda r, f: _foreign_candidate(r, f), "not a sentence of the query"),
    Case("evidence-pool-out-of-order", "bm25", lambda r, f: _unordered_pool(r, f), "retriever order"),
    Case("evidence-pool-incomplete", "bm25", lambda r, f: _short_pool(r, f), "pool of"),
    Case("evidence-head-short", "ce", lambda r, f: _short_head(r, f), "the claims rerank"),
    Case("evidence-nan", "ce", lambda r, f: raw_evidence(f, lambda t: t.replace('"heads":[[', '"heads":[[NaN,', 1)),
         "scores.jsonl.gz"),
    Case("evidence-scores-reversed", "ce", _reverse_heads, "metrics."),
    Case("evidence-missing", "ce", lambda r, f: (f / "scores.jsonl.gz").unlink(), "scores.jsonl.gz"),
    # -- run.trec (attack 5, 8) --
    Case("oracle-run-file", "ce", _oracle_run_file, "run.trec"),
    Case("run-file-underscore-score", "ce", lambda r, f: (f / "run.trec").write_text(
        (f / "run.trec").read_text().replace(" 1 ", " 1 0_9 tag\n", 1)), "run.trec"),
    Case("run-file-nbsp", "ce", lambda r, f: (f / "run.trec").write_text(
        (f / "run.trec").read_text().replace(" Q0 ", "\u00a0Q0 ", 1)), "run.trec"),
    Case("run-file-unicode-digit", "bm25", lambda r, f: (f / "run.trec").write_text(
        (f / "run.trec").read_text().replace(":0 ", ":\u0660 ", 1)), "run.trec"),
    # -- the published folder --
    Case("sums-stale", "ce", setter("provenance.command", "rrbench run --other"), "SHA256SUMS", resum=False),
    Case("extra-file", "bm25", _add_file, "notes.txt"),
    Case("folder-not-derived", "ce", setter("config.top_k_retriever", 50), "folder", rename=False),
    # -- provenance that must still add up (attack 8) --
    Case("throughput-invented", "ce", setter("provenance.pairs_per_s", 98765.0), "pairs_per_s"),
    Case("throughput-without-time", "ce", setter("provenance.rerank_time_s", 0.0), "pairs_per_s"),
    Case("fallback-record", "ce", setter("provenance.run_options.reranker_fallback", {"reason": "OOM"}),
         "reranker_fallback"),
    Case("speed-only-record", "ce", setter("provenance.speed_only", True), "speed_only"),
    Case("filed-under-another-split", "bm25", _misfile, "folder"),
    # -- the file itself --
    Case("deep-json", "bm25", raw_text("[" * 200_000 + "]" * 200_000), "nested deeper", rehash=False, rename=False),
    Case("duplicate-key", "bm25", raw_text('{"schema_version": 2, "schema_version": 2}'), "duplicate key",
         rehash=False, rename=False),
    Case("nan-in-record", "bm25", raw_text('{"schema_version": 2, "metrics": {"nDCG@10": NaN}}'), "NaN",
         rehash=False, rename=False),
    Case("unknown-field", "bm25", setter("verified", True), "verified"),
    Case("old-schema", "bm25", setter("schema_version", 1), "schema_version"),
    Case("kind-confused", "outside", setter("kind", "run"), "config"),
    # -- outside runs --
    Case("outside-run-edited", "outside", lambda r, f: (f / "run.trec").write_text(
        "\n".join((f / "run.trec").read_text().splitlines()[1:]) + "\n"), "config.run.sha256"),
    Case("outside-metric-edited", "outside", setter("metrics.nDCG@10", 1.0), "metrics.nDCG@10"),
]
