"""The run config: YAML parsed in one place into frozen dataclasses.

Every error names the field path (``cv.n_folds``) and what to do about it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

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


@dataclass(frozen=True)
class Config:
    data: DataConfig
    scale: ScaleConfig
    features: Any  # moqwk.features.FeatureConfig
    cv: CVConfig
    tails: TailConfig
    model: ModelConfig
    baseline_params: Mapping[str, Any]
    search: Mapping[str, Any]
    select: Mapping[str, Any]
    source: Path | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    def hash(self) -> str:
        """sha256 of the parsed config (data.path resolved), stable across runs."""
        blob = json.dumps(self.raw, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def study_hash(self) -> str:
        """sha256 of what a study's trials depend on: not the budget, workers or selection.

        Not data.path either: where the file lives differs between machines sharing a storage,
        and the data itself is checked by the corpus's data_hash. Not model.nthread: XGBoost's
        predictions are identical for any thread count (tested), so workers on machines with
        other core counts can share a study.
        """
        keep = {k: v for k, v in self.raw.items() if k != "select"}
        if isinstance(keep.get("model"), dict) and "nthread" in keep["model"]:
            keep["model"] = {**keep["model"], "nthread": 0}  # as if left at its default
        keep["data"] = {k: v for k, v in self.raw.get("data", {}).items() if k != "path"}
        keep["search"] = {k: v for k, v in self.raw.get("search", {}).items()
                          if k not in ("n_trials", "timeout", "n_jobs")}
        blob = json.dumps(keep, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.raw, default=str))


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


def _section(raw: Mapping[str, Any], key: str, allowed: set[str]) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
    unknown = set(value) - allowed
    if unknown:
        raise ConfigError(
            f"{key}.{sorted(unknown)[0]}: unknown field; allowed: {', '.join(sorted(allowed))}"
        )
    return dict(value)


def _typed(section: dict[str, Any], name: str, path: str, kind: type, default: Any) -> Any:
    if name not in section or section[name] is None:
        return default
    value = section[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"{path}.{name}: expected {kind.__name__}, got {value!r}")
    return value


def _positive_int(section: dict[str, Any], name: str, path: str, default: int, minimum: int) -> int:
    value = _typed(section, name, path, int, default)
    if value < minimum:
        raise ConfigError(f"{path}.{name}: must be >= {minimum}, got {value}")
    return value


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


def parse_config(raw: Mapping[str, Any], *, base_dir: Path, source: Path | None = None) -> Config:
    """Validate a config mapping (what ``yaml.safe_load`` returned)."""
    from moqwk.features import FeatureConfig

    if not isinstance(raw, Mapping):
        raise ConfigError("config: the top level must be a mapping of sections")
    top = {"data", "scale", "features", "cv", "tails", "model", "baseline", "search", "select"}
    unknown = set(raw) - top
    if unknown:
        raise ConfigError(f"{sorted(unknown)[0]}: unknown section; "
                          f"allowed: {', '.join(sorted(top))}")

    d = _section(raw, "data", {"path", "id_column", "text_column", "prompt_column",
                               "score_column", "demo", "demo_seed", "demo_per_prompt_scales"})
    demo = bool(_typed(d, "demo", "data", bool, False))
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
    data = DataConfig(
        path=data_path,
        id_column=_typed(d, "id_column", "data", str, defaults.id_column),
        text_column=_typed(d, "text_column", "data", str, defaults.text_column),
        prompt_column=_typed(d, "prompt_column", "data", str, defaults.prompt_column),
        score_column=_typed(d, "score_column", "data", str, defaults.score_column),
        demo=demo,
        demo_seed=_typed(d, "demo_seed", "data", int, 0),
        demo_per_prompt_scales=bool(_typed(d, "demo_per_prompt_scales", "data", bool, False)),
    )

    s = _section(raw, "scale", {"kind", "min", "max", "step", "per_prompt"})
    kind = _typed(s, "kind", "scale", str, "infer")
    if kind not in ("global", "per_prompt", "infer"):
        raise ConfigError(f"scale.kind: must be global, per_prompt or infer, got {kind!r}")
    if not isinstance(s.get("per_prompt") or {}, Mapping):
        raise ConfigError("scale.per_prompt: expected a mapping {prompt: {min, max, step}}")
    scale = ScaleConfig(
        kind=kind,
        min=_typed(s, "min", "scale", float, None),
        max=_typed(s, "max", "scale", float, None),
        step=_typed(s, "step", "scale", float, None),
        per_prompt=dict(s.get("per_prompt") or {}),
    )
    if kind == "global":
        missing = [k for k in ("min", "max", "step") if getattr(scale, k) is None]
        if missing:
            raise ConfigError(f"scale.{missing[0]}: kind global needs min, max and step "
                              "(e.g. 1.0, 5.0, 0.5)")
        _check_scale("scale", scale.min, scale.max, scale.step)
    if kind == "per_prompt":
        if not isinstance(scale.per_prompt, Mapping) or not scale.per_prompt:
            raise ConfigError("scale.per_prompt: kind per_prompt needs {prompt: {min, max, step}}")
        for p, v in scale.per_prompt.items():
            if not isinstance(v, Mapping) or {"min", "max", "step"} - set(v):
                raise ConfigError(f"scale.per_prompt.{p}: needs min, max and step")
            _check_scale(f"scale.per_prompt.{p}", v["min"], v["max"], v["step"])

    c = _section(raw, "cv", {"n_folds", "repeats", "seed", "min_prompt_n"})
    cv = CVConfig(
        n_folds=_positive_int(c, "n_folds", "cv", 5, 2),
        repeats=_positive_int(c, "repeats", "cv", 1, 1),
        seed=_typed(c, "seed", "cv", int, 42),
        min_prompt_n=_positive_int(c, "min_prompt_n", "cv", 20, 1),
    )

    t = _section(raw, "tails", {"low_band", "high_band", "tolerance"})
    tails = TailConfig(
        low_band=_typed(t, "low_band", "tails", float, 0.25),
        high_band=_typed(t, "high_band", "tails", float, 0.75),
        tolerance=_typed(t, "tolerance", "tails", float, 0.05),
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

    m = _section(raw, "model", {"objective", "nthread"})
    model = ModelConfig(
        objective=_typed(m, "objective", "model", str, "reg:squarederror"),
        nthread=_typed(m, "nthread", "model", int, 0),
    )

    b = _section(raw, "baseline", {"params"})
    params = b.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError("baseline.params: expected a mapping of XGBoost parameters")
    baseline = {**DEFAULT_BASELINE_PARAMS, **params}

    search = _section(raw, "search", {
        "n_trials", "timeout", "sampler", "population_size", "mutation_prob", "crossover",
        "crossover_prob", "swapping_prob", "seed", "space", "seed_neighbours", "n_jobs",
        "initial_configs", "grid"})
    select = _section(raw, "select", {
        "tie_tolerance", "gate_margin", "max_gate_candidates", "n_boot"})

    features = FeatureConfig.from_mapping(raw.get("features"), path="features", base_dir=base_dir)
    normalised = {
        "data": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(data).items()},
        "scale": asdict(scale),
        "features": features.to_dict(),
        "cv": asdict(cv),
        "tails": asdict(tails),
        "model": asdict(model),
        "baseline": {"params": baseline},
        "search": search,
        "select": select,
    }
    return Config(data, scale, features, cv, tails, model, baseline, search, select,
                  source=source, raw=normalised)


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} not found; write one with `moqwk init`")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}: not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if raw is None:
        raise ConfigError(f"{p}: the file is empty; write one with `moqwk init`")
    return parse_config(raw, base_dir=p.resolve().parent, source=p.resolve())
