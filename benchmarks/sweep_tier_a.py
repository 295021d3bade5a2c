"""Tier A throughput: trials per minute of `rrbench sweep` over cached scores, and rrbench's own share of it.

Setup (issue 10): `scifact-evidence` dev_select, candidates from bm25 and the MiniLM dense retriever (so the fusion
dimensions are live), two cached rerankers (the MiniLM bi-encoder and a cross-encoder: `--model-path` of a trained
one, or a tiny one this script builds), and the default space with every dimension. Filling the cache and building
the per-generator arrays are timed separately (they happen once per sweep); then, in one run:

- end to end: Optuna's RandomSampler with in-memory storage, trials/min (target >= 2,000 on 2 cores);
- rrbench alone: the same configurations evaluated without Optuna, evaluations/min (target >= 10,000, i.e. 6 ms);
- the sampler's own cost: the same suggest() calls with an objective that evaluates nothing;
- TPE with SQLite storage, reported separately (Optuna's cost, not rrbench's).

    python benchmarks/sweep_tier_a.py [--model-path DIR] [--trials 2000] [--tpe-trials 300]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", default=None, help="a trained cross-encoder (default: a tiny one built here)")
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--tpe-trials", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache-dir", default=None, help="score cache (default: $RRBENCH_CACHE)")
    args = parser.parse_args(argv)

    import optuna
    import torch

    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    from rrbench.hpo.sweep import (
        ScoreSource,
        SweepSetup,
        _variants,
        base_config,
        config_for,
        evaluate_config,
        generator_keys,
        objective_factory,
        suggest,
    )
    from rrbench.hpo.space import load_space

    scratch = Path(tempfile.mkdtemp(prefix="rrbench-tier-a-"))
    model = args.model_path
    if model is None:
        from rrbench.testing.fixtures import make_tiny_bert

        model = str(make_tiny_bert(scratch / "tiny-cross-encoder"))
    setup = SweepSetup(task="scifact-evidence", split="dev_select", retrievers=("bm25", "minilm-l6"),
                       rerankers=("minilm-l6", model), max_fe=0.2, cache_dir=args.cache_dir, show_progress=False)
    space = load_space(None, list(setup.rerankers))
    source = ScoreSource(setup, space)

    started = time.perf_counter()
    filled = source.fill(progress=False)
    fill_s = time.perf_counter() - started
    started = time.perf_counter()
    for key in generator_keys(setup, space):
        for k in source.k_values:
            for variant in _variants(space):
                config = base_config(setup, key, k)
                config.max_length, config.instruction = variant
                source.arrays(config)
    arrays_s = time.perf_counter() - started
    cpu = torch.backends.cpu.get_cpu_capability()
    print(f"machine: {os.cpu_count()} cores, torch CPU capability {cpu}, {args.threads} threads")
    print(f"fill: {sum(filled.values())} pairs scored in {fill_s:.1f}s ({filled}); arrays for "
          f"{len(generator_keys(setup, space))} generators x {len(source.k_values)} pool sizes in {arrays_s:.1f}s")

    # end to end: random sampler, in-memory storage
    objective = objective_factory(setup, space, source)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(objective, n_trials=50)  # warm-up (imports, first fits)
    started = time.perf_counter()
    study.optimize(objective, n_trials=args.trials)
    e2e = args.trials / (time.perf_counter() - started) * 60

    # rrbench alone: the same configurations, no Optuna
    params = [t.params for t in study.trials[50:]]
    rng = random.Random(0)
    picked = [rng.choice(study.trials[50:]) for _ in range(min(args.trials, 1000))]
    sampled = [suggest(optuna.trial.FixedTrial(trial.params), setup, space) for trial in picked]
    started = time.perf_counter()
    for values in sampled:  # configuration building (incl. a quantile threshold) + evaluation: rrbench's share
        evaluate_config(config_for(values, setup, source), source)
    alone = len(sampled) / (time.perf_counter() - started) * 60

    # the sampler's own cost
    def empty(trial):
        suggest(trial, setup, space)
        return 0.0

    sampler_study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    started = time.perf_counter()
    sampler_study.optimize(empty, n_trials=args.trials)
    sampler_ms = (time.perf_counter() - started) / args.trials * 1000

    # TPE + SQLite
    storage = f"sqlite:///{scratch / 'tpe.sqlite'}"
    tpe = optuna.create_study(direction="maximize", storage=storage,
                              sampler=optuna.samplers.TPESampler(seed=1))
    started = time.perf_counter()
    tpe.optimize(objective, n_trials=args.tpe_trials)
    tpe_rate = args.tpe_trials / (time.perf_counter() - started) * 60

    feasible = [t for t in study.trials if t.user_attrs.get("constraint", 1.0) <= 0 and t.value is not None]
    best = max(feasible, key=lambda t: t.value) if feasible else None
    print(f"random sampler: {args.trials} trials; best feasible nDCG@10 "
          f"{best.value:.4f}" if best else "no feasible trial")
    print(f"rrbench alone: {len(sampled)} configurations, {60_000 / alone:.2f} ms each; sampler alone: "
          f"{sampler_ms:.2f} ms per trial (random, in-memory); distinct parameter sets {len({str(p) for p in params})}")
    print(f"tier-a: {e2e:,.0f} trials/min (random sampler, in-memory storage); {alone:,.0f} evaluations/min "
          f"(rrbench alone); {tpe_rate:,.0f} trials/min (TPE, SQLite)")


if __name__ == "__main__":
    sys.exit(main())
