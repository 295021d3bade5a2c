"""``rrbench train``: data -> negatives -> rows -> CrossEncoderTrainer phases -> checkpoint + manifest.

The loop itself is sentence-transformers' CrossEncoderTrainer (a Hugging Face Trainer): it owns the optimiser,
schedule, progress bars, checkpointing with RNG states (so a resumed run continues bit-for-bit), and early stopping
on the selection split's nDCG@10. rrbench adds what that trainer does not know: the task's data construction, the
miners, curriculum phases, distillation from cached teacher scores, threshold calibration and the manifest.

Output folder layout (``--output DIR``; ``rrbench run --reranker DIR`` evaluates it):

- the model files and ``rrbench_model.json`` (base, score kind, max length, weights sha256, training summary);
- ``train_config.json`` (the resolved configuration), ``train_log.jsonl`` (loss/lr per logging step),
  ``train_metrics.jsonl`` (selection-split metrics per evaluation), ``train_summary.json``;
- ``.checkpoints/`` while training (Trainer checkpoints per phase; removed at the end unless --keep-checkpoints).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rrbench.components.calls import load_factory, owner_label, running
from rrbench.components.identity import weights_fingerprint
from rrbench.components.registry import resolve
from rrbench.components.specs import validate_options
from rrbench.measures.names import trainer_key
from rrbench.models import weights_index
from rrbench.models.checkpoint import CHECKPOINT_META
from rrbench.tasks.resolve import get_task
from rrbench.training.config import TrainConfig, train_command
from rrbench.training.data import DataOptions, build, options_dict
from rrbench.training.losses import check_group_size
from rrbench.training.miners import load_miner
from rrbench.training.model import load_base, resolve_base, save_checkpoint
from rrbench.training.model import load_base as _reload
from rrbench.training.teacher import cached_teacher, is_record_folder, recorded_teacher
from rrbench.training.validation import evaluate_model, make_evaluator
from rrbench.util.errors import RRBenchError, UsageError
from rrbench.util.extras import EXTRAS, check_extra
from rrbench.util.io import atomic_write_text, canonical_hash, read_json_object, strict_json_dumps, sweep_stale
from rrbench.util.progress import set_quiet

CONFIG_FILE = "train_config.json"
SUMMARY_FILE = "train_summary.json"
CHECKPOINTS = ".checkpoints"


def _phases(config: TrainConfig) -> list[dict[str, Any]]:
    """One phase per loss: a curriculum prepends a warm-up phase lasting a fraction of an epoch."""
    main = {"name": "main", "loss": config.loss, "loss_options": dict(config.loss_options), "epochs": config.epochs,
            "max_steps": config.max_steps, "evaluate": True}
    if not config.curriculum:
        return [main]
    warm = config.curriculum
    return [{"name": "warmup", "loss": warm.get("warmup_loss", "bce"), "loss_options": dict(warm.get("options", {})),
             "epoch_fraction": float(warm.get("warmup_fraction", 0.3)), "evaluate": False}, main]


def _loss_spec(name: str) -> Any:
    return resolve("losses", name).spec


def _latest_checkpoint(directory: Path) -> str | None:
    found = sorted(directory.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    complete = [p for p in found if (p / "trainer_state.json").is_file()]
    return str(complete[-1]) if complete else None


def _prepare_output(config: TrainConfig, out: Path, overwrite: bool) -> str:
    """Create or reopen the output folder; a reopened one must hold a run with the same configuration."""
    config_hash = canonical_hash(config.identity())
    existing = out / CONFIG_FILE
    if overwrite and out.exists():
        shutil.rmtree(out)
    sweep_stale(out, CONFIG_FILE)  # a run killed while writing its config left only this temporary (kill -9 suite)
    if existing.is_file():
        stored = read_json_object(existing)
        if stored.get("config_hash") != config_hash:
            raise UsageError(f"{out} holds a training run with a different configuration; "
                             f"use another --output or pass --overwrite")
    elif out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not an rrbench training folder; use another --output")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(existing, strict_json_dumps({"config_hash": config_hash, "config": config.as_dict()}))
    return config_hash


def _log_callback(path: Path) -> Any:
    from transformers import TrainerCallback  # lazy: heavy: pulls in torch

    class JsonLog(TrainerCallback):
        """Append the Trainer's log entries (loss, learning rate, grad norm) as JSON lines."""

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if logs:
                row = {"step": state.global_step, "epoch": state.epoch,
                       **{k: v for k, v in logs.items() if isinstance(v, (int, float)) and math.isfinite(v)}}
                with open(path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(row) + "\n")

    return JsonLog()


def _final_eval_callback() -> Any:
    """Evaluate (and save) at the last step too, so the end of training is a candidate for selection."""
    from transformers import TrainerCallback  # lazy: heavy: pulls in torch

    class FinalEval(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if state.max_steps and state.global_step >= state.max_steps:
                control.should_evaluate = True
                control.should_save = True
            return control

    return FinalEval()


def _training_args(config: TrainConfig, phase: dict[str, Any], directory: Path, rows: int, evaluate: bool,
                   show_progress: bool) -> Any:
    from sentence_transformers.base.sampler import BatchSamplers  # lazy: heavy: pulls in torch
    from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments  # lazy: heavy: pulls in torch

    steps_per_epoch = max(1, math.ceil(rows / config.batch_size))
    max_steps = int(phase.get("max_steps", -1) or -1)
    if "epoch_fraction" in phase:
        max_steps = max(1, math.ceil(phase["epoch_fraction"] * steps_per_epoch))
    total = max_steps if max_steps > 0 else math.ceil(steps_per_epoch * phase["epochs"])
    eval_steps = config.eval_steps or steps_per_epoch
    # transformers 5 takes a float warmup_steps < 1 as a ratio (warmup_ratio is deprecated there).
    warmup = {"warmup_steps": float(config.warmup) if config.warmup < 1 else int(config.warmup)}
    grouped = _loss_spec(phase["loss"]).input_format in ("grouped", "distill-margin")
    kwargs: dict[str, Any] = dict(
        output_dir=str(directory), seed=config.seed, data_seed=config.seed, learning_rate=config.lr,
        per_device_train_batch_size=config.batch_size, num_train_epochs=phase.get("epochs", 1.0),
        max_steps=max_steps, logging_steps=max(1, min(25, total // 20 or 1)), report_to="none", use_cpu=_cpu_only(),
        bf16=config.bf16, disable_tqdm=not show_progress, save_strategy="steps", save_steps=eval_steps,
        save_total_limit=2 if evaluate else 1, dataloader_num_workers=0,
        # In-batch negatives must not be another row of the same query (several positives per query).
        batch_sampler=BatchSamplers.NO_DUPLICATES if grouped else BatchSamplers.BATCH_SAMPLER, **warmup)
    if evaluate:
        kwargs.update(eval_strategy="steps", eval_steps=eval_steps, load_best_model_at_end=config.select_best,
                      metric_for_best_model=trainer_key("nDCG@10"), greater_is_better=True)
    return CrossEncoderTrainingArguments(**kwargs), total


def _cpu_only() -> bool:
    import torch  # lazy: torch costs seconds at start-up

    return not torch.cuda.is_available()


def train(config: TrainConfig, overwrite: bool = False, show_progress: bool = True,
          callbacks: Sequence[Any] = (), cache_dir: str | None = None) -> dict[str, Any]:
    """Run (or resume) one training run; returns the summary also written to ``train_summary.json``."""
    return run_training(config, overwrite, show_progress, callbacks, cache_dir)[1]


def run_training(config: TrainConfig, overwrite: bool = False, show_progress: bool = True,
                 callbacks: Sequence[Any] = (), cache_dir: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Like :func:`train`, also returning the trained in-memory model (None when the folder was already complete)."""

    config.validate()
    for module in EXTRAS["train"][0]:  # before the output folder exists: a missing extra leaves nothing behind
        check_extra("train", module)
    if not show_progress:
        set_quiet()  # before anything loads a model (a teacher's weights): no library bar may slip through
    started = time.perf_counter()
    out = Path(config.output)
    task = get_task(config.task)
    train_queries = sorted(task.split_queries(config.train_split), key=lambda q: q.query_id)
    task.split_queries(config.eval_split)  # fail early on a bad split name
    if task.spec.scope != "post":
        raise UsageError(f"rrbench train needs a post-scope task (negatives are mined inside a query's post); "
                         f"task {task.id!r} has {task.spec.scope} scope")
    if not train_queries and config.train:
        raise UsageError(f"task {task.id!r} split {config.train_split!r} has no queries to train on")

    phases = _phases(config)
    specs = {p["name"]: _loss_spec(p["loss"]) for p in phases}
    loss_options = {p["name"]: validate_options(specs[p["name"]], p["loss_options"]) for p in phases}
    for name, spec in specs.items():
        if spec.input_format in ("listwise", "grouped"):
            size = (config.negatives + 1) if spec.input_format == "grouped" else (config.group_size or
                                                                                  config.negatives + 1)
            check_group_size(spec.id, loss_options[name], size)
    if config.teacher is None and any(s.input_format.startswith("distill") for s in specs.values()):
        raise UsageError(f"loss {config.loss} distils a teacher: pass --teacher RERANKER (with cached scores)")
    teacher = None
    if config.teacher is not None:
        teacher = (recorded_teacher(config.teacher, task, config.train_split) if is_record_folder(config.teacher)
                   else cached_teacher(config.teacher, task, config.train_split, cache_dir))
    base_path, base_info = resolve_base(config.base)

    config_hash = _prepare_output(config, out, overwrite)

    if (out / CHECKPOINT_META).is_file() and (out / SUMMARY_FILE).is_file():
        summary = read_json_object(out / SUMMARY_FILE)
        summary["resumed"] = "already complete"
        return None, summary
    # the heavy libraries load only now: every check above answers within a second or two (issue 14, defect 4)
    import torch
    import transformers  # lazy: heavy: pulls in torch
    from datasets import Dataset  # lazy: optional (train extra)
    from sentence_transformers.cross_encoder import CrossEncoderTrainer  # lazy: heavy: pulls in torch

    if config.threads:
        torch.set_num_threads(config.threads)
    transformers.set_seed(config.seed)
    generative = loss_options[phases[-1]["name"]]
    model = load_base(base_path, config.max_length, generative.get("positive_token", "yes"),
                      generative.get("negative_token", "no"), head=config.head)

    data_options = DataOptions(instruction=config.instruction, context_window=config.context_window,
                               negatives=config.negatives, group_size=config.group_size,
                               graded_labels=config.graded_labels, include_no_evidence=config.include_no_evidence)
    miner = load_miner(config.miner, seed=config.seed, **config.miner_options)
    negatives = miner.mine(task, train_queries, config.negatives) if config.train else {}

    phase_reports = []
    for index, phase in enumerate(phases if config.train else []):
        spec = specs[phase["name"]]
        directory = out / CHECKPOINTS / f"phase{index}-{spec.id}"
        data = build(task, train_queries, spec.input_format, negatives, data_options, seed=config.seed,
                     teacher=teacher, min_group_size=loss_options[phase["name"]].get("min_group_size"))
        done = directory / "phase_done.json"
        if done.is_file():  # finished before an interruption: reload its result and move on
            model = _reload(directory / "final", config.max_length)
            phase_reports.append(read_json_object(done))
            continue

        builder = load_factory("losses", spec)
        with running(owner_label("losses", spec), "building the loss"):
            loss = builder(model, **loss_options[phase["name"]])
        args, total = _training_args(config, phase, directory, len(data), phase["evaluate"], show_progress)
        evaluator = (make_evaluator(task, config.eval_split, out / "train_metrics.jsonl", config.instruction,
                                    config.context_window, config.eval_batch_size) if phase["evaluate"] else None)
        extra = [_log_callback(out / "train_log.jsonl"), *callbacks]
        if phase["evaluate"]:
            extra.insert(0, _final_eval_callback())
        if phase["evaluate"] and config.patience:
            from transformers import EarlyStoppingCallback  # lazy: heavy: pulls in torch

            extra.append(EarlyStoppingCallback(early_stopping_patience=config.patience))
        trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=Dataset.from_dict(data.columns),
                                      loss=loss, evaluator=evaluator, callbacks=extra)
        if not show_progress:
            from transformers.trainer_callback import PrinterCallback  # lazy: heavy: pulls in torch

            trainer.remove_callback(PrinterCallback)
        resume = _latest_checkpoint(directory)
        phase_started = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=resume)
        report = {"phase": phase["name"], "loss": spec.id, "input_format": spec.input_format,
                  "loss_options": loss_options[phase["name"]], "rows": len(data), "data": data.stats,
                  "steps": int(trainer.state.global_step), "planned_steps": int(total),
                  "train_loss": float(result.training_loss), "resumed_from": resume,
                  "best_checkpoint_step": _step_of(trainer.state.best_model_checkpoint),
                  "best_metric": trainer.state.best_metric, "seconds": round(time.perf_counter() - phase_started, 2)}
        if len(phases) > 1 and index < len(phases) - 1:
            model.save_pretrained(str(directory / "final"))
            atomic_write_text(done, strict_json_dumps(report))
        phase_reports.append(report)

    final = evaluate_model(model, task, config.eval_split, config.instruction, config.context_window,
                           config.eval_batch_size, calibrate=True)
    seconds = round(time.perf_counter() - started, 2)
    summary = {
        "config_hash": config_hash, "regime": config.regime, "loss": config.loss, "miner": miner.describe(),
        "data_options": options_dict(data_options), "phases": phase_reports, "base_model": base_info,
        "eval_split": config.eval_split, "eval": {k: v for k, v in final.items() if k != "calibration"},
        "threshold_calibration": final["calibration"],
        # where the threshold was fitted: `--threshold checkpoint` is refused on this task's split, not on another's
        "threshold_fitted_on": {"task": task.id, "version": task.version, "data_sha256": task.data_sha256,
                                "split": config.eval_split},
        "train_seconds": seconds,
        "torch_threads": torch.get_num_threads(), "teacher": config.teacher,
        "command": train_command(config),  # how to obtain these weights again (rrbench reproduce quotes it)
    }
    save_checkpoint(model, out, base_info, config.max_length, training=summary)
    atomic_write_text(out / SUMMARY_FILE, strict_json_dumps(summary))
    if not config.keep_checkpoints:
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    weights_index.remember(weights_fingerprint(out), out)  # records name weights by hash; this finds them again
    return model, summary


def _step_of(checkpoint: str | None) -> int | None:
    if not checkpoint:
        return None
    try:
        return int(str(checkpoint).rsplit("-", 1)[-1])
    except ValueError:
        raise RRBenchError(f"unexpected checkpoint name {checkpoint}") from None
