"""The table of rrbench's own commands: where each lives and its one-line help.

``rrbench --help`` prints this table without importing the command modules, so listing commands costs no more than
importing click; a command's module (and everything it needs) is imported only when the command runs.
``tests/cli/test_cli_errors.py`` checks every line against the command's own docstring.
"""

from __future__ import annotations

#: command name -> ("module:attribute", one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "bench": ("rrbench.cli.bench:bench",
              "Measure rerankers: speed and memory on a task's real pairs (real weights or architecture replicas)."),
    "cache": ("rrbench.cli.cache:cache",
              "Inspect, clear, export and import the score store ($RRBENCH_CACHE or ~/.cache/rrbench)."),
    "candidates": ("rrbench.cli.candidates:candidates",
                   "Recall@K of each retriever and each fusion of them on a task split; caches the candidate sets."),
    "check": ("rrbench.cli.check:check",
              "Conformance checks of a component on the built-in mini task (finite, deterministic, invariant)."),
    "compare": ("rrbench.cli.records:compare_cmd",
                "Paired randomisation test of A against B over the queries both scored (is A really better?)."),
    "evaluate": ("rrbench.cli.records:evaluate_cmd",
                 "Score a TREC run made by any system with rrbench's metrics and record format."),
    "gate": ("rrbench.cli.records:gate_cmd",
             "Fail (exit 1) only on a significant regression of the candidate against the baseline."),
    "leaderboard": ("rrbench.cli.records:leaderboard_group",
                    "Build and check the leaderboard from published records."),
    "list": ("rrbench.cli.components:list_components",
             "List registered components of one KIND."),
    "matrix": ("rrbench.cli.matrix:matrix",
               "The experiment matrix: plan, run (any number of workers) and follow a research program from one file."),
    "new-plugin": ("rrbench.cli.new_plugin:new_plugin",
                   "Scaffold a plugin package: pyproject with entry point, example component, tests, README, CI workflow."),
    "plot": ("rrbench.cli.sweep:plot",
             "Figures from result records."),
    "plugins": ("rrbench.cli.components:plugins",
                "Show installed plugins: distribution, version, hooks, status, problems and name clashes."),
    "publish": ("rrbench.cli.records:publish_cmd",
                "Verify a result record and file it under <task>@<version>/<split>/<system>-<hash>/ (with SHA256SUMS)."),
    "reproduce": ("rrbench.cli.records:reproduce_cmd",
                  "Re-run the configuration of a result record and compare its metrics (exit 1 if they differ)."),
    "run": ("rrbench.cli.run:run",
            "Evaluate a retriever (+ optional rerankers) on a task split and write results.json, run.trec, qrels.trec."),
    "sweep": ("rrbench.cli.sweep:sweep",
              "Tier A: search inference settings over cached scores (no model call), nDCG@10 s.t."),
    "tasks": ("rrbench.cli.tasks:tasks",
              "Inspect tasks."),
    "train": ("rrbench.cli.train:train_command",
              "Fine-tune a reranker; writes a checkpoint that `rrbench run --reranker DIR` evaluates."),
    "transfer": ("rrbench.cli.transfer:transfer_cmd",
                 "Fit a system's decision on each task and apply it on every other: FE with Wilson bounds, shift, label curve."),
    "validate-task": ("rrbench.cli.tasks:validate_task",
                      "Check a task spec and its data files (hashes, ids, labels, splits)."),
}
