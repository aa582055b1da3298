"""``moqwk search`` on the demo corpus, checked through Optuna itself and the files it writes.

One 8-trial search (population 4: the baseline, one seeded neighbour, then NSGA-II) is loaded
back from its SQLite storage with Optuna and compared with ``optuna_trials.json``,
``progress.json`` and ``optuna_study.json``. Further runs check determinism, resuming, a trial
that raises, and the CLI's errors.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from optuna.trial import TrialState

from moqwk.cli import main
from moqwk.study.records import RECORD_VERSION

OBJECTIVES = ("worst_prompt_qwk", "mean_qwk", "low_tail_mae", "high_tail_mae")
CONSTRAINTS = ("low_tail_guardrail", "high_tail_guardrail")
GENERATION = "NSGAIISampler:generation"
N_TRIALS = 8
POPULATION = 4  # write_search_config's search.population_size
SEED = 3  # write_search_config's search.seed
TOLERANCE = 0.05
#: What "best" means for each objective, written out by hand (not read from the registry).
BEST_IS = {"worst_prompt_qwk": max, "mean_qwk": max, "low_tail_mae": min, "high_tail_mae": min}

pytestmark = pytest.mark.slow


def search(config: Path, run_dir: Path, n_trials: int, *extra: str) -> int:
    return main(["search", "--config", str(config), "--run-dir", str(run_dir),
                 "--n-trials", str(n_trials), *extra])


def load_study(run_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="moqwk", storage=f"sqlite:///{run_dir / 'study.db'}",
                             sampler=optuna.samplers.NSGAIISampler())


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def snapshot(run_dir: Path) -> SimpleNamespace:
    study = load_study(run_dir)
    return SimpleNamespace(
        dir=run_dir, study=study, trials=study.trials,
        records=read_json(run_dir / "artifacts/optuna_trials.json"),
        progress=read_json(run_dir / "progress.json"),
        study_json=read_json(run_dir / "artifacts/optuna_study.json"))


def counted(trials) -> list:
    return [t for t in trials if t.state == TrialState.COMPLETE
            or (t.state == TrialState.FAIL and "moqwk_failure" in t.user_attrs)]


def role(t) -> str:
    return t.user_attrs.get("moqwk_role", "sampled")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory, write_search_config) -> Path:
    return write_search_config(tmp_path_factory.mktemp("search-config") / "config.yaml",
                               tolerance=TOLERANCE)


@pytest.fixture(scope="module")
def run_a(config: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    run_dir = tmp_path_factory.mktemp("search-a") / "run"
    assert search(config, run_dir, N_TRIALS) == 0
    return snapshot(run_dir)


# --------------------------------------------------------------------------- the study itself


def test_study_has_four_named_objectives(run_a):
    d = optuna.study.StudyDirection
    assert run_a.study.directions == [d.MAXIMIZE, d.MAXIMIZE, d.MINIMIZE, d.MINIMIZE]
    assert run_a.study.metric_names == list(OBJECTIVES)


def test_budget_is_used_exactly(run_a):
    assert len(counted(run_a.trials)) == N_TRIALS
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in run_a.trials)


def test_every_finished_trial_carries_both_guardrail_constraints(run_a):
    finished = [t for t in run_a.trials if t.state in (TrialState.COMPLETE, TrialState.FAIL)]
    assert finished
    for t in finished:
        assert sorted(t.constraints) == sorted(CONSTRAINTS), t.number
        assert all(math.isfinite(v) for v in t.constraints.values())


def test_trial_zero_is_the_baseline_and_sets_the_guardrails(run_a, config):
    from moqwk.config import load_config

    t0 = run_a.trials[0]
    assert role(t0) == "baseline"
    assert [role(t) for t in run_a.trials].count("baseline") == 1
    assert t0.state == TrialState.COMPLETE
    baseline = load_config(config).baseline_params
    assert t0.params == {k: baseline[k] for k in t0.params}
    assert set(t0.params) == set(read_json(run_a.dir / "artifacts/optuna_study.json")["space"])
    for name in CONSTRAINTS:
        assert t0.constraints[name] == pytest.approx(-TOLERANCE, abs=1e-12)
    g = run_a.study.user_attrs["moqwk_guardrails"]
    assert g["baseline_trial"] == 0
    assert g["tolerance"] == TOLERANCE
    assert g["low_tail_mae"] == t0.values[2] and g["high_tail_mae"] == t0.values[3]


def test_constraints_are_tail_mae_minus_baseline_plus_tolerance(run_a, assert_guardrails):
    checked = assert_guardrails(run_a.trials, baseline=run_a.trials[0].values,
                                tolerance=TOLERANCE, names=run_a.study.metric_names)
    assert checked >= N_TRIALS  # the baseline and every other trial finished


def test_nsga2_generations_of_sampled_trials(run_a):
    trials = run_a.trials
    assert len(trials) > POPULATION  # precondition: enough trials for a second generation
    gen = {t.number: t.system_attrs.get(GENERATION) for t in trials}
    sampled = [t.number for t in trials if role(t) == "sampled"]
    assert sampled and all(isinstance(gen[n], int) for n in sampled), gen
    known = [g for _n, g in sorted(gen.items()) if g is not None]
    assert known == sorted(known)  # one worker: generations follow trial numbers
    assert max(known) >= 1
    first = [t for t in trials if gen[t.number] == 0 and t.state == TrialState.COMPLETE]
    assert len(first) == POPULATION  # a generation is full at population_size finished trials
    assert [role(t) for t in trials[:2]] == ["baseline", "seed"]  # enqueued before sampling


# --------------------------------------------------------------------------- files vs study


def test_optuna_trials_json_agrees_with_the_study(run_a):
    recs = {r["number"]: r for r in run_a.records}
    assert sorted(recs) == [t.number for t in run_a.trials]
    for t in run_a.trials:
        r = recs[t.number]
        assert r["state"] == t.state.name.lower()
        assert r["role"] == role(t)
        assert r["generation"] == t.system_attrs.get(GENERATION)
        assert {k: r["params"][k] for k in t.params} == t.params
        assert r["constraints"] == t.constraints
        if t.state == TrialState.COMPLETE:
            assert r["values"] == dict(zip(OBJECTIVES, t.values, strict=True))
            assert r["failure_reason"] is None
        else:
            assert r["values"] is None
        assert r["feasible"] == (t.state == TrialState.COMPLETE
                                 and all(v <= 0 for v in t.constraints.values()))
        assert r["retry_of"] is None
        assert r["per_prompt_qwk"] == t.user_attrs.get("per_prompt_qwk")


def test_progress_json_counts(run_a):
    p, recs = run_a.progress, run_a.records
    assert p["complete"] == sum(t.state == TrialState.COMPLETE for t in run_a.trials)
    assert p["failed"] == sum(r["state"] == "fail" for r in recs)
    assert p["complete"] + p["failed"] == N_TRIALS
    assert (p["interrupted"], p["running"], p["waiting"]) == (0, 0, 0)
    assert p["target"] == N_TRIALS
    feasible = [r for r in recs if r["feasible"]]
    assert p["feasible"] == len(feasible) > 0
    for name, best in BEST_IS.items():
        vals = [r["values"][name] for r in feasible]
        assert min(vals) < max(vals), f"precondition: feasible {name} values differ"
        assert p["best_feasible"][name] == best(vals), name


def test_optuna_study_json_records_directions_sampler_and_hashes(run_a, config):
    from moqwk.config import load_config
    from moqwk.data.corpus import load_corpus
    from moqwk.run.splits_file import splits_hash

    s = run_a.study_json
    cfg = load_config(config)
    assert s["study_name"] == "moqwk"
    assert s["storage"] == f"sqlite:///{(run_a.dir / 'study.db').resolve()}"
    assert s["directions"] == {"worst_prompt_qwk": "maximize", "mean_qwk": "maximize",
                               "low_tail_mae": "minimize", "high_tail_mae": "minimize"}
    assert s["constraints"] == list(CONSTRAINTS)
    assert s["trial_record_version"] == RECORD_VERSION  # of optuna_trials.json's rows
    assert s["sampler"]["name"] == "nsga2"
    assert s["sampler"]["population_size"] == POPULATION
    assert s["sampler"]["seed"] == SEED
    assert s["seeds"]["search"] == SEED and s["seeds"]["cv"] == cfg.cv.seed
    assert s["n_trials_target"] == N_TRIALS
    assert s["guardrails"] == run_a.study.user_attrs["moqwk_guardrails"]
    assert s["baseline"]["params"] == cfg.baseline_params
    assert set(s["space"]) == {p.name for p in cfg.search.space}
    assert s["config_hash"] == cfg.study_hash() == run_a.study.user_attrs["moqwk_config_hash"]
    data_hash = load_corpus(cfg).data_hash
    assert s["data_hash"] == data_hash == run_a.study.user_attrs["moqwk_data_hash"]
    assert s["splits_hash"] == splits_hash(run_a.dir)
    assert s["versions"]["optuna"] == optuna.__version__


# --------------------------------------------------------------------------- determinism, resume


def test_same_config_and_seed_give_the_same_trials(run_a, config, tmp_path):
    assert search(config, tmp_path / "run", N_TRIALS) == 0
    again = load_study(tmp_path / "run").trials
    assert len(again) == len(run_a.trials)
    for a, b in zip(run_a.trials, again, strict=True):
        assert (a.number, a.state, role(a)) == (b.number, b.state, role(b))
        assert a.params == b.params, a.number
        assert a.values == b.values, a.number
        assert a.constraints == b.constraints, a.number


def test_predictions_do_not_depend_on_the_xgboost_thread_count(demo_config_path, tmp_path):
    """Workers pick their thread count from the cores they see, so a run reproduced on another
    machine (or with more workers) must give the same numbers bit for bit."""
    from moqwk.config import load_config
    from moqwk.run.workspace import Workspace

    ws = Workspace.open(load_config(demo_config_path), tmp_path / "run")
    params = {"max_depth": 6, "learning_rate": 0.1, "n_estimators": 120, "subsample": 0.7,
              "colsample_bytree": 0.6, "min_child_weight": 2.0}
    one = ws.engine("prompt_holdout", nthread=1).run(params)
    many = ws.engine("prompt_holdout", nthread=3).run(params)
    assert one.oof["y_pred_raw"].nunique() > 20  # a real model, not a constant
    assert one.oof["y_pred_raw"].tolist() == many.oof["y_pred_raw"].tolist()
    assert one.metrics.to_dict() == many.metrics.to_dict()


def test_resume_adds_trials_without_touching_or_replaying_earlier_ones(write_search_config,
                                                                       tmp_path):
    """4 trials, then the same command with 6. The first generation (population 6, no seeded
    neighbours: the baseline and 5 random draws) spans the resume, so a resumed sampler that
    restarted its random stream would draw trials 1 and 2 again as 4 and 5."""
    config = write_search_config(tmp_path / "config.yaml", tolerance=TOLERANCE,
                                 search={"population_size": 6, "seed_neighbours": 0})
    run_dir = tmp_path / "run"
    assert search(config, run_dir, 4) == 0
    first = read_json(run_dir / "artifacts/optuna_trials.json")
    assert [r["state"] for r in first] == ["complete"] * 4

    assert search(config, run_dir, 6) == 0
    after = snapshot(run_dir)
    assert len(counted(after.trials)) == 6
    assert len(after.trials) == 6
    assert after.records[:4] == first  # finished trials are kept exactly, times included
    assert [role(t) for t in after.trials] == ["baseline"] + ["sampled"] * 5
    sampled = [tuple(sorted(t.params.items())) for t in after.trials[1:]]
    assert len(set(sampled)) == len(sampled), "the resumed sampler replayed earlier trials"
    assert after.progress["complete"] == 6 and after.progress["target"] == 6


# --------------------------------------------------------------------------- a trial that raises


def test_a_failing_trial_is_recorded_and_the_search_goes_on(write_search_config, tmp_path,
                                                            capfd):
    """XGBoost rejects ``tree_method: not_a_method``: trials that draw it fail, others finish.

    Population 6 without seeded neighbours: the baseline (hist) and 5 random draws, then children.
    """
    cfg = write_search_config(tmp_path / "config.yaml",
                              baseline={"tree_method": "hist"},
                              space={"tree_method": {"type": "categorical",
                                                     "choices": ["hist", "not_a_method"]}},
                              search={"population_size": 6, "seed_neighbours": 0})
    run_dir = tmp_path / "run"
    n = 8
    assert search(cfg, run_dir, n) == 0
    snap = snapshot(run_dir)
    failed = [r for r in snap.records if r["state"] == "fail"]
    complete = [r for r in snap.records if r["state"] == "complete"]
    assert failed, "precondition: with this seed some trial draws not_a_method"
    assert len(failed) + len(complete) == len(snap.records) == n  # failures use the budget
    for r in failed:
        assert r["params"]["tree_method"] == "not_a_method"
        assert "not_a_method" in r["failure_reason"]
        assert r["values"] is None and r["feasible"] is False
        assert sorted(r["constraints"]) == sorted(CONSTRAINTS)
        assert all(v > 0 for v in r["constraints"].values())  # clearly infeasible
    assert all(r["params"]["tree_method"] != "not_a_method" for r in complete)
    assert max(r["number"] for r in complete) > min(r["number"] for r in failed)
    assert snap.progress["failed"] == len(failed)
    fail_trials = [t for t in snap.trials if t.state == TrialState.FAIL]
    assert [t.user_attrs["moqwk_failure"] for t in fail_trials] == \
        [r["failure_reason"] for r in failed]
    # One line per failed trial on stderr, not Optuna's traceback (that needs --debug).
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert sum(f"Trial {r['number']} failed" in err for r in failed) == len(failed)


# --------------------------------------------------------------------------- CLI errors


def test_unreachable_storage_exits_4_with_one_masked_error_line(config, tmp_path,
                                                                assert_one_error_line):
    url = "postgresql+psycopg://u:secret@127.0.0.1:1/db"
    proc = subprocess.run(
        [sys.executable, "-m", "moqwk.cli", "search", "--config", str(config),
         "--run-dir", str(tmp_path / "run"), "--n-trials", "2", "--storage", url],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 4, proc.stderr
    assert_one_error_line(proc.stderr, "u:***@127.0.0.1:1")
    assert "secret" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("text, field", [
    ("data: {demo: true\nscale: [", "line"),
    ("data: {demo: true}\nsearch: {space: {max_depth: {type: cubic, low: 1, high: 3}}}\n",
     "search.space.max_depth"),
    ("data: {demo: true}\nsearch: {population_size: 1}\n", "search.population_size"),
], ids=["unparsable-yaml", "bad-space-type", "bad-population"])
def test_broken_config_exits_2(text, field, tmp_path, capsys, assert_one_error_line):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text, encoding="utf-8")
    rc = search(cfg, tmp_path / "run", 2)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert_one_error_line(err, field)
    assert not (tmp_path / "run" / "artifacts" / "optuna_trials.json").exists()


def test_baseline_outside_the_space_exits_2_naming_the_param(write_search_config, tmp_path,
                                                             capsys, assert_one_error_line):
    cfg = write_search_config(tmp_path / "config.yaml", baseline={"max_depth": 9})
    rc = search(cfg, tmp_path / "run", 2)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert_one_error_line(err, "baseline.params.max_depth=9", "search.space.max_depth")
    assert not (tmp_path / "run" / "study.db").exists()


def test_progress_shows_the_running_trial_while_it_runs(config, tmp_path):
    from moqwk.config import load_config
    from moqwk.run.workspace import Workspace
    from moqwk.stages.search_loop import SearchOptions, run_search

    seen: list[dict] = []
    ws = Workspace.open(load_config(config), tmp_path / "run")
    run_search(ws, SearchOptions(n_trials=2), on_update=lambda recs, prog: seen.append(
        {"prog": dict(prog), "states": [r["state"] for r in recs],
         "running": [r["number"] for r in recs if r["state"] == "running"]}))
    during = [s for s in seen if s["prog"]["running"] == 1]
    assert all("running" in s["states"] for s in during)
    # each trial is reported as running before its CV (no fold done), then once per fold
    first: dict[int, int] = {}
    for s in during:
        (number,) = s["running"]
        folds = [r.get("folds_done", 0) for r in s["prog"].get("running_trials") or []]
        first.setdefault(number, folds[0] if folds else 0)
    assert sorted(first) == [0, 1] and set(first.values()) == {0}
    assert seen[-1]["prog"]["running"] == 0 and seen[-1]["prog"]["complete"] == 2
