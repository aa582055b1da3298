"""The ``search:`` and ``select:`` sections: the space, the sampler and the budget; the selector.

Validated at load time, so ``search.n_trials: forty`` is a config error (exit 2) naming its path,
not a failure halfway through a run. Turning the space into Optuna distributions happens at the
Optuna edge (:mod:`moqwk.study.space`); this module imports no Optuna.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moqwk.config._fields import bounded, choice, section, typed
from moqwk.errors import ConfigError
from moqwk.study.samplers import CROSSOVERS, SAMPLER_NAMES

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

#: The fixed grid researchers typically sweep: depth, learning rate, min_child_weight, subsample.
DEFAULT_GRID: dict[str, list[Any]] = {
    "max_depth": [3, 4, 6],
    "learning_rate": [0.05, 0.1],
    "min_child_weight": [1.0, 4.0],
    "subsample": [0.8, 1.0],
}

DEFAULT_N_TRIALS = 40


@dataclass(frozen=True)
class SpaceParam:
    """One searched parameter: an int or float range (optionally log or stepped) or choices."""

    name: str
    type: str  # int | float | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        if self.type == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        out: dict[str, Any] = {"type": self.type, "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


def parse_space(raw: Any, *, path: str = "search.space") -> tuple[SpaceParam, ...]:
    """The space, checked entry by entry; ``None`` means :data:`DEFAULT_SPACE`."""
    raw = DEFAULT_SPACE if raw is None else raw
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{path}: expected a non-empty mapping of parameter -> range")
    return tuple(_space_param(str(name), spec, f"{path}.{name}") for name, spec in raw.items())


def _number(spec: Mapping[str, Any], key: str, where: str, kind: type) -> Any:
    if key not in spec:
        raise ConfigError(f"{where}: missing {key!r}")
    v = spec[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{where}.{key}: expected a number, got {v!r}")
    if kind is int and v != int(v):
        raise ConfigError(f"{where}.{key}: expected a whole number for an int range, got {v!r}")
    return kind(v)


def _space_param(name: str, spec: Any, where: str) -> SpaceParam:
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ConfigError(f"{where}: expected {{type: int|float|categorical, ...}}")
    kind = spec["type"]
    allowed = {"int": {"type", "low", "high", "log", "step"},
               "float": {"type", "low", "high", "log", "step"},
               "categorical": {"type", "choices"}}
    if kind not in allowed:
        raise ConfigError(f"{where}.type: must be int, float or categorical, got {kind!r}")
    unknown = sorted(set(map(str, spec)) - allowed[kind])
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown field for type {kind}; allowed: "
                          f"{', '.join(sorted(allowed[kind]))}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}.choices: expected a non-empty list")
        return SpaceParam(name, "categorical", choices=tuple(choices))
    cast = int if kind == "int" else float
    low, high = _number(spec, "low", where, cast), _number(spec, "high", where, cast)
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log: expected true or false, got {log!r}")
    step = None
    if spec.get("step") is not None:
        step = _number(spec, "step", where, cast)
        if step <= 0:
            raise ConfigError(f"{where}.step: must be > 0, got {step}")
    if low > high:
        raise ConfigError(f"{where}: low ({low}) must not exceed high ({high})")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0, got {low}")
    if log and step is not None and not (kind == "int" and step == 1):
        raise ConfigError(f"{where}: log and step cannot be combined; drop one")
    return SpaceParam(name, kind, low=low, high=high, log=log, step=step)


def check_feature_space(space: tuple[SpaceParam, ...], features: Any,
                        *, path: str = "search.space") -> None:
    """``features.<family>.<field>`` entries of the space must name a registered family's
    searchable field, and every value they can draw must be valid for that field.

    ``features`` is the config's :class:`~moqwk.features.FeatureConfig`; each bound or choice
    is applied to it and validated as the config validates ``features:``, so a bad one is an
    error naming ``search.space.features.<family>.<field>``.
    """
    from moqwk.features.config import PARAM_PREFIX, split_param

    for p in space:
        if not p.name.startswith(PARAM_PREFIX):
            continue
        where = f"{path}.{p.name}"
        split_param(p.name, where=where)
        values = list(p.choices) if p.type == "categorical" else [p.low, p.high]
        if p.type == "categorical" and any(isinstance(v, list | dict) for v in values):
            raise ConfigError(f"{where}.choices: a searched feature field takes single values "
                              "(numbers, strings, true/false)")
        for v in values:
            value = int(v) if p.type == "int" and v is not None else v
            try:
                features.with_params({p.name: value}, path=where)
            except ConfigError as e:
                raise ConfigError(f"{where}: the value {value!r} is not valid ({e})") from None


def parse_grid(raw: Any, *, path: str = "search.grid") -> dict[str, list[Any]]:
    """The grid ``{param: [values]}``; ``None`` means :data:`DEFAULT_GRID`."""
    grid = DEFAULT_GRID if raw is None else raw
    if not isinstance(grid, Mapping) or not grid:
        raise ConfigError(f"{path}: expected a mapping of parameter -> list of values")
    out: dict[str, list[Any]] = {}
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}.{name}: expected a non-empty list of values")
        out[str(name)] = list(values)
    return out


@dataclass(frozen=True)
class SearchConfig:
    """``search:``: the sampler and its settings, the space, the budget, the first generation."""

    n_trials: int = DEFAULT_N_TRIALS
    timeout: float | None = None
    n_jobs: int | None = None  # None: "auto", the usable cores
    sampler: str = "nsga2"
    seed: int | None = None  # None: cv.seed
    population_size: int = 10
    mutation_prob: float | None = None
    crossover: str = "uniform"
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5
    space: tuple[SpaceParam, ...] = field(default_factory=lambda: parse_space(None))
    seed_neighbours: int | None = None  # None: fill the first generation
    initial_configs: tuple[Mapping[str, Any], ...] = ()
    grid: Mapping[str, list[Any]] = field(default_factory=lambda: parse_grid(None))
    #: Fold racing (docs/explanation/method.md): on by default; the rungs (folds run before a
    #: check; None: half the folds) and the per-objective margins (None: "auto").
    racing: bool = True
    racing_rungs: tuple[int, ...] | None = None
    racing_margin: Mapping[str, float] | float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_trials": self.n_trials, "timeout": self.timeout,
            "n_jobs": "auto" if self.n_jobs is None else self.n_jobs,
            "sampler": self.sampler, "seed": self.seed,
            "population_size": self.population_size, "mutation_prob": self.mutation_prob,
            "crossover": self.crossover, "crossover_prob": self.crossover_prob,
            "swapping_prob": self.swapping_prob,
            "space": {p.name: p.to_dict() for p in self.space},
            "seed_neighbours": self.seed_neighbours,
            "initial_configs": [dict(c) for c in self.initial_configs],
            "grid": {k: list(v) for k, v in self.grid.items()},
            "racing": self.racing,
            "racing_rungs": "auto" if self.racing_rungs is None else list(self.racing_rungs),
            "racing_margin": "auto" if self.racing_margin is None else (
                dict(self.racing_margin) if isinstance(self.racing_margin, Mapping)
                else self.racing_margin),
        }


SEARCH_FIELDS = {"n_trials", "timeout", "sampler", "population_size", "mutation_prob",
                 "crossover", "crossover_prob", "swapping_prob", "seed", "space",
                 "seed_neighbours", "n_jobs", "initial_configs", "grid", "racing",
                 "racing_rungs", "racing_margin"}


def _auto_or(s: Mapping[str, Any], name: str) -> bool:
    return s.get(name) is None or s.get(name) == "auto"


def parse_n_jobs(value: Any, where: str = "search.n_jobs") -> int | None:
    """``auto`` (None: the usable cores) or a whole number >= 1."""
    if value is None or value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: 'auto' or a whole number >= 1, got {value!r}")
    return int(value)


def _rungs(s: Mapping[str, Any]) -> tuple[int, ...] | None:
    if _auto_or(s, "racing_rungs"):
        return None
    v = s["racing_rungs"]
    if not isinstance(v, list) or not all(isinstance(x, int) and not isinstance(x, bool)
                                          and x >= 1 for x in v):
        raise ConfigError(f"search.racing_rungs: 'auto' or a list of fold counts >= 1 (for "
                          f"example [2]), got {v!r}")
    if any(b <= a for a, b in zip(v, v[1:], strict=False)):
        raise ConfigError(f"search.racing_rungs: fold counts must increase, got {v!r}")
    return tuple(v)


def _margin(s: Mapping[str, Any]) -> Mapping[str, float] | float | None:
    if _auto_or(s, "racing_margin"):
        return None
    v = s["racing_margin"]
    where = "search.racing_margin"
    if isinstance(v, Mapping):
        out = {}
        for k, x in v.items():
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 <= x < math.inf:
                raise ConfigError(f"{where}.{k}: a number >= 0, got {x!r}")
            out[str(k)] = float(x)
        return out
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < math.inf:
        raise ConfigError(f"{where}: 'auto', a number >= 0 or {{objective: margin}}, got {v!r}")
    return float(v)


def parse_search(raw: Mapping[str, Any]) -> SearchConfig:
    s = section(raw, "search", SEARCH_FIELDS)
    p = "search"
    configs = s.get("initial_configs") or []
    if not isinstance(configs, list) or not all(isinstance(c, Mapping) for c in configs):
        raise ConfigError("search.initial_configs: expected a list of {param: value} mappings")
    mutation = bounded(s, "mutation_prob", p, float, None, lo=0.0, hi=1.0)
    return SearchConfig(
        n_trials=bounded(s, "n_trials", p, int, DEFAULT_N_TRIALS, lo=1),
        timeout=bounded(s, "timeout", p, float, None, lo=0.0, lo_open=True),
        n_jobs=parse_n_jobs(s.get("n_jobs")),
        sampler=choice(s, "sampler", p, SAMPLER_NAMES, "nsga2"),
        seed=bounded(s, "seed", p, int, None, lo=0),
        population_size=bounded(s, "population_size", p, int, 10, lo=2),
        mutation_prob=mutation,
        crossover=choice(s, "crossover", p, CROSSOVERS, "uniform"),
        crossover_prob=bounded(s, "crossover_prob", p, float, 0.9, lo=0.0, hi=1.0),
        swapping_prob=bounded(s, "swapping_prob", p, float, 0.5, lo=0.0, hi=1.0),
        space=parse_space(s.get("space")),
        seed_neighbours=bounded(s, "seed_neighbours", p, int, None, lo=0),
        initial_configs=tuple(dict(c) for c in configs),
        grid=parse_grid(s.get("grid")),
        racing=typed(s, "racing", p, bool, True),
        racing_rungs=_rungs(s),
        racing_margin=_margin(s),
    )


@dataclass(frozen=True)
class SelectConfig:
    """``select:``: the tie band, the stability gate and the bootstrap behind the tie band."""

    tie_tolerance: float | None = None  # None: "auto", estimated from the data
    gate_margin: float = 0.02
    #: None: "auto", gate_worst_se_k x the paired bootstrap SE of the worst-prompt QWK
    #: difference (candidate - baseline) under stratified_text; a number: that fixed margin.
    gate_worst_margin: float | None = None
    gate_worst_se_k: float = 1.0
    #: a candidate whose stratified_text run maps more than this share of essays with its
    #: mapping's fallback fails the gate: the gate did not test the mapping that was chosen
    gate_max_fallback_share: float = 0.10
    max_gate_candidates: int = 3
    n_boot: int = 200
    rule: str = "lexicographic"
    tie_method: str = "paired_median"
    #: BBC-CV, the selection-bias-corrected estimate: replicates (0: off), resampling, variant.
    bbc_n_boot: int = 500
    bbc_scheme: str = "prompts+essays"
    bbc_corrected: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "tie_method": self.tie_method,
                "bbc_n_boot": self.bbc_n_boot, "bbc_scheme": self.bbc_scheme,
                "bbc_corrected": self.bbc_corrected,
                "tie_tolerance": "auto" if self.tie_tolerance is None else self.tie_tolerance,
                "gate_margin": self.gate_margin,
                "gate_worst_margin": ("auto" if self.gate_worst_margin is None
                                      else self.gate_worst_margin),
                "gate_worst_se_k": self.gate_worst_se_k,
                "gate_max_fallback_share": self.gate_max_fallback_share,
                "max_gate_candidates": self.max_gate_candidates,
                "n_boot": self.n_boot}


def _auto_or_number(s: Mapping[str, Any], name: str) -> float | None:
    v = s.get(name, "auto")
    if v is None or v == "auto":
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < math.inf:
        raise ConfigError(f"select.{name}: 'auto' (derived from the noise) or a number >= 0, "
                          f"got {v!r}")
    return float(v)


def parse_select(raw: Mapping[str, Any]) -> SelectConfig:
    from moqwk.core.noise import TIE_METHODS
    from moqwk.core.pooled import RESAMPLING
    from moqwk.core.selection import RULES

    s = section(raw, "select", {"rule", "tie_tolerance", "tie_method", "gate_margin",
                                "gate_worst_margin", "gate_worst_se_k",
                                "gate_max_fallback_share", "max_gate_candidates", "n_boot",
                                "bbc_n_boot", "bbc_scheme", "bbc_corrected"})
    bbc_n_boot = bounded(s, "bbc_n_boot", "select", int, 500, lo=0)
    if bbc_n_boot == 1:
        raise ConfigError("select.bbc_n_boot: 0 (off) or at least 2 replicates, got 1")
    tol = s.get("tie_tolerance", "auto")
    if tol is None or tol == "auto":
        tie = None
    elif isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < math.inf:
        raise ConfigError(f"select.tie_tolerance: 'auto' or a number >= 0, got {tol!r}")
    else:
        tie = float(tol)
    return SelectConfig(
        tie_tolerance=tie,
        gate_margin=bounded(s, "gate_margin", "select", float, 0.02, lo=0.0),
        gate_worst_margin=_auto_or_number(s, "gate_worst_margin"),
        gate_worst_se_k=bounded(s, "gate_worst_se_k", "select", float, 1.0, lo=0.0),
        gate_max_fallback_share=bounded(s, "gate_max_fallback_share", "select", float, 0.10,
                                        lo=0.0, hi=1.0),
        max_gate_candidates=bounded(s, "max_gate_candidates", "select", int, 3, lo=1),
        n_boot=bounded(s, "n_boot", "select", int, 200, lo=2),
        rule=choice(s, "rule", "select", tuple(RULES), "lexicographic"),
        tie_method=choice(s, "tie_method", "select", TIE_METHODS, "paired_median"),
        bbc_n_boot=bbc_n_boot,
        bbc_scheme=choice(s, "bbc_scheme", "select", RESAMPLING, "prompts+essays"),
        bbc_corrected=typed(s, "bbc_corrected", "select", bool, True),
    )
