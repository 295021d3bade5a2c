"""Tier A: how long `rrbench sweep` takes to find its best system, and trials per minute over cached scores.

Setup (issues 10 and 26): `scifact-evidence` dev_select, candidates from bm25 and the MiniLM dense retriever (so the
fusion dimensions are live), two cached rerankers (the MiniLM bi-encoder and a cross-encoder: `--model-path` of a
trained one, or a tiny one this script builds), FE budget 0.2. Filling the cache and building the per-generator
arrays are timed separately (they happen once per sweep); then, in one run:

- the CLI as users run it (`rrbench sweep`, TPE, SQLite storage, start-up and reports included), one subprocess per
  row: the default space, whose trials solve their decision and interpolation weight, at the default trial count;
  the space before issue 26 (`threshold_mode: [fixed, fit]`: the decision and the weight sampled) at the same count
  and at `--reference-trials` (the reference best). Each row: wall time, time to its best trial, time to the
  reference best, trials, best feasible nDCG@10;
- storage: the same TPE objective with Optuna's SQLite storage committing every parameter and attribute (how sweeps
  ran before issue 26), against rrbench's `run_trials` (an in-memory study, one transaction per finished trial);
- end to end in process: Optuna's RandomSampler with in-memory storage, trials/min (target >= 2,000 on 2 cores);
- rrbench alone: the same configurations evaluated without Optuna, evaluations/min (target >= 10,000, i.e. 6 ms),
  and a solved trial (weight scan, decision ladder, final evaluation), ms each;
- the sampler's own cost: the same suggest() calls with an objective that evaluates nothing.

    python benchmarks/sweep_tier_a.py [--model-path DIR] [--reference-trials 1000] [--json report.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: the space sweeps searched before issue 26: the decision and the interpolation weight are sampled dimensions
SAMPLED_SPACE = {"threshold_mode": ["fixed", "fit"]}


def cli_row(label: str, command: list[str], output: Path, reference: float | None) -> dict:
    """Run one `rrbench sweep` as a user would and read its study: wall time, time to the best trial, time to the
    reference best (the first feasible trial at or above it), trials, best value."""
    import optuna

    from rrbench.hpo.sweep import STUDY_FILE, trial_metrics

    spawned = time.time()
    done = subprocess.run([sys.executable, "-m", "rrbench.cli", "sweep", *command, "--output", str(output),
                           "--quiet"], capture_output=True, text=True)
    wall = time.time() - spawned
    if done.returncode != 0:
        raise SystemExit(f"{label}: rrbench sweep failed:\n{done.stderr[-3000:]}")
    best = json.loads((output / "best.json").read_text())
    storage = optuna.storages.RDBStorage(f"sqlite:///{output / STUDY_FILE}")
    (summary,) = optuna.get_all_study_summaries(storage)
    trials = [t for t in optuna.load_study(study_name=summary.study_name, storage=storage).trials
              if t.state == optuna.trial.TrialState.COMPLETE]
    feasible = [t for t in trials if trial_metrics(t).get("constraint", 1.0) <= 1e-12]

    def reached(value: float | None) -> tuple[int | None, float | None]:
        if value is None:
            return None, None
        hit = min((t for t in feasible if t.value >= value - 1e-9), key=lambda t: t.datetime_complete, default=None)
        return (hit.number, hit.datetime_complete.timestamp() - spawned) if hit else (None, None)

    value = best["metrics"]["nDCG@10"] if best.get("feasible") else None
    best_trial, to_best = reached(value)
    ref_trial, to_reference = reached(reference)
    return {"row": label, "trials": len(trials), "feasible": len(feasible), "best": value, "best_trial": best_trial,
            "wall_s": round(wall, 1), "to_best_s": None if to_best is None else round(to_best, 1),
            "reference_trial": ref_trial, "to_reference_s": None if to_reference is None else round(to_reference, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", default=None, help="a trained cross-encoder (default: a tiny one built here)")
    parser.add_argument("--task", default="scifact-evidence")
    parser.add_argument("--max-fe", type=float, default=0.2)
    parser.add_argument("--cli-trials", type=int, default=None, help="trials of the CLI rows (default: the CLI's)")
    parser.add_argument("--reference-trials", type=int, default=1000,
                        help="trials of the reference row (the space before issue 26); 0 skips it")
    parser.add_argument("--trials", type=int, default=2000, help="random-sampler trials of the in-process rows")
    parser.add_argument("--tpe-trials", type=int, default=300, help="trials of the storage rows")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache-dir", default=None, help="score cache (default: $RRBENCH_CACHE)")
    parser.add_argument("--json", default=None, help="also write the report here")
    args = parser.parse_args(argv)

    import optuna
    import torch
    import yaml

    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    from rrbench.hpo.space import load_space, parse_space
    from rrbench.hpo.sweep import (
        ScoreSource,
        SweepSetup,
        _variants,
        base_config,
        config_for,
        evaluate_config,
        generator_keys,
        objective_factory,
        run_trials,
        solve_config,
        suggest,
        trial_metrics,
    )

    if args.cache_dir:
        os.environ["RRBENCH_CACHE"] = args.cache_dir
    scratch = Path(tempfile.mkdtemp(prefix="rrbench-tier-a-"))
    model = args.model_path
    if model is None:
        from rrbench.testing.fixtures import make_tiny_bert

        model = str(make_tiny_bert(scratch / "tiny-cross-encoder"))
    setup = SweepSetup(task=args.task, split="dev_select", retrievers=("bm25", "minilm-l6"),
                       rerankers=("minilm-l6", model), max_fe=args.max_fe, cache_dir=args.cache_dir,
                       show_progress=False)
    space = load_space(None, list(setup.rerankers))
    sampled_space = parse_space(SAMPLED_SPACE, list(setup.rerankers))
    source = ScoreSource(setup, sampled_space)

    started = time.perf_counter()
    filled = source.fill(progress=False)
    fill_s = time.perf_counter() - started
    started = time.perf_counter()
    for key in generator_keys(setup, sampled_space):
        for k in source.k_values:
            for variant in _variants(sampled_space):
                config = base_config(setup, key, k)
                config.max_length, config.instruction = variant
                source.arrays(config)
    arrays_s = time.perf_counter() - started
    cpu = torch.backends.cpu.get_cpu_capability()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, torch CPU capability {cpu}, {args.threads} threads, load average "
          f"{load[0]:.1f} at the start")
    print(f"fill: {sum(filled.values())} pairs scored in {fill_s:.1f}s ({filled}); arrays for "
          f"{len(generator_keys(setup, sampled_space))} generators x {len(source.k_values)} pool sizes in "
          f"{arrays_s:.1f}s")

    # -- the CLI, as users run it ---------------------------------------------------------------------------------
    sampled_file = scratch / "sampled-space.yaml"
    sampled_file.write_text(yaml.safe_dump(SAMPLED_SPACE))
    common = ["--task", args.task, "--retriever", "bm25", "--retriever", "minilm-l6", "--reranker", "minilm-l6",
              "--reranker", model, "--max-fe", str(args.max_fe)]
    count = [] if args.cli_trials is None else ["--trials", str(args.cli_trials)]
    shown = args.cli_trials or "default"
    rows, reference = [], None
    if args.reference_trials:
        rows.append(cli_row(f"space before issue 26 (decision sampled), TPE, {args.reference_trials} trials",
                            [*common, "--space", str(sampled_file), "--trials", str(args.reference_trials)],
                            scratch / "cli-reference", None))
        reference = rows[-1]["best"]
    rows.insert(0, cli_row(f"default space (decision and weight solved), TPE, {shown} trials", [*common, *count],
                           scratch / "cli-solved", reference))
    rows.insert(1, cli_row(f"space before issue 26 (decision sampled), TPE, {shown} trials",
                           [*common, "--space", str(sampled_file), *count], scratch / "cli-sampled", reference))
    if reference is not None:
        rows[-1]["reference_trial"] = rows[-1]["best_trial"]
        rows[-1]["to_reference_s"] = rows[-1]["to_best_s"]

    # -- storage: per-call commits against one transaction per trial (the same sampled objective) ----------------
    objective = objective_factory(setup, sampled_space, source)
    per_call = optuna.create_study(direction="maximize", storage=f"sqlite:///{scratch / 'per-call.sqlite'}",
                                   sampler=optuna.samplers.TPESampler(seed=1))
    started = time.perf_counter()
    per_call.optimize(objective, n_trials=args.tpe_trials)
    per_call_rate = args.tpe_trials / (time.perf_counter() - started) * 60
    batched = optuna.create_study(direction="maximize", storage=f"sqlite:///{scratch / 'batched.sqlite'}",
                                  sampler=optuna.samplers.TPESampler(seed=1))
    started = time.perf_counter()
    run_trials(batched, objective, args.tpe_trials, False)
    batched_rate = args.tpe_trials / (time.perf_counter() - started) * 60

    # -- in process: random sampler, in-memory storage (the rows of issue 10, on the sampled space) --------------
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    warm = min(50, args.trials)
    study.optimize(objective, n_trials=warm)  # warm-up (imports, first fits)
    started = time.perf_counter()
    study.optimize(objective, n_trials=args.trials)
    e2e = args.trials / (time.perf_counter() - started) * 60

    rng = random.Random(0)
    picked = [rng.choice(study.trials[warm:]) for _ in range(min(args.trials, 1000))]
    sampled = [suggest(optuna.trial.FixedTrial(trial.params), setup, sampled_space) for trial in picked]
    started = time.perf_counter()
    for values in sampled:  # configuration building (incl. a quantile threshold) + evaluation: rrbench's share
        evaluate_config(config_for(values, setup, source), source)
    alone = len(sampled) / (time.perf_counter() - started) * 60

    ranking, draws = [], optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=2))
    for _ in range(min(200, args.trials)):  # rankings of the default space (only the ranking is sampled there)
        trial = draws.ask()
        ranking.append(suggest(trial, setup, space))
        draws.tell(trial, 0.0)
    started = time.perf_counter()
    for values in ranking:  # the weight scan, the decision ladder and the final evaluation of a solved trial
        evaluate_config(solve_config(values, setup, space, source), source)
    solved_ms = (time.perf_counter() - started) / len(ranking) * 1000

    def empty(trial: optuna.Trial) -> float:
        suggest(trial, setup, sampled_space)
        return 0.0

    sampler_study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    started = time.perf_counter()
    sampler_study.optimize(empty, n_trials=args.trials)
    sampler_ms = (time.perf_counter() - started) / args.trials * 1000

    feasible = [t for t in study.trials if trial_metrics(t).get("constraint", 1.0) <= 0 and t.value is not None]
    best = max(feasible, key=lambda t: t.value) if feasible else None

    print()
    print("| `rrbench sweep` row | trials | wall | best trial at | best feasible nDCG@10 | reference best reached at |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        to_best = "-" if row["to_best_s"] is None else f"{row['to_best_s']:.1f} s (trial {row['best_trial']})"
        to_ref = ("-" if reference is None else "not reached" if row["to_reference_s"] is None
                  else f"{row['to_reference_s']:.1f} s (trial {row['reference_trial']})")
        value = "none feasible" if row["best"] is None else f"{row['best']:.4f}"
        print(f"| {row['row']} | {row['trials']} | {row['wall_s']:.1f} s | {to_best} | {value} | {to_ref} |")
    print()
    print(f"storage, TPE on the sampled space, {args.tpe_trials} trials: {per_call_rate:,.0f} trials/min committing "
          f"every parameter and attribute (Optuna's SQLite storage, sweeps before issue 26); {batched_rate:,.0f} "
          f"trials/min with one transaction per trial (run_trials)")
    print(f"random sampler: {args.trials} trials; best feasible nDCG@10 "
          + (f"{best.value:.4f}" if best else "none"))
    print(f"rrbench alone: {len(sampled)} configurations, {60_000 / alone:.2f} ms each; a solved trial "
          f"{solved_ms:.1f} ms; sampler alone: {sampler_ms:.2f} ms per trial (random, in-memory)")
    print(f"tier-a: {e2e:,.0f} trials/min (random sampler, in-memory storage); {alone:,.0f} evaluations/min "
          f"(rrbench alone)")
    report = {"machine": {"cores": os.cpu_count(), "cpu_capability": cpu, "threads": args.threads,
                          "load_average_start": load[0], "load_average_end": os.getloadavg()[0]},
              "fill_s": fill_s, "arrays_s": arrays_s, "cli": rows, "reference_best": reference,
              "storage_trials_per_min": {"per_call_commits": per_call_rate, "one_transaction_per_trial": batched_rate},
              "random_trials_per_min": e2e, "evaluations_per_min": alone, "solved_trial_ms": solved_ms,
              "sampler_ms": sampler_ms}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
