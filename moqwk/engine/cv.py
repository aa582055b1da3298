"""The CV runner: XGBoost per fold on cached fold features, the score mapping, metrics.

A :class:`CVEngine` holds what every trial shares (corpus, splits, feature store, the DMatrix of
each fold, the raw-prediction cache) so a trial costs what XGBoost costs and little more.
Building the fold features is reported as a stage of the engine's
:class:`~moqwk.base.progress.Progress`; :meth:`CVEngine.run` calls ``on_fold`` after each fold, so a
caller can report training as a stage of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from threadpoolctl import threadpool_limits

from moqwk.base.progress import NO_PROGRESS, Progress
from moqwk.config import Config
from moqwk.core.batching import apply_in_batches, batch_of, batch_seed, describe_batch
from moqwk.core.mapping import (
    METHODS,
    complete_params,
    fit_mapping,
    model_params,
    needs_train_pred,
    spec_from_params,
)
from moqwk.core.metrics import CVMetrics, compute_metrics, tail_masks
from moqwk.core.splits import Splits
from moqwk.data.corpus import Corpus
from moqwk.engine.predictions import PredictionCache, prediction_key
from moqwk.errors import ConfigError
from moqwk.features.config import feature_params

#: Parameters moqwk handles itself rather than passing to ``xgboost.train``.
_RESERVED = {"n_estimators", "num_boost_round", "nthread", "n_jobs", "seed", "random_state",
             "objective", "verbosity"}


def default_cache_dir() -> Path:
    env = os.environ.get("MOQWK_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "moqwk" / "features"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1)


def xgb_threads(n_parallel_trials: int, configured: int = 0) -> int:
    """Threads per XGBoost model so that parallel trials do not oversubscribe the cores:
    workers x threads = usable cores (at least one thread each)."""
    if configured > 0:
        return configured
    return max(1, usable_cores() // max(1, n_parallel_trials))


def map_threads(fn: Callable[[Any], Any], items: list[Any], workers: int, name: str
                ) -> list[Any]:
    """``[fn(x) for x in items]``, on up to ``workers`` threads (named ``name``) at once; in
    this thread when one is enough. The results keep the items' order."""
    workers = min(workers, len(items))
    if workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        return list(pool.map(fn, items))


def inner_seed(seed: int, repeat: int, fold: int) -> int:
    """The seed of an outer fold's inner folds: from the fold seed, the repeat and the fold
    (``moqwk fit`` uses it too, so a fit on a fold's training essays has that fold's inner
    folds)."""
    return int(np.random.default_rng([int(seed), int(repeat), int(fold), 29]).integers(2**31))


def reused_folds(d: xgb.DMatrix, folds: list[tuple[np.ndarray, np.ndarray]]
                 ) -> list[tuple[np.ndarray, xgb.DMatrix, xgb.DMatrix]]:
    """Inner folds that reuse the features of ``d`` (an outer training matrix, labelled):
    each ``(train, held_out)`` pair of positions in ``d`` becomes ``(held_out, dtrain, dval)``
    sliced from it. No feature is refitted; the held-out part's texts were seen by the
    unsupervised feature fit, its labels only by ``d`` (not by the model predicting it).
    ``moqwk fit`` slices its whole-corpus matrix the same way."""
    return [(iva, d.slice(itr), d.slice(iva)) for itr, iva in folds]


def booster_params(params: Mapping[str, Any], *, objective: str, nthread: int,
                   seed: int, max_bin: int = 256) -> tuple[dict[str, Any], int]:
    """Split moqwk params into ``xgboost.train`` params and the number of boosting rounds.
    ``max_bin`` (``model.max_bin``) applies unless the params name their own."""
    rounds = int(params.get("n_estimators", params.get("num_boost_round", 300)))
    if rounds < 1:
        raise ConfigError(f"n_estimators must be >= 1, got {rounds}")
    out = {k: v for k, v in params.items() if k not in _RESERVED}
    out.update(objective=params.get("objective", objective), nthread=nthread, seed=seed,
               verbosity=0, tree_method=params.get("tree_method", "hist"))
    out.setdefault("max_bin", max_bin)
    return out, rounds


@dataclass(frozen=True)
class CVResult:
    """A config's out-of-fold rows (one per essay per repeat), metrics, timings and the score
    mapping fitted in each fold (``mapping``: what ``cv_metrics.json`` records)."""

    oof: pd.DataFrame
    metrics: CVMetrics
    timings: dict[str, float]
    params: dict[str, Any]
    mapping: dict[str, Any] = field(default_factory=dict)
    #: The feature families the run used: ``families`` (enabled, in column order), ``config``
    #: (the variant's ``features:``) and ``params`` (its ``features.*`` keys, if any).
    features: dict[str, Any] = field(default_factory=dict)

    @property
    def transductive(self) -> bool:
        return bool(self.mapping.get("transductive"))

    @property
    def batch(self) -> int | str | None:
        """The deployment batch a transductive mapping's numbers assume (None: not transductive)."""
        return self.mapping.get("batch")


@dataclass(frozen=True)
class _Fold:
    """One outer fold: its rows, its DMatrix pair, and (built on demand) its inner folds."""

    repeat: int
    fold: int
    train: np.ndarray
    val: np.ndarray
    dtrain: xgb.DMatrix
    dval: xgb.DMatrix


@dataclass
class _Variant:
    """One feature variant's store view, fold matrices, inner folds and fold keys."""

    store: Any
    folds: list[_Fold] = field(default_factory=list)
    inner: dict[tuple[int, int], list[tuple[np.ndarray, xgb.DMatrix, xgb.DMatrix]]] = \
        field(default_factory=dict)
    keys: list[str] | None = None


#: Feature variants whose fold matrices an engine keeps in memory (least recently used out).
MAX_VARIANTS = 4


class CVEngine:
    """Runs one config (XGBoost params and a score mapping) through every fold of ``splits``.

    ``run(params)``: the XGBoost params train one model per fold (their raw out-of-fold
    predictions are cached, see :mod:`moqwk.engine.predictions`, so a trial that changes only the
    mapping trains nothing); the ``mapping.*`` keys of ``params`` (else the config's
    ``mapping:``) say how raw predictions become scores; its ``features.<family>.<field>`` keys
    (else the config's ``features:``) say which feature variant it trains on: each variant's
    fold features are built once (per family, cached by content hash in the shared store) and
    its fold matrices kept for the next trial. A label-based mapping is fitted in each
    fold on the training essays' inner cross-fitted predictions (prompt-grouped inner folds,
    features refitted on each inner training set: docs/decisions/0002-score-mapping.md, or with
    ``mapping.inner_features: reuse`` the outer fold's features sliced to each inner part:
    docs/research/inner-cross-fit.md); no held-out label enters it.
    """

    def __init__(self, config: Config, corpus: Corpus, splits: Splits, *,
                 cache_dir: Path | None = None, nthread: int | None = None,
                 store: Any = None, predictions: PredictionCache | None = None,
                 progress: Progress = NO_PROGRESS) -> None:
        from moqwk.features import FeatureStore

        self.config = config
        self.corpus = corpus
        self.splits = splits
        self.nthread = nthread if nthread is not None else xgb_threads(1, config.model.nthread)
        self.store = store or FeatureStore(corpus.ids, list(corpus.texts), config.features,
                                           cache_dir or default_cache_dir())
        self.predictions = predictions or PredictionCache(self.store.cache_dir / "predictions")
        self._variants: OrderedDict[str, _Variant] = OrderedDict()
        self._lock = threading.RLock()
        self.feature_seconds = 0.0
        self._labels_sha = hashlib.sha256(np.ascontiguousarray(corpus.y_norm).tobytes()
                                          ).hexdigest()
        self.progress = progress
        #: Threads that build fold features at once (:meth:`prepare`): the usable cores.
        self.build_workers = usable_cores()

    @property
    def inner_build_workers(self) -> int:
        """Threads that build one outer fold's inner-fold features at once: this trial's share
        of the cores, which its XGBoost threads (``nthread``) already are."""
        return max(1, min(self.build_workers, self.nthread))

    @property
    def n_fits(self) -> int:
        """Folds one :meth:`run` goes through: one per fold of every repeat."""
        return self.splits.repeats * self.splits.n_folds

    @property
    def feature_keys(self) -> list[str]:
        """The config's own feature variant's fold keys."""
        return self.variant_keys(self.config.features)

    def features_for(self, params: Mapping[str, Any]) -> Any:
        """The feature config ``params`` ask for: the config's ``features:`` with their
        ``features.<family>.<field>`` keys applied."""
        return self.config.features.with_params(params)

    def _variant(self, features: Any) -> _Variant:
        key = json.dumps(features.to_dict(), sort_keys=True, default=str)
        with self._lock:
            v = self._variants.get(key)
            if v is None:
                v = _Variant(self.store.variant(features))
                self._variants[key] = v
                base = json.dumps(self.config.features.to_dict(), sort_keys=True, default=str)
                while len(self._variants) > MAX_VARIANTS:  # the config's own variant stays
                    old = next(k for k in self._variants if k != base and k != key)
                    del self._variants[old]
            self._variants.move_to_end(key)
            return v

    def variant_keys(self, features: Any) -> list[str]:
        """The fold keys of a feature variant (one per fold of every repeat)."""
        v = self._variant(features)
        if v.keys is None:
            v.keys = [v.store.key(tr, va) for _, _, tr, va in self.splits.iter_folds()]
        return v.keys

    def model_seed(self, repeat: int) -> int:
        """XGBoost's seed for a fold assignment: the fold seed plus the repeat index, so fresh
        folds (another seed) and repeats also vary the training randomness."""
        return int(self.splits.seed) + repeat

    def prepare(self, features: Any = None) -> list[_Fold]:
        """Build (or load) every fold's features and DMatrix once for a feature variant
        (default: the config's ``features:``); later calls reuse them.

        Folds build in parallel, one thread per usable core (at most one per fold): each
        fold's features are fitted on its own training essays, so the order does not matter,
        and BLAS is held at one thread for the whole build (threadpoolctl's limit is
        process-wide, so a pool's threads must not set and reset it on their own), so the
        features are the same bits as a one-at-a-time build (tested).
        """
        v = self._variant(self.config.features if features is None else features)
        with self._lock:
            if v.folds:
                return v.folds
            t0 = time.perf_counter()
            sp = self.splits
            reps = f", {sp.repeats} repeats" if sp.repeats > 1 else ""
            todo = list(sp.iter_folds())
            with self.progress.stage(f"fold features ({sp.scheme}{reps})", total=self.n_fits,
                                     unit="folds") as stage:
                def build(item: tuple[int, int, np.ndarray, np.ndarray]) -> _Fold:
                    fold = self._build_fold(v, *item)
                    stage.advance()
                    return fold

                with threadpool_limits(limits=1, user_api="blas"):
                    folds = map_threads(build, todo, self.build_workers, "moqwk-folds")
            v.folds = folds
            self.feature_seconds += time.perf_counter() - t0
            return folds

    def _build_fold(self, v: _Variant, r: int, k: int, tr: np.ndarray, va: np.ndarray) -> _Fold:
        y = self.corpus.y_norm
        ff = v.store.fold(tr, va)
        # No feature names: XGBoost compares a matrix's names with the booster's on every
        # boosting round (about a sixth of a trial's training time with 167 named features),
        # and no CV model is saved or inspected by name. The predictions are the same bits.
        dtrain = xgb.DMatrix(ff.X_train, label=y[tr], nthread=1)
        dval = xgb.DMatrix(ff.X_val, nthread=1)
        return _Fold(r, k, tr, va, dtrain, dval)

    # ------------------------------------------------------------------ inner folds

    def inner_splits(self, fold: _Fold) -> list[tuple[np.ndarray, np.ndarray]]:
        """The inner folds of an outer fold's training essays, as positions in the corpus.

        Grouped like the outer scheme: whole prompts under ``prompt_holdout``, score-stratified
        (identical texts together) under ``stratified_text``. Seeded from the fold seed, the
        repeat and the fold.
        """
        tr = fold.train
        return [(tr[itr], tr[iva]) for itr, iva in self._inner_positions(fold)]

    def _inner_positions(self, fold: _Fold) -> list[tuple[np.ndarray, np.ndarray]]:
        """The inner folds as positions among the outer fold's training essays."""
        from moqwk.core.splits import prompt_holdout, score_strata, stratified_text

        k_in = self.config.mapping.inner_folds
        tr = fold.train
        seed = inner_seed(self.splits.seed, fold.repeat, fold.fold)
        ids = self.corpus.ids[tr]
        if self.splits.scheme == "prompt_holdout":
            codes = self.corpus.prompt_codes[tr]
            k_in = min(k_in, len(np.unique(codes)))
            if k_in < 2:
                raise ValueError("a label-based score mapping needs at least 2 prompts in each "
                                 "fold's training essays for its inner folds")
            inner = prompt_holdout(ids, codes, n_folds=k_in, repeats=1, seed=seed)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # thin strata
                inner = stratified_text(ids, [self.corpus.texts[i] for i in tr],
                                        score_strata(self.corpus.y_norm[tr]), n_folds=k_in,
                                        repeats=1, seed=seed)
        return [(itr, iva) for _, _, itr, iva in inner.iter_folds()]

    @property
    def reuses_features(self) -> bool:
        """True when the inner models train on the outer fold's features
        (``mapping.inner_features: reuse``) rather than features refitted per inner fold."""
        return self.config.mapping.inner_features == "reuse"

    def _inner_folds(self, fold: _Fold, features: Any = None
                     ) -> list[tuple[np.ndarray, xgb.DMatrix, xgb.DMatrix]]:
        """Each inner fold's held-out rows and DMatrix pair: features refitted on the inner
        training essays (cached like every fold's), or under ``reuse`` the outer fold's
        training matrix sliced to the inner parts (no feature build)."""
        key = (fold.repeat, fold.fold)
        v = self._variant(self.config.features if features is None else features)
        with self._lock:
            if key in v.inner:
                return v.inner[key]
        if self.reuses_features:
            out = [(fold.train[iva], dtr, dva)
                   for iva, dtr, dva in reused_folds(fold.dtrain, self._inner_positions(fold))]
            with self._lock:
                v.inner[key] = out
            return out
        y = self.corpus.y_norm
        splits = self.inner_splits(fold)

        def build(split: tuple[np.ndarray, np.ndarray]
                  ) -> tuple[np.ndarray, xgb.DMatrix, xgb.DMatrix]:
            itr, iva = split
            ff = v.store.fold(itr, iva)
            return iva, xgb.DMatrix(ff.X_train, label=y[itr]), xgb.DMatrix(ff.X_val)

        # The inner folds build at once on this trial's share of the cores: all of them when
        # one trial runs (cv, compare, search with n_jobs 1), one thread when two trials share
        # two cores. Each build's SVD holds BLAS at one thread itself (features/ngrams.py), and
        # its result does not depend on the order: the bits of a one-at-a-time build (tested).
        out = map_threads(build, splits, self.inner_build_workers, "moqwk-inner-folds")
        with self._lock:
            v.inner[key] = out
        return out

    # ------------------------------------------------------------------ raw predictions

    def _key(self, bp: Mapping[str, Any], rounds: int, part: str,
             features: Any = None) -> str:
        keys = self.variant_keys(self.config.features if features is None else features)
        inner = part.startswith("inner:")  # parts are "outer:<repeat>" and "inner:<repeat>"
        return prediction_key(part=part, features=keys, splits=self.splits.sha256,
                              booster={k: v for k, v in bp.items() if k != "nthread"},
                              rounds=rounds, labels=self._labels_sha,
                              inner_folds=self.config.mapping.inner_folds if inner else None,
                              # named only under reuse (refit keys are as before the field)
                              **({"inner_features": "reuse"}
                                 if inner and self.reuses_features else {}))

    def raw_predictions(self, params: Mapping[str, Any], *, inner: bool,
                        timings: dict[str, float],
                        on_fold: Callable[[], None] | None = None
                        ) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw normalised predictions: held-out ``(repeats, n)`` and, with ``inner``, each
        outer fold's inner cross-fitted predictions of its training essays, stacked as
        ``(n_folds_total, n)`` (NaN outside that fold's training rows). The feature variant
        is the one ``params`` ask for (:meth:`features_for`)."""
        raw = RawRun(self, params, inner=inner, timings=timings)
        raw.advance(self.n_fits, on_fold=on_fold)
        return raw.z, raw.zi

    # ------------------------------------------------------------------ a run

    def start(self, params: Mapping[str, Any]) -> TrialRun:
        """A run of ``params`` whose folds are trained on demand, in order (fold racing):
        :meth:`TrialRun.advance` trains a prefix, :meth:`TrialRun.finish` the rest."""
        return TrialRun(self, params)

    def run(self, params: Mapping[str, Any], *,
            on_fold: Callable[[], None] | None = None) -> CVResult:
        """Train (or reuse) every fold's model, map its predictions, return rows and metrics.

        ``on_fold`` is called once per fold (:attr:`n_fits` times), after its model predicted
        (and, for a label-based mapping, after its inner cross-fit).
        """
        return self.start(params).finish(on_fold=on_fold)

    def _map_folds(self, spec: Any, z: np.ndarray, zi: np.ndarray | None, folds: list[_Fold]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        """Each of ``folds``' (a prefix of the engine's folds, in order) mapping, fitted on its
        training essays, applied to its held-out ones (a transductive mapping in its declared
        batches); rows of other folds stay NaN (unmapped)."""
        c = self.corpus
        es = c.essay_scale
        n_rep, n = z.shape
        y_pred = np.full((n_rep, n), np.nan)
        z_mapped = np.full((n_rep, n), np.nan)
        fallback = np.zeros((n_rep, n), dtype=bool)
        fold_of = np.full((n_rep, n), -1, dtype=np.int64)
        records = []
        source = (f"inner cross-fit: {self.config.mapping.inner_folds} "
                  f"{'prompt-grouped' if self.splits.scheme == 'prompt_holdout' else 'stratified'}"
                  " inner folds of the fold's training essays, "
                  + ("the fold's own features (fitted on all its training essays) reused"
                     if self.reuses_features else "features refitted on each"))
        for j, f in enumerate(folds):  # a prefix of the variant's folds: j is the row of zi
            tr, va = f.train, f.val
            fitted = fit_mapping(
                spec, train_y_norm=c.y_norm[tr], train_prompt_codes=c.prompt_codes[tr],
                train_lo=es.lo[tr], train_hi=es.hi[tr], train_step=es.step[tr],
                train_pred=None if zi is None else zi[j, tr], source=source)
            # a transductive mapping scores the held-out essays in its declared batches
            bseed = batch_seed(self.splits.seed, f.repeat, f.fold)
            mapped = apply_in_batches(fitted, pred=z[f.repeat, va],
                                      prompt_codes=c.prompt_codes[va], lo=es.lo[va],
                                      hi=es.hi[va], step=es.step[va], seed=bseed)
            y_pred[f.repeat, va] = mapped.y_pred
            z_mapped[f.repeat, va] = mapped.z
            fallback[f.repeat, va] = mapped.fallback
            fold_of[f.repeat, va] = f.fold
            records.append({"repeat": f.repeat, "fold": f.fold, **fitted.to_dict(),
                            "fallback_essays": int(mapped.fallback.sum()),
                            "held_out_essays": len(va),
                            **({"batch_seed": bseed} if fitted.transductive else {})})
        return y_pred, z_mapped, fallback, fold_of, records

    def _oof_frame(self, z: np.ndarray, z_mapped: np.ndarray, y_pred: np.ndarray,
                   fallback: np.ndarray, fold_of: np.ndarray) -> pd.DataFrame:
        c = self.corpus
        es = c.essay_scale
        n_rep, n = z.shape
        low, high = tail_masks(c.y_norm, self.config.tails.low_band, self.config.tails.high_band)
        frames = []
        for r in range(n_rep):
            frames.append(pd.DataFrame({
                "id": c.ids, "prompt": c.prompts, "fold": fold_of[r], "repeat": r,
                "y_true": c.scores, "y_pred_raw": es.raw_to_scale(z[r]),
                "y_pred_mapped": es.raw_to_scale(z_mapped[r]), "y_pred": y_pred[r],
                "residual": y_pred[r] - c.scores, "mapping_fallback": fallback[r],
                "in_low_tail": low, "in_high_tail": high,
            }))
        return pd.concat(frames, ignore_index=True)

    def _metrics(self, oof: pd.DataFrame) -> CVMetrics:
        # rows no fold scored (fold -1: the training essays of a holdout scoring,
        # moqwk.core.splits.ScoringFolds) have no prediction; in a CV run every row is scored
        return metrics_from_oof(oof[oof["fold"] >= 0], self.corpus, self.config)


class RawRun:
    """One config's raw predictions, trained fold by fold in the engine's fold order.

    A repeat whose predictions are in the cache is filled at once (its folds cost nothing); a
    repeat is put in the cache only once all its folds have run, so a run stopped after some
    folds (a pruned trial) leaves the cache as it was: keys and contents are the same as a
    run that trains everything at once. The feature variant is the one ``params`` ask for
    (:meth:`CVEngine.features_for`).
    """

    def __init__(self, engine: CVEngine, params: Mapping[str, Any], *, inner: bool,
                 timings: dict[str, float]) -> None:
        self.engine = engine
        self.inner = inner
        self.timings = timings
        self.features = engine.features_for(params)
        self.folds = engine.prepare(self.features)
        n = len(engine.corpus)
        sp = engine.splits
        self.z = np.full((sp.repeats, n), np.nan)
        self.zi: np.ndarray | None = np.full((len(self.folds), n), np.nan) if inner else None
        self._bp: list[tuple[dict[str, Any], int]] = []
        self._keys: list[tuple[str, str | None]] = []
        self._outer_hit: list[bool] = []
        self._inner_hit: list[bool] = []
        for r in range(sp.repeats):
            bp, rounds = booster_params(model_params(params),
                                        objective=engine.config.model.objective,
                                        nthread=engine.nthread, seed=engine.model_seed(r),
                                        max_bin=engine.config.model.max_bin)
            key = engine._key(bp, rounds, f"outer:{r}", self.features)
            ikey = engine._key(bp, rounds, f"inner:{r}", self.features) if inner else None
            hit = engine.predictions.get(key)
            if hit is not None:
                self.z[r] = hit["z"]
                timings["cache_hits"] += 1
            ihit = engine.predictions.get(ikey) if ikey is not None else None
            if ihit is not None and self.zi is not None:
                rows = [j for j, f in enumerate(self.folds) if f.repeat == r]
                self.zi[rows] = ihit["z"]
                timings["cache_hits"] += 1
            self._bp.append((bp, rounds))
            self._keys.append((key, ikey))
            self._outer_hit.append(hit is not None)
            self._inner_hit.append(ihit is not None or not inner)
        self.done = 0

    @property
    def cached(self) -> bool:
        """True when every fold's predictions came from the cache (nothing to train)."""
        return all(self._outer_hit) and all(self._inner_hit)

    def advance(self, upto: int, *, on_fold: Callable[[], None] | None = None) -> None:
        """Train folds ``done .. upto - 1`` (what the cache does not hold), then cache every
        repeat that is now complete. ``on_fold`` is called after each fold."""
        e = self.engine
        t = self.timings
        upto = min(upto, len(self.folds))
        for j in range(self.done, upto):
            f = self.folds[j]
            bp, rounds = self._bp[f.repeat]
            if not self._outer_hit[f.repeat]:
                t0 = time.perf_counter()
                booster = xgb.train(bp, f.dtrain, num_boost_round=rounds)
                t1 = time.perf_counter()
                self.z[f.repeat, f.val] = booster.predict(f.dval)
                t["train_s"] += t1 - t0
                t["predict_s"] += time.perf_counter() - t1
            if self.zi is not None and not self._inner_hit[f.repeat]:
                for iva, dtr, dva in e._inner_folds(f, self.features):
                    t0 = time.perf_counter()
                    booster = xgb.train(bp, dtr, num_boost_round=rounds)
                    self.zi[j, iva] = booster.predict(dva)
                    t["inner_train_s"] += time.perf_counter() - t0
            self.done = j + 1
            last_of_repeat = j + 1 == len(self.folds) or self.folds[j + 1].repeat != f.repeat
            if last_of_repeat:
                self._cache_repeat(f.repeat)
            if on_fold is not None:
                on_fold()

    def _cache_repeat(self, r: int) -> None:
        key, ikey = self._keys[r]
        if not self._outer_hit[r]:
            self.engine.predictions.put(key, {"z": self.z[r].copy()})
            self._outer_hit[r] = True
        if self.zi is not None and ikey is not None and not self._inner_hit[r]:
            rows = [j for j, f in enumerate(self.folds) if f.repeat == r]
            self.engine.predictions.put(ikey, {"z": self.zi[rows].copy()})
            self._inner_hit[r] = True


class TrialRun:
    """One config's CV, fold by fold (see :meth:`CVEngine.start`)."""

    def __init__(self, engine: CVEngine, params: Mapping[str, Any]) -> None:
        self.engine = engine
        self.params = params
        self.spec = spec_from_params(params, engine.config.mapping.spec)
        self.timings = dict.fromkeys(("train_s", "predict_s", "inner_train_s", "mapping_s",
                                      "cache_hits"), 0.0)
        self.raw = RawRun(engine, params, inner=needs_train_pred(self.spec),
                          timings=self.timings)

    @property
    def done(self) -> int:
        """Folds run so far (in the engine's fold order)."""
        return self.raw.done

    @property
    def n_fits(self) -> int:
        return len(self.raw.folds)

    @property
    def cached(self) -> bool:
        return self.raw.cached

    def advance(self, upto: int, *, on_fold: Callable[[], None] | None = None) -> None:
        self.raw.advance(upto, on_fold=on_fold)

    def partial_pred(self) -> np.ndarray:
        """``(repeats, n)`` predictions on each essay's scale for the folds run so far; NaN for
        the essays of folds not run yet."""
        y_pred, *_ = self.engine._map_folds(self.spec, self.raw.z, self.raw.zi,
                                            self.raw.folds[:self.done])
        return y_pred

    def finish(self, *, on_fold: Callable[[], None] | None = None) -> CVResult:
        """Run the remaining folds and return the whole CV's result."""
        e = self.engine
        self.raw.advance(self.n_fits, on_fold=on_fold)
        z, zi, timings = self.raw.z, self.raw.zi, self.timings
        t0 = time.perf_counter()
        y_pred, z_mapped, fallback, fold_of, records = e._map_folds(self.spec, z, zi,
                                                                    self.raw.folds)
        timings["mapping_s"] = time.perf_counter() - t0
        oof = e._oof_frame(z, z_mapped, y_pred, fallback, fold_of)
        t1 = time.perf_counter()
        metrics = e._metrics(oof)
        timings["metrics_s"] = time.perf_counter() - t1
        timings["features_s"] = e.feature_seconds
        timings["total_s"] = (timings["train_s"] + timings["predict_s"] + timings["inner_train_s"]
                              + timings["mapping_s"] + timings["metrics_s"])
        spec = self.spec
        transductive = METHODS[spec.method].transductive
        batch = batch_of(spec.params) if transductive else None
        mapping = {"spec": spec.to_dict(), "transductive": transductive,
                   "batch": batch, "batch_description": describe_batch(batch),
                   "batch_order": ("each fold's held-out essays of a prompt in a random order "
                                   "seeded by batch_seed(cv seed, repeat, fold), cut into "
                                   "batches of that size" if isinstance(batch, int) else None),
                   "fallback_share": float(fallback.mean()),
                   "inner_features": (e.config.mapping.inner_features
                                      if needs_train_pred(spec) else None),
                   "folds": records}
        features = self.raw.features
        used = {"families": features.enabled_names(), "config": features.to_dict(),
                "params": feature_params(self.params)}
        return CVResult(oof=oof, metrics=metrics, timings=timings,
                        params=complete_params(self.params, e.config.mapping.spec),
                        mapping=mapping, features=used)


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
