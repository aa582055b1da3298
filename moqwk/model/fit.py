"""``moqwk fit``: the selected pipeline trained on a whole corpus, written as a model directory.

The features are fitted on every essay (:class:`moqwk.features.fitted.FittedFeatures`), XGBoost
is trained with the trial's params exactly as the CV engine trains a fold (same
:func:`moqwk.engine.cv.booster_params`, same seed, same normalised target), and the directory is
built under a temporary name next to ``out`` and renamed into place: a failed fit leaves no
half model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import xgboost as xgb

from moqwk.base import artifacts
from moqwk.base.atomic import _fsync_path, atomic_write_bytes
from moqwk.base.progress import NO_PROGRESS, Progress
from moqwk.config import Config, DataConfig
from moqwk.core.mapping import (
    FittedMapping,
    MappingSpec,
    fit_mapping,
    model_params,
    needs_train_pred,
    spec_from_params,
)
from moqwk.core.splits import Splits
from moqwk.data.corpus import Corpus, load_corpus, read_table, validate_frame
from moqwk.engine.cv import booster_params, reused_folds, xgb_threads
from moqwk.errors import DataError, ModelError, RunDirError
from moqwk.features.fitted import FittedFeatures
from moqwk.features.store import FEATURE_CODE_VERSION
from moqwk.model.cv_fold import CVFold, matching_fold, run_splits
from moqwk.model.manifest import BOOSTER_FILE, FORMAT, FORMAT_VERSION, MODEL_JSON
from moqwk.model.mapping_record import mapping_record
from moqwk.run.artifact_records import SelectionRecord, read_selection, read_trials
from moqwk.run.layout import MODEL_DIR, SELECTED, TRIALS_JSON
from moqwk.run.record import read_run_record, run_config

#: Where a run's fitted model goes unless ``--out`` says otherwise.
DEFAULT_MODEL_DIR = MODEL_DIR

_ESTIMATES_NOTE = (
    "in_sample: the search's own numbers for this trial on the prompt_holdout folds it was "
    "selected on, so optimistic. stability_gate: the same trial under stratified_text, as the "
    "selector ran it. selection_corrected: select's BBC-CV estimate of this trial on new folds "
    "(estimate, interval, optimism), null for a trial other than the selected one. holdout: "
    "select's numbers for it on the essays cv.holdout reserved (null without one; the fitted "
    "model itself trains on every essay, those too). fresh is null: re-score on fresh folds "
    "with `moqwk compare`.")


@dataclass(frozen=True)
class FitSource:
    """What is fitted: the trial's params, where they came from, and what justified them."""

    params: dict[str, Any]
    trial_number: int | None
    source: str
    cv_estimates: dict[str, Any]


@dataclass(frozen=True)
class FitResult:
    out: Path
    manifest: dict[str, Any]


def _gate_of(sel: SelectionRecord | None, number: int | None) -> dict[str, Any] | None:
    if sel is None or number is None:
        return None
    gate = sel.stability_gate
    for r in gate.get("results", []):
        if r.get("trial_number") == number:
            return {"scheme": gate.get("scheme"), "margin": gate.get("margin"),
                    "passed": r.get("passed"), "metrics": r.get("metrics"),
                    "baseline": gate.get("baseline")}
    return None


def _selection_corrected(sel: SelectionRecord) -> dict[str, Any] | None:
    """select's BBC-CV estimate of the selected trial on new folds, as the manifest keeps it."""
    sb = sel.selection_bias
    if not sb:
        return None
    return {"method": "BBC-CV", "resampling": sb.get("resampling"), "n_boot": sb.get("n_boot"),
            "reported": sb.get("reported"), "summary": sb.get("summary")}


def _holdout_of(sel: SelectionRecord) -> dict[str, Any] | None:
    """select's numbers for the selected trial on ``cv.holdout``'s essays, as the manifest
    keeps them (None without a holdout)."""
    h = sel.holdout
    if not h:
        return None
    return {k: h.get(k) for k in ("unit", "share", "n_essays", "n_prompts", "assumes",
                                  "summary")}


def fit_source(run_dir: Path, *, trial: int | None = None) -> FitSource:
    """The selected trial of ``run_dir`` (``selected_params.json``), or trial ``trial``."""
    run_dir = Path(run_dir)
    sel_path = run_dir / SELECTED
    sel = read_selection(run_dir) if sel_path.exists() else None
    params: Mapping[str, Any] | None
    if trial is None:
        if sel is None:
            raise RunDirError(f"{run_dir} has no {SELECTED}; run `moqwk select --run-dir "
                              f"{run_dir}` first, or fit a trial with --trial N")
        number, params, values = sel.trial_number, sel.params, sel.values
        source = f"{sel_path} (the selected trial)"
    else:
        trials_path = run_dir / TRIALS_JSON
        if not trials_path.exists():
            raise RunDirError(f"{run_dir} has no {TRIALS_JSON}; --trial needs a search or grid "
                              "run directory")
        rec = next((t for t in read_trials(run_dir) if t.number == trial), None)
        if rec is None or rec.state != "complete":
            state = "no such trial" if rec is None else f"its state is {rec.state}"
            raise RunDirError(f"--trial {trial}: {state} in {trials_path}; pick a complete "
                              "trial (see `moqwk status` or the summary report)")
        number, params, values = trial, rec.params, rec.values
        source = f"{trials_path} (trial {trial}, given by --trial)"
    chosen = sel if sel is not None and sel.trial_number == number else None
    estimates = {
        "scheme": "prompt_holdout",
        "in_sample": values,
        "stability_gate": _gate_of(sel, number),
        "reproduced_on_prompt_holdout": chosen.reproduced_on_prompt_holdout if chosen else None,
        "baseline_in_sample": sel.baseline.get("values") if sel is not None else None,
        "success_criterion": chosen.success_criterion if chosen else None,
        # neither record holds fresh numbers: `moqwk compare` computes them
        "fresh": None,
        "selection_corrected": _selection_corrected(chosen) if chosen else None,
        "holdout": _holdout_of(chosen) if chosen else None,
        "note": _ESTIMATES_NOTE,
    }
    return FitSource(dict(params or {}), number, source, estimates)


def fit_corpus(config: Config, data: Path | None = None) -> Corpus:
    """The corpus to fit on: the config's, or ``data`` read with the config's columns and scale.

    Fitting uses no folds, so the loader's fold count check is not applied; its warning about
    prompts below ``cv.min_prompt_n`` (which concerns the objectives) is not shown.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if data is None:
            return load_corpus(config)
        dc = config.data
        if dc.demo and dc.path is None:  # the demo corpus's columns
            dc = DataConfig(path=None)
        frame = read_table(Path(data))
        return validate_frame(frame, dc, config.scale, n_folds=1,
                              min_prompt_n=config.cv.min_prompt_n, source=str(data))


def _columns(config: Config) -> dict[str, str]:
    dc = config.data if not (config.data.demo and config.data.path is None) \
        else DataConfig(path=None)
    return {"id": dc.id_column, "text": dc.text_column, "prompt": dc.prompt_column}


def _check_out(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not (out / MODEL_JSON).is_file():
        raise RunDirError(f"--out {out} exists and is not a model directory; choose another "
                          "--out (fit never replaces other files)")
    if not overwrite:
        raise RunDirError(f"--out {out} already holds a model; pass --overwrite to replace it, "
                          "or choose another --out")


def _publish(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished ``tmp`` directory to ``out`` (replacing a model with ``overwrite``)."""
    _check_out(out, overwrite)
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    _fsync_path(out.parent, directory=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def cross_fitted_predictions(config: Config, corpus: Corpus, params: Mapping[str, Any], *,
                             nthread: int | None = None,
                             cv_fold: CVFold | None = None,
                             features: xgb.DMatrix | None = None,
                             progress: Progress = NO_PROGRESS) -> tuple[np.ndarray, str]:
    """Out-of-sample predictions for every essay of ``corpus``: the inner cross-fit a
    label-based mapping is fitted on, as the CV engine fits it inside each fold
    (``mapping.inner_folds`` prompt-grouped folds, features refitted on each training part;
    under ``mapping.inner_features: reuse``, ``features``, the labelled matrix of the features
    fitted on every essay of ``corpus``, sliced to each part as CV slices a fold's).

    With ``cv_fold`` (the corpus is that fold's training essays) the inner folds and the model
    seed are that fold's, so the predictions equal the CV engine's inner cross-fit there.
    Otherwise the inner folds are seeded from ``cv.seed`` alone.
    """
    import dataclasses

    from moqwk.core.splits import prompt_holdout
    from moqwk.engine.cv import CVEngine

    k = min(config.mapping.inner_folds, len(corpus.prompt_names))
    if k < 2:
        raise ModelError("a label-based score mapping needs at least 2 prompts to fit on; fit "
                         "on more prompts, or choose a trial whose mapping is label-free")
    seed = (cv_fold.inner_seed if cv_fold is not None
            else int(np.random.default_rng([config.cv.seed, 29]).integers(2**31)))
    splits = prompt_holdout(corpus.ids, corpus.prompt_codes, n_folds=k, repeats=1, seed=seed)
    if cv_fold is not None:  # the engine trains repeat 0 with its splits' seed: the fold's
        splits = dataclasses.replace(splits, seed=cv_fold.model_seed)
    where = (f"the inner folds of CV fold {cv_fold.fold} (repeat {cv_fold.repeat}), whose "
             "training essays these are" if cv_fold is not None else
             f"{k} prompt-grouped folds seeded from cv.seed")
    if config.mapping.inner_features == "reuse":
        if features is None:
            raise ModelError("mapping.inner_features: reuse needs the features fitted on the "
                             "whole corpus; fit them first")
        z = _reused_cross_fit(config, params, splits, features, nthread=nthread,
                              progress=progress)
        return z, (f"cross-fit over the fitted corpus: {where}, the features fitted on every "
                   "essay of it reused")
    engine = CVEngine(config, corpus, splits, nthread=nthread, progress=progress)
    timings = dict.fromkeys(("train_s", "predict_s", "inner_train_s", "cache_hits"), 0.0)
    with progress.stage("score mapping: cross-fitted models", total=engine.n_fits,
                        unit="folds") as st:
        z, _ = engine.raw_predictions(params, inner=False, timings=timings, on_fold=st.advance)
    return z[0], (f"cross-fit over the fitted corpus: {where}, features refitted on each "
                  "training part")


def _reused_cross_fit(config: Config, params: Mapping[str, Any], splits: Splits,
                      features: xgb.DMatrix, *, nthread: int | None,
                      progress: Progress) -> np.ndarray:
    """One model per fold of ``splits`` on slices of ``features``
    (:func:`moqwk.engine.cv.reused_folds`, as the CV engine's inner models under ``reuse``),
    seeded as the engine seeds repeat 0."""
    threads = nthread if nthread is not None else xgb_threads(1, config.model.nthread)
    bp, rounds = booster_params(model_params(params), objective=config.model.objective,
                                nthread=threads, seed=int(splits.seed),
                                max_bin=config.model.max_bin)
    z = np.full(len(splits.ids), np.nan)
    folds = [(tr, va) for _, _, tr, va in splits.iter_folds()]
    with progress.stage("score mapping: cross-fitted models (features reused)",
                        total=len(folds), unit="folds") as st:
        for iva, dtr, dva in reused_folds(features, folds):
            z[iva] = xgb.train(bp, dtr, num_boost_round=rounds).predict(dva)
            st.advance()
    return z


def fit_score_mapping(config: Config, corpus: Corpus, params: Mapping[str, Any], *,
                      nthread: int | None = None,
                      cv_fold: CVFold | None = None,
                      features: xgb.DMatrix | None = None,
                      progress: Progress = NO_PROGRESS) -> FittedMapping:
    """The trial's score mapping fitted on every essay of ``corpus`` (numbers fitted on one CV
    fold are not the whole-corpus model's): label-based methods on cross-fitted predictions,
    label-free ones on the essays' scores only. ``cv_fold`` and ``features``: see
    :func:`cross_fitted_predictions`."""
    spec: MappingSpec = spec_from_params(params, config.mapping.spec)
    pred, source = None, ""
    if needs_train_pred(spec):
        pred, source = cross_fitted_predictions(config, corpus, params, nthread=nthread,
                                                cv_fold=cv_fold, features=features,
                                                progress=progress)
    es = corpus.essay_scale
    fitted = fit_mapping(spec, train_y_norm=corpus.y_norm,
                         train_prompt_codes=corpus.prompt_codes, train_lo=es.lo,
                         train_hi=es.hi, train_step=es.step, train_pred=pred, source=source)
    if pred is None:
        return fitted
    return dataclasses.replace(fitted, fitted_on=MappingProxyType(
        {**fitted.fitted_on, "inner_features": config.mapping.inner_features}))


def fit_model(config: Config, corpus: Corpus, source: FitSource, *, out: Path,
              run_dir: Path | None = None, run_data_hash: str | None = None,
              nthread: int | None = None, overwrite: bool = False,
              cv_splits: Splits | None = None,
              progress: Progress = NO_PROGRESS) -> FitResult:
    """Fit features and booster on every essay of ``corpus``; write the model directory ``out``.

    The trial's features are its ``features.*`` params applied to the config's ``features:``.
    ``progress`` sees each stage: the mapping's cross-fit (its fold features and models), the
    features on every essay, the booster, writing the model.

    The trial's score mapping (its ``mapping.*`` params, else the config's ``mapping:``) is
    fitted again here on ``corpus`` (:func:`fit_score_mapping`), as CV fits it on a fold's
    training essays. When ``corpus`` is exactly the training essays of a fold of ``cv_splits``
    (the run's prompt-holdout folds), that fold's inner folds and seeds are used, so the model
    scores the fold's held-out essays as CV did (``mapping.fitted_on.cv_fold`` records it).
    """
    out = Path(out).absolute()
    _check_out(out, overwrite)
    # the trial's feature variant: the config's features: with its features.* params applied
    variant = config.features.with_params(source.params, path="the trial's params")

    def fit_features() -> tuple[FittedFeatures, xgb.DMatrix, float]:
        t0 = time.perf_counter()
        with progress.stage(f"features on all {len(corpus)} essays", total=1,
                            unit="fit") as st:
            features, X = FittedFeatures.fit(corpus.ids, list(corpus.texts), variant)
            st.advance()
        dtrain = xgb.DMatrix(X, label=corpus.y_norm, feature_names=list(features.feature_names))
        return features, dtrain, time.perf_counter() - t0

    # under mapping.inner_features: reuse the mapping's cross-fit trains on these features
    reuse = config.mapping.inner_features == "reuse"
    if reuse:
        features, dtrain, t_features = fit_features()
    t0 = time.perf_counter()
    cv_fold = matching_fold(cv_splits, corpus.ids)
    fitted = fit_score_mapping(config, corpus, source.params, nthread=nthread, cv_fold=cv_fold,
                               features=dtrain if reuse else None, progress=progress)
    if cv_fold is not None:
        fitted = dataclasses.replace(fitted, fitted_on=MappingProxyType(
            {**fitted.fitted_on, "cv_fold": cv_fold.to_dict()}))
    mapping = mapping_record(fitted.to_dict(), source=f"fitted on {corpus.source} "
                             f"({len(corpus)} essays) for trial {source.trial_number}")
    t_mapping = time.perf_counter() - t0
    if not reuse:
        features, dtrain, t_features = fit_features()
    t0 = time.perf_counter()
    threads = nthread if nthread is not None else xgb_threads(1, config.model.nthread)
    bp, rounds = booster_params(model_params(source.params), objective=config.model.objective,
                                nthread=threads,
                                seed=cv_fold.model_seed if cv_fold is not None
                                else config.cv.seed, max_bin=config.model.max_bin)
    with progress.stage(f"booster ({rounds} rounds)", total=1, unit="fit") as st:
        booster = xgb.train(bp, dtrain, num_boost_round=rounds)
        st.advance()
    t_train = time.perf_counter() - t0
    prompts, counts = np.unique(corpus.prompts.astype(str), return_counts=True)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": artifacts.versions(),
        "feature_code_version": FEATURE_CODE_VERSION,
        "run": {"run_dir": str(run_dir) if run_dir is not None else None,
                "config_hash": config.hash(), "scoring_hash": config.scoring_hash(),
                "study_hash": config.study_hash()},
        "trial": {"number": source.trial_number, "source": source.source,
                  "params": source.params},
        "config": config.to_dict(),
        "columns": _columns(config),
        "data": {"source": corpus.source, "data_hash": corpus.data_hash,
                 "run_data_hash": run_data_hash,
                 "same_as_run": None if run_data_hash is None
                 else run_data_hash == corpus.data_hash,
                 "n_essays": len(corpus), "n_prompts": len(prompts),
                 "prompts": {str(p): int(n) for p, n in zip(prompts, counts, strict=True)}},
        "scale": corpus.scales.as_dict(),
        "target": "normalised score (score - min) / (max - min) of each essay's scale",
        "booster": {"file": BOOSTER_FILE, "format": "ubj", "num_boost_round": rounds,
                    "params": {k: v for k, v in bp.items() if k != "nthread"}},
        "features": {"key": features.key, "feature_names": list(features.feature_names),
                     "fitted_on": features.fitted_on, "families": variant.enabled_names(),
                     "config": variant.to_dict()},
        "mapping": mapping,
        "cv_estimates": source.cv_estimates,
        "timings": {"mapping_s": t_mapping, "features_s": t_features, "train_s": t_train},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a model directory is an ordinary one
        files = features.save(tmp)
        atomic_write_bytes(tmp / BOOSTER_FILE, bytes(booster.save_raw(raw_format="ubj")))
        files[BOOSTER_FILE] = artifacts.sha256_file(tmp / BOOSTER_FILE)
        manifest["files"] = files
        artifacts.write_json(tmp / MODEL_JSON, manifest)
        _publish(tmp, out, overwrite)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return FitResult(out, artifacts.read_json(out / MODEL_JSON))


def fit_run(run_dir: Path, *, out: Path | None = None, trial: int | None = None,
            data: Path | None = None, nthread: int | None = None,
            overwrite: bool = False, progress: Progress = NO_PROGRESS) -> FitResult:
    """``moqwk fit``: the run's selected trial (or ``trial``) on the run's whole corpus (or
    ``data``, read with the run's columns and scale), written to ``out`` (default
    ``RUN_DIR/model``)."""
    run_dir = Path(run_dir)
    config = run_config(run_dir)
    if config is None:
        raise RunDirError(f"{run_dir} has no config.yaml: not a run directory; give the "
                          "--run-dir of a search or grid you selected from")
    out = Path(out) if out is not None else run_dir / DEFAULT_MODEL_DIR
    _check_out(out.absolute(), overwrite)  # before the work, not only after it
    source = fit_source(run_dir, trial=trial)
    record = read_run_record(run_dir)
    run_hash = record.data_hash if record is not None else None
    corpus = fit_corpus(config, data)
    if data is None and run_hash is not None and corpus.data_hash != run_hash:
        raise DataError(f"{config.data.path or 'the corpus'} has changed since {run_dir} was "
                        f"made (data hash {run_hash[:12]}…, now {corpus.data_hash[:12]}…); "
                        "give the corpus to fit on with --data")
    return fit_model(config, corpus, source, out=out, run_dir=run_dir.absolute(),
                     run_data_hash=run_hash, nthread=nthread, overwrite=overwrite,
                     cv_splits=run_splits(run_dir), progress=progress)
