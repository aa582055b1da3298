"""What the HTML report reads from a run directory, as plain records and frames.

Everything comes from the run's artifacts (JSON and CSV; file names in :mod:`moqwk.run.layout`).
The baseline's per-essay out-of-fold rows are ``artifacts/residuals_baseline_oof.csv``, which
``moqwk select`` writes. Runs selected by an older moqwk lack that file; for them the rows are
rebuilt from the ``oof_level`` user attribute of the baseline trial in the study storage.
:attr:`RunData.sources` says which file or storage each part came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from moqwk.base import artifacts
from moqwk.core.objectives import ObjectiveSet
from moqwk.errors import MoqwkError, RunDirError
from moqwk.reports.markdown import objectives_of
from moqwk.run.artifact_records import read_cv_metrics, read_selection, read_trials
from moqwk.run.layout import (
    BASELINE_OOF,
    CV_METRICS,
    FRONT,
    OOF_CSV,
    SELECTED,
    SELECTION_FAILED,
    STUDY_JSON,
    TRIALS_JSON,
)
from moqwk.study.records import TrialRecord

#: Where the report looks for a ``moqwk compare`` result, relative to the run directory.
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
    trials: list[TrialRecord]
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
    def objectives(self) -> ObjectiveSet:
        """The objectives the selection was made on (names, roles, directions, labels)."""
        return objectives_of(self.selection)


def _read(run_dir: Path, rel: str) -> Any:
    try:
        return artifacts.read_json(run_dir / rel)
    except ValueError as e:
        raise RunDirError(f"{run_dir / rel} is not valid JSON ({e}); re-run the command that "
                          "wrote it") from None


def _latest_selection(run_dir: Path) -> str:
    """``selected_params.json`` or ``selection_failed.json``, whichever select wrote last.

    A selection whose gate fails keeps the earlier ``selected_params.json``; the report then
    shows the failure, like ``optuna_summary.md`` does.
    """
    present = [rel for rel in (SELECTED, SELECTION_FAILED) if (run_dir / rel).exists()]
    if not present:
        raise RunDirError(f"{run_dir} has no {SELECTED}; run `moqwk select` on it first")
    return max(present, key=lambda rel: os.stat(run_dir / rel).st_mtime_ns)


def load_run(run_dir: Path, *, selection: Mapping | None = None,
             trials: Sequence[Mapping[str, Any]] | None = None, storage: str | None = None,
             study_name: str = "moqwk", compare: Path | None = None) -> RunData:
    """Read a selected run's artifacts.

    ``selection`` is the selection record to report and ``trials`` the trial records
    (``select`` passes the ones it has just decided on, read from the study's storage); without
    them the newer of ``selected_params.json`` and ``selection_failed.json``, and
    ``optuna_trials.json``, are read. ``storage`` is only read for an older run's baseline
    predictions. Raises :class:`RunDirError` when the search or the selection has not been run,
    or a file is not the record it should be (:mod:`moqwk.run.artifact_records`).
    """
    run_dir = Path(run_dir)
    if trials is None and not (run_dir / TRIALS_JSON).exists():
        raise RunDirError(f"{run_dir} has no {TRIALS_JSON}; run `moqwk search` and `moqwk "
                          "select` on it first")
    if selection is None:
        sel_rel = _latest_selection(run_dir)
        record = read_selection(run_dir, sel_rel).to_dict()
    else:
        record = dict(selection)
        sel_rel = SELECTED if record.get("trial_number") is not None else SELECTION_FAILED
    trial_records = ([TrialRecord.from_dict(t) for t in trials] if trials is not None
                     else read_trials(run_dir))
    front_rec = _read(run_dir, FRONT) if (run_dir / FRONT).exists() else {"trials": []}
    data = RunData(run_dir=run_dir, trials=trial_records, selection=record,
                   selection_failed=record.get("trial_number") is None,
                   front=[int(t["number"]) for t in front_rec["trials"]],
                   sources={"trials": TRIALS_JSON if trials is None else "the study",
                            "selection": sel_rel, "front": FRONT})
    if data.selection_failed and (run_dir / SELECTED).exists():
        data.notes.append(f"This selection failed the stability gate; {SELECTED} still holds "
                          "an earlier selection, which this report does not show.")
    if (run_dir / STUDY_JSON).exists():
        data.study = _read(run_dir, STUDY_JSON)
        data.sources["study"] = STUDY_JSON
    if (run_dir / CV_METRICS).exists():
        data.cv_metrics = read_cv_metrics(run_dir).to_dict()
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


def _same_params(a: Mapping | None, b: Mapping | None) -> bool:
    if not a or not b:
        return False
    keys = set(a) | set(b)
    return all(a.get(k) == b.get(k) or (isinstance(a.get(k), float) and isinstance(b.get(k), float)
                                        and np.isclose(a[k], b[k], rtol=0, atol=1e-12))
               for k in keys)


def _load_oof(data: RunData, *, storage: str | None, study_name: str) -> None:
    run_dir = data.run_dir
    skeleton: pd.DataFrame | None = None
    if (run_dir / OOF_CSV).exists():
        rows = _read_oof(run_dir / OOF_CSV)
        skeleton = rows
        params = (data.cv_metrics or {}).get("params")
        if data.selected_number is not None and _same_params(params, data.selection["params"]):
            data.oof["selected"] = rows
            data.sources["oof_selected"] = OOF_CSV
        elif data.selected_number is not None:
            data.notes.append(f"{OOF_CSV} holds the rows of another config than the selected one "
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
        data.notes.append(f"No out-of-fold rows in the run ({OOF_CSV} and {BASELINE_OOF} are "
                          "missing): the per-prompt and calibration figures are left out.")
        return
    levels, where = _levels_from_study(run_dir, set(missing.values()), storage=storage,
                                       study_name=study_name)
    scales = (data.cv_metrics or {}).get("scale")
    for key, number in missing.items():
        lv = levels.get(number)
        if lv is None or scales is None:
            data.notes.append(f"The {key} config's per-essay predictions are not in the run "
                              f"(no {BASELINE_OOF if key == 'baseline' else OOF_CSV} for it, "
                              f"and no study with an `oof_level` for trial {number}): its "
                              "per-prompt intervals and calibration curve are left out.")
            continue
        try:
            data.oof[key] = rows_from_levels(skeleton, np.asarray(lv), scales)
        except ValueError as e:
            data.notes.append(f"The {key} config's predictions in the study do not fit the "
                              f"rows of {OOF_CSV} ({e}); left out.")
            continue
        data.sources[f"oof_{key}"] = f"{where} (trial {number}, user attribute oof_level)"


def _levels_from_study(run_dir: Path, numbers: set[int], *, storage: str | None,
                       study_name: str) -> tuple[dict[int, list], str]:
    """``oof_level`` of the given trials, or ``{}`` when the storage cannot be read."""
    from moqwk.run.study_url import storage_for
    from moqwk.study.attrs import TrialAttr
    from moqwk.study.storage import load_study, open_storage

    try:
        url = storage_for(run_dir, storage)
        study = load_study(open_storage(url), study_name=study_name)
    except MoqwkError:  # no study to read: the figure is left out, with a note
        return {}, ""
    if study is None:
        return {}, ""
    out = {t.number: t.user_attrs[TrialAttr.OOF_LEVEL] for t in study.get_trials(deepcopy=False)
           if t.number in numbers and TrialAttr.OOF_LEVEL in t.user_attrs}
    return out, artifacts.mask_url(url) or ""


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
