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

Those are the ``worst_case`` bounds: no fold's predictions can beat them. The ``statistical``
bounds (``bound="statistical"``) use that prompt-holdout folds draw prompts at random, so the
seen prompts are a simple random sample of the prompts: the mean QWK is bounded by the seen
mean plus ``z`` sampling-without-replacement standard errors, each tail MAE by the seen prompts'
ratio estimate less ``z`` cluster standard errors (each capped by its worst-case bound). They
can be wrong, with probability about ``1 - Phi(z)`` per objective under that sampling model
(``docs/research/racing-bound-design.md``); the minimum needs no such help, since the seen
minimum already bounds it, and infeasibility stops keep the worst-case bound.

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
    #: Per fully seen prompt (every repeat): its tail essays' absolute-error sums and counts,
    #: for the statistical tail bound; and how many prompts have tail essays at all.
    low_by_prompt: tuple[np.ndarray, np.ndarray] | None = None
    high_by_prompt: tuple[np.ndarray, np.ndarray] | None = None
    low_prompts: int = 0
    high_prompts: int = 0


def filled_qwk(seen_qwk: np.ndarray, n_unseen: int) -> np.ndarray:
    """The seen prompts' QWK followed by ``n_unseen`` prompts at :data:`QWK_MAX`."""
    if n_unseen < 0:
        raise ValueError(f"n_unseen must be >= 0, got {n_unseen}")
    q = np.asarray(seen_qwk, dtype=float)
    return np.concatenate([q[~np.isnan(q)], np.full(int(n_unseen), QWK_MAX)])


#: The bounds :func:`optimistic_value` knows (``search.racing_bound``).
BOUNDS = ("worst_case", "statistical")


def sampled_mean_bound(seen: np.ndarray, n_unseen: int, z: float) -> float | None:
    """Upper bound of the mean over all prompts from a simple random sample of them (the seen
    ones): the seen mean plus ``z`` standard errors with the finite-population correction.
    None with fewer than 2 seen values (no spread to go on)."""
    q = np.asarray(seen, dtype=float)
    q = q[~np.isnan(q)]
    n, total = len(q), len(q) + int(n_unseen)
    if n < 2:
        return None
    if n_unseen == 0:
        return float(q.mean())
    se = float(q.std(ddof=1)) * math.sqrt((1.0 - n / total) / n)
    return float(q.mean()) + z * se


def sampled_ratio_bound(sums: np.ndarray, rows: np.ndarray, n_clusters: int,
                        z: float) -> float | None:
    """Lower bound of ``sum S / sum R`` over all ``n_clusters`` clusters from a simple random
    sample of them (``sums``, ``rows``: the sampled clusters' ``S_p``, ``R_p``): the ratio
    estimate less ``z`` of its linearised standard error. None with fewer than 2 sampled
    clusters that have rows."""
    s = np.asarray(sums, dtype=float)
    r = np.asarray(rows, dtype=float)
    keep = r > 0
    s, r = s[keep], r[keep]
    n = len(r)
    if n < 2:
        return None
    ratio = float(s.sum() / r.sum())
    f = min(1.0, n / max(int(n_clusters), n))
    if f >= 1.0:
        return ratio
    resid = s - ratio * r
    var = (1.0 - f) / (n * float(r.mean()) ** 2) * float((resid ** 2).sum()) / (n - 1)
    return ratio - z * math.sqrt(max(var, 0.0))


def optimistic_value(name: str, p: Partial, *, bound: str = "worst_case",
                     z: float = 2.0) -> float:
    """The best value objective ``name`` can still reach given ``p``: certainly
    (``bound="worst_case"``) or with ``z`` standard errors to spare (``"statistical"``).

    An objective this module cannot bound gets the best value there is (``inf`` for a maximised
    one, ``-inf`` for a minimised one), so it never makes a trial look dominated.
    """
    if bound not in BOUNDS:
        raise ValueError(f"bound must be one of {', '.join(BOUNDS)}, got {bound!r}")
    m = metric(name)
    unbounded = math.inf if m.maximize else -math.inf
    if name == "mean_qwk":
        q = filled_qwk(p.seen_qwk, p.n_unseen)
        if not len(q):
            return unbounded
        worst = float(q.mean())
        if bound == "statistical":
            sb = sampled_mean_bound(p.seen_qwk, p.n_unseen, z)
            if sb is not None:
                return min(worst, sb)
        return worst
    if m.worst_prompt is not None:
        est = estimator(m.worst_prompt)
        q = filled_qwk(p.seen_qwk, p.n_unseen)
        if not est.monotone or not len(q):
            return unbounded
        return float(est(q))
    if name in ("low_tail_mae", "high_tail_mae"):
        low = name == "low_tail_mae"
        s, rows = (p.low_abs_sum, p.low_rows) if low else (p.high_abs_sum, p.high_rows)
        if rows <= 0:
            return unbounded
        worst = float(s) / rows
        by = p.low_by_prompt if low else p.high_by_prompt
        if bound == "statistical" and by is not None:
            sb = sampled_ratio_bound(by[0], by[1], p.low_prompts if low else p.high_prompts, z)
            if sb is not None:
                return max(worst, sb)
        return worst
    return unbounded


def optimistic_losses(names: Sequence[str], p: Partial, *, bound: str = "worst_case",
                      z: float = 2.0) -> np.ndarray:
    """:func:`optimistic_value` of each objective as a loss (lower is better): a lower bound of
    the finished trial's loss vector."""
    return np.array([metric(n).loss(optimistic_value(n, p, bound=bound, z=z)) for n in names],
                    dtype=float)


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
