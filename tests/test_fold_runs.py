"""The CV engine fold by fold (fold racing) and its parallel fold-feature build.

A run stopped after a prefix of folds must leave the raw-prediction cache as it was (a later
full run of the same config trains everything and gives the same numbers), a prefix's
predictions must be the full run's on the folds it ran, and building the folds in parallel
must give the same feature bits as building them one after another.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moqwk.config import load_config
from moqwk.run.workspace import Workspace

PARAMS = {"max_depth": 3, "learning_rate": 0.1, "n_estimators": 40}


def _ws(config: Path, run_dir: Path, monkeypatch, cache: Path) -> Workspace:
    monkeypatch.setenv("MOQWK_CACHE_DIR", str(cache))
    return Workspace.open(load_config(config), run_dir)


def test_a_prefix_run_gives_the_full_runs_predictions_and_caches_nothing(
        demo_config_path, tmp_path, monkeypatch):
    ws = _ws(demo_config_path, tmp_path / "run", monkeypatch, tmp_path / "cache")
    eng = ws.engine("prompt_holdout", nthread=1)
    run = eng.start(PARAMS)
    seen: list[int] = []
    run.advance(2, on_fold=lambda: seen.append(run.done))
    assert seen == [1, 2] and run.done == 2
    partial = run.partial_pred()
    ran = np.concatenate([f.val for f in eng.prepare()[:2]])
    assert np.isfinite(partial[0, ran]).all()
    assert np.isnan(np.delete(partial[0], ran)).all()
    # stopped here: nothing of this config is in the raw-prediction cache yet
    fresh = eng.start(PARAMS)
    assert not fresh.cached
    full = eng.run(PARAMS)
    assert full.timings["cache_hits"] == 0 and full.timings["train_s"] > 0
    np.testing.assert_array_equal(full.oof["y_pred"].to_numpy()[ran], partial[0, ran])
    # the full run did fill the cache: the next run of the config trains nothing
    again = eng.start(PARAMS)
    assert again.cached
    assert eng.run(PARAMS).metrics.to_dict() == full.metrics.to_dict()


def test_finishing_a_prefix_run_equals_a_run_at_once(demo_config_path, tmp_path, monkeypatch):
    ws = _ws(demo_config_path, tmp_path / "run", monkeypatch, tmp_path / "cache")
    eng = ws.engine("prompt_holdout", nthread=1)
    staged = eng.start(PARAMS)
    staged.advance(2)
    staged.advance(3)
    res = staged.finish()
    other = ws.engine("prompt_holdout", nthread=1)
    other.predictions = type(eng.predictions)(tmp_path / "other-predictions")
    at_once = other.run(PARAMS)
    assert res.oof["y_pred"].tolist() == at_once.oof["y_pred"].tolist()
    assert res.metrics.to_dict() == at_once.metrics.to_dict()


def test_parallel_fold_build_gives_the_serial_builds_bits(demo_config_path, tmp_path,
                                                          monkeypatch):
    feats = {}
    for workers in (1, 2):
        ws = _ws(demo_config_path, tmp_path / f"run{workers}", monkeypatch,
                 tmp_path / f"cache{workers}")  # each builds (no shared disk cache)
        eng = ws.engine("prompt_holdout", nthread=1)
        eng.build_workers = workers
        folds = eng.prepare()
        assert eng.store.stats["misses"] == len(folds)
        feats[workers] = [(eng.store.fold(f.train, f.val).X_train.tobytes(),
                           eng.store.fold(f.train, f.val).X_val.tobytes()) for f in folds]
    assert feats[1] == feats[2]
