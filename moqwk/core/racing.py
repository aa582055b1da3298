"""Fold racing: optimistic bounds on a trial's objectives after some folds, and dominance.

A trial's folds are trained in order. After a *rung* (a number of folds run), the objectives of
the whole CV are not known yet, but each can be bounded on its optimistic side from what is
known, and the trial is stopped when even that bound is dominated by a feasible trial by more
than the noise (``margins``). Then the finished trial would be dominated too, so it could not
reach the feasible front (``docs/explanation/method.md``, "Fold racing", derives each bound).

Under prompt-holdout CV every prompt's essays are held out in one fold per repeat, so a prompt
whose folds have all run has its final QWK; the other prompts are *unseen*. What is known, and
how each objective is bounded (all values "better is larger" for QWK, "smaller" for MAE):

- per-prompt QWK of the seen eligible prompts (final), and how many unseen prompts could still
  be eligible (at least ``min_prompt_n`` essays): the unseen ones are given QWK 1, the largest
  a QWK can be, and the estimator (mean, min, lower-tail mean) is taken over the filled list.
  That is an upper bound for every estimator that does not decrease when a prompt's QWK
  grows and that gains nothing from a prompt that is left out (an unseen prompt whose QWK is
  undefined is not eligible): the mean, the minimum and the lower-tail mean (CVaR). The
  empirical-Bayes minimum shrinks toward the mean by the prompts' spread, which is not
  monotone, so it gets no bound here (``inf``: never prunes).
- tail MAE: the absolute errors of the tail essays seen so far, divided by the number of tail
  essays of the whole CV (the unseen ones assumed predicted without error): a lower bound.

Everything is pure: arrays in, floats out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from moqwk.core.objectives import metric
from moqwk.core.worst_prompt import estimator

#: The largest value a QWK can take: what an unseen prompt is given.
QWK_MAX = 1.0

#: Worst-prompt estimators whose value never decreases as a prompt's QWK grows and gains
#: nothing from a prompt left out, so filling unseen prompts with 1 bounds them from above:
#: those whose kind is registered ``monotone`` (:data:`moqwk.core.worst_prompt.KINDS`).


@dataclass(frozen=True)
class Partial:
    """What a trial's run folds tell: the seen eligible prompts' QWK (final), how many prompts
    are unseen and could be eligible, and per tail the sum of absolute errors seen so far and the
    number of tail rows of the whole CV (every repeat)."""

    seen_qwk: np.ndarray
    n_unseen: int
    low_abs_sum: float
    low_rows: int
    high_abs_sum: float
    high_rows: int


def filled_qwk(seen_qwk: np.ndarray, n_unseen: int) -> np.ndarray:
    """The seen prompts' QWK followed by ``n_unseen`` prompts at :data:`QWK_MAX`."""
    if n_unseen < 0:
        raise ValueError(f"n_unseen must be >= 0, got {n_unseen}")
    q = np.asarray(seen_qwk, dtype=float)
    return np.concatenate([q[~np.isnan(q)], np.full(int(n_unseen), QWK_MAX)])


def optimistic_value(name: str, p: Partial) -> float:
    """The best value objective ``name`` can still reach given ``p``.

    An objective this module cannot bound gets the best value there is (``inf`` for a maximised
    one, ``-inf`` for a minimised one), so it never makes a trial look dominated.
    """
    m = metric(name)
    unbounded = math.inf if m.maximize else -math.inf
    if name == "mean_qwk":
        q = filled_qwk(p.seen_qwk, p.n_unseen)
        return float(q.mean()) if len(q) else unbounded
    if m.worst_prompt is not None:
        est = estimator(m.worst_prompt)
        q = filled_qwk(p.seen_qwk, p.n_unseen)
        if not est.monotone or not len(q):
            return unbounded
        return float(est(q))
    if name in ("low_tail_mae", "high_tail_mae"):
        s, rows = ((p.low_abs_sum, p.low_rows) if name == "low_tail_mae"
                   else (p.high_abs_sum, p.high_rows))
        return float(s) / rows if rows > 0 else unbounded
    return unbounded


def optimistic_losses(names: Sequence[str], p: Partial) -> np.ndarray:
    """:func:`optimistic_value` of each objective as a loss (lower is better): a lower bound of
    the finished trial's loss vector."""
    return np.array([metric(n).loss(optimistic_value(n, p)) for n in names], dtype=float)


def dominating(bound: np.ndarray, front: np.ndarray, margins: np.ndarray) -> int | None:
    """The first row of ``front`` (losses, one row per feasible trial) that dominates ``bound``
    by more than ``margins``: no worse than ``bound - margins`` in every objective and better
    in at least one. None when no row does.

    With ``margins >= 0`` and ``bound`` a lower bound of a trial's final losses, that row
    dominates the finished trial (strictly in at least one objective), so the trial cannot be
    on the feasible front.
    """
    b = np.asarray(bound, dtype=float)
    f = np.asarray(front, dtype=float).reshape(-1, len(b))
    mg = np.asarray(margins, dtype=float)
    if (mg < 0).any():
        raise ValueError("margins must be >= 0")
    if not len(f):
        return None
    shifted = f + mg[None, :]
    ok = np.all(shifted <= b[None, :], axis=1) & np.any(shifted < b[None, :], axis=1)
    ok &= np.all(np.isfinite(f), axis=1)
    hits = np.flatnonzero(ok)
    return int(hits[0]) if len(hits) else None


def certainly_infeasible(p: Partial, limits: Mapping[str, float]) -> str | None:
    """The tail whose MAE is already above its guardrail limit whatever the unrun folds hold
    (its lower bound exceeds the limit), else None. ``limits``: ``low_tail_mae`` and
    ``high_tail_mae`` limits."""
    for name in ("low_tail_mae", "high_tail_mae"):
        if name in limits and optimistic_value(name, p) > limits[name]:
            return name
    return None


def default_rungs(n_fits: int) -> tuple[int, ...]:
    """A rung at half the folds (rounded down) and one before the last fold: 2 and 4 of 5,
    5 and 9 of 10, 1 of 2 or 3; none with a single fold. The worst-case bounds tighten as the
    unseen share shrinks, so the late rung is where most dominated trials are caught."""
    if n_fits < 2:
        return ()
    return tuple(sorted({max(1, n_fits // 2), n_fits - 1}))
