"""``rrbench tasks export NAME --format hf DIR``: a task as Parquet files + ``task.yaml``, ready for a hub."""

from __future__ import annotations

from typing import Any

import click


def register(cli: Any) -> None:
    tasks = cli.commands["tasks"]

    @tasks.command("export")
    @click.argument("name")
    @click.argument("directory")
    @click.option("--format", "fmt", default="hf", show_default=True, type=click.Choice(["hf"]),
                  help="hf: Parquet files (the Hugging Face datasets format) with a task.yaml pinning their sha256.")
    def export(name: str, directory: str, fmt: str) -> None:
        """Write task NAME (id, alias or folder) in another format; the copy validates like the original."""
        from rrbench.tasks import get_task, load_task_dir
        from rrbench.tasks.hf import export_hf

        out = export_hf(get_task(name), directory)
        task = load_task_dir(out)
        click.echo(f"exported {task.id}@{task.version} to {out} ({fmt}: posts, queries, qrels"
                   f"{', splits' if task.spec.splits.assignment else ''} as Parquet)")
