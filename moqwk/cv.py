"""The CV runner: XGBoost per fold on cached fold features, out-of-fold predictions, metrics.

A :class:`CVEngine` holds what every trial shares (corpus, splits, feature store, the DMatrix of
each fold) so a trial costs what XGBoost costs and little more. Building the fold features is
reported as a stage of the engine's :class:`~moqwk.progress.Progress`; :meth:`CVEngine.run` calls
``on_fold`` after each fold it trains, so a caller can report training as a stage of its own.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from moqwk.config import Config
from moqwk.core.metrics import CVMetrics, compute_metrics, tail_masks
from moqwk.core.splits import Splits
from moqwk.corpus import Corpus
from moqwk.errors import ConfigError
from moqwk.progress import NO_PROGRESS, Progress

#: Parameters moqwk handles itself rather than passing to ``xgboost.train``.
_RESERVED = {"n_estimators", "num_boost_round", "nthread", "n_jobs", "seed", "random_state",
             "objective", "verbosity"}


def default_cache_dir() -> Path:
    env = os.environ.get("MOQWK_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "moqwk" / "features"


def xgb_threads(n_parallel_trials: int, configured: int = 0) -> int:
    """Threads per XGBoost model so that parallel trials do not oversubscribe the cores."""
    if configured > 0:
        return configured
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, n_parallel_trials))


def booster_params(params: Mapping[str, Any], *, objective: str, nthread: int,
                   seed: int) -> tuple[dict[str, Any], int]:
    """Split moqwk params into ``xgboost.train`` params and the number of boosting rounds."""
    rounds = int(params.get("n_estimators", params.get("num_boost_round", 300)))
    if rounds < 1:
        raise ConfigError(f"n_estimators must be >= 1, got {rounds}")
    out = {k: v for k, v in params.items() if k not in _RESERVED}
    out.update(objective=params.get("objective", objective), nthread=nthread, seed=seed,
               verbosity=0, tree_method=params.get("tree_method", "hist"))
    return out, rounds


@dataclass(frozen=True)
class CVResult:
    """A config's out-of-fold rows (one per essay per repeat), metrics and timings."""

    oof: pd.DataFrame
    metrics: CVMetrics
    timings: dict[str, float]
    params: dict[str, Any]


class CVEngine:
    """Runs one XGBoost config through every fold of ``splits``."""

    def __init__(self, config: Config, corpus: Corpus, splits: Splits, *,
                 cache_dir: Path | None = None, nthread: int | None = None,
                 store: Any = None, progress: Progress = NO_PROGRESS) -> None:
        from moqwk.features import FeatureStore

        self.config = config
        self.corpus = corpus
        self.splits = splits
        self.nthread = nthread if nthread is not None else xgb_threads(1, config.model.nthread)
        self.store = store or FeatureStore(corpus.ids, list(corpus.texts), config.features,
                                           cache_dir or default_cache_dir())
        self._folds: list[tuple[int, int, np.ndarray, np.ndarray, xgb.DMatrix, xgb.DMatrix]] = []
        self._lock = threading.Lock()
        self.feature_seconds = 0.0
        self.progress = progress

    @property
    def n_fits(self) -> int:
        """Models one :meth:`run` trains: one per fold of every repeat."""
        return self.splits.repeats * self.splits.n_folds

    @property
    def feature_keys(self) -> list[str]:
        return [self.store.key(tr, va) for _, _, tr, va in self.splits.iter_folds()]

    def prepare(self) -> list[tuple[int, int, np.ndarray, np.ndarray, xgb.DMatrix, xgb.DMatrix]]:
        """Build (or load) every fold's features and DMatrix once; later calls reuse them."""
        with self._lock:
            if self._folds:
                return self._folds
            t0 = time.perf_counter()
            y = self.corpus.y_norm
            folds = []
            sp = self.splits
            reps = f", {sp.repeats} repeats" if sp.repeats > 1 else ""
            with self.progress.stage(f"fold features ({sp.scheme}{reps})", total=self.n_fits,
                                     unit="folds") as stage:
                for r, k, tr, va in sp.iter_folds():
                    ff = self.store.fold(tr, va)
                    dtrain = xgb.DMatrix(ff.X_train, label=y[tr],
                                         feature_names=list(ff.feature_names))
                    dval = xgb.DMatrix(ff.X_val, feature_names=list(ff.feature_names))
                    folds.append((r, k, tr, va, dtrain, dval))
                    stage.advance()
            self._folds = folds
            self.feature_seconds = time.perf_counter() - t0
            return folds

    def run(self, params: Mapping[str, Any], *,
            on_fold: Callable[[], None] | None = None) -> CVResult:
        """Train and predict every fold of every repeat; return out-of-fold rows and metrics.

        ``on_fold`` is called after each fold's model has predicted (:attr:`n_fits` times).
        """
        folds = self.prepare()
        cfg = self.config
        bp, rounds = booster_params(params, objective=cfg.model.objective,
                                    nthread=self.nthread, seed=cfg.cv.seed)
        n = len(self.corpus)
        n_rep = self.splits.repeats
        z = np.full((n_rep, n), np.nan)
        fold_of = np.full((n_rep, n), -1, dtype=np.int64)
        t_train = t_pred = 0.0
        for r, k, _tr, va, dtrain, dval in folds:
            t0 = time.perf_counter()
            booster = xgb.train(bp, dtrain, num_boost_round=rounds)
            t1 = time.perf_counter()
            z[r, va] = booster.predict(dval)
            t_pred += time.perf_counter() - t1
            t_train += t1 - t0
            fold_of[r, va] = k
            if on_fold is not None:
                on_fold()
        t0 = time.perf_counter()
        oof = self._oof_frame(z, fold_of)
        metrics = self._metrics(oof)
        t_metrics = time.perf_counter() - t0
        timings = {"features_s": self.feature_seconds, "train_s": t_train, "predict_s": t_pred,
                   "metrics_s": t_metrics, "total_s": t_train + t_pred + t_metrics}
        return CVResult(oof=oof, metrics=metrics, timings=timings, params=dict(params))

    def _oof_frame(self, z: np.ndarray, fold_of: np.ndarray) -> pd.DataFrame:
        c = self.corpus
        es = c.essay_scale
        n_rep, n = z.shape
        low, high = tail_masks(c.y_norm, self.config.tails.low_band, self.config.tails.high_band)
        frames = []
        for r in range(n_rep):
            y_pred = es.to_scale(z[r])
            frames.append(pd.DataFrame({
                "id": c.ids, "prompt": c.prompts, "fold": fold_of[r], "repeat": r,
                "y_true": c.scores, "y_pred_raw": es.raw_to_scale(z[r]), "y_pred": y_pred,
                "residual": y_pred - c.scores, "in_low_tail": low, "in_high_tail": high,
            }))
        return pd.concat(frames, ignore_index=True)

    def _metrics(self, oof: pd.DataFrame) -> CVMetrics:
        return metrics_from_oof(oof, self.corpus, self.config)


def metrics_from_oof(oof: pd.DataFrame, corpus: Corpus, config: Config) -> CVMetrics:
    """Metrics from out-of-fold rows (also used to recompute them from a residuals CSV)."""
    lookup = {p: i for i, p in enumerate(corpus.prompt_names)}
    prompts = oof["prompt"].astype(str).to_numpy()
    es = corpus.essay_scale
    pos = pd.Index(corpus.ids.astype(str)).get_indexer(oof["id"].astype(str))
    return compute_metrics(
        prompt_codes=np.array([lookup[p] for p in prompts]),
        prompt_names=corpus.prompt_names,
        repeat=oof["repeat"].to_numpy(),
        y_true=oof["y_true"].to_numpy(float),
        y_pred=oof["y_pred"].to_numpy(float),
        lo=es.lo[pos], hi=es.hi[pos], step=es.step[pos],
        min_prompt_n=config.cv.min_prompt_n,
        low_band=config.tails.low_band,
        high_band=config.tails.high_band,
        global_scale=corpus.scales.is_global,
    )
