"""What the HTML report reads from a run directory, as plain records and frames.

Everything comes from the run's artifacts (JSON and CSV). One gap remains: runs do not write the
baseline's per-essay out-of-fold predictions, so the per-prompt intervals and the calibration
curve of the baseline come from ``artifacts/residuals_baseline_oof.csv`` when a run has it, and
otherwise from the ``oof_level`` user attribute of the baseline trial in the study storage.
:attr:`RunData.sources` says which file or storage each part came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from moqwk import artifacts
from moqwk.errors import RunDirError

TRIALS = "artifacts/optuna_trials.json"
STUDY = "artifacts/optuna_study.json"
SELECTED = "artifacts/selected_params.json"
SELECTION_FAILED = "artifacts/selection_failed.json"
FRONT = "artifacts/pareto_front.json"
CV_METRICS = "artifacts/cv_metrics.json"
OOF = "artifacts/residuals_cv_val_oof.csv"
#: Proposed artifact: the baseline's out-of-fold rows, same columns as :data:`OOF`.
BASELINE_OOF = "artifacts/residuals_baseline_oof.csv"
COMPARE_CANDIDATES = ("compare.json", "artifacts/compare.json", "compare/compare.json")

OOF_COLUMNS = ("id", "prompt", "repeat", "y_true", "y_pred")


@dataclass
class RunData:
    """One run's records: what the figure builders are fed.

    ``oof`` maps ``"baseline"``/``"selected"`` to out-of-fold rows (columns ``id``, ``prompt``,
    ``repeat``, ``y_true``, ``y_pred`` and, when known, ``y_pred_raw``, ``in_low_tail``,
    ``in_high_tail``); a config whose rows are not available is absent. ``notes`` are plain
    sentences the page shows (what is missing and why).
    """

    run_dir: Path
    trials: list[dict]
    selection: dict
    selection_failed: bool
    front: list[int]
    study: dict | None = None
    cv_metrics: dict | None = None
    oof: dict[str, pd.DataFrame] = field(default_factory=dict)
    compare: dict | None = None
    sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def baseline_number(self) -> int:
        return int(self.selection["baseline"]["trial_number"])

    @property
    def selected_number(self) -> int | None:
        n = self.selection.get("trial_number")
        return None if n is None else int(n)

    @property
    def directions(self) -> dict[str, str]:
        """Objective name -> "maximize"/"minimize", in the study's objective order."""
        if self.study and self.study.get("directions"):
            return dict(self.study["directions"])
        first: dict = next((t["values"] for t in self.trials if t.get("values")), {})
        return {k: ("maximize" if k.endswith("qwk") else "minimize") for k in first}


def _read(run_dir: Path, rel: str) -> Any:
    try:
        return artifacts.read_json(run_dir / rel)
    except ValueError as e:
        raise RunDirError(f"{run_dir / rel} is not valid JSON ({e}); re-run the command that "
                          "wrote it") from None


def load_run(run_dir: Path, *, storage: str | None = None, study_name: str = "moqwk",
             compare: Path | None = None) -> RunData:
    """Read a selected run's artifacts; ``storage`` is only read for the baseline's predictions.

    Raises :class:`RunDirError` when the search or the selection has not been run.
    """
    run_dir = Path(run_dir)
    if not (run_dir / TRIALS).exists():
        raise RunDirError(f"{run_dir} has no {TRIALS}; run `moqwk search` and `moqwk select` "
                          "on it first")
    sel_rel = SELECTED if (run_dir / SELECTED).exists() else SELECTION_FAILED
    if not (run_dir / sel_rel).exists():
        raise RunDirError(f"{run_dir} has no {SELECTED}; run `moqwk select` on it first")
    trials = _read(run_dir, TRIALS)
    selection = _read(run_dir, sel_rel)
    front_rec = _read(run_dir, FRONT) if (run_dir / FRONT).exists() else {"trials": []}
    data = RunData(run_dir=run_dir, trials=trials, selection=selection,
                   selection_failed=sel_rel == SELECTION_FAILED,
                   front=[int(t["number"]) for t in front_rec["trials"]],
                   sources={"trials": TRIALS, "selection": sel_rel, "front": FRONT})
    if (run_dir / STUDY).exists():
        data.study = _read(run_dir, STUDY)
        data.sources["study"] = STUDY
    if (run_dir / CV_METRICS).exists():
        data.cv_metrics = _read(run_dir, CV_METRICS)
        data.sources["cv_metrics"] = CV_METRICS
    _load_oof(data, storage=storage, study_name=study_name)
    _load_compare(data, compare)
    return data


def _read_oof(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"id": str, "prompt": str})
    missing = [c for c in OOF_COLUMNS if c not in frame.columns]
    if missing:
        raise RunDirError(f"{path} lacks column(s) {', '.join(missing)}; re-run `moqwk select`")
    return frame


def _same_params(a: dict | None, b: dict | None) -> bool:
    if not a or not b:
        return False
    keys = set(a) | set(b)
    return all(a.get(k) == b.get(k) or (isinstance(a.get(k), float) and isinstance(b.get(k), float)
                                        and np.isclose(a[k], b[k], rtol=0, atol=1e-12))
               for k in keys)


def _load_oof(data: RunData, *, storage: str | None, study_name: str) -> None:
    run_dir = data.run_dir
    skeleton: pd.DataFrame | None = None
    if (run_dir / OOF).exists():
        rows = _read_oof(run_dir / OOF)
        skeleton = rows
        params = (data.cv_metrics or {}).get("params")
        if data.selected_number is not None and _same_params(params, data.selection["params"]):
            data.oof["selected"] = rows
            data.sources["oof_selected"] = OOF
        elif data.selected_number is not None:
            data.notes.append(f"{OOF} holds the rows of another config than the selected one "
                              "(was `moqwk cv` run after `select`?); the selected config's "
                              "predictions are read from the study instead.")
    if (run_dir / BASELINE_OOF).exists():
        data.oof["baseline"] = _read_oof(run_dir / BASELINE_OOF)
        data.sources["oof_baseline"] = BASELINE_OOF
        skeleton = skeleton if skeleton is not None else data.oof["baseline"]
    wanted = {"baseline": data.baseline_number, "selected": data.selected_number}
    missing = {k: n for k, n in wanted.items() if n is not None and k not in data.oof}
    if not missing:
        return
    if skeleton is None:
        data.notes.append(f"No out-of-fold rows in the run ({OOF} is missing): the per-prompt "
                          "and calibration figures are left out.")
        return
    levels, where = _levels_from_study(run_dir, set(missing.values()), storage=storage,
                                       study_name=study_name)
    scales = (data.cv_metrics or {}).get("scale")
    for key, number in missing.items():
        lv = levels.get(number)
        if lv is None or scales is None:
            data.notes.append(f"The {key} config's per-essay predictions are not in the run "
                              f"({BASELINE_OOF} is not written by this version of moqwk, and "
                              f"the study has no `oof_level` for trial {number}): its "
                              "per-prompt intervals and calibration curve are left out.")
            continue
        try:
            data.oof[key] = rows_from_levels(skeleton, np.asarray(lv), scales)
        except ValueError as e:
            data.notes.append(f"The {key} config's predictions in the study do not fit the "
                              f"rows of {OOF} ({e}); left out.")
            continue
        data.sources[f"oof_{key}"] = f"{where} (trial {number}, user attribute oof_level)"


def _levels_from_study(run_dir: Path, numbers: set[int], *, storage: str | None,
                       study_name: str) -> tuple[dict[int, list], str]:
    """``oof_level`` of the given trials, or ``{}`` when the storage cannot be read."""
    import optuna

    from moqwk.study import STUDY_DB, default_storage_url

    if storage is None and not (run_dir / STUDY_DB).exists():
        return {}, ""
    url = storage or default_storage_url(run_dir)
    try:
        st = optuna.storages.RDBStorage(url, skip_table_creation=True)
        study = optuna.load_study(study_name=study_name, storage=st,
                                  sampler=optuna.samplers.RandomSampler())
        out = {t.number: t.user_attrs["oof_level"] for t in study.get_trials(deepcopy=False)
               if t.number in numbers and "oof_level" in t.user_attrs}
    except Exception:  # noqa: BLE001 - any storage problem only drops a figure, with a note
        return {}, ""
    where = STUDY_DB if storage is None else artifacts.mask_url(url) or ""
    return out, where


def rows_from_levels(skeleton: pd.DataFrame, levels: np.ndarray, scales: dict) -> pd.DataFrame:
    """Out-of-fold rows of a config from its predicted levels (repeats x essays, corpus order).

    ``skeleton`` is any out-of-fold frame of the same run (its ``id``/``prompt``/``repeat``/
    ``y_true`` columns, repeat-major in corpus order); ``scales`` is ``cv_metrics.json``'s
    ``scale`` record. Raw predictions are unknown, so ``y_pred_raw`` is left out.
    """
    levels = np.atleast_2d(levels)
    n_rep = int(skeleton["repeat"].max()) + 1
    n = len(skeleton) // n_rep
    if levels.shape != (n_rep, n) or len(skeleton) != n_rep * n:
        raise ValueError(f"{levels.shape[0]}x{levels.shape[1]} levels for {n_rep} repeat(s) of "
                         f"{n} essays")
    out = skeleton[[c for c in ("id", "prompt", "repeat", "y_true", "in_low_tail",
                                "in_high_tail") if c in skeleton.columns]].copy()
    lo, _hi, step = scale_arrays(out["prompt"].to_numpy(str), scales)
    out["y_pred"] = lo + levels.reshape(-1) * step
    return out


def scale_arrays(prompts: np.ndarray, scales: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row ``lo``, ``hi`` and ``step`` from ``cv_metrics.json``'s ``scale`` record."""
    if scales.get("kind") == "global":
        n = len(prompts)
        return (np.full(n, float(scales["min"])), np.full(n, float(scales["max"])),
                np.full(n, float(scales["step"])))
    per = scales["prompts"]
    lo = np.array([per[p]["min"] for p in prompts], dtype=float)
    hi = np.array([per[p]["max"] for p in prompts], dtype=float)
    step = np.array([per[p]["step"] for p in prompts], dtype=float)
    return lo, hi, step


def _load_compare(data: RunData, given: Path | None) -> None:
    paths = [Path(given)] if given is not None else [data.run_dir / c
                                                     for c in COMPARE_CANDIDATES]
    for p in paths:
        if p.exists():
            data.compare = artifacts.read_json(p)
            data.sources["compare"] = str(p if given is not None
                                          else p.relative_to(data.run_dir))
            return
    if given is not None:
        raise RunDirError(f"--compare: {given} not found; run `moqwk compare` first")
