"""``rrbench candidates`` (first-stage recall table, fills the candidate cache) and ``rrbench tasks import-beir``.

Nothing heavy is imported at module import time: the CLI's start-up stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from rrbench.components.registry import resolve
from rrbench.measures.trec import run_lines, strictly_decreasing
from rrbench.pipeline.candidates import (
    GeneratorConfig,
    describe_generator,
    fuse_pools,
    rankings,
    recall_at,
    retriever_identity,
)
from rrbench.retrievers.fusion import load_fuser
from rrbench.tasks.resolve import get_task
from rrbench.util.errors import UsageError
from rrbench.util.io import atomic_write_text, strict_json_dumps
from rrbench.util.progress import set_quiet
from rrbench.util.text import run_tag

DEFAULT_KS = "50,100,200,400"


def _parse_ks(value: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        raise UsageError(f"--k must be comma-separated integers, got {value!r}") from None
    if not ks or ks[0] < 1:
        raise UsageError(f"--k values must be >= 1, got {value!r}")
    return ks


def _fuser_options(name: str, rrf_k: float, alpha: float, norm: str) -> dict[str, Any]:
    spec = resolve("fusers", name).spec  # unknown names fail here, with a suggestion
    given = {"k0": rrf_k, "alpha": alpha, "norm": norm}
    return {key: given[key] for key in spec.options if key in given}


def _label(describe: dict[str, Any]) -> str:
    fusion = (describe.get("options") or {}).get("fusion")
    if not fusion:
        return describe["id"]
    opts = " ".join(f"{k}={v}" for k, v in fusion["options"].items())
    return f"{describe['id']} {opts}".strip()


def candidates_table(task_name: str, split: str, retrievers: tuple[str, ...], fusions: tuple[str, ...], ks: list[int],
                     rrf_k: float = 60, alpha: float = 0.5, norm: str = "minmax", context: int = 0,
                     device: str | None = None, use_cache: bool = True) -> dict[str, Any]:
    """Recall at each K for every retriever alone and every requested fusion of all of them (has-evidence queries).

    Each retriever's ranking is computed once at the deepest K (and cached); a fused pool of size K fuses the
    retrievers' top-K lists, exactly what ``rrbench run --top-k-retriever K --fusion ...`` would use.
    """

    retrievers = tuple(dict.fromkeys(retrievers))
    if fusions and len(retrievers) < 2:
        raise UsageError("--fusion needs at least two --retriever")
    fusers = [load_fuser(name, _fuser_options(name, rrf_k, alpha, norm)) for name in dict.fromkeys(fusions)]
    task = get_task(task_name)
    queries = sorted(task.split_queries(split), key=lambda q: q.query_id)
    if not queries:
        raise UsageError(f"task {task.id!r} split {split!r} has no queries")
    for name in retrievers:  # unknown ids and missing weights fail before the first retriever starts working
        retriever_identity(name)
    depth = max(ks)
    sources = [rankings(task, split, queries, name, depth, context, device, use_cache) for name in retrievers]

    rows = []
    for src in sources:
        rows.append({"generator": src.describe["id"], "label": src.describe["id"], "cached": src.cached,
                     "seconds": round(src.seconds, 2), "pools": src.pools,
                     "recall": {f"R@{k}": recall_at(task, queries, src.truncated(k), k) for k in ks}})
    for fuser in fusers:
        recall, deepest = {}, None
        for k in ks:
            pools = fuse_pools(fuser, [s.truncated(k) for s in sources], k)
            recall[f"R@{k}"] = recall_at(task, queries, pools, k)
            deepest = pools
        config = GeneratorConfig(retrievers, fuser.spec.id, dict(fuser.options), context)
        describe = describe_generator(config, [s.describe for s in sources], fuser)
        rows.append({"generator": describe["id"], "label": _label(describe), "cached": all(s.cached for s in sources),
                     "seconds": 0.0, "pools": deepest, "recall": recall, "fusion": fuser.describe()})

    in_scope = [len(task.candidates(q)) for q in queries]
    with_evidence = sum(1 for q in queries if task.has_evidence(q.query_id))
    return {"task": task, "queries": queries, "split": split, "ks": ks, "rows": rows, "context": context,
            "has_evidence": with_evidence, "candidates_in_scope_median": int(sorted(in_scope)[len(in_scope) // 2])}


def _write_runs(result: dict[str, Any], directory: str) -> list[str]:
    """One TREC run per row at the deepest K (scores made strictly decreasing, as ``rrbench run`` writes them)."""

    task, written = result["task"], []
    for row in result["rows"]:
        lines: list[str] = []
        tag = run_tag(row["generator"])
        for query, (ids, scores) in zip(result["queries"], row["pools"], strict=True):
            lines += run_lines(query.query_id, (task.docno(int(i)) for i in ids), strictly_decreasing(scores), tag)
        path = Path(directory) / f"{tag[len('rrbench-'):]}.k{max(result['ks'])}.trec"
        atomic_write_text(path, "\n".join(lines) + "\n")
        written.append(str(path))
    return written


@click.command("candidates")
@click.option("--task", "task_name", default="scifact-evidence-open", show_default=True,
              help="Task id or path to a task directory.")
@click.option("--split", default="dev_select", show_default=True)
@click.option("--retriever", "retrievers", multiple=True, required=True, help="Retriever id (repeatable).")
@click.option("--fusion", "fusions", multiple=True,
              help="Also fuse all --retriever with this method (repeatable): rrf, weighted.")
@click.option("--k", "ks", default=DEFAULT_KS, show_default=True, help="Pool sizes K, comma-separated.")
@click.option("--rrf-k", "rrf_k", default=60.0, show_default=True, type=float, help="RRF constant k0 (> 0).")
@click.option("--alpha", default=0.5, show_default=True, type=float,
              help="Weighted fusion: weight of the first --retriever.")
@click.option("--norm", default="minmax", show_default=True, type=click.Choice(["minmax", "zscore", "rank"]))
@click.option("--context", default=0, show_default=True, type=int,
              help="Neighbouring sentences each side read with a candidate.")
@click.option("--device", default=None)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the candidate cache.")
@click.option("--output", default=None, help="Also write one TREC run per row (deepest K) into this folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bars or lines (rrbench's nor the libraries').")
def candidates(task_name: str, split: str, retrievers: tuple[str, ...], fusions: tuple[str, ...], ks: str,
               rrf_k: float, alpha: float, norm: str, context: int, device: str | None, no_cache: bool,
               output: str | None, as_json: bool, quiet: bool) -> None:
    """Recall@K of each retriever and each fusion of them on a task split; caches the candidate sets.

    R@K is averaged over has-evidence queries. Later `rrbench run` calls with the same task, split, retrievers
    and K <= the deepest K here reuse the cached candidates without loading the retriever models.
    """

    if quiet:
        set_quiet()
    if context < 0:
        raise UsageError(f"--context must be >= 0, got {context}")
    if output and Path(output).exists() and not Path(output).is_dir():
        raise UsageError(f"--output {output} exists and is not a folder")
    result = candidates_table(task_name, split, retrievers, fusions, _parse_ks(ks), rrf_k, alpha, norm,
                              context, device, use_cache=not no_cache)
    written = _write_runs(result, output) if output else []
    task, keys = result["task"], [f"R@{k}" for k in result["ks"]]
    if as_json:
        click.echo(strict_json_dumps({
            "task": task.id, "version": task.version, "scope": task.spec.scope, "split": split,
            "queries": len(result["queries"]), "has_evidence": result["has_evidence"], "context": context,
            "candidates_in_scope_median": result["candidates_in_scope_median"],
            "rows": [{"generator": r["generator"], "label": r["label"], "cached": r["cached"],
                      "seconds": r["seconds"], **r["recall"]} for r in result["rows"]],
            "runs": written}), nl=False)
        return
    click.echo(f"task {task.id}@{task.version} ({task.spec.scope} scope, median "
               f"{result['candidates_in_scope_median']} candidates per query)  split {split}: "
               f"{len(result['queries'])} queries, {result['has_evidence']} with evidence"
               + (f"  context ±{context}" if context else ""))
    width = max(len("generator"), *(len(r["label"]) for r in result["rows"]))
    click.echo(f"{'generator':<{width}}  " + "  ".join(f"{k:>7}" for k in keys) + "  source")
    for r in result["rows"]:
        values = "  ".join(f"{r['recall'][k]:>7.4f}" if r["recall"][k] is not None else f"{'-':>7}" for k in keys)
        source = "cache" if r["cached"] else (f"{r['seconds']:.1f}s" if "fusion" not in r else "fused")
        click.echo(f"{r['label']:<{width}}  {values}  {source}")
    capped = [k for k in result["ks"] if k > result["candidates_in_scope_median"]]
    if capped:
        click.echo(f"note: K={','.join(map(str, capped))} exceed the median scope size; pools are capped at "
                   f"the candidates in scope")
    for path in written:
        click.echo(f"wrote {path}")
