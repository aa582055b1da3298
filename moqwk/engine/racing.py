"""Fold racing for a search: the plan (rungs, margins) and the check after a rung.

The pure rule (optimistic bounds, dominance with a margin) is :mod:`moqwk.core.racing`; this
module turns a trial's partial predictions into what that rule needs, and a config into a
plan. ``docs/explanation/method.md`` ("Fold racing") states the rule and why it is safe.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from moqwk.config import Config
from moqwk.core import racing as rule
from moqwk.core.metrics import compute_metrics as _metrics
from moqwk.core.objectives import metric
from moqwk.data.corpus import Corpus
from moqwk.errors import ConfigError

#: The stated margins when ``search.racing_margin`` is ``auto``: a QWK objective 0.02 (the
#: selection's stability-gate margin), a tail MAE 0.01 normalised units. A numeric
#: ``select.tie_tolerance`` (the tie band) is the primary objective's margin.
QWK_MARGIN = 0.02
MAE_MARGIN = 0.01


@dataclass(frozen=True)
class RacingPlan:
    """When to check a trial (``rungs``: folds run) and by how much it must be dominated."""

    rungs: tuple[int, ...]
    names: tuple[str, ...]
    margins: tuple[float, ...]
    bound: str = "worst_case"
    z: float = 2.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rungs": list(self.rungs),
                               "margins": dict(zip(self.names, self.margins, strict=True))}
        if self.bound != "worst_case":  # as written before the statistical bound existed
            out.update(bound=self.bound, z=self.z)
        return out


def margins_for(config: Config, names: Sequence[str]) -> tuple[float, ...]:
    """Each objective's margin: ``search.racing_margin`` (a number for all, or per objective),
    else the stated defaults (:data:`QWK_MARGIN`, :data:`MAE_MARGIN`, the tie band)."""
    given = config.search.racing_margin
    out = []
    for i, name in enumerate(names):
        if isinstance(given, Mapping) and name in given:
            out.append(float(given[name]))
        elif isinstance(given, (int, float)):
            out.append(float(given))
        elif i == 0 and config.select.tie_tolerance is not None:
            out.append(float(config.select.tie_tolerance))
        else:
            out.append(MAE_MARGIN if metric(name).direction == "minimize" else QWK_MARGIN)
    if isinstance(given, Mapping):
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ConfigError(f"search.racing_margin.{unknown[0]}: not an objective of this "
                              f"study; objectives: {', '.join(names)}")
    return tuple(out)


def plan(config: Config, n_fits: int, names: Sequence[str]) -> RacingPlan | None:
    """The racing plan of a search over ``n_fits`` folds; None when racing is off (or there is
    no rung: a single fold)."""
    s = config.search
    if not s.racing:
        return None
    rungs = rule.default_rungs(n_fits) if s.racing_rungs is None else s.racing_rungs
    bad = [k for k in rungs if k >= n_fits]
    if bad:
        raise ConfigError(f"search.racing_rungs: {bad[0]} folds is not fewer than the "
                          f"{n_fits} folds of a trial; give fold counts below {n_fits}")
    if not rungs:
        return None
    return RacingPlan(tuple(rungs), tuple(names), margins_for(config, names),
                      bound=s.racing_bound, z=float(s.racing_z))


def partial_of(y_pred: np.ndarray, corpus: Corpus, config: Config) -> rule.Partial:
    """What the run folds tell: ``y_pred`` is ``(repeats, n)`` on each essay's scale, NaN for
    the essays of folds not run. A prompt counts as seen once all its essays are predicted in
    every repeat (its QWK is then final); the tails count every predicted tail row."""
    y_pred = np.asarray(y_pred, dtype=float)
    n_rep, n = y_pred.shape
    c = corpus
    es = c.essay_scale
    codes = c.prompt_codes
    names = c.prompt_names
    seen = ~np.isnan(y_pred)
    per_prompt_seen = np.bincount(codes, weights=seen.sum(axis=0), minlength=len(names))
    essays = np.bincount(codes, minlength=len(names))
    full = per_prompt_seen == essays * n_rep
    keep = full[codes]
    min_n = config.cv.min_prompt_n
    n_unseen = int(((~full) & (essays >= min_n)).sum())
    seen_qwk = np.array([], dtype=float)
    if keep.any():
        rows = np.tile(keep, n_rep)
        with warnings.catch_warnings():  # the unseen prompts have no rows: an empty mean each
            warnings.simplefilter("ignore", RuntimeWarning)
            m = _metrics(
                prompt_codes=np.tile(codes, n_rep)[rows], prompt_names=names,
                repeat=np.repeat(np.arange(n_rep), n)[rows],
                y_true=np.tile(c.scores, n_rep)[rows], y_pred=y_pred.reshape(-1)[rows],
                lo=np.tile(es.lo, n_rep)[rows], hi=np.tile(es.hi, n_rep)[rows],
                step=np.tile(es.step, n_rep)[rows], min_prompt_n=min_n,
                low_band=config.tails.low_band, high_band=config.tails.high_band,
                global_scale=c.scales.is_global)
        seen_qwk = np.array([r.qwk for r in m.per_prompt if r.eligible], dtype=float)
    z_true = (c.scores - es.lo) / (es.hi - es.lo)
    z_pred = (y_pred - es.lo[None, :]) / (es.hi - es.lo)[None, :]
    abs_err = np.abs(z_pred - z_true[None, :])
    eps = 1e-9
    low = z_true <= config.tails.low_band + eps
    high = z_true >= config.tails.high_band - eps
    err = np.nan_to_num(abs_err, nan=0.0).sum(axis=0)  # per essay, over the repeats

    def by_prompt(tail: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], int]:
        sums = np.bincount(codes, weights=np.where(tail, err, 0.0), minlength=len(names))
        rows = np.bincount(codes, weights=tail.astype(float), minlength=len(names)) * n_rep
        return (sums[full], rows[full]), int((rows > 0).sum())

    low_by, low_prompts = by_prompt(low)
    high_by, high_prompts = by_prompt(high)
    return rule.Partial(
        seen_qwk=seen_qwk, n_unseen=n_unseen,
        low_abs_sum=float(np.nansum(abs_err[:, low])), low_rows=int(low.sum()) * n_rep,
        high_abs_sum=float(np.nansum(abs_err[:, high])), high_rows=int(high.sum()) * n_rep,
        low_by_prompt=low_by, high_by_prompt=high_by, low_prompts=low_prompts,
        high_prompts=high_prompts)


@dataclass(frozen=True)
class Verdict:
    """Why a trial is stopped after a rung, and the numbers behind it."""

    reason: str
    bound: dict[str, float]
    dominated_by: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "bound": self.bound, "dominated_by": self.dominated_by}


def check(p: RacingPlan, partial: rule.Partial, *, front: np.ndarray,
          front_numbers: Sequence[int], limits: Mapping[str, float]) -> Verdict | None:
    """Stop the trial (a :class:`Verdict`) when a tail is certainly over its guardrail, or when
    a feasible trial of ``front`` (losses in ``p.names`` order) dominates its optimistic bound
    by more than the margins; else None (the trial goes on)."""
    bound = {n: rule.optimistic_value(n, partial, bound=p.bound, z=p.z) for n in p.names}
    shown = {n: (v if math.isfinite(v) else None) for n, v in bound.items()}
    tail = rule.certainly_infeasible(partial, limits)
    if tail is not None:
        worst = rule.optimistic_value(tail, partial)
        return Verdict(f"{metric(tail).label} is at least {worst:.4f} whatever the "
                       f"unrun folds hold, above its guardrail {limits[tail]:.4f}",
                       shown)  # type: ignore[arg-type]
    loss = rule.optimistic_losses(p.names, partial, bound=p.bound, z=p.z)
    hit = rule.dominating(loss, front, np.array(p.margins))
    if hit is None:
        return None
    num = int(front_numbers[hit])
    how = ("even with the unrun folds at their best" if p.bound == "worst_case" else
           f"with the unrun prompts {p.z:g} standard errors better than the seen ones")
    return Verdict(f"dominated by feasible trial {num} by more than the margin {how}",
                   shown, num)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Replayed:
    """One trial of a replay: the rung it would have been stopped at (None: it runs to the
    end) and the verdict."""

    number: int
    rung: int | None
    verdict: Verdict | None


def replay(trials: Sequence[Mapping[str, Any]], levels: Mapping[int, Any], *, corpus: Corpus,
           config: Config, fold_rows: Sequence[tuple[int, np.ndarray]], p: RacingPlan,
           guardrails: Mapping[str, Any]) -> list[Replayed]:
    """Replay the racing rule over a finished search, trial after trial in number order.

    ``trials`` are trial records (``optuna_trials.json``), ``levels`` each complete trial's
    out-of-fold levels (its ``oof_level``), ``fold_rows`` the engine's folds in order as
    (repeat, held-out rows). At each rung a trial's predictions on the folds run so far are
    checked against the feasible trials numbered before it, as a search with one worker does.
    """
    es = corpus.essay_scale
    limits = {"low_tail_mae": guardrails["low_tail_limit"],
              "high_tail_mae": guardrails["high_tail_limit"]}
    front_rows: list[list[float]] = []
    front_numbers: list[int] = []
    out = []
    for r in sorted(trials, key=lambda r: r["number"]):
        if r["state"] != "complete" or r["number"] not in levels:
            continue
        lv = np.asarray(levels[r["number"]], dtype=float)
        y_full = es.lo[None, :] + lv * es.step[None, :]
        hit: tuple[int, Verdict] | None = None
        if r.get("role") != "baseline":
            for k in p.rungs:
                y = np.full_like(y_full, np.nan)
                for rep, rows in fold_rows[:k]:
                    y[rep, rows] = y_full[rep, rows]
                front = np.array(front_rows, dtype=float).reshape(-1, len(p.names))
                v = check(p, partial_of(y, corpus, config), front=front,
                          front_numbers=front_numbers, limits=limits)
                if v is not None:
                    hit = (k, v)
                    break
        out.append(Replayed(r["number"], hit[0] if hit else None, hit[1] if hit else None))
        if r["feasible"]:
            front_rows.append([metric(n).loss(r["values"][n]) for n in p.names])
            front_numbers.append(r["number"])
    return out
