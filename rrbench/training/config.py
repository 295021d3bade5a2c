"""The training configuration: every knob of ``rrbench train`` in one validated, JSON-ready dataclass."""

from __future__ import annotations

import math
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any

from rrbench.records.ledger import test_split_use
from rrbench.util.errors import UsageError


@dataclass
class TrainConfig:
    """Defaults are a small, safe R1-like run; regimes and flags override them (see regimes.resolve_config)."""

    output: str = ""
    task: str = "scifact-evidence"
    base: str = "minilm-l6"
    loss: str = "bce"
    miner: str = "n3-mixed"
    regime: str | None = None
    train: bool = True
    train_split: str = "train"
    eval_split: str = "dev_select"
    epochs: float = 1.0
    max_steps: int = -1
    lr: float = 2e-5
    warmup: float = 0.1  # < 1: a fraction of the steps; >= 1: a number of steps
    batch_size: int = 16
    max_length: int = 256
    seed: int = 13
    negatives: int = 4
    group_size: int | None = None
    instruction: str | None = None
    context_window: int = 0
    graded_labels: bool = False
    include_no_evidence: bool = True
    head: str = "cls"  # cls: sequence-classification head on [CLS]; mean: linear layer on mean-pooled tokens
    loss_options: dict[str, Any] = field(default_factory=dict)
    miner_options: dict[str, Any] = field(default_factory=dict)
    curriculum: dict[str, Any] | None = None
    teacher: str | None = None
    eval_steps: int | None = None  # None: evaluate once per epoch
    patience: int | None = None  # early stopping after this many evaluations without improvement
    select_best: bool = True  # keep the checkpoint with the best selection-split nDCG@10, not the last one
    eval_batch_size: int = 64
    bf16: bool = False
    threads: int | None = None  # torch intra-op threads (None: torch's default); speed only, not in the hash
    keep_checkpoints: bool = False

    def validate(self) -> None:
        if not self.output:
            raise UsageError("--output DIR is required")
        checks = [
            (self.epochs > 0 or self.max_steps > 0, f"--epochs must be > 0, got {self.epochs}"),
            (self.lr > 0 and math.isfinite(self.lr), f"--lr must be a positive number, got {self.lr}"),
            (self.warmup >= 0, f"--warmup must be >= 0, got {self.warmup}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.max_length >= 8, f"--max-length must be >= 8, got {self.max_length}"),
            (self.negatives >= 0, f"--negatives must be >= 0, got {self.negatives}"),
            (self.group_size is None or self.group_size >= 1, f"--group-size must be >= 1, got {self.group_size}"),
            (self.context_window >= 0, f"--context-window must be >= 0, got {self.context_window}"),
            (self.eval_steps is None or self.eval_steps >= 1, f"--eval-steps must be >= 1, got {self.eval_steps}"),
            (self.patience is None or self.patience >= 1, f"--patience must be >= 1, got {self.patience}"),
            (self.train_split != self.eval_split, "--eval-split must differ from the training split"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        test_split_use(self.train_split, False, "--train-split", reads_labels_for="training")
        test_split_use(self.eval_split, False, "--eval-split", reads_labels_for="model selection and calibration")
        if self.patience and not self.select_best:
            raise UsageError("--patience (early stopping) needs best-checkpoint selection; drop --no-select-best")
        if self.curriculum:
            fraction = float(self.curriculum.get("warmup_fraction", 0.3))
            if not 0 < fraction <= 5:
                raise UsageError(f"curriculum warmup_fraction must be in (0, 5] epochs, got {fraction}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def identity(self) -> dict[str, Any]:
        """What must match for a resumed run to continue this one (not where it is written or how it is shown)."""
        out = self.as_dict()
        for key in ("output", "keep_checkpoints", "eval_batch_size", "threads"):
            out.pop(key)
        return out


#: TrainConfig fields set only through a regime or recipe (no flag of their own), and fields that never change the
#: trained weights (speed, where it goes): neither appears in :func:`train_command` as a flag.
_NO_FLAG = {"regime", "train", "curriculum", "output", "threads", "keep_checkpoints", "eval_batch_size",
            "loss_options", "miner_options"}
_SWITCHES = {"include_no_evidence": ("--no-evidence-rows", "--no-no-evidence-rows"),
             "graded_labels": ("--graded-labels", "--binary-labels"),
             "select_best": ("--select-best", "--no-select-best")}
_FLAG_NAMES = {"context_window": "--context"}


def train_command(config: TrainConfig) -> str:
    """The ``rrbench train`` command that trains this configuration again: the regime or recipe, then every setting
    as an explicit flag (flags win over a regime), so the line stays right when a regime's defaults change. Records
    carry it in their training manifest; ``rrbench reproduce`` quotes it when the checkpoint is not on the machine."""
    parts = ["rrbench", "train"]
    if config.regime:
        parts += ["--regime", config.regime]
    for name, value in config.as_dict().items():
        if name in _NO_FLAG or value is None:
            continue
        if name in _SWITCHES:
            parts.append(_SWITCHES[name][0 if value else 1])
        elif name == "bf16":
            parts += ["--bf16", "on" if value else "off"]
        else:
            parts += [_FLAG_NAMES.get(name, "--" + name.replace("_", "-")), str(value)]
    for flag, options in (("--loss-option", config.loss_options), ("--miner-option", config.miner_options)):
        for key, value in sorted((options or {}).items()):
            if value is not None:
                parts += [flag, f"{key}={value}"]
    # Only the folder's name: the manifest is hashed into the checkpoint's claim, and a path of the machine that
    # trained it would make two honest runs of one recipe differ.
    parts += ["--output", PurePath(config.output).name]
    return shlex.join(parts)

