"""Pareto fronts, feasibility and hypervolume on plain arrays.

Everything here works on a *loss* matrix: one row per trial, one column per objective, every
column minimised. :func:`loss_matrix` turns raw objective values plus Optuna-style directions
("maximize"/"minimize") into one. Rows holding NaN are treated as failed trials: they are never
on a front and never contribute hypervolume.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_MAXIMIZE = frozenset({"maximize", "max"})
_MINIMIZE = frozenset({"minimize", "min"})

#: Upper bound on the number of cells of the (chunk, n, m) comparison tensor built at once.
_DOMINANCE_CELLS = 4_000_000


def loss_matrix(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """``values`` (n, m) as a float loss matrix: maximised columns negated, minimised kept.

    ``directions[j]`` is "maximize"/"max" or "minimize"/"min" (case-insensitive). NaN stays NaN.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"values must be 2-D (n, m), got shape {values.shape}")
    if len(directions) != values.shape[1]:
        raise ValueError(f"{len(directions)} directions for {values.shape[1]} objective columns")
    sign = np.empty(values.shape[1])
    for j, d in enumerate(directions):
        d = str(d).lower()
        if d in _MAXIMIZE:
            sign[j] = -1.0
        elif d in _MINIMIZE:
            sign[j] = 1.0
        else:
            raise ValueError(f"direction {j} must be 'maximize' or 'minimize', got {d!r}")
    return values * sign


def _as_loss(loss: np.ndarray) -> np.ndarray:
    loss = np.asarray(loss, dtype=float)
    if loss.ndim != 2:
        raise ValueError(f"loss must be 2-D (n, m), got shape {loss.shape}")
    return loss


def pareto_front_mask(loss: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``loss`` (all columns minimised).

    Row a dominates row b iff a <= b in every column and a < b in at least one. Exact duplicates
    do not dominate each other, so every copy of a non-dominated point is on the front. Rows with
    any NaN are never on the front and dominate nothing. O(n^2 m) time, memory bounded by chunking.
    """
    loss = _as_loss(loss)
    n, m = loss.shape
    valid = ~np.isnan(loss).any(axis=1)
    mask = np.zeros(n, dtype=bool)
    pts = loss[valid]
    k = len(pts)
    if k == 0:
        return mask
    if m == 0:
        mask[valid] = True
        return mask
    dominated = np.zeros(k, dtype=bool)
    chunk = max(1, _DOMINANCE_CELLS // max(1, k * m))
    for start in range(0, k, chunk):
        block = pts[start:start + chunk]  # candidates b, shape (c, m)
        le = (pts[None, :, :] <= block[:, None, :]).all(axis=2)  # (c, k): pts[j] <= block[i]
        lt = (pts[None, :, :] < block[:, None, :]).any(axis=2)
        dominated[start:start + chunk] = (le & lt).any(axis=1)
    mask[np.flatnonzero(valid)] = ~dominated
    return mask


def feasible_mask(constraints: np.ndarray) -> np.ndarray:
    """Rows whose every constraint value is <= 0 (Optuna's convention). NaN counts as violated.

    ``constraints`` is (n, c); with c == 0 every row is feasible. A 1-D array is read as c == 1.
    """
    c = np.asarray(constraints, dtype=float)
    if c.ndim == 1:
        c = c[:, None]
    if c.ndim != 2:
        raise ValueError(f"constraints must be 2-D (n, c), got shape {c.shape}")
    return np.asarray((c <= 0).all(axis=1), dtype=bool)  # NaN <= 0 is False


def violation(constraints: np.ndarray) -> np.ndarray:
    """Total violation per row: the sum of the positive parts of its constraint values.

    0 exactly for feasible rows. A NaN constraint counts as an infinite violation, so failed
    trials order after every finite one.
    """
    c = np.asarray(constraints, dtype=float)
    if c.ndim == 1:
        c = c[:, None]
    if c.ndim != 2:
        raise ValueError(f"constraints must be 2-D (n, c), got shape {c.shape}")
    pos = np.where(np.isnan(c), np.inf, np.clip(c, 0.0, None))
    return pos.sum(axis=1)


def _hv2(pts: np.ndarray, ref: np.ndarray) -> float:
    """2-D hypervolume: staircase sweep in x, running minimum of y."""
    order = np.argsort(pts[:, 0], kind="stable")
    x = pts[order, 0]
    y_best = np.minimum.accumulate(pts[order, 1])
    widths = np.diff(np.append(x, ref[0]))
    return float(np.sum(widths * (ref[1] - y_best)))


def _hv3(pts: np.ndarray, ref: np.ndarray) -> float:
    """3-D hypervolume: slabs along z; all prefix 2-D areas at once in one (k, k) sweep."""
    pts = pts[np.argsort(pts[:, 2], kind="stable")]
    k = len(pts)
    ix = np.argsort(pts[:, 0], kind="stable")
    widths = np.diff(np.append(pts[ix, 0], ref[0]))
    # Row i is the slab holding points 0..i (those with the i+1 smallest z): the others sit at ref.
    in_prefix = ix[None, :] <= np.arange(k)[:, None]
    y = np.where(in_prefix, pts[ix, 1][None, :], ref[1])
    areas = (widths[None, :] * (ref[1] - np.minimum.accumulate(y, axis=1))).sum(axis=1)
    heights = np.diff(np.append(pts[:, 2], ref[2]))
    return float(np.sum(heights * areas))


def _hv(pts: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume by slicing along the last objective (HSO), base cases 1-3-D."""
    k, m = pts.shape
    if k == 0:
        return 0.0
    if m == 1:
        return float(ref[0] - pts[:, 0].min())
    if m == 2:
        return _hv2(pts, ref)
    if m == 3:
        return _hv3(pts, ref)
    pts = pts[np.argsort(pts[:, -1], kind="stable")]
    heights = np.diff(np.append(pts[:, -1], ref[-1]))
    total = 0.0
    for i in range(k):
        if heights[i] > 0:
            prefix = pts[: i + 1, :-1]
            prefix = prefix[pareto_front_mask(prefix)] if i > 8 else prefix
            total += heights[i] * _hv(prefix, ref[:-1])
    return float(total)


def hypervolume(loss: np.ndarray, reference: np.ndarray) -> float:
    """Exact hypervolume dominated by the rows of ``loss`` and bounded by ``reference``.

    All objectives are minimised: the measure of the union of boxes [p, reference] over the
    points p. Rows that are not strictly better than ``reference`` in every objective, and rows
    with NaN, are ignored; no rows left gives 0.0. Fast for m <= 4 and n up to a few hundred
    (3-D is one O(n^2) sweep, 4-D n of them); higher m works but costs grow as n^(m-2).
    """
    loss = _as_loss(loss)
    ref = np.asarray(reference, dtype=float).reshape(-1)
    if ref.shape[0] != loss.shape[1]:
        raise ValueError(f"reference has {ref.shape[0]} values for {loss.shape[1]} objectives")
    if not np.isfinite(ref).all():
        raise ValueError(f"reference must be finite, got {ref}")
    if loss.shape[1] == 0:
        raise ValueError("hypervolume needs at least one objective")
    keep = ~np.isnan(loss).any(axis=1)
    keep &= (loss < ref[None, :]).all(axis=1)
    pts = loss[keep]
    if len(pts) == 0:
        return 0.0
    if np.isinf(pts).any():
        raise ValueError("a point at -inf dominates an unbounded volume")
    pts = np.unique(pts[pareto_front_mask(pts)], axis=0)
    return _hv(pts, ref)
