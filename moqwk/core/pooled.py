"""Objectives of many configs under many weightings of the essays, at once.

A bootstrap replicate, an out-of-bag set and a plain evaluation are all one thing here: a
weight per essay (how many times it is counted; 0 leaves it out). Quadratic weighted kappa is
a function of first and second moments only. With ``a`` the true and ``b`` the predicted level
index and sums taken over a prompt's essays with weights ``w``::

    QWK = 1 - S[(a - b)^2] / (S[a^2] + S[b^2] - 2 S[a] S[b] / S[1])

which is exactly :func:`moqwk.core.metrics.qwk_by_group` (its expected-disagreement sum
``sum_ab rows_a cols_b (a - b)^2 / n`` expands to the denominator) and is Lin's concordance
correlation coefficient of the levels. The sums are linear in ``w``, so every prompt, config,
repeat and replicate comes out of a few matrix products: no confusion matrix per replicate.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

#: Upper bound on weight cells (replicates x essays) handled in one chunk.
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True, eq=False)
class Pooled:
    """Out-of-fold levels of ``C`` configs (``R`` fold assignments each) on ``N`` essays.

    Build with :func:`pool`, which checks the inputs. ``preds`` is (C, R, N) level indices;
    ``n_levels[p]`` is prompt p's number of levels; ``low_tail``/``high_tail`` mark essays whose
    true score lies in each tail.
    """

    prompt_codes: np.ndarray
    true_level: np.ndarray
    preds: np.ndarray
    n_levels: np.ndarray
    eligible: np.ndarray
    low_tail: np.ndarray
    high_tail: np.ndarray

    @property
    def n_configs(self) -> int:
        return int(self.preds.shape[0])

    @property
    def n_repeats(self) -> int:
        return int(self.preds.shape[1])

    @property
    def n_essays(self) -> int:
        return int(self.preds.shape[2])

    @property
    def n_prompts(self) -> int:
        return len(self.n_levels)

    @property
    def sizes(self) -> np.ndarray:
        """Essays per prompt."""
        return np.bincount(self.prompt_codes, minlength=self.n_prompts)


def pool(*, prompt_codes: np.ndarray, true_level: np.ndarray, preds: np.ndarray,
         n_levels_by_prompt: np.ndarray, eligible: np.ndarray,
         low_tail: np.ndarray | None = None, high_tail: np.ndarray | None = None) -> Pooled:
    """Check and freeze the inputs. ``preds`` may be (N,), (R, N) or (C, R, N).

    Tails default to no essay (their MAEs are then NaN).
    """
    codes = np.asarray(prompt_codes, dtype=np.int64)
    a = np.asarray(true_level, dtype=np.int64)
    p = np.asarray(preds, dtype=np.int64)
    while p.ndim < 3:
        p = p[None]
    levels = np.asarray(n_levels_by_prompt, dtype=np.int64)
    elig = np.asarray(eligible, dtype=bool)
    n = len(codes)
    if p.ndim != 3:
        raise ValueError(f"preds must be (configs, repeats, essays), got shape {p.shape}")
    if len(a) != n or p.shape[2] != n:
        raise ValueError(f"{len(codes)=}, {len(a)=} and preds.shape[-1]={p.shape[2]} must agree")
    if elig.shape != levels.shape:
        raise ValueError(f"eligible has shape {elig.shape}; it needs one flag per prompt "
                         f"({len(levels)})")
    if n and (codes.min() < 0 or codes.max() >= len(levels)):
        raise ValueError(f"prompt codes must lie in 0..{len(levels) - 1}, got "
                         f"{codes.min()}..{codes.max()}")
    if n and (a.min() < 0 or (a >= levels[codes]).any()):
        raise ValueError("true levels must lie in 0..n_levels-1 of their prompt")
    if p.size and (p.min() < 0 or (p >= levels[codes][None, None, :]).any()):
        raise ValueError("predicted levels must lie in 0..n_levels-1 of their prompt")
    tails = []
    for name, t in (("low_tail", low_tail), ("high_tail", high_tail)):
        t = np.zeros(n, dtype=bool) if t is None else np.asarray(t, dtype=bool)
        if t.shape != (n,):
            raise ValueError(f"{name} has shape {t.shape}; it needs one flag per essay ({n})")
        tails.append(t)
    return Pooled(codes, a, p, levels, elig, tails[0], tails[1])


@dataclass(frozen=True)
class PromptStats:
    """Per-prompt QWK of every config under every weighting.

    ``qwk`` is (B, C, P), averaged over fold assignments (NaN where undefined in every one);
    ``var`` is Lin's delta-method sampling variance of it (see :func:`lin_variance`);
    ``n`` is (B, P): the weighted number of essays.
    """

    qwk: np.ndarray
    var: np.ndarray
    n: np.ndarray


def qwk_from_moments(n: np.ndarray, sa: np.ndarray, saa: np.ndarray, sb: np.ndarray,
                     sbb: np.ndarray, sab: np.ndarray) -> np.ndarray:
    """QWK from weighted sums; NaN where undefined (no essay, or one level on both sides)."""
    num = saa - 2.0 * sab + sbb
    with np.errstate(invalid="ignore", divide="ignore"):
        den = saa + sbb - 2.0 * sa * sb / n
        ok = (n > 0) & (den > 1e-12 * (saa + sbb + 1.0))
        return np.where(ok, 1.0 - num / np.where(ok, den, 1.0), np.nan)


def lin_variance(n: np.ndarray, sa: np.ndarray, saa: np.ndarray, sb: np.ndarray,
                 sbb: np.ndarray, sab: np.ndarray) -> np.ndarray:
    """Delta-method sampling variance of QWK (Lin 1989, corrected 2000), from weighted sums.

    QWK is Lin's concordance correlation rho_c = r * C_b of the levels, with r Pearson's
    correlation, C_b = 2 s_a s_b / (s_a^2 + s_b^2 + (m_a - m_b)^2) and u^2 = (m_a - m_b)^2 /
    (s_a s_b). Lin's variance, with rho_c / r written as C_b so that r = 0 is not a division::

        [(1 - r^2) C_b^2 (1 - rho^2) + 2 rho^2 C_b (1 - rho) u^2 - rho^2 C_b^2 u^4 / 2] / (n - 2)

    Where it is undefined (a side with one level, n <= 2) it falls back to the correlation-like
    (1 - rho^2)^2 / (n - 2), and to +inf for n <= 2: such a prompt carries no information.
    """
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ma, mb = sa / n, sb / n
        va = np.maximum(saa / n - ma * ma, 0.0)
        vb = np.maximum(sbb / n - mb * mb, 0.0)
        cov = sab / n - ma * mb
        sd = np.sqrt(va * vb)
        d2 = (ma - mb) ** 2
        r = cov / sd
        cb = 2.0 * sd / (va + vb + d2)
        rho = r * cb
        u2 = d2 / sd
        lin = ((1 - r * r) * cb * cb * (1 - rho * rho) + 2 * rho * rho * cb * (1 - rho) * u2
               - rho * rho * cb * cb * u2 * u2 / 2) / (n - 2)
        q = qwk_from_moments(n, sa, saa, sb, sbb, sab)
        fallback = (1 - np.nan_to_num(q) ** 2) ** 2 / (n - 2)
        out = np.where(np.isfinite(lin) & (lin >= 0), lin, fallback)
        return np.where(n > 2, out, np.inf)


def _segments(codes: np.ndarray, n_prompts: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(codes, minlength=n_prompts))))
    return order, bounds


def prompt_stats(pooled: Pooled, weights: np.ndarray) -> PromptStats:
    """Per-prompt QWK (and its sampling variance) of every config for each row of ``weights``.

    ``weights`` is (B, N) non-negative essay weights, or (N,) for one weighting. Each prompt's
    QWK is computed per fold assignment and averaged over them, as the objective does; its
    variance is the mean of the per-assignment variances (the assignments share the essays, so
    averaging them removes little essay noise).
    """
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    if w.shape[1] != pooled.n_essays:
        raise ValueError(f"weights has {w.shape[1]} columns; it needs one per essay "
                         f"({pooled.n_essays})")
    if (w < 0).any():
        raise ValueError("weights must be >= 0")
    n_b = w.shape[0]
    c, r, _ = pooled.preds.shape
    a = pooled.true_level.astype(float)
    b = pooled.preds.reshape(c * r, -1).T.astype(float)  # (N, C*R)
    feats = np.concatenate([b, b * b, a[:, None] * b, np.stack([np.ones_like(a), a, a * a], 1)],
                           axis=1)  # (N, 3CR + 3)
    order, bounds = _segments(pooled.prompt_codes, pooled.n_prompts)
    sums = np.empty((n_b, pooled.n_prompts, feats.shape[1]))
    for p in range(pooled.n_prompts):
        idx = order[bounds[p]:bounds[p + 1]]
        sums[:, p, :] = w[:, idx] @ feats[idx]
    k = c * r
    sb, sbb, sab = (sums[:, :, i * k:(i + 1) * k] for i in range(3))
    n, sa, saa = (sums[:, :, 3 * k + i][:, :, None] for i in range(3))
    q = qwk_from_moments(n, sa, saa, sb, sbb, sab)  # (B, P, C*R)
    v = lin_variance(n, sa, saa, sb, sbb, sab)
    q = q.reshape(n_b, pooled.n_prompts, c, r).transpose(0, 2, 1, 3)
    v = v.reshape(n_b, pooled.n_prompts, c, r).transpose(0, 2, 1, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a prompt undefined in every repeat
        q_mean = np.nanmean(q, axis=3) if r > 1 else q[..., 0]
        v_mean = np.nanmean(np.where(np.isnan(q), np.nan, v), axis=3) if r > 1 else v[..., 0]
    return PromptStats(q_mean, v_mean, n[:, :, 0])


def tail_maes(pooled: Pooled, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted low- and high-tail MAE in normalised units, each (B, C), averaged over repeats.

    The error of an essay is |b - a| / (n_levels - 1) of its prompt: the normalised error of
    :func:`moqwk.core.metrics.compute_metrics`. NaN where a tail has zero weight.
    """
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    c, r, n = pooled.preds.shape
    span = (pooled.n_levels[pooled.prompt_codes] - 1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.abs(pooled.preds - pooled.true_level[None, None, :]) / np.where(span > 0, span,
                                                                                  np.nan)
    err = np.nan_to_num(err).reshape(c * r, n).T  # (N, C*R)
    out = []
    for tail in (pooled.low_tail, pooled.high_tail):
        wt = w[:, tail]
        tot = wt.sum(axis=1)
        s = (wt @ err[tail]).reshape(-1, c, r).mean(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(tot[:, None] > 0, s / tot[:, None], np.nan))
    return out[0], out[1]


def chunks(n_rows: int, n_essays: int) -> list[tuple[int, int]]:
    """Row ranges of at most ``_CHUNK_CELLS`` weight cells each."""
    step = max(1, _CHUNK_CELLS // max(1, n_essays))
    return [(s, min(s + step, n_rows)) for s in range(0, n_rows, step)]


# --------------------------------------------------------------------------- resampling weights

RESAMPLING = ("essays", "prompts", "prompts+essays")


def resample(codes: np.ndarray, n_prompts: int, n_boot: int, rng: np.random.Generator, *,
             scheme: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In-bag essay counts (B, N), prompt multiplicities (B, P) and out-of-bag essay mask (B, N).

    - ``essays``: within every prompt, its n_p essays are drawn with replacement (a bootstrap
      stratified by prompt); every prompt is in-bag once; out-of-bag are the essays never drawn.
    - ``prompts``: prompts are drawn with replacement (a cluster bootstrap), each drawn prompt
      bringing all its essays; out-of-bag are the prompts never drawn, with all their essays.
    - ``prompts+essays``: prompts as in ``prompts``, then within each drawn copy its essays
      with replacement (two-stage); out-of-bag as in ``prompts``.
    """
    if scheme not in RESAMPLING:
        raise ValueError(f"scheme must be one of {', '.join(RESAMPLING)}, got {scheme!r}")
    codes = np.asarray(codes, dtype=np.int64)
    n = len(codes)
    sizes = np.bincount(codes, minlength=n_prompts)
    present = np.flatnonzero(sizes > 0)
    if scheme == "essays":
        order, bounds = _segments(codes, n_prompts)
        starts = bounds[:-1][codes[order]]
        counts_sorted = sizes[codes[order]]
        u = rng.random((n_boot, n))
        draw = starts[None, :] + np.minimum((u * counts_sorted).astype(np.int64),
                                            counts_sorted - 1)
        flat = (np.arange(n_boot)[:, None] * n + order[draw]).ravel()
        counts = np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(float)
        mult = np.zeros((n_boot, n_prompts))
        mult[:, present] = 1.0
        return counts, mult, counts == 0
    picks = rng.integers(0, len(present), size=(n_boot, len(present)))
    flat = (np.arange(n_boot)[:, None] * n_prompts + present[picks]).ravel()
    mult = np.bincount(flat, minlength=n_boot * n_prompts).reshape(n_boot, n_prompts).astype(float)
    oob = mult[:, codes] == 0
    if scheme == "prompts":
        return mult[:, codes].copy(), mult, oob
    # Two-stage: m_p copies of prompt p, each drawing n_p essays, is Multinomial(m_p n_p, 1/n_p).
    counts = np.zeros((n_boot, n))
    order, bounds = _segments(codes, n_prompts)
    for p in present:
        idx = order[bounds[p]:bounds[p + 1]]
        pv = np.full(len(idx), 1.0 / len(idx))
        counts[:, idx] = rng.multinomial((mult[:, p] * len(idx)).astype(np.int64),
                                         pv).astype(float)
    return counts, mult, oob
