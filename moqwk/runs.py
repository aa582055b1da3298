"""Orchestration of one CV run: config -> corpus -> splits -> engine -> artifacts on disk."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moqwk import artifacts
from moqwk.config import Config
from moqwk.corpus import Corpus, load_corpus
from moqwk.cv import CVEngine, CVResult
from moqwk.reports import residual_diagnostics
from moqwk.splits_io import ensure_splits

OOF_CSV = "artifacts/residuals_cv_val_oof.csv"
CV_METRICS = "artifacts/cv_metrics.json"
DIAGNOSTICS = "reports/residual_diagnostics.md"


@dataclass
class Workspace:
    """A config, its corpus and a run directory: what every command starts from."""

    config: Config
    corpus: Corpus
    run_dir: Path

    @classmethod
    def open(cls, config: Config, run_dir: Path) -> Workspace:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        return cls(config, load_corpus(config), run_dir)

    def engine(self, scheme: str = "prompt_holdout", *, seed: int | None = None,
               repeats: int | None = None, nthread: int | None = None,
               store: Any = None) -> CVEngine:
        splits = ensure_splits(self.run_dir, self.corpus, self.config, scheme, seed=seed,
                               repeats=repeats)
        return CVEngine(self.config, self.corpus, splits, nthread=nthread, store=store)


def cv_metrics_record(result: CVResult, engine: CVEngine, ws: Workspace, *,
                      scheme: str) -> dict[str, Any]:
    m = result.metrics
    return {
        **m.to_dict(),
        "scheme": scheme,
        "splits_sha256": engine.splits.sha256,
        "params": result.params,
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
        "metrics": artifacts.write_json(d / CV_METRICS,
                                        cv_metrics_record(result, engine, ws, scheme=scheme)),
        "report": artifacts.write_text(d / DIAGNOSTICS, residual_diagnostics(
            result.metrics, title=title, scheme=scheme, params=result.params,
            global_scale=ws.corpus.scales.is_global)),
    }
    return paths


def run_cv(ws: Workspace, *, scheme: str = "prompt_holdout",
           params: dict[str, Any] | None = None) -> tuple[CVResult, CVEngine, dict[str, Path]]:
    """``moqwk cv``: one config through every fold, artifacts written."""
    t0 = time.perf_counter()
    engine = ws.engine(scheme)
    result = engine.run(params if params is not None else dict(ws.config.baseline_params))
    result.timings["wall_s"] = time.perf_counter() - t0
    paths = write_cv_outputs(ws, engine, result, scheme=scheme,
                             title="baseline" if params is None else "given params")
    return result, engine, paths
