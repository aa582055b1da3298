"""The search space as Optuna distributions: suggesting, containment, neighbours and the grid.

The config's ``search.space`` is checked at load time (:mod:`moqwk.config.search`); here it
becomes Optuna distributions. Parameters of the baseline that the space does not name stay
fixed at the baseline's value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)


class SpaceParam(Protocol):
    """What this module reads of one ``search.space`` entry (the config's
    :class:`moqwk.config.search.SpaceParam` is one). Declared here, not imported, because the
    config sits above this package in the layer table (``moqwk/_layers.py``)."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...  # int | float | categorical
    @property
    def low(self) -> float | None: ...
    @property
    def high(self) -> float | None: ...
    @property
    def log(self) -> bool: ...
    @property
    def step(self) -> float | None: ...
    @property
    def choices(self) -> tuple[Any, ...]: ...


def distributions(space: Sequence[SpaceParam]) -> dict[str, BaseDistribution]:
    """Optuna distributions by parameter name (the config has checked every bound), in name
    order: trials draw their parameters in this order, so the same config written with its keys
    in another order (``yaml.safe_dump`` sorts them, a hand-written file does not) must give the
    same trials."""
    out: dict[str, BaseDistribution] = {}
    for p in sorted(space, key=lambda p: p.name):
        if p.type == "int":
            out[p.name] = IntDistribution(int(p.low), int(p.high), log=p.log,  # type: ignore
                                          step=int(p.step or 1))
        elif p.type == "float":
            out[p.name] = FloatDistribution(float(p.low), float(p.high),  # type: ignore[arg-type]
                                            log=p.log, step=p.step)
        else:
            out[p.name] = CategoricalDistribution(list(p.choices))
    return out


def distributions_to_json(space: Mapping[str, BaseDistribution]) -> dict[str, Any]:
    """Each distribution in Optuna's own JSON form (what ``optuna_study.json`` records)."""
    import json

    return {k: json.loads(optuna.distributions.distribution_to_json(v))
            for k, v in space.items()}


def suggest(trial: optuna.Trial, space: Mapping[str, BaseDistribution],
            fixed: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's full params: the fixed (baseline) ones overridden by sampled ones."""
    params = dict(fixed)
    for name, dist in space.items():
        if isinstance(dist, IntDistribution):
            params[name] = trial.suggest_int(name, dist.low, dist.high, step=dist.step,
                                             log=dist.log)
        elif isinstance(dist, FloatDistribution):
            params[name] = trial.suggest_float(name, dist.low, dist.high, step=dist.step,
                                               log=dist.log)
        else:
            assert isinstance(dist, CategoricalDistribution)
            params[name] = trial.suggest_categorical(name, dist.choices)
    return params


def contains(space: Mapping[str, BaseDistribution], params: Mapping[str, Any]) -> list[str]:
    """Names of space parameters whose value in ``params`` lies outside the space."""
    bad = []
    for name, dist in space.items():
        if name not in params:
            bad.append(name)
            continue
        try:
            # Private: BaseDistribution._contains. Optuna has no public "is this value in the
            # distribution" check (to_internal_repr only validates the type).
            if not dist._contains(dist.to_internal_repr(params[name])):
                bad.append(name)
        except (ValueError, TypeError):
            bad.append(name)
    return bad


def neighbours(space: Mapping[str, BaseDistribution], centre: Mapping[str, Any], *, k: int,
               seed: int, scale: float = 0.15) -> list[dict[str, Any]]:
    """``k`` configs near ``centre``: each parameter moved by about ``scale`` of its range.

    Used to seed NSGA-II's first generation near the baseline, which keeps the tail guardrails,
    so that the search starts from feasible parents instead of mostly infeasible random ones.
    """
    rng = np.random.default_rng([seed, 17])
    out = []
    for _ in range(k):
        p: dict[str, Any] = {}
        for name, dist in sorted(space.items()):  # draws in name order, whatever the mapping's
            c = centre.get(name)
            if isinstance(dist, CategoricalDistribution):
                p[name] = c if c in dist.choices and rng.random() > scale else \
                    dist.choices[int(rng.integers(len(dist.choices)))]
                continue
            assert isinstance(dist, (IntDistribution, FloatDistribution))
            lo, hi = float(dist.low), float(dist.high)
            if dist.log:
                lo_t, hi_t = math.log(lo), math.log(hi)
                ct = math.log(min(max(float(c), lo), hi)) if c is not None else (lo_t + hi_t) / 2
                v = math.exp(np.clip(ct + rng.normal(0, scale) * (hi_t - lo_t), lo_t, hi_t))
            else:
                ct = min(max(float(c), lo), hi) if c is not None else (lo + hi) / 2
                v = float(np.clip(ct + rng.normal(0, scale) * (hi - lo), lo, hi))
            if isinstance(dist, IntDistribution):
                v = int(round((v - dist.low) / dist.step)) * dist.step + dist.low
                p[name] = int(min(max(v, dist.low), dist.high))
            else:
                if dist.step is not None:
                    v = round((v - lo) / dist.step) * dist.step + lo
                p[name] = float(min(max(v, lo), hi))
        out.append(p)
    return out


def grid_space(grid: Mapping[str, list[Any]], baseline: Mapping[str, Any]
               ) -> dict[str, BaseDistribution]:
    """The categorical space of a grid; it also holds the baseline's values, so the baseline
    can run as trial 0 even when it is not a grid point."""
    space: dict[str, BaseDistribution] = {}
    for name, values in grid.items():
        choices = list(values)
        if name in baseline and baseline[name] not in choices:
            choices.append(baseline[name])
        space[name] = CategoricalDistribution(choices)
    return space


def grid_size(grid: Mapping[str, list[Any]]) -> int:
    return int(np.prod([len(v) for v in grid.values()]))
