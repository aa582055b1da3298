"""The numbers the figures draw, as pure functions of records and out-of-fold rows.

Kept apart from the drawing so that tests can hold them against the run's own JSON: the
per-prompt point estimates here are the objective's per-prompt QWK, computed the same way
(every repeat's QWK over the full level range of the prompt's scale, averaged over repeats).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from moqwk.core.metrics import qwk_by_group
from moqwk.core.objectives import metric

if TYPE_CHECKING:
    from moqwk.study.records import TrialRecord

#: Bootstrap resamples per chunk (bounds memory on large corpora).
_CHUNK = 100


def _essay_matrix(rows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Essays (repeat 0's rows) and predictions as (repeats, essays), checking the layout."""
    rep = rows["repeat"].to_numpy(np.int64)
    n_rep = int(rep.max()) + 1
    first = rows[rep == 0].reset_index(drop=True)
    n = len(first)
    if len(rows) != n * n_rep:
        raise ValueError(f"{len(rows)} rows are not {n_rep} repeat(s) of {n} essays")
    pred = rows["y_pred"].to_numpy(float).reshape(n_rep, n)
    ids = rows["id"].to_numpy(str).reshape(n_rep, n)
    if not (ids == ids[0]).all():
        raise ValueError("repeats list the essays in different orders")
    return first, pred


def per_prompt_qwk(configs: Mapping[str, pd.DataFrame], *, lo: np.ndarray, step: np.ndarray,
                   n_levels: Mapping[str, int], n_boot: int, seed: int,
                   coverage: float = 0.95) -> pd.DataFrame:
    """Per-prompt QWK of each config with percentile bootstrap intervals.

    ``configs`` maps a name to its out-of-fold rows; all share essays, prompts and repeats (one
    run). ``lo``/``step`` are per essay (repeat 0's order), ``n_levels`` per prompt. Essays are
    resampled within their prompt, the same resample for every config and every repeat, and each
    resample's QWK is averaged over repeats like the point estimate. Returns one row per config
    and prompt: ``config, prompt, n, qwk, lo, hi, n_boot_defined`` (resamples whose QWK is
    defined: a resample with a single level has none).
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must lie in (0, 1), got {coverage}")
    names = list(configs)
    if not names:
        return pd.DataFrame(columns=["config", "prompt", "n", "qwk", "lo", "hi",
                                     "n_boot_defined"])
    essays, _ = _essay_matrix(configs[names[0]])
    preds = {}
    for name in names:
        e, p = _essay_matrix(configs[name])
        if not (e["id"].to_numpy(str) == essays["id"].to_numpy(str)).all():
            raise ValueError(f"config {name!r} lists other essays than {names[0]!r}")
        preds[name] = p
    prompts = essays["prompt"].to_numpy(str)
    prompt_names = sorted(set(prompts))
    codes = pd.Index(prompt_names).get_indexer(prompts).astype(np.int64)
    n_p = len(prompt_names)
    lv_prompt = np.array([int(n_levels[p]) for p in prompt_names], dtype=np.int64)
    true = np.rint((essays["y_true"].to_numpy(float) - lo) / step).astype(np.int64)
    levels = {k: np.rint((v - lo) / step).astype(np.int64) for k, v in preds.items()}
    n = len(essays)
    members = [np.flatnonzero(codes == c) for c in range(n_p)]

    def qwk_mean(idx: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """(B, n) resampled essay indices -> (B, prompts) QWK averaged over repeats."""
        b = idx.shape[0]
        group = (np.arange(b)[:, None] * n_p + codes[idx]).ravel()
        lv = np.tile(lv_prompt, b)
        per_rep = [qwk_by_group(group, true[idx].ravel(), row[idx].ravel(), lv).reshape(b, n_p)
                   for row in pred]
        with _quiet():
            return np.nanmean(np.stack(per_rep), axis=0)

    point = {k: qwk_mean(np.arange(n)[None, :], v)[0] for k, v in levels.items()}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[np.ndarray]] = {k: [] for k in names}
    done = 0
    while done < n_boot:
        b = min(_CHUNK, n_boot - done)
        idx = np.empty((b, n), dtype=np.int64)
        for m in members:
            idx[:, m] = m[rng.integers(0, len(m), size=(b, len(m)))]
        for k, v in levels.items():
            draws[k].append(qwk_mean(idx, v))
        done += b
    alpha = (1 - coverage) / 2
    out = []
    for k in names:
        d = np.concatenate(draws[k])
        defined = (~np.isnan(d)).sum(axis=0)
        with _quiet():
            q = np.nanquantile(d, [alpha, 1 - alpha], axis=0)
        for c, p in enumerate(prompt_names):
            out.append({"config": k, "prompt": p, "n": len(members[c]),
                        "qwk": float(point[k][c]), "lo": float(q[0, c]), "hi": float(q[1, c]),
                        "n_boot_defined": int(defined[c])})
    return pd.DataFrame(out)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """numpy's all-NaN warnings silenced (an all-NaN slice is reported as NaN, on purpose)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def calibration(rows: pd.DataFrame, *, lo: np.ndarray, hi: np.ndarray, normalise: bool,
                column: str = "y_pred") -> pd.DataFrame:
    """Mean prediction by true score level: ``true, n, mean, ci_lo, ci_hi``.

    Each essay's prediction is first averaged over repeats; the interval is the mean +- 1.96
    standard errors over the essays at that level (none for a single essay). ``normalise``
    puts scores on 0-1 (0 the bottom of each prompt's scale), for runs with a scale per prompt.
    ``column`` picks ``y_pred`` (mapped to the rubric) or ``y_pred_raw`` (before mapping).
    """
    essays, _ = _essay_matrix(rows)
    n_rep = len(rows) // len(essays)
    pred = rows[column].to_numpy(float).reshape(n_rep, len(essays)).mean(axis=0)
    true = essays["y_true"].to_numpy(float)
    if normalise:
        true, pred = (true - lo) / (hi - lo), (pred - lo) / (hi - lo)
    key = np.round(true, 9)
    out = []
    for level in np.unique(key):
        p = pred[key == level]
        m = float(p.mean())
        half = 1.96 * float(p.std(ddof=1)) / math.sqrt(len(p)) if len(p) > 1 else math.nan
        out.append({"true": float(level), "n": int(len(p)), "mean": m, "ci_lo": m - half,
                    "ci_hi": m + half})
    return pd.DataFrame(out)


def tail_levels(rows: pd.DataFrame) -> tuple[float | None, float | None]:
    """Highest true score in the low tail and lowest in the high tail (``None``: no such tail)."""
    low = high = None
    if "in_low_tail" in rows.columns and rows["in_low_tail"].astype(bool).any():
        low = float(rows.loc[rows["in_low_tail"].astype(bool), "y_true"].max())
    if "in_high_tail" in rows.columns and rows["in_high_tail"].astype(bool).any():
        high = float(rows.loc[rows["in_high_tail"].astype(bool), "y_true"].min())
    return low, high


def running_best(trials: Sequence[TrialRecord], objective: str, direction: str
                 ) -> list[tuple[int, float]]:
    """(trial number, best feasible value so far) at each feasible trial, in trial order."""
    better = max if direction == "maximize" else min
    best: float | None = None
    out = []
    for t in sorted(trials, key=lambda r: r.number):
        if not (t.feasible and t.values):
            continue
        v = float(t.values[objective])
        best = v if best is None else better(best, v)
        out.append((int(t.number), best))
    return out


def tie_band(selection: Mapping, primary: str) -> tuple[float, float] | None:
    """(lower, upper) of the selector's tie band on the ``primary`` objective (worst-prompt QWK
    by default), or ``None`` without a front.

    The band is every front trial whose primary value is within ``tie_tolerance`` of the best
    (see :func:`moqwk.core.selection.rank_lexicographic`), the best following the metric's
    direction in the registry.
    """
    cands = [c for c in selection.get("candidates") or [] if c.get(primary) is not None]
    if not cands:
        return None
    tol = float(selection.get("tie_tolerance") or 0.0)
    values = [float(c[primary]) for c in cands]
    if not metric(primary).maximize:
        best = min(values)
        return best, best + tol
    best = max(values)
    return best - tol, best
