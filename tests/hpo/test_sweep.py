"""Tier A sweeps: cache-only trials, equality with `rrbench run`, the constraint, resume, bad spaces."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from rrbench.cli.main import main
from rrbench.testing.fixtures import write_task

WORDS = ["aspirin", "heart", "attack", "vitamin", "bone", "fracture", "coffee", "sleep", "caffeine", "mood", "exercise", "walking", "insulin", "glucose", "diabetes", "tumour", "growth", "cell", "mouse", "trial", "dose", "placebo", "risk", "blood", "pressure", "kidney", "liver", "protein", "gene", "expression", "immune", "response", "infection", "virus", "vaccine", "antibody"]


def make_sweep_task(directory: Path) -> Path:
    """24 posts; one or two claims each, a third of them without evidence; posts 0-15 dev_select, the rest dev_final."""
    rng = random.Random(7)
    posts, queries, qrels, splits = [], [], [], {}
    for p in range(24):
        sentences = [" ".join(rng.sample(WORDS, 6)) + "." for _ in range(rng.randint(4, 7))]
        posts.append({"post_id": f"p{p}", "sentences": sentences})
        for c in range(rng.randint(1, 2)):
            qid = f"q{p}-{c}"
            if rng.random() < 0.35:
                text = " ".join(rng.sample(WORDS, 4))
            else:
                target = rng.randrange(len(sentences))
                text = " ".join(sentences[target].rstrip(".").split()[:3] + rng.sample(WORDS, 1))
                qrels.append({"query_id": qid, "sentence": target, "grade": rng.choice([1, 2])})
            queries.append({"query_id": qid, "post_id": f"p{p}", "text": text})
            splits[qid] = "dev_select" if p < 16 else "dev_final"
    return write_task(directory, posts, queries, qrels, splits=splits)


@pytest.fixture(scope="module")
def sweep_env(tmp_path_factory, tiny_model):
    import os

    root = tmp_path_factory.mktemp("sweep")
    task = make_sweep_task(root / "sweep-task")
    cache = root / "cache"
    old = os.environ.get("RRBENCH_CACHE")
    os.environ["RRBENCH_CACHE"] = str(cache)
    args = ["--task", str(task), "--reranker", str(tiny_model), "--reranker", "minilm-l6", "--quiet"]
    yield {"root": root, "task": task, "args": args, "cache": cache}
    if old is None:
        os.environ.pop("RRBENCH_CACHE", None)
    else:
        os.environ["RRBENCH_CACHE"] = old


@pytest.fixture(autouse=True)
def _shared_cache(sweep_env, monkeypatch):
    monkeypatch.setenv("RRBENCH_CACHE", str(sweep_env["cache"]))


def test_a_sweep_without_cached_scores_stops_before_any_trial(sweep_env, capsys):
    out = sweep_env["root"] / "unfilled"
    code = main(["sweep", *sweep_env["args"], "--trials", "5", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "rrbench sweep fill" in err and "lacks" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.fixture(scope="module")
def filled(sweep_env):
    assert main(["sweep", "fill", *sweep_env["args"]]) == 0
    return sweep_env


@pytest.fixture(scope="module")
def swept(filled):
    """30 random-sampler trials with model loading forbidden: every score must come from the cache."""
    from rrbench.models import lazy
    def forbidden(self):
        raise AssertionError(f"a sweep trial tried to load {self.spec.id}")

    original = lazy._Deferred.model
    lazy._Deferred.model = forbidden
    try:
        out = filled["root"] / "sweep"
        code = main(["sweep", *filled["args"], "--trials", "30", "--sampler", "random", "--max-fe", "0.5",
                     "--output", str(out)])
    finally:
        lazy._Deferred.model = original
    assert code == 0
    return {**filled, "out": out}


def _study(out: Path):
    import optuna

    storage = optuna.storages.RDBStorage(f"sqlite:///{out / 'study.sqlite'}")
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def test_trials_equal_ordinary_runs_of_the_same_configuration(swept, tmp_path):
    from optuna.trial import TrialState

    from rrbench.pipeline.runner import RunConfig, execute

    trials = [t for t in _study(swept["out"]).trials if t.state == TrialState.COMPLETE]
    assert len(trials) == 30
    picked = trials[::6]
    for trial in picked:
        config = RunConfig.from_mapping({**trial.user_attrs["config"], "output": str(tmp_path / f"t{trial.number}"),
                                         "show_progress": False}, "trial")
        record = execute(config)
        for key in ("nDCG@10", "RR@10", "R@10", "false_evidence_rate", "answer_rate_has_evidence"):
            expected = trial.user_attrs["metrics"].get(key)
            actual = record["metrics"].get(key)
            assert (expected is None) == (actual is None), (trial.number, key)
            if expected is not None:
                assert abs(expected - actual) <= 1e-9, (trial.number, key, expected, actual)
        assert abs(trial.value - record["metrics"]["nDCG@10"]) <= 1e-9


def test_the_reported_best_respects_the_budget_and_confirms_on_the_next_split(swept, tmp_path):
    best = json.loads((swept["out"] / "best.json").read_text())
    assert best["feasible"] is True and best["fe_confidence"] == 0.95
    # the budget holds the FE rate's upper confidence bound, which is above the rate itself
    assert best["metrics"]["false_evidence_rate"] < best["metrics"]["false_evidence_bound"] <= 0.5
    rows = (swept["out"] / "trials.csv").read_text().splitlines()[1:]
    feasible = [float(r.split(",")[1]) for r in rows if r.split(",")[5] == "1"]
    assert best["metrics"]["nDCG@10"] == pytest.approx(max(feasible), abs=1e-6)
    assert (swept["out"] / "pareto.png").stat().st_size > 1000
    out = tmp_path / "confirm"
    assert main(["run", "--config", str(swept["out"] / "best.yaml"), "--split", "dev_final", "--quiet",
                 "--output", str(out)]) == 0
    record = json.loads((out / "results.json").read_text())
    assert record["provenance"]["selected_on"] == "dev_select"
    assert record["provenance"]["selected_max_fe"] == best["max_fe"]  # best.yaml says which budget it was chosen under
    assert yaml.safe_load((swept["out"] / "best.yaml").read_text())["selected_fe_confidence"] == 0.95  # and how
    assert record["config"]["split"] == "dev_final"


def test_a_trial_solves_its_decision_and_interpolation_weight_rather_than_sampling_them(swept):
    """Only the ranking structure is sampled; each trial's weight is the best of its grid, and its decision the
    feasible one answering the most has-evidence queries among every policy, calibrator and budget of the ladder."""
    from dataclasses import replace

    from optuna.trial import TrialState

    from rrbench.hpo.space import load_space
    from rrbench.hpo.sweep import (
        BUDGET_LADDER,
        ScoreSource,
        SweepSetup,
        evaluate_config,
        fe_bound,
        feasible,
        no_evidence_count,
        scan_values,
        weight_pairs,
    )
    from rrbench.pipeline.runner import RunConfig

    trials = [t for t in _study(swept["out"]).trials if t.state == TrialState.COMPLETE]
    sampled = set().union(*(t.params for t in trials))
    assert not sampled & {"abstain", "calibrator", "threshold_mode", "threshold_quantile", "prob_threshold",
                          "interpolate"} and not any(name.startswith("weight:") for name in sampled)
    rerankers = tuple(swept["args"][swept["args"].index("--reranker") + 1::2][:2])
    setup = SweepSetup(task=str(swept["task"]), rerankers=rerankers, max_fe=0.5)
    space = load_space(None, list(rerankers))
    source = ScoreSource(setup, space)
    budgets = {round(0.5 * f, 10) for f in BUDGET_LADDER}
    ensembles = [t for t in trials if isinstance(t.user_attrs["config"]["reranker"], list)]
    assert ensembles, "the random sampler drew no two-reranker ensemble"
    for trial in [*trials[:2], ensembles[0]]:
        config = RunConfig.from_mapping(trial.user_attrs["config"], "trial")
        no_evidence = no_evidence_count(source.arrays(config))

        def within(metrics: dict, no_evidence: int = no_evidence) -> bool:  # the sweep's rule: the FE rate's 95%
            return feasible(fe_bound(metrics["false_evidence_rate"], no_evidence, 0.95), 0.5)  # Wilson bound in 0.5

        assert config.threshold == "max-fe" and config.threshold_max_fe in budgets and config.cross_fit
        chosen = evaluate_config(config, source).metrics
        pairs = weight_pairs(space) if len(config.reranker_ids()) == 2 else [config.ensemble_weights]
        assert tuple(config.ensemble_weights) in {tuple(p) for p in pairs}
        for weights in pairs:  # no weight of the grids ranks better
            for beta in scan_values(space, "interpolate"):
                other = evaluate_config(replace(config, interpolate=beta, ensemble_weights=weights), source).metrics
                assert other["nDCG@10"] <= chosen["nDCG@10"] + 1e-12
        for abstain in space.choices("abstain"):  # no other decision answers more within the budget
            for calibrator in space.choices("calibrator"):
                for budget in budgets:
                    other = evaluate_config(replace(config, abstain=abstain, calibrator=calibrator,
                                                    threshold_max_fe=budget), source).metrics
                    if within(other):
                        assert within(chosen)
                        assert other["answer_rate_has_evidence"] <= chosen["answer_rate_has_evidence"] + 1e-12


def test_a_space_listing_other_threshold_modes_samples_the_decision(filled):
    from optuna.trial import TrialState

    space = filled["root"] / "sampled.yaml"
    space.write_text(yaml.safe_dump({"threshold_mode": ["fixed", "fit", "max-fe"]}))
    out = filled["root"] / "sampled"
    assert main(["sweep", *filled["args"], "--space", str(space), "--trials", "8", "--sampler", "random",
                 "--max-fe", "0.5", "--output", str(out)]) == 0
    trials = [t for t in _study(out).trials if t.state == TrialState.COMPLETE]
    assert all({"abstain", "calibrator", "threshold_mode"} <= set(t.params) for t in trials)
    budgets = [t.user_attrs["config"]["threshold_max_fe"] for t in trials if t.params["threshold_mode"] == "max-fe"]
    assert all(b == 0.5 for b in budgets)  # sampled, the max-fe rule is fitted to the sweep's own budget


def test_best_yaml_holds_the_values_a_person_would_type(swept):
    text = (swept["out"] / "best.yaml").read_text()
    assert "0000000" not in text and "9999999" not in text, text  # no 0.35000000000000003


def test_a_fitted_configuration_reproduces_its_cross_fitted_metrics_and_is_refused_without(swept, tmp_path, capsys):
    from optuna.trial import TrialState

    from rrbench.hpo.sweep_report import best_config_file

    fitted = [t for t in _study(swept["out"]).trials
              if t.state == TrialState.COMPLETE and t.user_attrs["config"].get("calibrate_on")]
    assert fitted, "the random sampler drew no configuration that needs a fit"
    trial = fitted[0]
    file = tmp_path / "fitted.yaml"
    file.write_text(yaml.safe_dump(best_config_file(trial.user_attrs["config"], "dev_select")))
    assert main(["run", "--config", str(file), "--split", "dev_select", "--quiet", "--output",
                 str(tmp_path / "refused")]) == 2
    assert "--cross-fit" in capsys.readouterr().err
    out = tmp_path / "crossfit"
    folds = str(trial.user_attrs["config"]["cross_fit"])
    assert main(["run", "--config", str(file), "--split", "dev_select", "--cross-fit", folds, "--quiet",
                 "--output", str(out)]) == 0
    record = json.loads((out / "results.json").read_text())
    assert abs(record["metrics"]["nDCG@10"] - trial.value) <= 1e-9
    fe = trial.user_attrs["metrics"].get("false_evidence_rate")
    assert fe is not None and abs(record["metrics"]["false_evidence_rate"] - fe) <= 1e-9


def test_an_infeasible_budget_is_said_plainly_and_the_front_still_reported(filled, capsys):
    space = filled["root"] / "always-answer.yaml"
    space.write_text(yaml.safe_dump({"threshold_mode": ["fixed"], "calibrator": ["none"], "abstain": ["max"],
                                     "threshold_quantile": 0.0}))
    out = filled["root"] / "infeasible"
    assert main(["sweep", *filled["args"], "--space", str(space), "--trials", "6", "--max-fe", "0",
                 "--sampler", "random", "--output", str(out)]) == 0
    assert "infeasible" in capsys.readouterr().out
    best = json.loads((out / "best.json").read_text())
    assert best["feasible"] is False and "no completed trial" in best["reason"]
    assert json.loads((out / "pareto.json").read_text())["fe"]
    assert (out / "pareto.png").is_file() and not (out / "best.yaml").exists()


def test_a_space_of_only_invalid_configurations_ends_instead_of_sampling_forever():
    import optuna

    from rrbench.hpo.sweep import run_trials, shortfall_note

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=3))

    def invalid(trial):
        trial.suggest_categorical("calibrator", ["platt"])
        trial.set_user_attr("invalid", "--cross-fit 5: grouped k-fold needs at least k=5 groups, found 1")
        raise optuna.TrialPruned()

    assert run_trials(study, invalid, 4, False) == 4
    assert len(study.trials) == 4  # one round, then it stops
    note = shortfall_note(study, 4)
    assert note.startswith("4 trial(s) short") and "found 1" in note
    assert shortfall_note(study, 0) is None


def test_resume_continues_the_same_study_and_fails_stale_trials(filled):
    from optuna.trial import TrialState

    out = filled["root"] / "resume"
    assert main(["sweep", *filled["args"], "--trials", "4", "--sampler", "random", "--output", str(out)]) == 0
    study = _study(out)
    study.ask()  # a trial a killed process left RUNNING
    assert main(["sweep", *filled["args"], "--trials", "7", "--sampler", "random", "--output", str(out)]) == 0
    states = [t.state for t in _study(out).trials]
    assert states.count(TrialState.COMPLETE) == 7  # the 4 kept, 3 more; none counted twice
    assert states.count(TrialState.RUNNING) == 0 and states.count(TrialState.FAIL) == 1


@pytest.mark.parametrize("space, message", [
    ({"top_k_rerunk": [5]}, "unknown dimension 'top_k_rerunk'"),
    ({"alpha": {"low": 0.2, "high": 1.5}}, "within [0, 1]"),
    ({"interpolate": {"low": 0.6, "high": 0.2}}, "empty range"),
    ({"calibrator": []}, "empty list"),
])
def test_bad_spaces_are_one_line_errors(filled, tmp_path, capsys, space, message):
    file = tmp_path / "space.yaml"
    file.write_text(yaml.safe_dump(space))
    assert main(["sweep", *filled["args"], "--space", str(file), "--output", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_max_fe_outside_the_unit_interval_is_refused(filled, tmp_path, capsys):
    assert main(["sweep", *filled["args"], "--max-fe", "1.5", "--output", str(tmp_path / "x")]) == 2
    assert "--max-fe" in capsys.readouterr().err


@pytest.mark.parametrize("confidence", ["1", "-0.1"])
def test_fe_confidence_outside_zero_to_one_is_refused(filled, tmp_path, capsys, confidence):
    assert main(["sweep", *filled["args"], "--fe-confidence", confidence, "--output", str(tmp_path / "x")]) == 2
    assert "--fe-confidence" in capsys.readouterr().err


def test_the_constraint_reads_the_fe_rates_wilson_bound_or_with_confidence_0_the_rate(filled, swept):
    """Every trial's constraint is its FE bound minus the budget: the Wilson upper end at 95% for the count of
    answered no-evidence queries by default; the rate itself with --fe-confidence 0 (the rule before bounds)."""
    from optuna.trial import TrialState

    from rrbench.hpo.sweep import FE_BOUND_ATTR, completed_rows
    from rrbench.measures.bounds import wilson_upper
    from rrbench.tasks.resolve import get_task

    task = get_task(str(filled["task"]))
    no_evidence = sum(1 for q in task.split_queries("dev_select") if not task.has_evidence(q.query_id))
    assert no_evidence > 0
    for trial in [t for t in _study(swept["out"]).trials if t.state == TrialState.COMPLETE]:
        metrics = trial.user_attrs["metrics"]
        count = round(metrics["false_evidence_rate"] * no_evidence)
        assert metrics[FE_BOUND_ATTR] == pytest.approx(wilson_upper(count, no_evidence, 0.95), abs=1e-12)
        assert metrics["constraint"] == pytest.approx(metrics[FE_BOUND_ATTR] - 0.5, abs=1e-12)
    out = filled["root"] / "point"
    assert main(["sweep", *filled["args"], "--trials", "4", "--sampler", "random", "--max-fe", "0.5",
                 "--fe-confidence", "0", "--output", str(out)]) == 0
    rows = completed_rows(_study(out))
    assert rows and all(r.bound == r.fe for r in rows)
    assert yaml.safe_load((out / "best.yaml").read_text())["selected_fe_confidence"] == 0


def test_a_sweep_on_the_test_split_is_refused(filled, tmp_path, capsys):
    assert main(["sweep", *filled["args"], "--split", "test", "--output", str(tmp_path / "x")]) == 2
    assert "test split" in capsys.readouterr().err


def test_a_sweep_killed_with_sigkill_resumes_without_counting_a_trial_twice(filled, tmp_path):
    """kill -9 at seeded times while trials are being written; the re-run completes the same study."""
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from optuna.trial import TrialState

    out = tmp_path / "killed"
    command = [sys.executable, "-m", "rrbench.cli", "sweep", *filled["args"], "--trials", "400", "--sampler",
               "random", "--output", str(out)]
    env = {**os.environ, "RRBENCH_CACHE": str(filled["cache"])}
    for delay in (6.0, 3.0):  # seeded, not random: the kills land at different points of the trial loop
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (out / "study.sqlite").exists():
            time.sleep(0.2)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
    before = [t.state for t in _study(out).trials]
    assert before.count(TrialState.COMPLETE) < 400, "the kill came too late to test anything"
    assert subprocess.run(command, env=env, capture_output=True).returncode == 0
    states = [t.state for t in _study(out).trials]
    assert states.count(TrialState.COMPLETE) == 400 and states.count(TrialState.RUNNING) == 0
    with sqlite3.connect(out / "study.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not [p for p in out.iterdir() if p.name.endswith((".tmp", ".partial"))]
    assert json.loads((out / "best.json").read_text())["split"] == "dev_select"


# -- kill -9 at named stages (rrbench.util.faults) ------------------------------------------------------------------------
#: In order, each process resuming what the previous one left (RRBENCH_TEST_TRACE_KILL_POINTS=1 lists the points):
#: the first storage commit (the study's tables are being created), then, in the trial loop, just before and just
#: after a trial is written (10 commits open the study, then each finished trial is one commit), then the report
#: files: before the first one lands, and between later ones.
SWEEP_KILLS = ["study-commit:1", "study-commit:12", "study-committed:12", "study-commit:13", "write:1", "write:4"]


def _sweep_cli(args: list[str], cache: Path, kill_at: str | None = None):
    import os
    import subprocess
    import sys

    env = {**os.environ, "RRBENCH_CACHE": str(cache), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("RRBENCH_TEST_KILL_AT", None)
    if kill_at:
        env["RRBENCH_TEST_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "rrbench.cli", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def _sound(folder: Path) -> None:
    import sqlite3

    for db in folder.rglob("*.sqlite"):
        with sqlite3.connect(db) as con:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", db


def _completed(out: Path) -> dict[int, tuple]:
    from optuna.trial import TrialState

    return {t.number: (t.params, t.value) for t in _study(out).trials if t.state == TrialState.COMPLETE}


def test_a_sweep_survives_kill_9_at_every_named_stage(filled, tmp_path):
    """Completed trials are kept unchanged through every kill, none is counted twice, the files stay sound."""
    import signal

    from optuna.trial import TrialState

    out = tmp_path / "named"
    args = ["sweep", *filled["args"], "--trials", "6", "--sampler", "random", "--output", str(out)]
    kept: dict[int, tuple] = {}
    counts = []
    for point in SWEEP_KILLS:
        killed = _sweep_cli(args, filled["cache"], point)
        assert killed.returncode == -signal.SIGKILL, f"{point} was never reached: {killed.stderr[-2000:]}"
        _sound(out)
        if point != "study-commit:1":  # killed while the study's tables were being created: nothing to keep yet
            completed = _completed(out)
            assert kept.items() <= completed.items(), point  # nothing completed is lost or changed
            kept = completed
        counts.append(len(kept))
    assert 0 < counts[3] < 6 and counts[-1] == 6, f"the kills missed the trial loop or the reports: {counts}"
    again = _sweep_cli(args, filled["cache"])
    assert again.returncode == 0, again.stderr
    states = [t.state for t in _study(out).trials]
    assert states.count(TrialState.COMPLETE) == 6 and states.count(TrialState.RUNNING) == 0
    assert kept.items() <= _completed(out).items()
    _sound(out)
    assert not [p for p in out.rglob("*") if p.name.endswith((".tmp", ".partial"))]
    assert json.loads((out / "best.json").read_text())["split"] == "dev_select"


def _pair_scores(cache: Path) -> dict[str, dict[bytes, float]]:
    """Every cached pair score, by model fingerprint."""
    import sqlite3

    out: dict[str, dict[bytes, float]] = {}
    for db in cache.rglob("*.sqlite"):
        with sqlite3.connect(db) as con:
            if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'pair_scores'").fetchone():
                continue
            for fingerprint, key, score in con.execute(
                    "SELECT m.fingerprint, s.key, s.score FROM pair_scores s JOIN models m ON m.mid = s.mid"):
                out.setdefault(fingerprint, {})[key] = score
    return out


def test_sweep_fill_survives_kill_9_between_score_commits(filled, tiny_model, tmp_path):
    """The fill's scores land in the score cache one committed batch at a time; a kill loses none of them."""
    import signal

    cache = tmp_path / "cache"
    args = ["sweep", "fill", "--task", str(filled["task"]), "--reranker", str(tiny_model), "--quiet"]
    for point in ("commit:4", "commit:2"):  # the fill's 4th commit holds scores; the resumed one's 2nd too
        killed = _sweep_cli(args, cache, point)
        assert killed.returncode == -signal.SIGKILL, f"{point} was never reached: {killed.stderr[-2000:]}"
        _sound(cache)
    again = _sweep_cli(args, cache)
    assert again.returncode == 0 and "pairs scored" in again.stdout, again.stderr
    last = _sweep_cli(args, cache)  # nothing is missing any more
    assert last.returncode == 0 and "(all were cached)" in last.stdout, last.stdout
    _sound(cache)
    ((fingerprint, got),) = _pair_scores(cache).items()  # the tiny model's, as in the uninterrupted fill
    # the module's shared cache also holds pairs other tests scored (other splits), so compare on the fill's pairs
    want = _pair_scores(filled["cache"])[fingerprint]
    assert got and got.keys() <= want.keys()
    assert max(abs(got[k] - want[k]) for k in got) <= 1e-6
    assert not [p for p in cache.rglob("*") if p.name.endswith((".tmp", ".partial"))]


# -- what a person reads ---------------------------------------------------------------------------------------------
def test_sweep_fill_help_lists_only_what_fill_reads():
    from click.testing import CliRunner

    from rrbench.cli.sweep import fill

    text = CliRunner().invoke(fill, ["--help"]).output
    assert "--reranker" in text and "--space" in text
    assert "--max-fe" not in text and "--seed" not in text  # the budget and the sampler's seed change no score
    assert "--fe-confidence" not in text


def test_a_reranker_variant_is_named_as_people_write_it():
    from rrbench.hpo.sweep import variant_label

    assert variant_label("minilm-l6", (None, None)) == "minilm-l6"
    assert variant_label("minilm-l6", (64, None)) == "minilm-l6 max_length=64"
    assert variant_label("qwen", (None, "short")) == "qwen instruction='short'"


@pytest.mark.parametrize("splits, expected", [
    (["train", "dev_select", "dev_final", "test"], "--split dev_final"),
    (["dev_select", "test"], "--split test --final"),
    (["dev_select", "other"], "--split other"),
    (["dev_select"], "no split besides 'dev_select'"),
])
def test_the_next_step_names_a_split_the_task_has(splits, expected):
    from types import SimpleNamespace

    from rrbench.hpo.sweep_report import next_step

    line = next_step(SimpleNamespace(id="t", split_names=splits), "dev_select", Path("out/best.yaml"))
    assert expected in line


def test_both_fronts_mark_the_trials_within_budget_and_the_chosen_one(monkeypatch, tmp_path):
    from rrbench.hpo import plots

    drawn = {}

    def keep(fig, path):
        (ax,) = fig.axes
        drawn[path.name] = ([t.get_text() for t in ax.get_legend().get_texts()], list(ax.get_xticks()))
        return path

    monkeypatch.setattr(plots, "_save", keep)
    points = [(0.1, 0.7), (0.3, 0.8), (0.95, 0.85)]
    for name, line in (("pareto.png", True), ("pareto_answer.png", False)):
        plots.pareto_png(tmp_path / name, points, points[:2], points[0], 0.2, "t", budget_line=line,
                         feasible=[True, False, False])
    for labels, ticks in drawn.values():
        assert any(label.startswith("trials within FE <= 0.2 (1)") for label in labels)
        assert any("over the FE budget (2)" in label for label in labels)
        assert "chosen (best.yaml)" in labels
        assert max(ticks) <= 1.0 and min(ticks) >= 0.0  # a rate axis has no tick past 1


@pytest.mark.parametrize("space", [{}, {"top_k_rerank": [2, 3]}])
def test_the_pairs_a_space_needs_are_found_without_fusing_every_generator(filled, space):
    """Where the retrievers' union fits the pool and the head, one fusion stands for all; else each is fused."""
    from rrbench.hpo.space import parse_space
    from rrbench.hpo.sweep import ScoreSource, SweepSetup, generator_keys

    setup = SweepSetup(task=str(filled["task"]), retrievers=("bm25", "minilm-l6"), rerankers=("minilm-l6",))
    parsed = parse_space(space, ["minilm-l6"])
    fast = ScoreSource(setup, parsed).needed_pairs()
    every = ScoreSource(setup, parsed)
    expected: list[set[int]] = [set() for _ in every.queries]
    for key in generator_keys(setup, parsed):
        for row, (ids, _) in enumerate(every.candidates(key, max(every.k_values)).pools):
            expected[row].update(int(i) for i in ids[:every.n_max])
    assert fast == expected and sum(map(len, fast)) > 0
