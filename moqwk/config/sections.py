"""The corpus, scale, CV, tails, model, baseline and objectives sections of a config."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moqwk.config._fields import bounded, choice, section, typed
from moqwk.core.mapping import METHODS, MappingSpec
from moqwk.core.objectives import DEFAULT_OBJECTIVES, METRICS, ObjectiveSet
from moqwk.errors import ConfigError

DEFAULT_BASELINE_PARAMS: dict[str, Any] = {
    "max_depth": 4,
    "learning_rate": 0.05,
    "n_estimators": 300,
    "min_child_weight": 4.0,
    "subsample": 0.8,
    "colsample_bytree": 0.6,
    "reg_lambda": 1.0,
    "reg_alpha": 0.0,
    "gamma": 0.0,
}


@dataclass(frozen=True)
class DataConfig:
    path: Path | None
    id_column: str = "essay_id"
    text_column: str = "text"
    prompt_column: str = "prompt"
    score_column: str = "score"
    demo: bool = False
    demo_seed: int = 0
    demo_per_prompt_scales: bool = False


@dataclass(frozen=True)
class ScaleConfig:
    kind: str = "infer"  # global | per_prompt | infer
    min: float | None = None
    max: float | None = None
    step: float | None = None
    per_prompt: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class CVConfig:
    n_folds: int = 5
    repeats: int = 1
    seed: int = 42
    min_prompt_n: int = 20


@dataclass(frozen=True)
class TailConfig:
    low_band: float = 0.25
    high_band: float = 0.75
    tolerance: float = 0.05


@dataclass(frozen=True)
class ModelConfig:
    objective: str = "reg:squarederror"
    nthread: int = 0  # 0: choose from cores and parallel trials


#: ``objectives.worst_prompt``: how the primary objective summarises the per-prompt QWKs.
WORST_PROMPT_ESTIMATORS: Mapping[str, str] = {
    m.worst_prompt: m.name for m in METRICS.values() if m.worst_prompt is not None}


@dataclass(frozen=True)
class ObjectivesConfig:
    worst_prompt: str = "min"

    def objective_set(self) -> ObjectiveSet:
        return ObjectiveSet(primary=WORST_PROMPT_ESTIMATORS[self.worst_prompt],
                            secondary=DEFAULT_OBJECTIVES.secondary,
                            tails=DEFAULT_OBJECTIVES.tails)


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str) -> str:
    """``${VAR}`` and ``${VAR:-default}`` from the environment."""

    def sub(m: re.Match[str]) -> str:
        value = os.environ.get(m.group(1))
        if value:
            return value
        if m.group(2) is not None:
            return m.group(2)
        raise ConfigError(
            f"environment variable {m.group(1)} is not set; set it or write "
            f"${{{m.group(1)}:-default}} in the config"
        )

    return _ENV.sub(sub, text)


def parse_data(raw: Mapping[str, Any], base_dir: Path) -> DataConfig:
    d = section(raw, "data", {"path", "id_column", "text_column", "prompt_column",
                              "score_column", "demo", "demo_seed", "demo_per_prompt_scales"})
    demo = bool(typed(d, "demo", "data", bool, False))
    path = d.get("path")
    if path is None and not demo:
        raise ConfigError("data.path: missing; give the corpus CSV/Parquet path or set "
                          "data.demo: true")
    data_path = None
    if path is not None:
        if not isinstance(path, str):
            raise ConfigError(f"data.path: expected a string path, got {path!r}")
        data_path = Path(expand_env(path)).expanduser()
        if not data_path.is_absolute():
            data_path = (base_dir / data_path).resolve()
    defaults = DataConfig(path=None)
    return DataConfig(
        path=data_path,
        id_column=typed(d, "id_column", "data", str, defaults.id_column),
        text_column=typed(d, "text_column", "data", str, defaults.text_column),
        prompt_column=typed(d, "prompt_column", "data", str, defaults.prompt_column),
        score_column=typed(d, "score_column", "data", str, defaults.score_column),
        demo=demo,
        demo_seed=typed(d, "demo_seed", "data", int, 0),
        demo_per_prompt_scales=bool(typed(d, "demo_per_prompt_scales", "data", bool, False)),
    )


def _check_scale(path: str, lo: Any, hi: Any, step: Any) -> None:
    """A scale's bounds as the corpus will use them: numbers, max > min, a whole number of steps."""
    from moqwk.core.scale import Scale

    for name, v in (("min", lo), ("max", hi), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ConfigError(f"{path}.{name}: expected a number, got {v!r}")
    try:
        Scale(float(lo), float(hi), float(step))
    except ValueError as e:
        raise ConfigError(f"{path}: {e} (min {lo}, max {hi}, step {step}); fix min, max or step"
                          ) from None


def parse_scale(raw: Mapping[str, Any]) -> ScaleConfig:
    s = section(raw, "scale", {"kind", "min", "max", "step", "per_prompt"})
    kind = choice(s, "kind", "scale", ("global", "per_prompt", "infer"), "infer")
    if not isinstance(s.get("per_prompt") or {}, Mapping):
        raise ConfigError("scale.per_prompt: expected a mapping {prompt: {min, max, step}}")
    scale = ScaleConfig(
        kind=kind,
        min=typed(s, "min", "scale", float, None),
        max=typed(s, "max", "scale", float, None),
        step=typed(s, "step", "scale", float, None),
        per_prompt={str(p): v for p, v in (s.get("per_prompt") or {}).items()},
    )
    if kind == "global":
        missing = [k for k in ("min", "max", "step") if getattr(scale, k) is None]
        if missing:
            raise ConfigError(f"scale.{missing[0]}: kind global needs min, max and step "
                              "(e.g. 1.0, 5.0, 0.5)")
        _check_scale("scale", scale.min, scale.max, scale.step)
    if kind == "per_prompt":
        if not scale.per_prompt:
            raise ConfigError("scale.per_prompt: kind per_prompt needs {prompt: {min, max, step}}")
        for p, v in scale.per_prompt.items():
            if not isinstance(v, Mapping) or {"min", "max", "step"} - set(v):
                raise ConfigError(f"scale.per_prompt.{p}: needs min, max and step")
            _check_scale(f"scale.per_prompt.{p}", v["min"], v["max"], v["step"])
    return scale


def parse_cv(raw: Mapping[str, Any]) -> CVConfig:
    c = section(raw, "cv", {"n_folds", "repeats", "seed", "min_prompt_n"})
    return CVConfig(
        n_folds=bounded(c, "n_folds", "cv", int, 5, lo=2),
        repeats=bounded(c, "repeats", "cv", int, 1, lo=1),
        seed=typed(c, "seed", "cv", int, 42),
        min_prompt_n=bounded(c, "min_prompt_n", "cv", int, 20, lo=1),
    )


def parse_tails(raw: Mapping[str, Any]) -> TailConfig:
    t = section(raw, "tails", {"low_band", "high_band", "tolerance"})
    tails = TailConfig(
        low_band=typed(t, "low_band", "tails", float, 0.25),
        high_band=typed(t, "high_band", "tails", float, 0.75),
        tolerance=typed(t, "tolerance", "tails", float, 0.05),
    )
    for name in ("low_band", "high_band"):
        if not 0 <= getattr(tails, name) <= 1:
            raise ConfigError(f"tails.{name}: must lie in [0, 1] (normalised units: 0 is the "
                              f"bottom of a scale, 1 the top), got {getattr(tails, name)}")
    if not tails.low_band < tails.high_band:
        raise ConfigError(
            f"tails.low_band: must be below tails.high_band (normalised units), "
            f"got {tails.low_band} and {tails.high_band}"
        )
    if tails.tolerance < 0:
        raise ConfigError(f"tails.tolerance: must be >= 0, got {tails.tolerance}")
    return tails


def parse_model(raw: Mapping[str, Any]) -> ModelConfig:
    m = section(raw, "model", {"objective", "nthread"})
    return ModelConfig(
        objective=typed(m, "objective", "model", str, "reg:squarederror"),
        nthread=bounded(m, "nthread", "model", int, 0, lo=0),
    )


@dataclass(frozen=True)
class MappingConfig:
    """``mapping:``: how a raw prediction becomes a score (see :mod:`moqwk.core.mapping`)."""

    spec: MappingSpec = field(default_factory=lambda: MappingSpec(DEFAULT_MAPPING_METHOD))
    #: Prompt-grouped inner folds whose out-of-sample predictions label-based methods
    #: (a fitted stretch, thresholds) are fitted on.
    inner_folds: int = 3
    #: The features the inner models train on: ``refit`` (fitted on each inner training part,
    #: fully nested) or ``reuse`` (the outer fold's, fitted on all its training essays' texts:
    #: no inner feature builds; docs/research/inner-cross-fit.md).
    inner_features: str = "refit"

    def to_dict(self) -> dict[str, Any]:
        return {**self.spec.to_dict(), "inner_folds": self.inner_folds,
                "inner_features": self.inner_features}


#: ``mapping.inner_features``: the first is the default.
INNER_FEATURES = ("refit", "reuse")


#: ``mapping.method`` when the config does not say: chosen by the pre-registered score-mapping
#: benchmark on ELLIPSE (ADR 0002). The guardrail baseline keeps ``round`` (``baseline.mapping``).
DEFAULT_MAPPING_METHOD = "stretch"


def _spec(d: Mapping[str, Any], path: str, default: str = "round") -> MappingSpec:
    method = choice(d, "method", path, tuple(METHODS), default)
    params = d.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"{path}.params: expected a mapping of the method's parameters")
    try:
        return MappingSpec(method, {str(k): v for k, v in params.items()})
    except ValueError as e:  # the core names mapping.params.X; give the full path
        raise ConfigError(str(e).replace("mapping.", f"{path}.", 1)) from None


def parse_mapping(raw: Mapping[str, Any]) -> MappingConfig:
    m = section(raw, "mapping", {"method", "params", "inner_folds", "inner_features"})
    return MappingConfig(spec=_spec(m, "mapping", DEFAULT_MAPPING_METHOD),
                         inner_folds=bounded(m, "inner_folds", "mapping", int, 3, lo=2),
                         inner_features=choice(m, "inner_features", "mapping", INNER_FEATURES,
                                               INNER_FEATURES[0]))


def parse_baseline(raw: Mapping[str, Any]) -> tuple[dict[str, Any], MappingSpec]:
    """The baseline's XGBoost params (merged over the defaults) and its mapping (``round``
    unless ``baseline.mapping`` says otherwise: the guardrails keep today's scoring)."""
    b = section(raw, "baseline", {"params", "mapping"})
    params = b.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError("baseline.params: expected a mapping of XGBoost parameters")
    bad = [str(k) for k in params if str(k).startswith("mapping.")]
    if bad:
        raise ConfigError(f"baseline.params.{bad[0]}: the baseline's mapping goes in "
                          "baseline.mapping: {method: ..., params: {...}}")
    mapping = b.get("mapping") or {}
    if not isinstance(mapping, Mapping):
        raise ConfigError("baseline.mapping: expected {method: ..., params: {...}}")
    unknown = set(map(str, mapping)) - {"method", "params"}
    if unknown:
        raise ConfigError(f"baseline.mapping.{sorted(unknown)[0]}: unknown field; allowed: "
                          "method, params")
    return ({**DEFAULT_BASELINE_PARAMS, **{str(k): v for k, v in params.items()}},
            _spec(mapping, "baseline.mapping"))


def parse_objectives(raw: Mapping[str, Any]) -> ObjectivesConfig:
    o = section(raw, "objectives", {"worst_prompt"})
    return ObjectivesConfig(
        worst_prompt=choice(o, "worst_prompt", "objectives", tuple(WORST_PROMPT_ESTIMATORS),
                            "min"))
