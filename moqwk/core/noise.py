"""How large a difference between two configs' numbers is noise: the tie band and paired SEs.

Both rest on one paired bootstrap: essays resampled with replacement within each prompt (every
prompt keeps its size and stays eligible), every config scored on the same resample, so a
difference's spread reflects the two configs' disagreement, not two independent noises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from moqwk.core.bbc import objective_matrix
from moqwk.core.objectives import DEFAULT_OBJECTIVES, ObjectiveSet, metric
from moqwk.core.pooled import Pooled, chunks, resample
from moqwk.core.worst_prompt import WorstPromptEstimator, estimator

TIE_METHODS = ("paired_median", "independent")


def bootstrap_objectives(pooled: Pooled, *, n_boot: int, seed: int,
                         worst_prompt: WorstPromptEstimator | None = None,
                         objectives: ObjectiveSet = DEFAULT_OBJECTIVES) -> np.ndarray:
    """(n_boot, C, K) ``objectives`` of every config on within-prompt essay resamples
    (``worst_prompt``, when given, computes the primary column: see
    :func:`moqwk.core.bbc.objective_matrix`)."""
    if n_boot < 2:
        raise ValueError(f"n_boot must be >= 2, got {n_boot}")
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, pooled.n_configs, len(objectives.names)))
    for start, stop in chunks(n_boot, pooled.n_essays):
        w, _, _ = resample(pooled.prompt_codes, pooled.n_prompts, stop - start, rng,
                           scheme="essays")
        out[start:stop] = objective_matrix(pooled, w, pooled.eligible.astype(float),
                                           objectives=objectives, worst_prompt=worst_prompt)
    return out


def _sd(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(np.std(x, ddof=1)) if len(x) >= 2 else float("nan")


def distinct_from(preds: np.ndarray, ref: int) -> np.ndarray:
    """Configs whose predictions differ from config ``ref``'s on at least one essay."""
    p = np.asarray(preds)
    return np.flatnonzero((p != p[ref][None]).reshape(len(p), -1).any(axis=1))


def _primary_label(objectives: ObjectiveSet, worst_prompt: WorstPromptEstimator | None) -> str:
    """What the primary column is, in words: its worst-prompt estimator's long label."""
    m = metric(objectives.primary)
    est = worst_prompt or (estimator(m.worst_prompt) if m.worst_prompt else None)
    return est.long_label if est is not None else m.label


@dataclass(frozen=True)
class TieBand:
    """The tie band and the numbers behind it (see :func:`tie_band`)."""

    value: float
    method: str
    description: str
    top: int
    pairs: tuple[int, ...]
    pair_ses: tuple[float, ...]
    single_se: float
    n_boot: int
    seed: int

    def to_dict(self) -> dict:
        return {"value": self.value, "method": self.method, "description": self.description,
                "top": self.top, "pairs": list(self.pairs), "pair_ses": list(self.pair_ses),
                "single_se": self.single_se, "n_boot": self.n_boot, "seed": self.seed}


def tie_band(pooled: Pooled, *, order: np.ndarray, k: int = 5, n_boot: int = 200, seed: int = 0,
             method: str = "paired_median",
             worst_prompt: WorstPromptEstimator | None = None,
             objectives: ObjectiveSet = DEFAULT_OBJECTIVES) -> TieBand:
    """The noise of a worst-prompt QWK difference between distinct configs.

    What the band is for: the lexicographic rule treats every config whose worst-prompt QWK is
    within the band of the best as tied with it, so that noise does not decide and the less
    noisy mean QWK does. The band must therefore be the size of the noise in the difference
    between the best config and the *distinct* configs it competes with, not between two
    copies of one config.

    ``order`` lists config indices best-first (by worst-prompt QWK). The top config is
    ``order[0]``; its competitors are the next ``k`` configs in ``order`` whose predictions
    differ on at least one essay from its own and from every competitor already taken (a
    duplicate or a second run of the same config is skipped: against the top its difference is
    exactly 0 in every resample, and a set of clones would otherwise count several times).

    - ``paired_median``: the median of the paired bootstrap SEs of the difference between the
      top config and each competitor (robust to one near-clone among them), floored at the top
      config's own SE: when most competitors are near-duplicates of the top (predictions that
      differ on a few essays), their paired SEs are tiny and the median would collapse the band
      to nothing, though the top's worst-prompt QWK is no less noisy.
    - ``independent``: sqrt(2) x the bootstrap SE of the top config's own worst-prompt QWK: the
      SE of a difference between two configs whose errors were independent.

    With no distinct competitor, both fall back to ``independent``; the result is never 0
    unless the top config's own worst-prompt QWK does not vary at all.

    The noise is that of ``objectives.primary`` (its registered ``resampled`` function), or of
    ``worst_prompt`` when given.
    """
    if method not in TIE_METHODS:
        raise ValueError(f"method must be one of {', '.join(TIE_METHODS)}, got {method!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    order = np.asarray(order, dtype=np.int64)
    if len(order) == 0 or order.min() < 0 or order.max() >= pooled.n_configs:
        raise ValueError(f"order must list config indices in 0..{pooled.n_configs - 1}")
    top = int(order[0])
    pairs: list[int] = []
    for i in order[1:]:  # distinct from the top and from every competitor already taken
        if len(pairs) == k:
            break
        if not any(np.array_equal(pooled.preds[int(i)], pooled.preds[j])
                   for j in (top, *pairs)):
            pairs.append(int(i))
    reps = bootstrap_objectives(pooled, n_boot=n_boot, seed=seed, worst_prompt=worst_prompt,
                                objectives=objectives)[:, :, 0]
    single = _sd(reps[:, top])
    ses = tuple(_sd(reps[:, top] - reps[:, j]) for j in pairs)
    label = _primary_label(objectives, worst_prompt)
    if method == "paired_median" and ses and math.isfinite(float(np.nanmedian(ses))):
        median = float(np.nanmedian(ses))
        floor = single if math.isfinite(single) else 0.0
        value = max(median, floor)
        desc = (f"median of the paired bootstrap SEs of the {label} difference between the top "
                f"config and the next {len(pairs)} configs whose predictions differ from it, "
                "floored at the top config's own SE"
                + (" (the floor applied: the competitors are near-duplicates of the top)"
                   if floor > median else "") + "; essays resampled within prompts")
        used = "paired_median"
    else:
        value = math.sqrt(2.0) * single if math.isfinite(single) else 0.0
        why = "" if method == "independent" else " (no distinct competitor: fallback)"
        desc = (f"sqrt(2) x the bootstrap SE of the top config's {label}: the SE of a "
                f"difference between configs with independent errors{why}; essays resampled "
                "within prompts")
        used = "independent"
    return TieBand(value=value, method=used, description=desc, top=top, pairs=tuple(pairs),
                   pair_ses=ses, single_se=single, n_boot=n_boot, seed=seed)


@dataclass(frozen=True)
class PairedDifference:
    """first - second on the full data, its paired bootstrap SE, and whether it is a tie."""

    metric: str
    first: float
    second: float
    difference: float
    se: float
    tie: bool

    def to_dict(self) -> dict:
        return {"metric": self.metric, "first": self.first, "second": self.second,
                "difference": self.difference, "se": self.se, "tie": self.tie}


def paired_differences(pooled: Pooled, *, first: int = 0, second: int = 1, n_boot: int = 500,
                       seed: int = 0, worst_prompt: WorstPromptEstimator | None = None,
                       objectives: ObjectiveSet = DEFAULT_OBJECTIVES) -> list[PairedDifference]:
    """Each objective's difference first - second and its paired bootstrap SE.

    One per objective of ``objectives``, named as it is. For ``compare`` on fresh folds:
    ``pooled`` holds both configs' fresh out-of-fold levels (every fresh fold assignment as a
    repeat). ``tie`` is |difference| <= SE: a difference
    within one SE is not evidence either way. With identical predictions the difference and SE
    are 0 and it is a tie.
    """
    for name, i in (("first", first), ("second", second)):
        if not 0 <= i < pooled.n_configs:
            raise ValueError(f"{name} must index a config (0..{pooled.n_configs - 1}), got {i}")
    full = objective_matrix(pooled, np.ones((1, pooled.n_essays)),
                            pooled.eligible.astype(float), objectives=objectives,
                            worst_prompt=worst_prompt)[0]
    reps = bootstrap_objectives(pooled, n_boot=n_boot, seed=seed, objectives=objectives,
                                worst_prompt=worst_prompt)
    out = []
    for m, name in enumerate(objectives.names):
        a, b = float(full[first, m]), float(full[second, m])
        d = a - b
        se = _sd(reps[:, first, m] - reps[:, second, m])
        if first == second or np.array_equal(pooled.preds[first], pooled.preds[second]):
            se = 0.0
        out.append(PairedDifference(metric=name, first=a, second=b, difference=d, se=se,
                                    tie=bool(abs(d) <= se) if math.isfinite(se) else False))
    return out


@dataclass(frozen=True)
class GateNoise:
    """The stability gate's worst-prompt margin, derived from the noise: ``k`` x the paired
    bootstrap SE of the worst-prompt difference between candidate and baseline."""

    se: float
    k: float
    margin: float
    n_boot: int
    seed: int

    def to_dict(self) -> dict:
        return {"method": "k x paired SE", "se": self.se, "k": self.k, "margin": self.margin,
                "n_boot": self.n_boot, "seed": self.seed,
                "description": (f"{self.k:g} x the paired bootstrap SE ({self.se:.4f}) of the "
                                "worst-prompt QWK difference candidate - baseline on the gate's "
                                "folds; essays resampled within prompts")}


def gate_noise(pooled: Pooled, *, candidate: int = 1, baseline: int = 0, k: float = 1.0,
               n_boot: int = 200, seed: int = 0,
               worst_prompt: WorstPromptEstimator | None = None) -> GateNoise:
    """The worst-prompt margin of the stability gate: ``k`` x the paired SE of the difference.

    ``pooled`` holds both configs' out-of-fold levels on the gate's folds. Identical predictions
    give SE 0 (and margin 0: a candidate equal to the baseline passes, one worse does not).
    """
    if not math.isfinite(k) or k < 0:
        raise ValueError(f"k must be a finite number >= 0, got {k}")
    est = worst_prompt or estimator("min")
    if np.array_equal(pooled.preds[candidate], pooled.preds[baseline]):
        se = 0.0
    else:
        reps = bootstrap_objectives(pooled, n_boot=n_boot, seed=seed, worst_prompt=est)[:, :, 0]
        se = _sd(reps[:, candidate] - reps[:, baseline])
        se = se if math.isfinite(se) else 0.0
    return GateNoise(se=se, k=float(k), margin=float(k) * se, n_boot=n_boot, seed=seed)
