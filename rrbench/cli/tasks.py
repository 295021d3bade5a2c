"""``rrbench tasks ...`` and ``rrbench validate-task``: inspect, check, import and export tasks."""

from __future__ import annotations

import click

from rrbench.cli.output import echo_json
from rrbench.components.registry import get_registry
from rrbench.tasks.beir import import_beir
from rrbench.tasks.folders import user_tasks_dir
from rrbench.tasks.hf import export_hf
from rrbench.tasks.resolve import get_task, load_task_dir


@click.command("validate-task")
@click.argument("path")
def validate_task(path: str) -> None:
    """Check a task spec and its data files (hashes, ids, labels, splits)."""

    task = load_task_dir(path)
    stats = task.split_stats()
    click.echo(f"ok: task {task.id}@{task.version} ({task.spec.scope} scope): {len(task.post_ids)} posts, "
               f"{len(task.sentences)} sentences, {len(task.queries)} queries; splits "
               + ", ".join(f"{s} {v['queries']}" for s, v in stats.items()))


@click.group()
def tasks() -> None:
    """Inspect tasks."""


@tasks.command("show")
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True)
def tasks_show(task_id: str, as_json: bool) -> None:
    """Per split: posts, sentences, queries, has-evidence, no-evidence, evidence sentences."""

    task = get_task(task_id)
    stats = task.split_stats()
    info = {"id": task.id, "version": task.version, "scope": task.spec.scope, "main_score": task.spec.main_score,
            "license": task.spec.license, "data_sha256": task.data_sha256, "path": str(task.root), "splits": stats}
    if as_json:
        echo_json(info)
        return
    click.echo(f"{task.id}@{task.version}  scope {task.spec.scope}  main score {task.spec.main_score}")
    click.echo(f"license: {task.spec.license}")
    cols = ["posts", "sentences", "queries", "has_evidence", "no_evidence", "evidence_sentences"]
    click.echo(f"{'split':<11}" + "".join(f"{c:>19}" for c in cols))
    for split, row in stats.items():
        click.echo(f"{split:<11}" + "".join(f"{row[c]:>19}" for c in cols))


@tasks.command("list")
def tasks_list() -> None:
    """Registered tasks (same as `rrbench list tasks`)."""

    for e in get_registry().list("tasks"):
        click.echo(f"{e.id}  [{e.plugin}]  {e.spec.description}")


@tasks.command("import-beir")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--id", "task_id", required=True, help="Name of the new task (use it as --task NAME).")
@click.option("--force", is_flag=True, help="Replace an existing imported task of that name.")
def import_beir_command(directory: str, task_id: str, force: bool) -> None:
    """Turn a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) into a corpus-scope task.

    Candidates are whole documents (title + text); splits are the BEIR split names. The task is written to
    $RRBENCH_TASKS_DIR (default ~/.local/share/rrbench/tasks) and registered from there.
    """

    summary = import_beir(directory, task_id, user_tasks_dir(), force=force)
    click.echo(f"imported {task_id}: {summary['documents']} documents, {summary['queries']} queries, "
               f"splits {', '.join(f'{s} {n}' for s, n in summary['splits'].items())}; "
               f"written to {summary['path']}")
    for note in summary["notes"]:
        click.echo(f"note: {note}")


@tasks.command("export")
@click.argument("name")
@click.argument("directory")
@click.option("--format", "fmt", default="hf", show_default=True, type=click.Choice(["hf"]),
              help="hf: Parquet files (the Hugging Face datasets format) with a task.yaml pinning their sha256.")
def export(name: str, directory: str, fmt: str) -> None:
    """Write task NAME (id, alias or folder) in another format; the copy validates like the original."""

    out = export_hf(get_task(name), directory)
    task = load_task_dir(out)
    click.echo(f"exported {task.id}@{task.version} to {out} ({fmt}: posts, queries, qrels"
               f"{', splits' if task.spec.splits.assignment else ''} as Parquet)")
