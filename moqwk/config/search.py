"""The ``search:`` and ``select:`` sections: the space, the sampler and the budget; the selector.

Validated at load time, so ``search.n_trials: forty`` is a config error (exit 2) naming its path,
not a failure halfway through a run. Turning the space into Optuna distributions happens at the
Optuna edge (:mod:`moqwk.study.space`); this module imports no Optuna.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from moqwk.base.fields import dump, parse, setting
from moqwk.core.racing import BOUNDS as RACING_BOUNDS
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


def parse_n_jobs(value: Any, where: str = "search.n_jobs") -> int | None:
    """``auto`` (None: the usable cores) or a whole number >= 1."""
    if value is None or value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: 'auto' or a whole number >= 1, got {value!r}")
    return int(value)


def _rungs(v: Any, where: str) -> tuple[int, ...]:
    if not isinstance(v, list) or not all(isinstance(x, int) and not isinstance(x, bool)
                                          and x >= 1 for x in v):
        raise ConfigError(f"{where}: 'auto' or a list of fold counts >= 1 (for "
                          f"example [2]), got {v!r}")
    if any(b <= a for a, b in zip(v, v[1:], strict=False)):
        raise ConfigError(f"{where}: fold counts must increase, got {v!r}")
    return tuple(v)


def _margin(v: Any, where: str) -> Mapping[str, float] | float:
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


def _initial_configs(v: Any, where: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(v, list) or not all(isinstance(c, Mapping) for c in v):
        raise ConfigError(f"{where}: expected a list of {{param: value}} mappings")
    return tuple(dict(c) for c in v)


@dataclass(frozen=True)
class SearchConfig:
    """``search:``: the sampler and its settings, the space, the budget, the first generation."""

    n_trials: int = setting(
        DEFAULT_N_TRIALS, lo=1, default_doc=f"`{DEFAULT_N_TRIALS}` (`moqwk demo`: 12)",
        help="the study's total trial budget ([budget semantics]"
             "(../explanation/method.md#budget-and-resume-semantics)); `--n-trials` overrides "
             "it; ignored by `moqwk grid`")
    timeout: float | None = setting(
        None, kind=float, lo=0.0, lo_open=True, type_doc="number (seconds)", default_doc="none",
        help="stop starting trials after this long; `--timeout` overrides it")
    n_jobs: int | None = setting(  # None: "auto", the usable cores
        None, auto=True, check=parse_n_jobs, type_doc="`auto` \\| int >= 1",
        help="trials at once in one `moqwk search` process; `auto` is the cores this process "
             "may use (its CPU affinity), and each trial's XGBoost gets cores / `n_jobs` "
             "threads (unless `model.nthread` is set), so workers x threads = cores; "
             "`--n-jobs` overrides it. A run directory made before `auto` keeps the `1` its "
             "`config.yaml` records")
    sampler: str = setting("nsga2", choices=SAMPLER_NAMES, help="`--sampler` overrides it")
    seed: int | None = setting(  # None: cv.seed
        None, kind=int, lo=0, default_doc="`cv.seed`",
        help="sampler seed (on resume, combined with the number of trials so far) and the "
             "seed of the baseline neighbours")
    population_size: int = setting(
        10, lo=2, help="NSGA-II generation size; also sets how many baseline neighbours are "
                       "queued (`population_size // 2 - 1 - len(initial_configs)`)")
    mutation_prob: float | None = setting(
        None, kind=float, lo=0.0, hi=1.0,
        help="NSGA-II mutation probability per parameter; `null` is Optuna's `1 / number of "
             "parameters`")
    crossover: str = setting("uniform", choices=CROSSOVERS, help="NSGA-II crossover")
    crossover_prob: float = setting(0.9, lo=0.0, hi=1.0,
                                    help="NSGA-II crossover probability")
    swapping_prob: float = setting(0.5, lo=0.0, hi=1.0,
                                   help="NSGA-II per-parameter swap probability (also the "
                                        "uniform crossover's)")
    space: tuple[SpaceParam, ...] = setting(
        parse_space(None), check=lambda v, p: parse_space(v, path=p),
        dump=lambda space: {p.name: p.to_dict() for p in space},
        type_doc="mapping", default_doc="the default space below",
        help="the parameters searched; the rest stay at the baseline's values")
    seed_neighbours: int | None = setting(  # None: fill the first generation
        None, kind=int, lo=0, default_doc="`population_size // 2 - 1 - len(initial_configs)`",
        help="NSGA-II only: configs near the baseline queued into the first generation (never "
             "more than the budget allows)")
    initial_configs: tuple[Mapping[str, Any], ...] = setting(
        (), check=_initial_configs, type_doc="list of mappings",
        help="configs queued right after the baseline (role `seed`); keys outside "
             "`search.space` are dropped, space parameters they omit are sampled")
    grid: Mapping[str, list[Any]] = setting(
        parse_grid(None), check=lambda v, p: parse_grid(v, path=p), type_doc="mapping",
        default_doc="the default grid below",
        help="`{param: [values, ...]}` for `moqwk grid` / `--sampler grid`")
    #: Fold racing (docs/explanation/method.md): on by default; the rungs (folds run before a
    #: check; None: half the folds) and the per-objective margins (None: "auto").
    racing: bool = setting(
        True, help="fold racing: after each rung, stop a trial that cannot reach the feasible "
                   "front ([fold racing](../explanation/method.md#fold-racing)); it is "
                   "recorded as `pruned` and counts toward the budget. Not used by "
                   "`moqwk grid`")
    racing_rungs: tuple[int, ...] | None = setting(
        None, auto=True, check=_rungs, type_doc="`auto` \\| list of ints",
        help="folds run before each check, increasing and fewer than a trial's folds "
             "(`cv.n_folds` x `cv.repeats`); `auto` is a check at half the folds, rounded "
             "down, and one before the last fold (2 and 4 of 5)")
    racing_margin: Mapping[str, float] | float | None = setting(
        None, auto=True, check=_margin,
        type_doc="`auto` \\| number >= 0 \\| `{objective: margin}`",
        help="how much better a feasible trial must be, in every objective, than a trial's "
             "optimistic bound to stop it; `auto`: 0.02 for QWK objectives (the primary one "
             "takes a numeric `select.tie_tolerance` instead), 0.01 for tail MAE")
    racing_bound: str = setting(
        "worst_case", choices=RACING_BOUNDS,
        help="how a trial's unrun folds are bounded at a rung. `worst_case`: every unseen "
             "prompt at QWK 1 and every unseen tail essay without error, so a stop is never "
             "wrong (and rarely happens before the last rung). `statistical`: the seen prompts "
             "taken as the random sample prompt-holdout folds draw, the mean QWK and tail MAE "
             "bounded `search.racing_z` standard errors past their estimates; a stop can then "
             "be wrong, rarely ([fold racing](../explanation/method.md#fold-racing))")
    racing_z: float = setting(
        2.0, lo=0.0, lo_open=True, finite=True,
        help="standard errors of room the `statistical` racing bound gives each objective "
             "(unused by `worst_case`)")

    def to_dict(self) -> dict[str, Any]:
        return dump(self)


def parse_search(raw: Mapping[str, Any]) -> SearchConfig:
    search: SearchConfig = parse(SearchConfig, raw.get("search"), "search")
    return search


def _rules() -> tuple[str, ...]:
    from moqwk.core.selection import RULES

    return tuple(RULES)


def _tie_methods() -> tuple[str, ...]:
    from moqwk.core.noise import TIE_METHODS

    return tuple(TIE_METHODS)


def _resampling() -> tuple[str, ...]:
    from moqwk.core.pooled import RESAMPLING

    return tuple(RESAMPLING)


def _replicates(v: int, where: str) -> int:
    if v == 1:
        raise ConfigError(f"{where}: 0 (off) or at least 2 replicates, got 1")
    return v


@dataclass(frozen=True)
class SelectConfig:
    """``select:``: the tie band, the stability gate and the bootstrap behind the tie band."""

    rule: str = setting(
        "lexicographic", choices=_rules,
        help="how the feasible Pareto front is ranked: the primary objective first, with a tie "
             "band, then mean QWK among tied trials (no flag)")
    tie_method: str = setting(
        "paired_median", choices=_tie_methods,
        help="how `tie_tolerance: auto` is estimated: `paired_median`, the median paired "
             "bootstrap SE of the primary objective's difference between the top trial and the "
             "next five trials whose predictions differ from it; `independent`, sqrt(2) x the "
             "top trial's own bootstrap SE. Duplicates of the top trial are skipped, so the "
             "band never collapses to 0 (no flag)")
    #: BBC-CV, the selection-bias-corrected estimate: replicates (0: off), resampling, variant.
    bbc_n_boot: int = setting(
        500, lo=0, check=_replicates, type_doc="int, 0 or >= 2",
        help="bootstrap replicates of the selection-bias-corrected estimate (BBC-CV): the "
             "whole selection replayed on resamples of every trial's out-of-fold predictions, "
             "its choice scored out-of-bag; `0` turns it off (no flag)")
    bbc_scheme: str = setting(
        "prompts+essays", choices=_resampling,
        help="what BBC-CV resamples: essays within each prompt, whole prompts, or prompts "
             "then essays within each drawn prompt (the default; it tracked fresh folds best "
             "on ELLIPSE, see [the research note](../research/honest-numbers-design.md))")
    bbc_corrected: bool = setting(
        True, help="report the size-corrected estimate (each replicate minus the chosen "
                   "config's mean out-of-bag shift from its full-data value, the part of the "
                   "drop due to scoring fewer essays or prompts) rather than BBC-CV as "
                   "published (no flag)")
    tie_tolerance: float | None = setting(  # None: "auto", estimated from the data
        None, kind=float, auto=True, lo=0.0, finite=True, flag="--tie-tolerance",
        help="the tie band of the lexicographic rule on the primary objective (QWK units); "
             "`auto` is the bootstrap estimate of `tie_method`, `0` strict order")
    gate_margin: float = setting(
        0.02, lo=0.0, flag="--gate-margin",
        help="largest regression, against the baseline under `stratified_text`, that the "
             "stability gate lets pass on mean QWK, pooled QWK (QWK units) and each tail MAE "
             "(normalised units)")
    #: None: "auto", gate_worst_se_k x the paired bootstrap SE of the worst-prompt QWK
    #: difference (candidate - baseline) under stratified_text; a number: that fixed margin.
    gate_worst_margin: float | None = setting(
        None, kind=float, auto=True, lo=0.0, finite=True,
        help="the gate's margin for worst-prompt QWK, which is noisier than the other gate "
             "metrics: a candidate whose `stratified_text` worst-prompt QWK falls more than "
             "this below the baseline's fails the gate. `auto`: `gate_worst_se_k` x the "
             "paired bootstrap SE of that difference (candidate - baseline on the gate's "
             "folds, essays resampled within prompts, `select.n_boot` replicates), recorded "
             "per candidate as `worst_prompt_noise`. A number: that fixed margin (0.10 before "
             "issue 20)")
    gate_worst_se_k: float = setting(
        1.0, lo=0.0,
        help="k of the `auto` worst-prompt margin: a candidate more than k paired SEs worse "
             "than the baseline on worst-prompt QWK fails. 1 is the convention `compare` uses "
             "for a tie ([method](../explanation/method.md#the-stability-gate))")
    #: a candidate whose stratified_text run maps more than this share of essays with its
    #: mapping's fallback fails the gate: the gate did not test the mapping that was chosen
    gate_max_fallback_share: float = setting(
        0.10, lo=0.0, hi=1.0,
        help="a candidate whose `stratified_text` run maps more than this share of its essays "
             "with its score mapping's fallback fails the gate: its gate numbers are mostly "
             "those of another method than the one chosen")
    max_gate_candidates: int = setting(
        3, lo=1, flag="--max-candidates",
        help="ranked candidates tried in the gate")
    n_boot: int = setting(200, lo=2,
                          help="bootstrap replicates for `tie_tolerance: auto` (no flag)")

    def to_dict(self) -> dict[str, Any]:
        return dump(self)


def parse_select(raw: Mapping[str, Any]) -> SelectConfig:
    select: SelectConfig = parse(SelectConfig, raw.get("select"), "select")
    return select
