"""Estimators of the worst-prompt objective from per-prompt QWK.

The objective asks how well a config holds up on its weakest prompts. ``min`` (the pilot's)
answers with one prompt, usually one of the smallest, so its noise is as large as the
differences a search chases. Two less noisy readings of the same question:

- ``cvar``: the mean of the worst ``q`` share of prompts (a lower-tail mean, CVaR-style);
- ``eb_min``: the minimum after an empirical-Bayes shrinkage of each prompt's QWK toward the
  mean, more for prompts whose QWK is noisier (smaller prompts); never above the mean
  per-prompt QWK.

Every function works on the last axis of ``qwk`` (prompts) and broadcasts over leading axes
(configs, bootstrap replicates). ``weights`` says how many times each prompt counts: 0 leaves it
out (an ineligible prompt), 2 counts it twice (a prompt drawn twice by a cluster bootstrap); 1
for every eligible prompt in an ordinary evaluation. A prompt whose QWK is NaN is left out.
Each estimator is invariant to the order of the prompts.

The kinds are registered functions (:data:`KINDS`, name -> :class:`Kind`); an estimator
(:func:`estimator`, :class:`WorstPromptEstimator`) is a kind with its share, and dispatches
through the registry: adding a kind is one entry plus its tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np


def _prep(qwk: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    q = np.asarray(qwk, dtype=float)
    w = np.ones(q.shape[-1]) if weights is None else np.asarray(weights, dtype=float)
    if q.ndim == 0:
        raise ValueError("qwk needs a prompt axis (its last)")
    try:
        w = np.broadcast_to(w, q.shape)
    except ValueError:
        raise ValueError(f"weights of shape {w.shape} do not broadcast to qwk's {q.shape}"
                         ) from None
    if (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("prompt weights must be finite and >= 0")
    w = np.where(np.isnan(q), 0.0, w)
    return q, w


def worst_min(qwk: np.ndarray, *, weights: np.ndarray | None = None) -> np.ndarray:
    """The lowest QWK among counted prompts; NaN where none counts."""
    q, w = _prep(qwk, weights)
    has = (w > 0).any(axis=-1)
    with np.errstate(invalid="ignore"):
        out = np.where(w > 0, q, np.inf).min(axis=-1)
    return np.where(has, out, np.nan)


def weighted_mean(qwk: np.ndarray, *, weights: np.ndarray | None = None) -> np.ndarray:
    """The mean QWK of counted prompts (each counted ``weight`` times); NaN where none."""
    q, w = _prep(qwk, weights)
    tot = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, np.where(w > 0, q * w, 0.0).sum(axis=-1) / tot, np.nan)


def lower_tail_mean(qwk: np.ndarray, *, q: float,
                    weights: np.ndarray | None = None) -> np.ndarray:
    """Mean of the worst ``q`` share of prompts (CVaR at level ``q`` of the prompt distribution).

    With the counted prompts sorted by QWK, x_(0) <= x_(1) <= ..., and W their total weight, the
    tail holds t = max(q * W, 1) prompts' worth: whole prompts from the bottom while they fit,
    then the fraction of the next one that fills t exactly. The estimate is the tail's weighted
    mean. So with 39 prompts and q = 0.1, t = 3.9 and the value is
    (x_(0) + x_(1) + x_(2) + 0.9 x_(3)) / 3.9. t is at least one prompt, so a small q (or few
    prompts) gives the minimum; q = 1 gives the mean. Always min <= value <= mean, and it does
    not decrease as q grows.
    """
    if not (isinstance(q, (int, float)) and 0 < q <= 1):
        raise ValueError(f"q must be in (0, 1], got {q!r}")
    x, w = _prep(qwk, weights)
    key = np.where(w > 0, x, np.inf)
    order = np.argsort(key, axis=-1, kind="stable")
    xs = np.take_along_axis(key, order, axis=-1)
    ws = np.take_along_axis(w, order, axis=-1)
    total = ws.sum(axis=-1, keepdims=True)
    t = np.maximum(q * total, 1.0)
    before = np.cumsum(ws, axis=-1) - ws
    take = np.clip(t - before, 0.0, ws)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(take > 0, take * xs, 0.0).sum(axis=-1)
        got = take.sum(axis=-1)  # t, or all the weight there is when W < 1
        out = s / got
    return np.where(total[..., 0] > 0, out, np.nan)


@dataclass(frozen=True)
class Shrunk:
    """Empirical-Bayes shrinkage: ``qwk`` shrunk per prompt, the mean ``mu`` it is pulled toward,
    the between-prompt variance ``tau2`` and each prompt's shrinkage factor ``b`` (1 = kept)."""

    qwk: np.ndarray
    mu: np.ndarray
    tau2: np.ndarray
    b: np.ndarray


def eb_shrink(qwk: np.ndarray, *, sampling_var: np.ndarray,
              weights: np.ndarray | None = None) -> Shrunk:
    """Shrink each prompt's QWK toward the mean, by how noisy it is (normal-normal model).

    Model: the observed x_p = theta_p + e_p with e_p ~ N(0, v_p) (v_p its sampling variance,
    larger for smaller prompts) and theta_p ~ N(mu, tau^2) across prompts.

    - tau^2 by the unweighted method of moments (Hedges): the weighted variance of x over the
      counted prompts (divisor W - 1) minus their mean v, floored at 0. It needs no iteration
      and stays defined when every v_p is 0.
    - mu: the precision-weighted mean, weights ``weight_p / (tau^2 + v_p)`` (the plain mean
      when tau^2 and every v_p are 0).
    - b_p = tau^2 / (tau^2 + v_p) (1 where tau^2 + v_p is 0); shrunk x_p = mu + b_p (x_p - mu).

    With every v_p = 0 nothing moves (b = 1); with tau^2 = 0 every prompt becomes mu. A prompt
    with infinite or NaN variance gets b = 0 (it carries no information of its own).
    """
    x, w = _prep(qwk, weights)
    v = np.broadcast_to(np.asarray(sampling_var, dtype=float), x.shape)
    v = np.where(np.isfinite(v), v, np.inf)
    if (v < 0).any():
        raise ValueError("sampling_var must be >= 0")
    counted = w > 0
    tot = w.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        xz = np.where(counted, x, 0.0)
        m = (w * xz).sum(axis=-1, keepdims=True) / tot
        var_x = (w * (xz - m) ** 2).sum(axis=-1, keepdims=True) / (tot - 1)
        vz = np.where(counted, v, 0.0)
        finite = counted & np.isfinite(v)
        mean_v = (np.where(finite, w * vz, 0.0).sum(axis=-1, keepdims=True)
                  / np.where(finite, w, 0.0).sum(axis=-1, keepdims=True))
        tau2 = np.maximum(np.nan_to_num(var_x - mean_v, nan=0.0), 0.0)
        prec = np.where(counted, w / (tau2 + v), 0.0)
        use_plain = ~np.isfinite(prec).all(axis=-1, keepdims=True)  # tau2 + v == 0 somewhere
        prec = np.where(use_plain, np.where(counted, w, 0.0), prec)
        # mu is a ratio of sums of precisions: scale them to at most 1 first, or tiny
        # variances (1e-308) overflow the sum to inf and pull mu to 0
        top = prec.max(axis=-1, keepdims=True)
        prec = np.where(top > 0, prec / np.where(top > 0, top, 1.0), prec)
        mu = np.where(prec.sum(axis=-1, keepdims=True) > 0,
                      (prec * xz).sum(axis=-1, keepdims=True) / prec.sum(axis=-1, keepdims=True),
                      m)
        b = np.where(tau2 + v > 0, tau2 / (tau2 + v), 1.0)
        b = np.where(np.isinf(v), 0.0, b)
    shrunk = np.where(counted & (b < 1), mu + b * (x - mu), x)  # b == 1: exactly x
    return Shrunk(shrunk, mu[..., 0], tau2[..., 0], b)


def eb_worst(qwk: np.ndarray, *, sampling_var: np.ndarray,
             weights: np.ndarray | None = None) -> np.ndarray:
    """The lowest empirical-Bayes-shrunk QWK among counted prompts (see :func:`eb_shrink`),
    capped at the mean per-prompt QWK of the same prompts.

    The shrinkage target ``mu`` is precision-weighted, so when the large (precise) prompts score
    higher than the small ones, ``mu`` lies above the plain mean; with tau^2 near 0 every prompt
    is pulled to ``mu``, and the "worst" prompt would read above the average prompt (issue 20:
    0.629 against a mean of 0.609 on ELLIPSE). A worst prompt cannot be better than the mean
    prompt, so the estimate is ``min(shrunk minimum, weighted mean)``.
    """
    s = eb_shrink(qwk, sampling_var=sampling_var, weights=weights)
    worst = worst_min(s.qwk, weights=weights)
    mean = weighted_mean(qwk, weights=weights)
    return np.where(np.isnan(worst) | np.isnan(mean), worst, np.minimum(worst, mean))


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True, kw_only=True)
class Kind:
    """One kind of worst-prompt estimator: the function, and how it is named.

    ``estimate(qwk, weights=..., sampling_var=..., q=...)`` works on the last axis of ``qwk``.
    A kind that ``takes_q`` (a share of prompts) is named ``NAMEpct`` (``cvar10``); the labels
    receive the share in percent as text (``"10"``), or ``""`` for a kind without one.
    ``monotone``: the estimate never falls when a prompt's QWK rises and gains nothing from a
    prompt left out, so fold racing may bound it with unseen prompts at the best QWK there is.
    """

    name: str
    estimate: Callable[..., np.ndarray]
    long_label: Callable[[str], str]
    short_label: Callable[[str], str]
    takes_q: bool = False
    needs_variance: bool = False
    monotone: bool = False


def _min(qwk: np.ndarray, *, weights: np.ndarray | None, sampling_var: np.ndarray | None,
         q: float | None) -> np.ndarray:
    return worst_min(qwk, weights=weights)


def _cvar(qwk: np.ndarray, *, weights: np.ndarray | None, sampling_var: np.ndarray | None,
          q: float | None) -> np.ndarray:
    return lower_tail_mean(qwk, q=float(q or 0), weights=weights)


def _eb_min(qwk: np.ndarray, *, weights: np.ndarray | None, sampling_var: np.ndarray | None,
            q: float | None) -> np.ndarray:
    if sampling_var is None:
        raise ValueError("eb_min needs each prompt's sampling_var")
    return eb_worst(qwk, sampling_var=sampling_var, weights=weights)


#: The estimator kinds by name; adding one is an entry here (its function above) plus its tests.
KINDS: Mapping[str, Kind] = {k.name: k for k in (
    Kind(name="min", estimate=_min, long_label=lambda _: "worst-prompt QWK (min)",
         short_label=lambda _: "worst QWK", monotone=True),
    Kind(name="cvar", estimate=_cvar, takes_q=True, monotone=True,
         long_label=lambda pct: f"mean of worst {pct}% prompts' QWK",
         short_label=lambda pct: f"worst-{pct}% QWK"),
    Kind(name="eb_min", estimate=_eb_min, needs_variance=True,
         long_label=lambda _: "EB-shrunk worst-prompt QWK",
         short_label=lambda _: "EB worst QWK"),
)}


@dataclass(frozen=True, kw_only=True)
class WorstPromptEstimator:
    """One way to read the worst-prompt objective, with the names tables and artifacts use.

    ``name`` is the machine name (``min``, ``cvar10``, ``eb_min``), ``long_label`` the honest
    description for reports, ``short_label`` a column header. Build with :func:`estimator`.
    """

    kind: str
    q: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"worst-prompt estimator must be one of {', '.join(KINDS)}, got "
                             f"{self.kind!r}")
        if self.spec.takes_q:
            if self.q is None or not (0 < self.q <= 1):
                raise ValueError(f"{self.kind} needs q in (0, 1], got {self.q!r}")
        elif self.q is not None:
            raise ValueError(f"{self.kind} takes no q, got {self.q!r}")

    @property
    def spec(self) -> Kind:
        """The registered :class:`Kind` this estimator is one of."""
        return KINDS[self.kind]

    @property
    def _pct(self) -> str:
        if not self.spec.takes_q:
            return ""
        pct = 100 * float(self.q or 0)
        return f"{pct:.0f}" if math.isclose(pct, round(pct)) else f"{pct:g}"

    @property
    def name(self) -> str:
        return f"{self.kind}{self._pct}"

    @property
    def long_label(self) -> str:
        return self.spec.long_label(self._pct)

    @property
    def short_label(self) -> str:
        return self.spec.short_label(self._pct)

    @property
    def needs_variance(self) -> bool:
        return self.spec.needs_variance

    @property
    def monotone(self) -> bool:
        return self.spec.monotone

    def __call__(self, qwk: np.ndarray, *, weights: np.ndarray | None = None,
                 sampling_var: np.ndarray | None = None) -> np.ndarray:
        """The estimate over the last axis of ``qwk`` (a 0-d array for 1-D input)."""
        return self.spec.estimate(qwk, weights=weights, sampling_var=sampling_var, q=self.q)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "q": self.q,
                "long_label": self.long_label, "short_label": self.short_label}


def _names_in_words() -> str:
    """``min, eb_min or cvarNN``: the plain kinds, then those that take a share."""
    words = ([k.name for k in KINDS.values() if not k.takes_q]
             + [f"{k.name}NN" for k in KINDS.values() if k.takes_q])
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def estimator(name: str) -> WorstPromptEstimator:
    """The estimator called ``name``: a kind of :data:`KINDS` (``min``, ``eb_min``), or a kind
    that takes a share followed by the percent, 1-100 (``cvar10``).

    >>> estimator("cvar10").long_label
    "mean of worst 10% prompts' QWK"
    """
    kind = KINDS.get(name)
    if kind is not None and not kind.takes_q:
        return WorstPromptEstimator(kind=name)
    for k in KINDS.values():
        if k.takes_q and name.startswith(k.name):
            digits = name[len(k.name):]
            try:
                pct = float(digits)
            except ValueError:
                pct = math.nan
            if digits and 0 < pct <= 100:
                return WorstPromptEstimator(kind=k.name, q=pct / 100)
    raise ValueError(f"worst_prompt estimator {name!r}: use {_names_in_words()} with NN the "
                     "percent of prompts in the tail (for example cvar10)")


#: The estimators offered by name, in the order reports list them.
REGISTRY: dict[str, WorstPromptEstimator] = {
    e.name: e for e in (estimator("min"), estimator("cvar10"), estimator("eb_min"))}
