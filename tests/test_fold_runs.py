"""The CV engine fold by fold (fold racing) and its parallel fold-feature build.

A run stopped after a prefix of folds must leave the raw-prediction cache as it was (a later
full run of the same config trains everything and gives the same numbers), a prefix's
predictions must be the full run's on the folds it ran, and building the folds in parallel
must give the same feature bits as building them one after another (outer folds, and the
inner folds of a label-based mapping's cross-fit).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moqwk.config import load_config
from moqwk.run.workspace import Workspace

PARAMS = {"max_depth": 3, "learning_rate": 0.1, "n_estimators": 40}
TIMINGS = ("train_s", "predict_s", "inner_train_s")


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


def test_parallel_inner_fold_build_gives_the_serial_builds_bits(demo_config_path, tmp_path,
                                                                monkeypatch):
    """An outer fold's inner folds (the cross-fit of a label-based mapping) build on the
    trial's share of the cores; in parallel they are the bits of a one-at-a-time build, and
    the inner-fold predictions they give are equal."""
    feats, zi = {}, {}
    for workers in (1, 2):
        ws = _ws(demo_config_path, tmp_path / f"run{workers}", monkeypatch,
                 tmp_path / f"cache{workers}")
        eng = ws.engine("prompt_holdout", nthread=2)
        eng.build_workers = workers
        assert eng.inner_build_workers == workers
        fold = eng.prepare()[0]
        misses = eng.store.stats["misses"]
        inner = eng._inner_folds(fold)
        assert len(inner) == ws.config.mapping.inner_folds
        assert eng.store.stats["misses"] == misses + len(inner)  # each inner fold was built
        v = eng._variant(eng.config.features)
        feats[workers] = [(v.store.fold(itr, iva).X_train.tobytes(),
                           v.store.fold(itr, iva).X_val.tobytes())
                          for itr, iva in eng.inner_splits(fold)]
        _, zi[workers] = eng.raw_predictions({**PARAMS, "mapping.method": "stretch"},
                                             inner=True,
                                             timings=dict.fromkeys(TIMINGS, 0.0))
    assert feats[1] == feats[2]
    np.testing.assert_array_equal(zi[1], zi[2])


def test_two_trials_share_the_cores_so_inner_folds_build_one_at_a_time(
        demo_config_path, tmp_path, monkeypatch):
    ws = _ws(demo_config_path, tmp_path / "run", monkeypatch, tmp_path / "cache")
    eng = ws.engine("prompt_holdout", nthread=1)  # what n_jobs 2 on 2 cores gives each trial
    eng.build_workers = 2
    assert eng.inner_build_workers == 1


def test_fold_matrices_carry_no_feature_names_and_predict_the_same_bits(
        demo_config_path, tmp_path, monkeypatch):
    """The engine's fold matrices are built without feature names (XGBoost checks names on
    every boosting round); a model trained on the same features with names predicts the
    same bits, so dropping them changes no number."""
    import xgboost as xgb

    from moqwk.engine.cv import booster_params

    ws = _ws(demo_config_path, tmp_path / "run", monkeypatch, tmp_path / "cache")
    eng = ws.engine("prompt_holdout", nthread=1)
    fold = eng.prepare()[0]
    assert fold.dtrain.feature_names is None
    ff = eng._variant(eng.config.features).store.fold(fold.train, fold.val)
    names = list(ff.feature_names)
    bp, rounds = booster_params({**PARAMS, "subsample": 0.8, "colsample_bytree": 0.6},
                                objective="reg:squarederror", nthread=1, seed=3)
    named = xgb.train(bp, xgb.DMatrix(ff.X_train, label=ws.corpus.y_norm[fold.train],
                                      feature_names=names), num_boost_round=rounds)
    plain = xgb.train(bp, fold.dtrain, num_boost_round=rounds)
    z_named = named.predict(xgb.DMatrix(ff.X_val, feature_names=names))
    assert np.unique(z_named).size > 5  # a real model
    assert np.array_equal(z_named, plain.predict(fold.dval))


def test_model_max_bin_reaches_xgboost_and_params_override_it(demo_config_path, tmp_path,
                                                              monkeypatch):
    """``model.max_bin`` changes the trained model (and so the raw-prediction cache key); a
    ``max_bin`` in the params wins over it."""
    import yaml

    from moqwk.config import parse_config

    raw = yaml.safe_load(Path(demo_config_path).read_text())
    runs = iter(range(3))

    def run(max_bin: int, params: dict) -> np.ndarray:
        i = next(runs)  # a cache of its own: every model is trained, none read back
        monkeypatch.setenv("MOQWK_CACHE_DIR", str(tmp_path / f"cache-{i}"))
        cfg = parse_config({**raw, "model": {**(raw.get("model") or {}), "max_bin": max_bin}},
                           base_dir=Path(demo_config_path).parent)
        res = Workspace.open(cfg, tmp_path / f"run-{i}").engine(
            "prompt_holdout", nthread=1).run(params)
        return res.oof["y_pred_raw"].to_numpy()

    coarse, fine = run(4, PARAMS), run(256, PARAMS)
    assert not np.array_equal(coarse, fine)
    assert np.array_equal(run(4, {**PARAMS, "max_bin": 256}), fine)
