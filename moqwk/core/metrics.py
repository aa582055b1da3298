"""Quadratic weighted kappa and the tail slices, vectorised over prompts and repeats.

QWK is always computed over the full label range of each scale (never only the labels present:
scikit-learn's default, which changes the value when a level is missing from a slice).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from moqwk.core.pooled import lin_variance


def qwk_by_group(
    group: np.ndarray,
    true_level: np.ndarray,
    pred_level: np.ndarray,
    n_levels: np.ndarray,
) -> np.ndarray:
    """QWK of every group at once (one ``bincount``).

    ``group`` holds codes ``0..G-1``; ``n_levels[g]`` is group g's number of score levels; levels
    are
    integer indices ``0..n_levels[g]-1``. A group whose expected disagreement is zero (a single
    level observed and predicted) or that is empty gets NaN, as its kappa is undefined.
    """
    group = np.asarray(group, dtype=np.int64)
    a = np.asarray(true_level, dtype=np.int64)
    b = np.asarray(pred_level, dtype=np.int64)
    n_levels = np.asarray(n_levels, dtype=np.int64)
    if not (len(group) == len(a) == len(b)):
        raise ValueError(f"{len(group)=}, {len(a)=} and {len(b)=} must agree")
    n_groups = len(n_levels)
    if n_groups == 0:
        return np.empty(0)
    if len(a) and (a.min() < 0 or b.min() < 0 or (a >= n_levels[group]).any()
                   or (b >= n_levels[group]).any()):
        raise ValueError("levels must lie in 0..n_levels-1 of their group")
    k = int(n_levels.max())
    flat = (group * k + a) * k + b
    observed = np.bincount(flat, minlength=n_groups * k * k).reshape(n_groups, k, k).astype(float)
    n = observed.sum(axis=(1, 2))
    rows = observed.sum(axis=2)
    cols = observed.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = rows[:, :, None] * cols[:, None, :] / n[:, None, None]
    idx = np.arange(k)
    weights = (idx[:, None] - idx[None, :]) ** 2
    num = (observed * weights).sum(axis=(1, 2))
    den = np.nansum(expected * weights, axis=(1, 2))
    out = np.full(n_groups, np.nan)
    ok = (n > 0) & (den > 0)
    out[ok] = 1.0 - num[ok] / den[ok]
    return out


def qwk(true_level: np.ndarray, pred_level: np.ndarray, n_levels: int) -> float:
    """QWK of one set of essays on one scale with ``n_levels`` levels."""
    z = np.zeros(len(true_level), dtype=np.int64)
    return float(qwk_by_group(z, true_level, pred_level, np.array([n_levels]))[0])


@dataclass(frozen=True)
class PromptRow:
    """One prompt's slice: its QWK (mean over repeats) and errors in normalised units."""

    prompt: str
    n: int
    n_levels: int
    qwk: float
    qwk_sd: float
    mae: float
    bias: float
    eligible: bool
    #: Sampling variance of ``qwk`` (Lin's delta method, mean over repeats): how noisy this
    #: prompt's QWK is, which the empirical-Bayes worst-prompt estimator shrinks by.
    qwk_var: float = float("nan")


@dataclass(frozen=True)
class TailSlice:
    n: int
    mae: float
    bias: float
    mae_units: float | None
    bias_units: float | None


@dataclass(frozen=True)
class CVMetrics:
    """Every number a CV run reports. :mod:`moqwk.core.objectives` says which are objectives,
    in which direction, and how each is labelled."""

    worst_prompt_qwk: float
    worst_prompt: str | None
    mean_qwk: float
    pooled_qwk: float | None
    low_tail_mae: float
    high_tail_mae: float
    low_tail_bias: float
    high_tail_bias: float
    low_tail: TailSlice
    high_tail: TailSlice
    n_eligible_prompts: int
    min_prompt_n: int
    repeats: int
    per_prompt: tuple[PromptRow, ...]

    def per_prompt_qwk(self) -> dict[str, float]:
        return {row.prompt: row.qwk for row in self.per_prompt}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["per_prompt"] = [asdict(r) for r in self.per_prompt]
        return d


def tail_masks(
    y_norm: np.ndarray, low_band: float, high_band: float
) -> tuple[np.ndarray, np.ndarray]:
    """Essays whose true normalised score is <= ``low_band`` (low tail) / >= ``high_band``."""
    eps = 1e-9
    return y_norm <= low_band + eps, y_norm >= high_band - eps


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    return float(x.mean()) if len(x) else float("nan")


def compute_metrics(
    *,
    prompt_codes: np.ndarray,
    prompt_names: list[str] | tuple[str, ...],
    repeat: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    step: np.ndarray,
    min_prompt_n: int,
    low_band: float,
    high_band: float,
    global_scale: bool,
) -> CVMetrics:
    """All CV metrics from out-of-fold rows (one row per essay per repeat).

    ``y_true`` and ``y_pred`` are on each essay's own scale (``y_pred`` rounded to the step);
    ``lo``/``hi``/``step`` are the per-row scale. With repeats, each prompt's QWK is computed per
    repeat and averaged before the worst and the mean are taken: the worst prompt of the average,
    not the average of each repeat's worst prompt, which mixes different prompts and is biased
    low by the per-repeat noise.
    """
    prompt_codes = np.asarray(prompt_codes, dtype=np.int64)
    repeat = np.asarray(repeat, dtype=np.int64)
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    n_prompts = len(prompt_names)
    n_repeats = int(repeat.max()) + 1 if len(repeat) else 1

    true_level = np.rint((y_true - lo) / step).astype(np.int64)
    pred_level = np.rint((y_pred - lo) / step).astype(np.int64)
    levels_row = (np.rint((hi - lo) / step) + 1).astype(np.int64)
    levels_prompt = np.ones(n_prompts, dtype=np.int64)
    levels_prompt[prompt_codes] = levels_row

    group = repeat * n_prompts + prompt_codes
    q = qwk_by_group(group, true_level, pred_level, np.tile(levels_prompt, n_repeats))
    q = q.reshape(n_repeats, n_prompts)
    rows_per_prompt = np.bincount(prompt_codes, minlength=n_prompts)
    essays_per_prompt = rows_per_prompt // n_repeats
    with np.errstate(invalid="ignore"):
        q_mean = np.nanmean(np.where(np.isnan(q), np.nan, q), axis=0) if n_repeats else q[0]
        q_sd = np.nanstd(q, axis=0) if n_repeats > 1 else np.zeros(n_prompts)

    z_true = (y_true - lo) / (hi - lo)
    z_pred = (y_pred - lo) / (hi - lo)
    err = z_pred - z_true
    sum_abs = np.bincount(prompt_codes, weights=np.abs(err), minlength=n_prompts)
    sum_err = np.bincount(prompt_codes, weights=err, minlength=n_prompts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mae_p = sum_abs / rows_per_prompt
        bias_p = sum_err / rows_per_prompt

    # each prompt's QWK sampling variance from its moments (one bincount per moment)
    m = n_repeats * n_prompts
    af, bf = true_level.astype(float), pred_level.astype(float)
    mom = [np.bincount(group, weights=w, minlength=m).reshape(n_repeats, n_prompts)
           for w in (np.ones(len(af)), af, af * af, bf, bf * bf, af * bf)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q_var = np.nanmean(np.where(np.isfinite(v := lin_variance(*mom)), v, np.nan), axis=0)

    eligible = (essays_per_prompt >= min_prompt_n) & ~np.isnan(q_mean)
    per_prompt = tuple(
        PromptRow(
            prompt=str(prompt_names[i]),
            n=int(essays_per_prompt[i]),
            n_levels=int(levels_prompt[i]),
            qwk=float(q_mean[i]),
            qwk_sd=float(q_sd[i]),
            mae=float(mae_p[i]),
            bias=float(bias_p[i]),
            eligible=bool(eligible[i]),
            qwk_var=float(q_var[i]),
        )
        for i in range(n_prompts)
        if rows_per_prompt[i] > 0
    )
    if eligible.any():
        worst_i = int(np.argmin(np.where(eligible, q_mean, np.inf)))
        worst, worst_prompt = float(q_mean[worst_i]), str(prompt_names[worst_i])
        mean = float(q_mean[eligible].mean())
    else:
        worst, worst_prompt, mean = float("nan"), None, float("nan")

    pooled = None
    if global_scale:
        pooled_by_repeat = qwk_by_group(repeat, true_level, pred_level,
                                        np.full(n_repeats,
                                                int(levels_row[0]) if len(levels_row) else 1))
        pooled = _nanmean(pooled_by_repeat)

    low, high = tail_masks(z_true, low_band, high_band)
    units = (hi - lo)

    def _slice(mask: np.ndarray) -> TailSlice:
        n = int(mask.sum()) // n_repeats
        if not mask.any():
            return TailSlice(0, float("nan"), float("nan"), None, None)
        mae = float(np.abs(err[mask]).mean())
        bias = float(err[mask].mean())
        if global_scale:
            return TailSlice(n, mae, bias, mae * float(units[0]), bias * float(units[0]))
        return TailSlice(n, mae, bias, None, None)

    low_s, high_s = _slice(low), _slice(high)
    return CVMetrics(
        worst_prompt_qwk=worst,
        worst_prompt=worst_prompt,
        mean_qwk=mean,
        pooled_qwk=pooled,
        low_tail_mae=low_s.mae,
        high_tail_mae=high_s.mae,
        low_tail_bias=low_s.bias,
        high_tail_bias=high_s.bias,
        low_tail=low_s,
        high_tail=high_s,
        n_eligible_prompts=int(eligible.sum()),
        min_prompt_n=int(min_prompt_n),
        repeats=n_repeats,
        per_prompt=per_prompt,
    )
