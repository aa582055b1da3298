"""Picking one trial: the lexicographic rule, bootstrap standard errors and the stability gate.

Pure functions on frames, arrays and plain mappings of metric name -> value. What each metric
name means, and in which direction it is better, comes from :mod:`moqwk.core.objectives`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from moqwk.core.metrics import qwk_by_group
from moqwk.core.objectives import DEFAULT_OBJECTIVES, ObjectiveSet, gate_metrics, metric
from moqwk.core.pareto import feasible_mask, loss_matrix, pareto_front_mask

#: What the stability gate compares between a candidate and the baseline: the metrics whose
#: registry entry has a ``gate`` place (:func:`moqwk.core.objectives.gate_metrics`; this is
#: the set at import). Worst-prompt QWK is noisier than the others (one standard error is
#: about 0.07 on ELLIPSE), so it has its own margin, derived from the noise by default
#: (``select.gate_worst_se_k`` x the paired SE of the difference,
#: :func:`moqwk.core.noise.gate_noise`) or fixed (``select.gate_worst_margin``).
GATE_METRICS: tuple[str, ...] = gate_metrics()

#: A selection on arrays, as BBC-CV replays it: (C, K) objectives in an ObjectiveSet's order
#: and (C, 2) guardrail constraints (<= 0 feasible) -> the chosen config's index, or None.
Selector = Callable[[np.ndarray, np.ndarray], "int | None"]

#: Upper bound on the cells of qwk_by_group's (groups, k, k) tensors in one bootstrap chunk.
_BOOT_CELLS = 2_000_000
#: Upper bound on resampled rows (replicates x essays) in one bootstrap chunk.
_BOOT_ROWS = 4_000_000


def _num(x: object) -> float | None:
    """``x`` as a float, or None when it is None or NaN."""
    if x is None:
        return None
    v = float(x)  # type: ignore[arg-type]
    return None if math.isnan(v) else v


def _check_tolerance(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return value


# --------------------------------------------------------------------------- lexicographic rank


def _nan_last(values: np.ndarray, *, descending: bool) -> np.ndarray:
    v = -values if descending else values
    return np.where(np.isnan(v), np.inf, v)


def rank_lexicographic(df: pd.DataFrame, *, tie_tolerance: float,
                       objectives: ObjectiveSet = DEFAULT_OBJECTIVES) -> pd.DataFrame:
    """Rank trials: the primary objective first (worst-prompt QWK by default), the secondary one
    (mean QWK) among near-ties, then deterministic tie-breaks.

    With b the best primary value, the tied band is every trial whose primary value is within
    ``tie_tolerance`` of b. The band is ordered by the secondary objective, then the primary,
    then the sum of the two tail objectives, then trial_number (asc); NaN sorts last in each key.
    The remaining trials are ranked by the same rule, band after band, so the result is a total
    order. Trials with a NaN primary value form a last band, ordered by the same keys.

    Returns a copy sorted by rank with a fresh 0..n-1 index and two added columns: ``rank``
    (1-based int) and ``in_tie_band`` (True for the first band only). ``tie_tolerance == 0`` is
    strict lexicographic order.
    """
    tol = _check_tolerance("tie_tolerance", tie_tolerance)
    missing = [c for c in ("trial_number", *objectives.names) if c not in df.columns]
    if missing:
        raise ValueError(f"rank_lexicographic needs columns {missing}")
    for col in ("rank", "in_tie_band"):
        if col in df.columns:
            raise ValueError(f"df already has a {col!r} column")
    work = df.reset_index(drop=True)

    def loss(name: str) -> np.ndarray:  # every key as "lower is better"
        sign = -1.0 if metric(name).maximize else 1.0
        return sign * work[name].to_numpy(dtype=float)

    wpq = -loss(objectives.primary)  # higher is better below
    mean = -loss(objectives.secondary)
    tails = loss(objectives.tails[0]) + loss(objectives.tails[1])
    trial = work["trial_number"].to_numpy(dtype=float)

    # Peel bands greedily from the top; NaN rows keep the last band id.
    band = np.full(len(work), len(work), dtype=np.int64)
    remaining = np.flatnonzero(~np.isnan(wpq))
    b_id = 0
    while len(remaining):
        in_band = wpq[remaining] >= wpq[remaining].max() - tol
        band[remaining[in_band]] = b_id
        remaining = remaining[~in_band]
        b_id += 1

    positions = np.lexsort((  # last key is primary; stable, so full ties keep input order
        trial,
        _nan_last(tails, descending=False),
        _nan_last(wpq, descending=True),
        _nan_last(mean, descending=True),
        band,
    ))
    out = work.iloc[positions].copy()
    out["rank"] = np.arange(1, len(out) + 1, dtype=np.int64)
    out["in_tie_band"] = band[positions] == 0
    return out.reset_index(drop=True)


def describe_lexicographic(objectives: ObjectiveSet = DEFAULT_OBJECTIVES) -> list[str]:
    """The rule of :func:`rank_lexicographic` in words, step by step."""
    p, s = metric(objectives.primary), metric(objectives.secondary)
    t0, t1 = objectives.tails
    return [f"best {p.name}; trials within tie_tolerance of the best are tied",
            f"among tied trials, best {s.name}",
            f"then better {p.name}, then lower {t0} + {t1}, then lower trial number"]


def front_replay(rank: Callable[..., pd.DataFrame]) -> Callable[..., Selector]:
    """The replay of a rule that ranks the feasible Pareto front with ``rank``: what ``moqwk
    select`` does before its stability gate, on arrays.

    The returned factory takes ``tie_tolerance`` (fixed: the one ``select`` estimated on the
    full data, since re-estimating it in every replicate would nest a bootstrap in the
    bootstrap), ``trial_numbers`` (they break the last ties as the real rule does; default: the
    config index) and ``objectives`` (the columns' names), and gives a :data:`Selector`: the
    feasible configs, their Pareto front, then the first of ``rank``'s order.
    """

    def make(*, tie_tolerance: float, trial_numbers: Sequence[int] | None = None,
             objectives: ObjectiveSet = DEFAULT_OBJECTIVES) -> Selector:
        directions = objectives.directions
        names = list(objectives.names)

        def choose(obj: np.ndarray, constraints: np.ndarray) -> int | None:
            pool = np.flatnonzero(feasible_mask(constraints))
            if len(pool) == 0:
                return None
            front = pool[pareto_front_mask(loss_matrix(obj[pool], directions))]
            if len(front) == 0:
                return None
            numbers = front if trial_numbers is None else np.asarray(trial_numbers)[front]
            frame = pd.DataFrame(obj[front], columns=names)
            frame.insert(0, "trial_number", numbers)
            frame["_i"] = front
            ranked = rank(frame, tie_tolerance=tie_tolerance, objectives=objectives)
            return int(ranked["_i"].iloc[0])

        return choose

    return make


@dataclass(frozen=True, kw_only=True)
class Rule:
    """A selection rule: how a feasible Pareto front is ranked, the rule in words, and what
    BBC-CV replays for it.

    ``rank(frame, *, tie_tolerance, objectives)`` orders the front (one row per trial: its
    ``trial_number`` and a column per objective), best first, with ``rank`` and
    ``in_tie_band`` columns added. ``replay`` builds BBC-CV's :data:`Selector` for the rule
    (see :func:`front_replay`, the default: the same front, ranked by ``rank``); a rule that
    chooses otherwise gives its own.
    """

    name: str
    rank: Callable[..., pd.DataFrame]
    describe: Callable[[ObjectiveSet], list[str]]
    replay: Callable[..., Selector] | None = None

    def selector(self, *, tie_tolerance: float, trial_numbers: Sequence[int] | None = None,
                 objectives: ObjectiveSet = DEFAULT_OBJECTIVES) -> Selector:
        """The rule as BBC-CV replays it on each bootstrap's in-bag objectives."""
        make = self.replay or front_replay(self.rank)
        return make(tie_tolerance=tie_tolerance, trial_numbers=trial_numbers,
                    objectives=objectives)


#: Selection rules by name (``select.rule``); adding one is an entry here plus its tests
#: (BBC-CV replays each through its :meth:`Rule.selector`).
RULES: dict[str, Rule] = {r.name: r for r in (
    Rule(name="lexicographic", rank=rank_lexicographic, describe=describe_lexicographic),
)}


# --------------------------------------------------------------------------- bootstrap


def bootstrap_worst_qwk_replicates(
    *,
    prompt_codes: np.ndarray,
    true_level: np.ndarray,
    preds: Sequence[np.ndarray],
    n_levels_by_prompt: np.ndarray,
    eligible: np.ndarray,
    n_boot: int = 200,
    seed: int = 0,
) -> np.ndarray:
    """Worst-prompt QWK of each prediction set in each replicate, shape (len(preds), n_boot).

    A replicate resamples essays with replacement within each prompt (every prediction set sees
    the same resample), computes each prompt's QWK with :func:`qwk_by_group`, and takes the
    minimum over prompts with ``eligible[code]`` True, ignoring NaN (NaN if none is left).
    A prediction set is one level per essay, or one row per fold assignment (shape
    ``(repeats, n_essays)``): then each prompt's QWK is averaged over the rows before the
    minimum, as the worst-prompt objective itself is.
    Levels are integer indices ``0..n_levels_by_prompt[code]-1``. Deterministic for a seed,
    whatever the internal chunking.
    """
    codes = np.asarray(prompt_codes, dtype=np.int64)
    true_level = np.asarray(true_level, dtype=np.int64)
    preds = [np.atleast_2d(np.asarray(p, dtype=np.int64)) for p in preds]
    n_levels = np.asarray(n_levels_by_prompt, dtype=np.int64)
    elig = np.asarray(eligible, dtype=bool)
    n_prompts = len(n_levels)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if len(elig) != n_prompts:
        raise ValueError(f"{len(elig)=} must equal {len(n_levels_by_prompt)=}")
    if len(codes) != len(true_level) or any(p.ndim != 2 or p.shape[1] != len(codes)
                                             for p in preds):
        raise ValueError("prompt_codes, true_level and every prediction must have the same length")
    if len(codes) and (codes.min() < 0 or codes.max() >= n_prompts):
        raise ValueError(f"prompt codes must lie in 0..{n_prompts - 1}")
    out = np.full((len(preds), n_boot), np.nan)
    if len(codes) == 0 or n_prompts == 0 or not preds:
        return out

    order = np.argsort(codes, kind="stable")  # essays grouped by prompt
    sorted_codes = codes[order]
    counts = np.bincount(codes, minlength=n_prompts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    row_start = starts[sorted_codes]
    row_count = counts[sorted_codes]
    n = len(codes)
    k = int(n_levels.max())
    chunk = max(1, min(_BOOT_CELLS // max(1, n_prompts * k * k), _BOOT_ROWS // n))
    rng = np.random.default_rng(seed)
    for r0 in range(0, n_boot, chunk):
        r = min(chunk, n_boot - r0)
        u = rng.random((r, n))  # one float64 per draw: the stream does not depend on chunking
        offset = np.minimum((u * row_count).astype(np.int64), row_count - 1)
        idx = order[row_start + offset]  # (r, n): essay drawn for each slot
        group = (np.arange(r, dtype=np.int64)[:, None] * n_prompts + sorted_codes).ravel()
        t = true_level[idx].ravel()
        levels = np.tile(n_levels, r)
        for j, p in enumerate(preds):
            per_repeat = np.stack([qwk_by_group(group, t, row[idx].ravel(), levels)
                                   .reshape(r, n_prompts) for row in p])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a prompt NaN in every repeat
                q = np.nanmean(per_repeat, axis=0) if len(p) > 1 else per_repeat[0]
            q = np.where(elig[None, :], q, np.nan)
            with np.errstate(invalid="ignore"):
                has = ~np.isnan(q).all(axis=1)
                worst = np.full(r, np.nan)
                worst[has] = np.nanmin(q[has], axis=1)
            out[j, r0:r0 + r] = worst
    return out


def _sd(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(np.std(x, ddof=1)) if len(x) >= 2 else float("nan")


def bootstrap_worst_qwk_diff_se(
    *,
    prompt_codes: np.ndarray,
    true_level: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    n_levels_by_prompt: np.ndarray,
    eligible: np.ndarray,
    n_boot: int = 200,
    seed: int = 0,
) -> float:
    """Bootstrap SE (sd, ddof=1) of worst-prompt QWK(a) - worst-prompt QWK(b).

    Paired: both sets are scored on the same within-prompt resamples, so the SE reflects their
    difference, not two independent noises. Replicates where either worst is NaN are dropped;
    NaN if fewer than two remain. Exactly 0 when ``pred_a`` equals ``pred_b``.
    """
    reps = bootstrap_worst_qwk_replicates(
        prompt_codes=prompt_codes, true_level=true_level, preds=[pred_a, pred_b],
        n_levels_by_prompt=n_levels_by_prompt, eligible=eligible, n_boot=n_boot, seed=seed,
    )
    return _sd(reps[0] - reps[1])


def bootstrap_worst_qwk_se(
    *,
    prompt_codes: np.ndarray,
    true_level: np.ndarray,
    pred: np.ndarray,
    n_levels_by_prompt: np.ndarray,
    eligible: np.ndarray,
    n_boot: int = 200,
    seed: int = 0,
) -> float:
    """Bootstrap SE (sd, ddof=1) of one prediction set's worst-prompt QWK; same resampling."""
    reps = bootstrap_worst_qwk_replicates(
        prompt_codes=prompt_codes, true_level=true_level, preds=[pred],
        n_levels_by_prompt=n_levels_by_prompt, eligible=eligible, n_boot=n_boot, seed=seed,
    )
    return _sd(reps[0])


# --------------------------------------------------------------------------- stability gate


@dataclass(frozen=True, kw_only=True)
class GateCheck:
    """One metric of the stability gate. ``delta`` is candidate - baseline."""

    metric: str
    candidate: float
    baseline: float
    delta: float
    direction: str  # "maximize" | "minimize", from the metric registry
    margin: float
    regressed: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class GateVerdict:
    """``passed`` iff no checked metric regressed; ``skipped`` lists metrics missing/None/NaN."""

    passed: bool
    checks: tuple[GateCheck, ...]
    skipped: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "skipped": list(self.skipped),
        }


def gate_verdict(
    *,
    candidate: Mapping[str, float | None],
    baseline: Mapping[str, float | None],
    margin: float,
    metrics: Sequence[str] = GATE_METRICS,
    margins: Mapping[str, float] | None = None,
) -> GateVerdict:
    """Does ``candidate`` hold up against ``baseline`` within ``margin`` on every metric?

    A metric regresses when the candidate is worse than the baseline by more than its margin in
    the metric's direction (so a drop of exactly the margin passes): ``margins[name]`` where
    given, else ``margin``. A metric absent, None or NaN on either side is skipped and listed.
    With every metric skipped the verdict passes vacuously: check ``checks`` if that matters.
    """
    margin = _check_tolerance("margin", margin)
    own = {k: _check_tolerance(f"margins[{k}]", v) for k, v in (margins or {}).items()}
    checks: list[GateCheck] = []
    skipped: list[str] = []
    for name in metrics:
        m = metric(name)
        c, b = _num(candidate.get(name)), _num(baseline.get(name))
        if c is None or b is None:
            skipped.append(name)
            continue
        mg = own.get(name, margin)
        checks.append(GateCheck(metric=name, candidate=c, baseline=b, delta=c - b,
                                direction=str(m.direction), margin=mg,
                                regressed=bool(m.regressed(c, b, mg))))
    return GateVerdict(passed=not any(ch.regressed for ch in checks), checks=tuple(checks),
                       skipped=tuple(skipped))


def tail_tradeoff(
    *,
    candidate: Mapping[str, float | None],
    baseline: Mapping[str, float | None],
    tolerance: float,
    objectives: ObjectiveSet = DEFAULT_OBJECTIVES,
) -> list[dict]:
    """For each tail MAE, whether the candidate exceeds the guardrail baseline + tolerance.

    One dict per tail objective: ``metric``, ``candidate``, ``baseline``,
    ``delta`` (candidate - baseline), ``guardrail`` (baseline + tolerance), ``exceeds`` (bool) and
    ``excess`` (candidate - guardrail when it exceeds, else 0.0). When either value is
    None/NaN, ``comparable`` is False, ``exceeds`` False and the numbers are None.
    """
    tol = _check_tolerance("tolerance", tolerance)
    rows = []
    for name in objectives.tails:
        c, b = _num(candidate.get(name)), _num(baseline.get(name))
        row = {"metric": name, "candidate": c, "baseline": b, "delta": None,
               "guardrail": None if b is None else b + tol, "exceeds": False, "excess": None,
               "comparable": c is not None and b is not None}
        if c is not None and b is not None:
            row.update(delta=c - b, exceeds=c > b + tol, excess=max(c - (b + tol), 0.0))
        rows.append(row)
    return rows


def success_criterion(
    *,
    candidate: Mapping[str, float | None],
    baseline: Mapping[str, float | None],
    objectives: ObjectiveSet = DEFAULT_OBJECTIVES,
) -> dict:
    """Does the candidate match or beat the baseline on every objective?

    With the default objectives: both QWKs not lower and neither tail MAE higher, with no
    tolerance. Returns ``{"met": bool, "checks": {metric: {candidate, baseline, delta,
    direction, ok}}}``; a metric None/NaN on either side has ``ok`` False (it cannot be shown to
    hold), so ``met`` is False.
    """
    checks: dict[str, dict] = {}
    for name in objectives.names:
        m = metric(name)
        c, b = _num(candidate.get(name)), _num(baseline.get(name))
        if c is None or b is None:
            ok, delta = False, None
        else:
            ok, delta = not m.better(b, c), c - b
        checks[name] = {"candidate": c, "baseline": b, "delta": delta,
                        "direction": m.direction, "ok": bool(ok)}
    return {"met": all(ch["ok"] for ch in checks.values()), "checks": checks}
