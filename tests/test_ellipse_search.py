"""``moqwk search`` + ``moqwk select`` on the real ELLIPSE corpus (2,571 essays, 44 prompts).

A 4-trial search with small n-gram SVDs and few trees, loaded back with Optuna: the same study
shape as on the demo corpus (four objectives, both tail guardrails on every trial), then a
selection that must pick one of its trials.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from moqwk.cli import main

pytestmark = [pytest.mark.ellipse, pytest.mark.slow]

OBJECTIVES = ("worst_prompt_qwk", "mean_qwk", "low_tail_mae", "high_tail_mae")
CONSTRAINTS = ("low_tail_guardrail", "high_tail_guardrail")
N_TRIALS = 4
TOLERANCE = 0.05


@pytest.fixture(scope="module", autouse=True)
def _one_thread_each():
    """One BLAS/OpenMP thread (and ``model.nthread: 1``): much faster on a busy 2-core machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def ellipse_run(ellipse_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("ellipse-search")
    cfg = root / "config.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"path": str(ellipse_csv), "id_column": "text_id_kaggle",
                 "text_column": "full_text", "prompt_column": "prompt",
                 "score_column": "Overall"},
        "scale": {"kind": "global", "min": 1.0, "max": 5.0, "step": 0.5},
        "features": {"handcrafted": True,
                     "word": {"ngram_range": [1, 2], "min_df": 2, "svd_components": 16},
                     "char": {"ngram_range": [2, 4], "min_df": 3, "svd_components": 16},
                     "lexical": {"enabled": False}},  # the families this run was written for
        "cv": {"n_folds": 5, "repeats": 1, "seed": 42, "min_prompt_n": 20},
        "model": {"nthread": 1},
        "tails": {"tolerance": TOLERANCE},
        "baseline": {"params": {"max_depth": 3, "learning_rate": 0.1, "n_estimators": 100,
                                "min_child_weight": 4.0, "subsample": 0.8}},
        "search": {"population_size": 4, "seed": 3, "space": {
            "n_estimators": {"type": "int", "low": 50, "high": 150, "step": 50},
            "max_depth": {"type": "int", "low": 2, "high": 5},
            "learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True},
            "min_child_weight": {"type": "float", "low": 1.0, "high": 16.0, "log": True},
            "subsample": {"type": "float", "low": 0.6, "high": 1.0}}},
    }, sort_keys=False), encoding="utf-8")
    run_dir = root / "run"
    assert main(["search", "--config", str(cfg), "--run-dir", str(run_dir),
                 "--n-trials", str(N_TRIALS)]) == 0
    study = optuna.load_study(study_name="moqwk", storage=f"sqlite:///{run_dir / 'study.db'}",
                              sampler=optuna.samplers.NSGAIISampler())
    recs = json.loads((run_dir / "artifacts/optuna_trials.json").read_text(encoding="utf-8"))
    return SimpleNamespace(config=cfg, run_dir=run_dir, study=study, trials=study.trials,
                           records=recs)


def test_study_shape(ellipse_run, assert_guardrails):
    d = optuna.study.StudyDirection
    assert ellipse_run.study.directions == [d.MAXIMIZE, d.MAXIMIZE, d.MINIMIZE, d.MINIMIZE]
    assert ellipse_run.study.metric_names == list(OBJECTIVES)
    # With two workers, a trial started after the other used up the budget is pruned before
    # training and marked surplus (records.py); every other trial completes, N_TRIALS in all.
    surplus = [t for t in ellipse_run.trials if t.user_attrs.get("moqwk_surplus")]
    assert all(t.state == TrialState.PRUNED for t in surplus)
    trials = [t for t in ellipse_run.trials if t not in surplus]
    assert [t.state for t in trials] == [TrialState.COMPLETE] * N_TRIALS
    assert trials[0].user_attrs["moqwk_role"] == "baseline"
    for t in trials:
        assert sorted(t.constraints) == sorted(CONSTRAINTS)
        assert all(0.0 <= v <= 1.0 for v in t.values[:2])  # QWKs of a working model
    assert assert_guardrails(trials, baseline=trials[0].values, tolerance=TOLERANCE,
                             names=ellipse_run.study.metric_names) == N_TRIALS
    # 44 prompts, of which those with >= 20 essays count toward the worst-prompt objective.
    assert len(trials[0].user_attrs["per_prompt_qwk"]) == 44


def test_optuna_trials_json_agrees_with_the_study(ellipse_run):
    recs = {r["number"]: r for r in ellipse_run.records}
    assert sorted(recs) == [t.number for t in ellipse_run.trials]
    for t in ellipse_run.trials:
        r = recs[t.number]
        if t.user_attrs.get("moqwk_surplus"):  # pruned before training (see test_study_shape)
            assert r["state"] == "surplus" and r["values"] is None
            continue
        assert r["state"] == "complete"
        assert r["values"] == dict(zip(OBJECTIVES, t.values, strict=True))
        assert {k: r["params"][k] for k in t.params} == t.params
        assert r["constraints"] == t.constraints
        assert r["feasible"] == all(v <= 0 for v in t.constraints.values())


def test_select_picks_a_trial(ellipse_run, capsys):
    rc = main(["select", "--config", str(ellipse_run.config), "--run-dir",
               str(ellipse_run.run_dir), "--max-candidates", "1", "--gate-margin", "1.0"])
    out = capsys.readouterr().out
    assert rc == 0
    rec = json.loads((ellipse_run.run_dir / "artifacts/selected_params.json").read_text())
    feasible = {r["number"]: r for r in ellipse_run.records if r["feasible"]}
    assert rec["trial_number"] in feasible
    assert rec["params"] == feasible[rec["trial_number"]]["params"]
    assert rec["trial_number"] == rec["candidates"][0]["trial_number"]  # the gate let it pass
    assert [g["trial_number"] for g in rec["stability_gate"]["results"]] == [rec["trial_number"]]
    assert f"Selected trial {rec['trial_number']}" in out
