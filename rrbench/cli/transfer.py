"""``rrbench transfer``: a system's decision fitted on each task and applied on every other (see rrbench.hpo.transfer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from rrbench.hpo.transfer import POLICIES, load_splits, render, transfer_table
from rrbench.pipeline.runner import RunConfig, load_config_file
from rrbench.util.errors import UsageError
from rrbench.util.io import atomic_write_text, strict_json_dumps
from rrbench.util.progress import set_quiet

#: fields of a --config file that say where a system ran or how it decided, not what it is: transfer sets them
_PER_CELL = ("task", "split", "calibrate_on", "calibrate_task", "calibrator", "threshold", "threshold_max_fe", "cross_fit",
             "selected_on", "selected_max_fe", "output", "final")


def task_list(text: str, flag: str = "--tasks") -> list[str]:
    """``A,B,C`` as a list of task names; ``all`` is refused (it would depend on what happens to be installed)."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if any(n.lower() == "all" for n in names):
        raise UsageError(f"{flag} all is not offered: name the tasks (what is installed differs between machines)")
    if len(names) != len(set(names)):
        raise UsageError(f"{flag} names a task twice: {text}")
    return names


@click.command("transfer")
@click.option("--tasks", "tasks_text", required=True, help="Comma-separated task ids (at least two): A,B.")
@click.option("--config", "config_file", default=None,
              help="The system as a run configuration file (e.g. a sweep's best.yaml); its task, split and decision "
                   "settings are replaced by each cell's.")
@click.option("--retriever", multiple=True, help="Retriever id (repeat with --fusion in the config file).")
@click.option("--reranker", multiple=True, help="Reranker id or checkpoint (repeat for an ensemble).")
@click.option("--model-path", default=None, help="Local weights for the --reranker spec.")
@click.option("--top-k-retriever", "top_k_retriever", default=None, type=int, help="Pool size K.")
@click.option("--top-k-rerank", "top_k_rerank", default=None, type=int, help="Reranked head N.")
@click.option("--interpolate", default=None, type=float, help="Weight beta of the retriever score.")
@click.option("--abstain", default=None, type=click.Choice(["max", "margin"]), help="Abstention policy.")
@click.option("--policy", "policies", multiple=True, type=click.Choice(sorted(POLICIES)),
              help="Decision policies to transfer (default: fit and max-fe).")
@click.option("--fe-budget", "fe_budget", default=0.1, show_default=True, type=float,
              help="False-evidence budget: the max-fe policy's target and the 'within budget' line.")
@click.option("--fit-split", default="dev_select", show_default=True, help="Split each source fits on.")
@click.option("--eval-split", default="dev_final", show_default=True, help="Split each target is evaluated on.")
@click.option("--no-curve", is_flag=True, help="Skip the label curve.")
@click.option("--output", default=None, help="Folder for transfer.json and transfer.md (default: print the table).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def transfer_cmd(tasks_text: str, config_file: str | None, policies: tuple[str, ...], fe_budget: float,
                 fit_split: str, eval_split: str, no_curve: bool, output: str | None, quiet: bool,
                 **flags: Any) -> None:
    """Fit a system's decision on each task and apply it on every other: FE with Wilson bounds, shift, label curve."""
    if quiet:
        set_quiet()
    tasks = task_list(tasks_text)
    if len(tasks) < 2:
        raise UsageError("--tasks needs at least two tasks (A,B)")
    if not 0.0 <= fe_budget <= 1.0:
        raise UsageError(f"--fe-budget must be within [0, 1], got {fe_budget}")
    values: dict[str, Any] = dict(load_config_file(config_file)) if config_file else {}
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    for key in _PER_CELL:
        values.pop(key, None)
    for name, value in flags.items():
        if value not in (None, ()):
            values[name] = value
    values["show_progress"] = False if quiet else None
    config = RunConfig.from_mapping({**values, "task": tasks[0]}, config_file or "rrbench transfer")
    config.validate()
    splits = load_splits(config, tasks, fit_split, eval_split)
    table = transfer_table(config, splits, policies or ("fit", "max-fe"), fe_budget, fit_split, eval_split,
                           curve=not no_curve)
    system = " → ".join(filter(None, ["+".join(config.retriever_ids()), "+".join(config.reranker_ids())]))
    table["system"] = {"label": system, "config": config.to_file_dict()}
    text = render(table, system)
    if output:
        folder = Path(output)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "transfer.json", strict_json_dumps(table))
        atomic_write_text(folder / "transfer.md", text)
        click.echo(f"wrote {folder / 'transfer.json'} and {folder / 'transfer.md'}")
    click.echo(text, nl=False)
