"""The search space: int / float / log / categorical per XGBoost parameter.

Parsed from the config's ``search.space`` (or the default below) into Optuna distributions.
Parameters of the baseline that the space does not name stay fixed at the baseline's value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from moqwk.errors import ConfigError

#: A default space around the usual essay-scoring range; it contains the default baseline.
DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "max_depth": {"type": "int", "low": 2, "high": 8},
    "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
    "n_estimators": {"type": "int", "low": 100, "high": 600, "step": 50},
    "min_child_weight": {"type": "float", "low": 0.5, "high": 32.0, "log": True},
    "subsample": {"type": "float", "low": 0.5, "high": 1.0},
    "colsample_bytree": {"type": "float", "low": 0.3, "high": 1.0},
    "reg_lambda": {"type": "float", "low": 0.05, "high": 20.0, "log": True},
}


def parse_space(raw: Mapping[str, Any] | None, *, path: str = "search.space"
                ) -> dict[str, BaseDistribution]:
    """Distributions by parameter name; a bad entry raises ConfigError naming it."""
    raw = DEFAULT_SPACE if raw is None else raw
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{path}: expected a non-empty mapping of parameter -> range")
    out: dict[str, BaseDistribution] = {}
    for name, spec in raw.items():
        where = f"{path}.{name}"
        if not isinstance(spec, Mapping) or "type" not in spec:
            raise ConfigError(f"{where}: expected {{type: int|float|categorical, ...}}")
        kind = spec["type"]
        try:
            if kind == "int":
                out[name] = IntDistribution(int(spec["low"]), int(spec["high"]),
                                            log=bool(spec.get("log", False)),
                                            step=int(spec.get("step", 1)))
            elif kind == "float":
                step = spec.get("step")
                out[name] = FloatDistribution(float(spec["low"]), float(spec["high"]),
                                              log=bool(spec.get("log", False)),
                                              step=None if step is None else float(step))
            elif kind == "categorical":
                choices = spec["choices"]
                if not isinstance(choices, list) or not choices:
                    raise ConfigError(f"{where}.choices: expected a non-empty list")
                out[name] = CategoricalDistribution(choices)
            else:
                raise ConfigError(f"{where}.type: must be int, float or categorical, got {kind!r}")
        except KeyError as e:
            raise ConfigError(f"{where}: missing {e.args[0]!r}") from None
        except ValueError as e:
            raise ConfigError(f"{where}: {e}") from None
    return out


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
        for name, dist in space.items():
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


#: The fixed grid researchers typically sweep: depth, learning rate, min_child_weight, subsample.
DEFAULT_GRID: dict[str, list[Any]] = {
    "max_depth": [3, 4, 6],
    "learning_rate": [0.05, 0.1],
    "min_child_weight": [1.0, 4.0],
    "subsample": [0.8, 1.0],
}


def parse_grid(raw: Mapping[str, Any] | None, baseline: Mapping[str, Any], *,
               path: str = "search.grid"
               ) -> tuple[dict[str, list[Any]], dict[str, BaseDistribution]]:
    """The grid and the matching categorical space (which also holds the baseline's values, so
    the baseline can run as trial 0 even when it is not a grid point)."""
    grid = DEFAULT_GRID if raw is None else raw
    if not isinstance(grid, Mapping) or not grid:
        raise ConfigError(f"{path}: expected a mapping of parameter -> list of values")
    out: dict[str, list[Any]] = {}
    space: dict[str, BaseDistribution] = {}
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}.{name}: expected a non-empty list of values")
        out[name] = list(values)
        choices = list(values)
        if name in baseline and baseline[name] not in choices:
            choices.append(baseline[name])
        space[name] = CategoricalDistribution(choices)
    return out, space


def grid_size(grid: Mapping[str, list[Any]]) -> int:
    return int(np.prod([len(v) for v in grid.values()]))
