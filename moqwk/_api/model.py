"""``moqwk.fit``, ``moqwk.load_model`` and ``moqwk.predict``: the selected pipeline trained on the
whole corpus, and essays scored with it.

The scoring half (:func:`load_model`, :func:`predict`) imports neither Optuna nor SQLAlchemy,
matplotlib or optuna-dashboard: a deployment that only scores needs the runtime requirements
alone (``requirements/runtime.txt``; ``tests/test_runtime_imports.py`` keeps it so).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from moqwk._api._common import ProgressLike, as_progress
from moqwk._api.results import FitResult, frozen

if TYPE_CHECKING:
    import pandas as pd

    from moqwk.model.predict import Model, ScaleLike


def fit(*, run_dir: str | Path, out: str | Path | None = None, trial: int | None = None,
        data: str | Path | None = None, overwrite: bool = False,
        progress: ProgressLike = False) -> FitResult:
    """Train the selected trial's pipeline on the whole corpus and write a model directory
    (``moqwk fit``). The directory is built under a temporary name and renamed into place.

    Args:
        run_dir: a run directory after ``select`` (its ``artifacts/selected_params.json``).
        out: the model directory (default ``RUN_DIR/model``).
        trial: fit this complete trial of ``artifacts/optuna_trials.json`` instead.
        data: fit on this CSV or Parquet file instead of the run's corpus (same columns and
            scale as the run's config).
        overwrite: replace an existing model directory at ``out``.
        progress: False (default), True for its stages on stderr, or a Progress.

    Raises:
        RunDirError: no selection (or no such trial); ModelError: ``out`` exists;
        DataError: the corpus changed since the run was made, or ``data`` is unusable.
    """
    from moqwk.model.fit import fit_run

    result = fit_run(Path(run_dir), out=Path(out) if out is not None else None, trial=trial,
                     data=Path(data) if data is not None else None, overwrite=overwrite,
                     progress=as_progress(progress))
    m = result.manifest
    est = (m.get("cv_estimates") or {}).get("in_sample") or {}
    return FitResult(
        path=Path(result.out), trial_number=m["trial"]["number"],
        n_essays=int(m["data"]["n_essays"]), n_prompts=int(m["data"]["n_prompts"]),
        mapping=m["mapping"]["method"], transductive=bool(m["mapping"]["transductive"]),
        in_sample=frozen({k: v for k, v in est.items() if isinstance(v, int | float)}),
        manifest=frozen(m))


def load_model(path: str | Path) -> Model:
    """Load a model directory written by ``moqwk fit``: ``load_model(path).predict(frame)``.

    Nothing in the directory is executed; every file's sha256 is checked. See
    :class:`moqwk.model.predict.Model`.
    """
    from moqwk.model.predict import load_model as _load

    return _load(path)


def predict(*, model: str | Path | Model, essays: pd.DataFrame | str | os.PathLike[str],
            id_column: str | None = None, text_column: str | None = None,
            prompt_column: str | None = None, scales: Mapping[str, ScaleLike] | None = None,
            feature_table: str | Path | None = None, small_batch: str = "refuse"
            ) -> pd.DataFrame:
    """Score essays with a model (``moqwk predict``): a frame with the columns ``id, prompt,
    y_pred, y_pred_raw, y_pred_norm``, one row per essay, in the essays' order.

    Args:
        model: a model directory or a loaded :class:`~moqwk.model.predict.Model`.
        essays: a DataFrame, or a CSV or Parquet file, with an id, a text and a prompt column.
        id_column, text_column, prompt_column: the columns (default: the model's
            ``data.*_column``).
        scales: ``{prompt: (min, max, step)}`` for prompts the model does not know, when it has
            a scale per prompt.
        feature_table: with ``features.table``: read the essays' table columns from this file.
        small_batch: a transductive mapping with too few essays of a prompt: ``refuse`` or
            ``fallback`` to its fallback method.

    Raises:
        ModelError: the directory is missing or damaged; DataError: a bad essays frame.
    """
    from moqwk.model.predict import Model, read_essays

    m = model if isinstance(model, Model) else load_model(model)
    if isinstance(essays, str | os.PathLike):
        source = str(essays)
        frame = read_essays(Path(essays))
    else:
        source, frame = "the essays frame", essays
    return m.predict(frame, id_column=id_column, text_column=text_column,
                     prompt_column=prompt_column, scales=scales, feature_table=feature_table,
                     small_batch=small_batch, source=source)

