"""``moqwk predict`` and ``moqwk.load_model(path).predict(frame)``: score new essays.

Loading reads JSON, a NumPy ``.npz`` with ``allow_pickle=False`` and XGBoost's own UBJSON model
format; nothing in a model directory is executed. Every file's sha256 is checked against the
manifest, and the version policy of :mod:`moqwk.model.manifest` applies.

Essays are checked as the corpus loader checks a corpus (columns, ids, texts, prompts), without
scores. Each prompt's scale is the model's: one global scale applies to every prompt, new ones
included; with a scale per prompt a prompt the model does not know needs a declared scale
(``--scale PROMPT MIN MAX STEP``, ``scales={PROMPT: (MIN, MAX, STEP)}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from moqwk.base import artifacts
from moqwk.core.scale import EssayScale, Scale, ScoreScales
from moqwk.data.corpus import check_essays, read_table
from moqwk.engine.cv import xgb_threads
from moqwk.errors import ConfigError, DataError, ModelError
from moqwk.features.fitted import FittedFeatures
from moqwk.model.manifest import BOOSTER_FILE, check_versions, read_manifest
from moqwk.model.mapping_record import SMALL_BATCH, apply_score_mapping

#: The columns of a prediction frame, in order.
OUTPUT_COLUMNS = ("id", "prompt", "y_pred", "y_pred_raw", "y_pred_norm")

ScaleLike = Scale | tuple[float, float, float] | list[float] | Mapping[str, float]


def read_essays(path: Path) -> pd.DataFrame:
    """The essays to score: a CSV (read as text, like the corpus loader) or Parquet file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--data {path} not found; give the CSV or Parquet file of essays to score")
    return read_table(path)


@dataclass(frozen=True)
class Essays:
    ids: np.ndarray
    prompts: np.ndarray
    texts: list[str]


def validate_essays(df: pd.DataFrame, columns: Mapping[str, str], *, source: str,
                    flags: Mapping[str, str] | None = None) -> Essays:
    """Check the id, text and prompt columns of ``df``; one clear error for the first problem.

    ``columns``: ``{"id": ..., "text": ..., "prompt": ...}``; ``flags`` names how the caller sets
    each (default ``--id-column`` etc.).
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"essays to score must be a pandas DataFrame, got {type(df).__name__}")
    flags = flags or {r: f"--{r}-column" for r in columns}
    for role, col in columns.items():
        if col not in df.columns:
            shown = ", ".join(map(str, df.columns[:12]))
            raise DataError(f"column {col!r} ({role}) not found in {source}; columns are: "
                            f"{shown}; name the {role} column with {flags[role]}")
    if len(df) == 0:
        raise DataError(f"{source} has no essays (a header but no rows)")
    ids, texts, prompts = check_essays(df, id_column=columns["id"],
                                       text_column=columns["text"],
                                       prompt_column=columns["prompt"])
    return Essays(ids.to_numpy(dtype=object), prompts.to_numpy(dtype=object),
                  texts.tolist())


def _as_scale(prompt: str, value: ScaleLike) -> Scale:
    if isinstance(value, Scale):
        return value
    try:
        if isinstance(value, Mapping):
            lo, hi, step = value["min"], value["max"], value["step"]
        else:
            lo, hi, step = value
        return Scale(float(lo), float(hi), float(step))
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"--scale {prompt}: expected MIN MAX STEP, e.g. 1 5 0.5 ({e})") from None


def scales_from_manifest(record: Mapping[str, Any]) -> ScoreScales:
    if record.get("kind") == "global":
        return ScoreScales(global_scale=Scale(record["min"], record["max"], record["step"]))
    return ScoreScales(per_prompt={p: Scale(s["min"], s["max"], s["step"])
                                   for p, s in record["prompts"].items()})


class Model:
    """A fitted model directory, loaded: features, booster, scales and mapping."""

    def __init__(self, path: Path, manifest: dict[str, Any], features: FittedFeatures,
                 booster: xgb.Booster) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self.features = features
        self.booster = booster
        self.scales = scales_from_manifest(manifest["scale"])

    @property
    def columns(self) -> dict[str, str]:
        """The id, text and prompt columns the model's corpus used (the defaults of predict)."""
        return dict(self.manifest["columns"])

    @property
    def mapping(self) -> dict[str, Any]:
        return dict(self.manifest["mapping"])

    @property
    def known_prompts(self) -> tuple[str, ...]:
        """Prompts with a scale of their own: the fitted ones, and any the config declared."""
        return tuple(sorted(set(self.manifest["data"]["prompts"]) | set(self.scales.per_prompt)))

    def essay_scale(self, prompts: np.ndarray,
                    scales: Mapping[str, ScaleLike] | None = None) -> EssayScale:
        """Each essay's scale: a declared one, else the model's; unknown prompts need one."""
        declared = {str(p): _as_scale(str(p), v) for p, v in (scales or {}).items()}
        per: dict[str, Scale] = {}
        for p in sorted(set(np.asarray(prompts).astype(str).tolist())):
            own = self.scales.per_prompt.get(p) if not self.scales.is_global else (
                self.scales.global_scale if p in self.manifest["data"]["prompts"] else None)
            if p in declared:
                if own is not None and own != declared[p]:
                    raise ConfigError(
                        f"--scale {p}: the model already has scale {own.min:g}-{own.max:g} step "
                        f"{own.step:g} for prompt {p!r}; drop --scale {p}")
                per[p] = declared[p]
            elif own is not None:
                per[p] = own
            elif self.scales.global_scale is not None:
                per[p] = self.scales.global_scale
        unknown = sorted(set(np.asarray(prompts).astype(str).tolist()) - set(per))
        if unknown:
            shown = ", ".join(unknown[:5]) + (f" (and {len(unknown) - 5} more)"
                                              if len(unknown) > 5 else "")
            raise DataError(
                f"prompt(s) {shown} have no score scale: the model has a scale per prompt and "
                f"knows only {', '.join(self.known_prompts[:8])}"
                f"{' …' if len(self.known_prompts) > 8 else ''}; declare each new prompt's "
                f"scale with --scale PROMPT MIN MAX STEP (e.g. --scale {unknown[0]} 1 6 1; "
                f"scales={{{unknown[0]!r}: (1, 6, 1)}} in Python)")
        return EssayScale.from_scales(ScoreScales(per_prompt=per), np.asarray(prompts).astype(str))

    def predict_raw(self, texts: list[str], *, ids: np.ndarray | None = None,
                    feature_table: Path | None = None) -> np.ndarray:
        """The booster's normalised predictions (float32 widened to float64), one per text."""
        X = self.features.transform(texts, ids=ids, table_path=feature_table)
        dm = xgb.DMatrix(X, feature_names=list(self.features.feature_names))
        return np.asarray(self.booster.predict(dm), dtype=np.float64)

    def predict(self, frame: pd.DataFrame, *, id_column: str | None = None,
                text_column: str | None = None, prompt_column: str | None = None,
                scales: Mapping[str, ScaleLike] | None = None,
                feature_table: str | Path | None = None, small_batch: str = "refuse",
                source: str = "the essays frame") -> pd.DataFrame:
        """Score the essays of ``frame``: columns ``id, prompt, y_pred, y_pred_raw, y_pred_norm``.

        ``y_pred`` is the score on the prompt's scale (after the model's score mapping),
        ``y_pred_raw`` the prediction in score units before mapping, ``y_pred_norm`` the same
        in normalised units (0 = bottom of the scale, 1 = top). Rows follow ``frame``.
        Column names default to the model's ``data.*_column``.
        """
        if small_batch not in SMALL_BATCH:
            raise ConfigError(f"small_batch must be one of {', '.join(SMALL_BATCH)}, got "
                              f"{small_batch!r}")
        cols = self.columns
        cols.update({k: v for k, v in (("id", id_column), ("text", text_column),
                                       ("prompt", prompt_column)) if v is not None})
        flags = {r: f"--{r}-column ({r}_column= in Python)" for r in cols}
        essays = validate_essays(frame, cols, source=source, flags=flags)
        es = self.essay_scale(essays.prompts, scales)
        z = self.predict_raw(essays.texts, ids=essays.ids,
                             feature_table=Path(feature_table) if feature_table else None)
        y = apply_score_mapping(self.mapping, z, essays.prompts, es, small_batch=small_batch)
        return pd.DataFrame({"id": essays.ids, "prompt": essays.prompts, "y_pred": y,
                             "y_pred_raw": es.raw_to_scale(z), "y_pred_norm": z})


def load_model(path: str | Path) -> Model:
    """Load a model directory written by ``moqwk fit``; executes nothing from it."""
    path = Path(path)
    manifest = read_manifest(path)
    try:
        return _load(path, manifest)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"{path / 'model.json'} lacks a field or has a bad value ({e!r}); "
                         "fit the model again") from None


def _load(path: Path, manifest: dict[str, Any]) -> Model:
    files = manifest.get("files") or {}
    for name in (BOOSTER_FILE, "features.json", "features.npz"):
        f = path / name
        if name not in files or not f.is_file():
            raise ModelError(f"{path} lacks {name}: the model directory is incomplete; fit it "
                             "again")
        if artifacts.sha256_file(f) != files[name]:
            raise ModelError(f"{f} does not match the sha256 in {path / 'model.json'}: the file "
                             "was changed or damaged; fit the model again")
    check_versions(manifest, artifacts.versions(), where=path)
    features = FittedFeatures.load(path)
    if list(features.feature_names) != manifest["features"]["feature_names"]:
        raise ModelError(f"{path}: the fitted features' columns differ from the manifest's")
    booster = xgb.Booster()
    try:
        booster.load_model(str(path / BOOSTER_FILE))
    except xgb.core.XGBoostError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{path / BOOSTER_FILE}: XGBoost cannot read it ({first})") from None
    booster.set_param({"nthread": xgb_threads(1, int(manifest["config"]["model"]["nthread"]))})
    return Model(path, manifest, features, booster)
