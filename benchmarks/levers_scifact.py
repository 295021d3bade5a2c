"""One lever at a time: retrain a matrix cell with a single training option changed and print what it did.

The matrix compares regimes; this script measures the knobs inside one regime that the matrix holds fixed
(head, rows from no-evidence queries, pos_weight, negatives per query, length, epochs, learning rate). Each variant starts from
the exact training configuration of a finished matrix cell (its ``train_config.json``), changes one option,
and trains through the same code path as Tier B, so the baseline row is the cell itself and every difference is
the lever's. Every variant writes its own folder and resumes there, so the script can be interrupted and re-run.

    python benchmarks/levers_scifact.py --matrix-run runs/matrix-scifact-mean --output runs/levers \
        --lever cls-head --lever no-evidence-rows --lever pos-weight-4

Prints dev_select nDCG@10 per variant, its difference to the cell and the training time, and writes
``OUTPUT/levers.json``. The numbers are on the selection split, as the matrix's Tier B table is.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: lever name -> the options it changes in the cell's training configuration
LEVERS: dict[str, dict[str, Any]] = {
    "cls-head": {"head": "cls"},
    "mean-head": {"head": "mean"},
    "no-evidence-rows": {"include_no_evidence": True},
    "no-no-evidence-rows": {"include_no_evidence": False},
    "pos-weight-4": {"loss_options": {"pos_weight": 4.0}},
    "negatives-8": {"negatives": 8},
    "max-length-256": {"max_length": 256},
    "one-epoch": {"epochs": 1.0},
    "three-epochs": {"epochs": 3.0},
    "lr-6e-5": {"lr": 6e-5},
}


def find_cell(matrix_run: Path, regime: str) -> Path:
    """The ``train_runs/CELL`` folder of the finished cell with regime ``regime``."""
    for cell_file in sorted(matrix_run.glob("train_runs/*/cell.json")):
        cell = json.loads(cell_file.read_text(encoding="utf-8"))["cell"]
        if cell["R"] == regime and (cell_file.parent / "model" / "train_config.json").is_file():
            return cell_file.parent
    sys.exit(f"{matrix_run}: no finished cell with regime {regime} (run the matrix first)")


def variant_config(base: dict[str, Any], changes: dict[str, Any], output: Path) -> dict[str, Any]:
    """``base`` with ``changes`` applied (option dictionaries are merged, not replaced) and a new output folder."""
    config = {**base, "output": str(output)}
    for key, value in changes.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matrix-run", type=Path, required=True, help="output folder of a finished `matrix run`")
    parser.add_argument("--regime", default="r1", help="which cell to start from (its R)")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--lever", action="append", choices=sorted(LEVERS), required=True)
    args = parser.parse_args(argv)

    from rrbench.util.io import atomic_write_text
    from rrbench.training.config import TrainConfig
    from rrbench.training.trainer import train

    cell_dir = find_cell(args.matrix_run, args.regime)
    base = json.loads((cell_dir / "model" / "train_config.json").read_text(encoding="utf-8"))["config"]
    base_summary = json.loads((cell_dir / "model" / "train_summary.json").read_text(encoding="utf-8"))
    rows = [{"lever": f"cell {cell_dir.name} (R={args.regime})", "changes": {},
             "nDCG@10": base_summary["eval"]["nDCG@10"], "train_seconds": base_summary["train_seconds"]}]
    for lever in args.lever:
        changes = LEVERS[lever]
        values = variant_config(base, changes, args.output / lever)
        if {**values, "output": base["output"]} == base:
            print(f"{lever}: the cell already has {changes}; skipped", file=sys.stderr)
            continue
        config = TrainConfig(**values)
        config.validate()
        summary = train(config, show_progress=True)
        rows.append({"lever": lever, "changes": changes, "nDCG@10": summary["eval"]["nDCG@10"],
                     "train_seconds": summary["train_seconds"]})
    args.output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.output / "levers.json", json.dumps({"cell": str(cell_dir), "rows": rows}, indent=2) + "\n")
    reference = rows[0]["nDCG@10"]
    print(f"{'lever':<34} {'dev_select nDCG@10':>19} {'vs cell':>8} {'train s':>8}")
    for row in rows:
        print(f"{row['lever']:<34} {row['nDCG@10']:>19.4f} {row['nDCG@10'] - reference:>+8.4f} "
              f"{row['train_seconds']:>8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
