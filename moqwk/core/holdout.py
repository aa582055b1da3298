"""The holdout's numbers: the chosen config's objectives on essays no search or selection saw.

Pure functions on :class:`~moqwk.core.pooled.Pooled` predictions. :func:`holdout_objectives`
scores the holdout (with within-prompt bootstrap SEs, as :mod:`moqwk.core.noise` does);
:func:`size_shift` says how far the same metrics move on the *development* essays when they
are read on a sample the holdout's size, so that a worst-prompt QWK over about 12 essays a
prompt can be set beside one over about 46 (the minimum of noisier per-prompt QWKs is lower,
whatever was selected: the same size shift BBC-CV's ``corrected`` estimate removes).
"""

from __future__ import annotations

import numpy as np

from moqwk.core.bbc import objective_matrix
from moqwk.core.noise import bootstrap_objectives
from moqwk.core.objectives import DEFAULT_OBJECTIVES, ObjectiveSet
from moqwk.core.pooled import Pooled
from moqwk.core.worst_prompt import WorstPromptEstimator, estimator


def holdout_objectives(pooled: Pooled, *, n_boot: int, seed: int,
                       worst_prompt: WorstPromptEstimator | None = None,
                       objectives: ObjectiveSet = DEFAULT_OBJECTIVES
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The first config's ``objectives`` (in their ``names`` order) on the holdout and their
    bootstrap SEs.

    ``pooled`` holds the holdout essays only; its ``eligible`` prompts (those eligible in the
    development folds, see the caller) count toward the QWKs. SEs: the SD over ``n_boot``
    within-prompt essay resamples (every prompt keeps its size); NaN with ``n_boot`` < 2.
    """
    est = worst_prompt or estimator("min")
    values = objective_matrix(pooled, np.ones((1, pooled.n_essays)),
                              pooled.eligible.astype(float), worst_prompt=est,
                              objectives=objectives)[0, 0]
    if n_boot < 2:
        return values, np.full(len(values), np.nan)
    boot = bootstrap_objectives(pooled, n_boot=n_boot, seed=seed, worst_prompt=est,
                                objectives=objectives)[:, 0]
    se = np.array([np.std(b[~np.isnan(b)], ddof=1) if (~np.isnan(b)).sum() >= 2 else np.nan
                   for b in boot.T])
    return values, se


def size_shift(pooled: Pooled, *, unit: str, per_prompt: np.ndarray, n_prompts: int,
               n_draws: int, seed: int, worst_prompt: WorstPromptEstimator | None = None,
               objectives: ObjectiveSet = DEFAULT_OBJECTIVES) -> np.ndarray:
    """The first config's mean objectives on holdout-sized samples minus its full values.

    ``pooled`` holds the development essays' out-of-fold predictions. ``essays`` unit: each
    draw keeps, without replacement, ``per_prompt[p]`` essays of prompt p (the holdout's
    count of that prompt). ``prompts`` unit: each draw keeps ``n_prompts`` eligible prompts
    (the holdout's number), all their essays. Deterministic for a seed.
    """
    est = worst_prompt or estimator("min")
    if n_draws < 1:
        raise ValueError(f"n_draws must be >= 1, got {n_draws}")
    elig = pooled.eligible.astype(float)
    full = objective_matrix(pooled, np.ones((1, pooled.n_essays)), elig, worst_prompt=est,
                            objectives=objectives)[0, 0]
    rng = np.random.default_rng([seed, 4])
    codes = pooled.prompt_codes
    w = np.zeros((n_draws, pooled.n_essays))
    pw = np.tile(elig, (n_draws, 1))
    if unit == "essays":
        want = np.asarray(per_prompt, dtype=np.int64)
        for p in range(pooled.n_prompts):
            rows = np.flatnonzero(codes == p)
            m = min(int(want[p]), len(rows))
            if m == 0:
                continue
            for d in range(n_draws):
                w[d, rng.choice(rows, size=m, replace=False)] = 1.0
    elif unit == "prompts":
        w[:] = 1.0
        pool = np.flatnonzero(elig > 0)
        m = min(int(n_prompts), len(pool))
        pw[:] = 0.0
        for d in range(n_draws):
            pw[d, rng.choice(pool, size=m, replace=False)] = 1.0
    else:
        raise ValueError(f"unknown holdout unit {unit!r}")
    drawn = objective_matrix(pooled, w, pw, worst_prompt=est, objectives=objectives)[:, 0]
    with np.errstate(invalid="ignore"):
        return np.nanmean(drawn, axis=0) - full
