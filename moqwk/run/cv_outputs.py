"""One CV run's outputs: residuals CSV, metrics JSON and the diagnostics report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from moqwk.base import artifacts
from moqwk.base.progress import NO_PROGRESS, Progress
from moqwk.engine.cv import CVEngine, CVResult
from moqwk.run.artifact_records import CVMetricsRecord
from moqwk.run.diagnostics import residual_diagnostics
from moqwk.run.layout import CV_METRICS, DIAGNOSTICS, OOF_CSV
from moqwk.run.record import RunRecord, read_run_record, write_run_record
from moqwk.run.workspace import Workspace


def cv_metrics_record(result: CVResult, engine: CVEngine, ws: Workspace, *,
                      scheme: str) -> dict[str, Any]:
    m = result.metrics
    return {
        **m.to_dict(),
        "scheme": scheme,
        "splits_sha256": engine.splits.sha256,
        "params": result.params,
        "mapping": result.mapping,
        "transductive": result.transductive,
        "features": result.features,
        "timings": result.timings,
        "config_hash": ws.config.hash(),
        "data_hash": ws.corpus.data_hash,
        "scale": ws.corpus.scales.as_dict(),
        "n_essays": len(ws.corpus),
        "n_prompts": len(ws.corpus.prompt_names),
        "feature_store": {"keys": engine.feature_keys, "stats": engine.store.stats},
        "versions": artifacts.versions(),
    }


def write_cv_outputs(ws: Workspace, engine: CVEngine, result: CVResult, *, scheme: str,
                     title: str) -> dict[str, Path]:
    """Residuals CSV, metrics JSON and the diagnostics report, each written atomically."""
    d = ws.run_dir
    paths = {
        "oof": artifacts.write_csv(d / OOF_CSV, result.oof),
        "metrics": artifacts.write_json(d / CV_METRICS, CVMetricsRecord(
            **cv_metrics_record(result, engine, ws, scheme=scheme)).to_dict()),
        "report": artifacts.write_text(d / DIAGNOSTICS, residual_diagnostics(
            result.metrics, title=title, scheme=scheme, params=result.params,
            global_scale=ws.corpus.scales.is_global)),
    }
    return paths


def cv_params(ws: Workspace, params: dict[str, Any] | None = None,
              mapping: str | None = None) -> dict[str, Any]:
    """What ``moqwk cv`` scores: ``params`` (default ``baseline.params``) with the config's
    ``mapping:`` (its method, default ``stretch``, and params) unless they name their own
    ``mapping.*`` keys; ``mapping`` (``--mapping METHOD``) overrides the method; the
    ``features.*`` keys of ``params``, if any, choose a feature variant of ``features:``."""
    out = dict(ws.config.baseline_params if params is None else params)
    if mapping is not None:
        out = {k: v for k, v in out.items() if not k.startswith("mapping.")}
        if mapping != ws.config.mapping.spec.method:
            out["mapping.method"] = mapping
    return out


def run_cv(ws: Workspace, *, scheme: str = "prompt_holdout",
           params: dict[str, Any] | None = None, mapping: str | None = None,
           progress: Progress = NO_PROGRESS) -> tuple[CVResult, CVEngine, dict[str, Path]]:
    """``moqwk cv``: one config through every fold, artifacts written (see :func:`cv_params`
    for what it scores).

    A new run directory is recorded as a ``cv`` run; a search or grid may later continue it.
    ``progress`` sees two stages: the fold features, then the folds trained.
    """
    t0 = time.perf_counter()
    if read_run_record(ws.run_dir) is None:
        write_run_record(ws.run_dir, RunRecord(kind="cv", scoring_hash=ws.config.scoring_hash(),
                                               data_hash=ws.corpus.data_hash))
    scored = cv_params(ws, params, mapping)
    engine = ws.engine(scheme, progress=progress)
    engine.prepare(engine.features_for(scored))
    with progress.stage(f"training folds ({scheme})", total=engine.n_fits, unit="folds") as st:
        result = engine.run(scored, on_fold=st.advance)
    result.timings["wall_s"] = time.perf_counter() - t0
    paths = write_cv_outputs(ws, engine, result, scheme=scheme,
                             title="baseline.params" if params is None else "given params")
    return result, engine, paths
