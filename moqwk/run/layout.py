"""Every file of a run directory, named once.

```text
RUN_DIR/
  run.json                  what kind of run this is, its sampler, budget and hashes
  config.yaml               the resolved config; commands given only --run-dir read it
  splits.json               fold assignments of every scheme used, each with its sha256
  study.db                  the Optuna study (default SQLite storage)
  progress.json             counts, best feasible values, ETA (rewritten after each trial)
  artifacts/                machine-readable results (JSON, CSV)
  reports/                  the same results for people (Markdown, HTML, figures)
  model/                    `moqwk fit`'s model directory (default --out; see moqwk.model)
```
"""

from __future__ import annotations

from pathlib import Path

RUN_RECORD = "run.json"
CONFIG_COPY = "config.yaml"
SPLITS = "splits.json"
STUDY_DB = "study.db"
PROGRESS = "progress.json"

OOF_CSV = "artifacts/residuals_cv_val_oof.csv"
#: The baseline's out-of-fold rows (same columns as OOF_CSV), written by ``select``.
BASELINE_OOF = "artifacts/residuals_baseline_oof.csv"
CV_METRICS = "artifacts/cv_metrics.json"
TRIALS_JSON = "artifacts/optuna_trials.json"
STUDY_JSON = "artifacts/optuna_study.json"
FRONT = "artifacts/pareto_front.json"
SELECTED = "artifacts/selected_params.json"
SELECTION_FAILED = "artifacts/selection_failed.json"

DIAGNOSTICS = "reports/residual_diagnostics.md"
SUMMARY = "reports/optuna_summary.md"
HTML_REPORT = "reports/optuna_summary.html"
#: Each figure of the HTML report as NAME.svg and NAME.png (linked from SUMMARY).
FIGURES_DIR = "reports/figures"

MODEL_DIR = "model"


def default_storage_url(run_dir: Path) -> str:
    """The run's own study: SQLite in ``RUN_DIR/study.db``."""
    return f"sqlite:///{(Path(run_dir) / STUDY_DB).resolve()}"
