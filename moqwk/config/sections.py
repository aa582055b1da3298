"""The corpus, scale, CV, tails, model, baseline and objectives sections of a config."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moqwk.base.fields import dump, mapping, parse, read, setting
from moqwk.core.mapping import METHODS, MappingSpec
from moqwk.core.objectives import (
    DEFAULT_OBJECTIVES,
    ObjectiveSet,
    candidates,
    worst_prompt_choices,
)
from moqwk.core.splits import HOLDOUT_UNITS
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
    path: Path | None = setting(
        None, kind=None, check=lambda v, p: _path_string(v, p), type_doc="string",
        default_doc="required unless `demo: true`",
        help="CSV or Parquet (`.parquet`, `.pq`) corpus. A relative path is relative to **the "
             "config file's directory**. `${VAR}` and `${VAR:-default}` are expanded from the "
             "environment; an unset `${VAR}` without a default is an error, and an empty "
             "variable counts as unset. Only this field is expanded. Parquet needs `pyarrow` "
             "(`pip install 'moqwk[parquet]'`).")
    id_column: str = setting("essay_id", help="unique essay id; read as text")
    text_column: str = setting("text", help="essay text; must be non-empty")
    prompt_column: str = setting("prompt", help="prompt name; read as text")
    score_column: str = setting("score", help="human score; numeric, on the scale below")
    demo: bool = setting(False, help="use the built-in synthetic corpus (720 essays, 10 "
                                     "prompts) when `path` is not given; the column fields are "
                                     "then ignored")
    demo_seed: int = setting(0, help="seed of the demo corpus")
    demo_per_prompt_scales: bool = setting(
        False, help="give each demo prompt its own integer scale (0-3 up to 0-60) instead of "
                    "1.0-5.0 in steps of 0.5")


def _path_string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{path}: expected a string path, got {value!r}")
    return value


def _per_prompt(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected a mapping {{prompt: {{min, max, step}}}}")
    return {str(p): v for p, v in value.items()}


@dataclass(frozen=True)
class ScaleConfig:
    kind: str = setting("infer", choices=("global", "per_prompt", "infer"),
                        help="one scale for every prompt, one per prompt, or inferred from the "
                             "scores every time the corpus loads")
    min: float | None = setting(None, kind=float, default_doc="-",
                                help="`global`: lowest score (required)")
    max: float | None = setting(None, kind=float, default_doc="-",
                                help="`global`: highest score (required, > `min`)")
    step: float | None = setting(None, kind=float, default_doc="-",
                                 help="`global`: distance between levels (required, > 0; "
                                      "`max - min` must be a whole number of steps)")
    per_prompt: Mapping[str, Mapping[str, float]] = setting(
        {}, check=_per_prompt, type_doc="mapping",
        help="`per_prompt`: `{PROMPT: {min, max, step}}` with the same rules; every prompt in "
             "the data needs an entry (exit 3 otherwise), extra entries are ignored")


@dataclass(frozen=True)
class CVConfig:
    n_folds: int = setting(5, lo=2, help="folds per assignment; `prompt_holdout` needs at least "
                                         "this many prompts")
    repeats: int = setting(1, lo=1, help="fold assignments; per-prompt QWK is averaged over "
                                         "them before the worst and mean are taken")
    seed: int = setting(42, help="fold seed; also XGBoost's `seed`, the tie-tolerance bootstrap "
                                 "seed, the default `search.seed` of the sampler, and the base "
                                 "of `compare`'s default fresh seed (`cv.seed + 1000`)")
    min_prompt_n: int = setting(20, lo=1, help="prompts with fewer essays are scored and "
                                               "reported but left out of worst-prompt and mean "
                                               "QWK")

    holdout: float | None = setting(
        None, kind=float, lo=0, hi=0.5, lo_open=True, type_doc="share in (0, 0.5] or null",
        default_doc="`null` (off)",
        help="essays reserved before any fold is made. No search, CV, tie band, stability "
             "gate, BBC-CV or `compare` sees them: every command works on the other essays "
             "(the *development* essays). `moqwk select` scores its choice on them once, after "
             "choosing (`holdout` in `selected_params.json`). Recorded in `splits.json`; a run "
             "never changes its holdout. `moqwk fit` still fits on every essay. What the number "
             "means: [method](../explanation/method.md#the-holdout-unseen-essays-scored-once)")
    holdout_unit: str = setting(
        "essays", choices=HOLDOUT_UNITS,
        help="`essays`: within each prompt, `round(share x n)` of its n essays (never all), a "
             "sample stratified by score level and seeded; it measures the optimism of "
             "selecting on these essays, the target is unseen essays of the same prompts. "
             "`prompts`: `round(share x P)` whole prompts (at least one; at least `cv.n_folds` "
             "must remain), the target is unseen prompts. Only with `cv.holdout`")
    holdout_seed: int | None = setting(
        None, kind=int, type_doc="int or null", default_doc="`null` (`cv.seed`)",
        help="the seed of the holdout's draw. Only with `cv.holdout`")

    @property
    def holdout_draw_seed(self) -> int:
        """The seed the holdout is drawn with: ``cv.holdout_seed``, else ``cv.seed``."""
        return self.seed if self.holdout_seed is None else self.holdout_seed


def _band(value: float, path: str) -> float:
    if not 0 <= value <= 1:
        raise ConfigError(f"{path}: must lie in [0, 1] (normalised units: 0 is the bottom of a "
                          f"scale, 1 the top), got {value}")
    return value


@dataclass(frozen=True)
class TailConfig:
    low_band: float = setting(0.25, check=_band, type_doc="number in [0, 1]",
                              help="low tail: essays whose true normalised score is <= this "
                                   "(on 1.0-5.0: score <= 2.0)")
    high_band: float = setting(0.75, check=_band, type_doc="number in [0, 1]",
                               help="high tail: true normalised score >= this (on 1.0-5.0: "
                                    "score >= 4.0); must exceed `low_band`")
    tolerance: float = setting(0.05, lo=0, help="guardrail: a trial is feasible when each tail "
                                                "MAE is at most the baseline's + this (0.05 is "
                                                "0.2 points on 1.0-5.0)")


@dataclass(frozen=True)
class ModelConfig:
    objective: str = setting("reg:squarederror",
                             help="XGBoost objective. The target is the normalised score in "
                                  "[0, 1]; an `objective` key in the params overrides this.")
    nthread: int = setting(0, lo=0, help="XGBoost threads per model; `0` means the usable cores "
                                         "divided by the trials running at once in this "
                                         "process (`--n-jobs`), at least 1")
    max_bin: int = setting(32, lo=2, help="histogram bins per feature in XGBoost's `hist` "
                                          "trees (XGBoost's own default, and moqwk's before "
                                          "issue 18, is 256); a `max_bin` key in the params "
                                          "overrides this. 32 bins trained in a quarter of the "
                                          "time of 256 and scored the same within noise on "
                                          "three corpora: [research note](../research/max-bin.md)")


#: ``objectives.worst_prompt``: how the primary objective summarises the per-prompt QWKs
#: (estimator name -> metric name; the metric registry's primary worst-prompt entries at import).
WORST_PROMPT_ESTIMATORS: Mapping[str, str] = worst_prompt_choices()


@dataclass(frozen=True)
class ObjectivesConfig:
    """The ``objectives:`` section. Its choices are read from the metric registry
    (:mod:`moqwk.core.objectives`) when a config is parsed: ``worst_prompt`` names a primary
    metric's estimator, ``secondary`` a metric that may take the secondary role."""

    worst_prompt: str = setting(
        "min", choices=lambda: tuple(worst_prompt_choices()),
        help="how the primary objective summarises the per-prompt QWKs of the prompts with at "
             "least `cv.min_prompt_n` essays. `min`: the worst prompt's QWK "
             "(`worst_prompt_qwk`). `cvar10`: the mean QWK of the worst 10% of those prompts, "
             "at least one (`cvar10_prompt_qwk`). `eb_min`: the minimum after an "
             "empirical-Bayes shrinkage of each prompt's QWK toward the mean, more for prompts "
             "whose QWK is noisier (`eb_worst_prompt_qwk`; each prompt's sampling variance by "
             "Lin's delta method), capped at the mean per-prompt QWK: a worst prompt cannot "
             "read better than the average one, which the precision-weighted shrinkage target "
             "allowed when large prompts score higher than small ones. Every table and "
             "artifact names the objective by its own label. The secondary objective is "
             "`objectives.secondary`; the tail objectives are fixed: low-tail MAE, high-tail "
             "MAE. Why `min` is the "
             "default: ADR [0004](../decisions/0004-worst-prompt-objective.md).")
    secondary: str = setting(
        DEFAULT_OBJECTIVES.secondary, choices=lambda: candidates("secondary"),
        help="the objective that breaks ties inside the tie band of the primary one (the "
             "lexicographic rule's second key), optimised by the search as the second "
             "objective. The choices are the entries of the metric registry "
             "(`moqwk/core/objectives.py`) whose roles include `secondary`: a new one is one "
             "entry there ([how-to](../how-to/own-features.md#add-an-objective-or-a-selection-"
             "rule)). At its default it leaves the study hash of older runs unchanged, so they "
             "resume.")

    def objective_set(self) -> ObjectiveSet:
        return ObjectiveSet(primary=worst_prompt_choices()[self.worst_prompt],
                            secondary=self.secondary, tails=DEFAULT_OBJECTIVES.tails)


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
    d = read(DataConfig, raw.get("data"), "data")
    if d["path"] is None and not d["demo"]:
        raise ConfigError("data.path: missing; give the corpus CSV/Parquet path or set "
                          "data.demo: true")
    if d["path"] is not None:
        data_path = Path(expand_env(d["path"])).expanduser()
        d["path"] = data_path if data_path.is_absolute() else (base_dir / data_path).resolve()
    return DataConfig(**d)


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
    scale = parse(ScaleConfig, raw.get("scale"), "scale")
    if scale.kind == "global":
        missing = [k for k in ("min", "max", "step") if getattr(scale, k) is None]
        if missing:
            raise ConfigError(f"scale.{missing[0]}: kind global needs min, max and step "
                              "(e.g. 1.0, 5.0, 0.5)")
        _check_scale("scale", scale.min, scale.max, scale.step)
    if scale.kind == "per_prompt":
        if not scale.per_prompt:
            raise ConfigError("scale.per_prompt: kind per_prompt needs {prompt: {min, max, step}}")
        for p, v in scale.per_prompt.items():
            if not isinstance(v, Mapping) or {"min", "max", "step"} - set(v):
                raise ConfigError(f"scale.per_prompt.{p}: needs min, max and step")
            _check_scale(f"scale.per_prompt.{p}", v["min"], v["max"], v["step"])
    return scale


def parse_cv(raw: Mapping[str, Any]) -> CVConfig:
    cv: CVConfig = parse(CVConfig, raw.get("cv"), "cv")
    if cv.holdout is None:  # a run's config.yaml writes every default: holdout_unit essays
        for name, default in (("holdout_unit", "essays"), ("holdout_seed", None)):
            if getattr(cv, name) != default:
                raise ConfigError(f"cv.{name}: has no effect without cv.holdout; set "
                                  "cv.holdout (a share in (0, 0.5], e.g. 0.2) or drop it")
    return cv


def parse_tails(raw: Mapping[str, Any]) -> TailConfig:
    tails: TailConfig = parse(TailConfig, raw.get("tails"), "tails")
    if not tails.low_band < tails.high_band:
        raise ConfigError(
            f"tails.low_band: must be below tails.high_band (normalised units), "
            f"got {tails.low_band} and {tails.high_band}"
        )
    return tails


def parse_model(raw: Mapping[str, Any]) -> ModelConfig:
    model: ModelConfig = parse(ModelConfig, raw.get("model"), "model")
    return model


#: ``mapping.method`` when the config does not say: chosen by the pre-registered score-mapping
#: benchmark on ELLIPSE (ADR 0002). The guardrail baseline keeps ``round`` (``baseline.mapping``).
DEFAULT_MAPPING_METHOD = "stretch"


def _params(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected a mapping of the method's parameters")
    return {str(k): v for k, v in value.items()}


def _checked_spec(method: str, params: Mapping[str, Any], path: str) -> MappingSpec:
    try:
        return MappingSpec(method, params)
    except ValueError as e:  # the core names mapping.params.X; give the full path
        raise ConfigError(str(e).replace("mapping.", f"{path}.", 1)) from None


#: ``mapping.inner_features``: the first is the default.
INNER_FEATURES = ("refit", "reuse")


@dataclass(frozen=True)
class MappingConfig:
    """``mapping:``: how a raw prediction becomes a score (see :mod:`moqwk.core.mapping`);
    ``params`` holds every parameter of the method (the given ones over its defaults)."""

    method: str = setting(
        DEFAULT_MAPPING_METHOD, choices=lambda: tuple(METHODS),
        type_doc="one of the methods below",
        help="the mapping every trial uses unless the search space draws `mapping.method`. The "
             "default was `round` until the pre-registered score-mapping benchmark chose "
             "`stretch` ([ADR 0002](../decisions/0002-score-mapping.md)); the baseline "
             "(`baseline.mapping`) keeps `round`. A run made before that change, from a config "
             "that did not name a method, is a different config now: resume it with "
             "`mapping: {method: round}`")
    params: Mapping[str, Any] = setting(
        {}, check=_params, type_doc="mapping", default_doc="`{}`",
        help="the method's parameters (below); unknown ones are an error naming them")
    #: Prompt-grouped inner folds whose out-of-sample predictions label-based methods
    #: (a fitted stretch, thresholds) are fitted on.
    inner_folds: int = setting(
        3, lo=2,
        help="label-based methods (a fitted `stretch`, `thresholds`) are fitted in each fold "
             "on the training essays' inner cross-fitted predictions: this many inner folds "
             "(prompt-grouped under `prompt_holdout`, stratified under `stratified_text`), "
             "features refitted on each inner training set (a fold's inner sets build at once "
             "on the trial's share of the cores: all of them when one trial runs, one each "
             "when `search.n_jobs` trials share them). Costs about this many extra model "
             "fits per fold, once per XGBoost config (raw predictions are cached).")
    inner_features: str = setting(
        "refit", choices=INNER_FEATURES,
        help="the features those inner models train on. `refit`: fitted on each inner training "
             "part (fully nested, ADR 0002). `reuse`: the outer fold's features (fitted on all "
             "its training essays' texts, no label), sliced to each inner part, so no inner "
             "feature set is built; the inner held-out prompts' texts were then seen by the "
             "unsupervised feature fit, which shifts the inner predictions and so the fitted "
             "mapping. No outer held-out essay enters either. `fit` fits the final mapping the "
             "same way (its cross-fit reuses the features fitted on the whole fit corpus). "
             "Measured cost and agreement: [research note](../research/inner-cross-fit.md) "
             "(ELLIPSE, 4 XGBoost configs: a cold trial costs 0.56x the CPU, 0.26x the wall "
             "time of `refit`; a warm trial the same; mean per-prompt QWK 0.020-0.032 lower in "
             "every config, 2.4-4.3 paired SEs, high-tail MAE worse; the same top config. So "
             "`refit` stays the default and `reuse` is for exploratory runs dominated by cold "
             "feature builds, not for reported numbers). Part of the study hash and of the "
             "inner predictions' cache key: a run cannot be resumed with the other value.")

    def __post_init__(self) -> None:
        spec = MappingSpec(self.method, self.params)
        object.__setattr__(self, "params", dict(spec.params))

    @functools.cached_property
    def spec(self) -> MappingSpec:
        return MappingSpec(self.method, self.params)

    def to_dict(self) -> dict[str, Any]:
        return dump(self)


def parse_mapping(raw: Mapping[str, Any]) -> MappingConfig:
    m = read(MappingConfig, raw.get("mapping"), "mapping")
    spec = _checked_spec(m["method"], m["params"], "mapping")
    return MappingConfig(method=spec.method, params=spec.params, inner_folds=m["inner_folds"],
                         inner_features=m["inner_features"])


def _baseline_params(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected a mapping of XGBoost parameters")
    bad = [str(k) for k in value if str(k).startswith("mapping.")]
    if bad:
        raise ConfigError(f"{path}.{bad[0]}: the baseline's mapping goes in "
                          "baseline.mapping: {method: ..., params: {...}}")
    return {**DEFAULT_BASELINE_PARAMS, **{str(k): v for k, v in value.items()}}


def _baseline_mapping(value: Any, path: str) -> MappingSpec:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected {{method: ..., params: {{...}}}}")
    m = mapping(value, path, ("method", "params"))
    method = m.get("method") or "round"
    if method not in METHODS:
        raise ConfigError(f"{path}.method: must be one of {', '.join(METHODS)}, got {method!r}")
    return _checked_spec(method, _params(m.get("params") or {}, f"{path}.params"), path)


@dataclass(frozen=True)
class BaselineConfig:
    """``baseline:``: the reference every trial is measured against (trial 0, the guardrails,
    the stability gate)."""

    params: Mapping[str, Any] = setting(
        dict(DEFAULT_BASELINE_PARAMS), check=_baseline_params, type_doc="mapping",
        default_doc="see below",
        help="XGBoost parameters of the baseline, merged over the defaults. The baseline's "
             "params are what `moqwk cv` runs without `--params` (with the config's "
             "`mapping:`, not `baseline.mapping`: `moqwk cv` scores the pipeline the config "
             "describes; `--mapping round` scores the baseline's rounding), trial 0 of every "
             "search, the source of the guardrails, and the reference of the stability gate.")
    mapping: MappingSpec = setting(
        MappingSpec("round"), check=_baseline_mapping, type_doc="`{method, params}`",
        default_doc="`{method: round}`",
        help="the baseline's score mapping: `method` (a mapping method, `round` when not "
             "given) and `params` (as `mapping.params`). Trial 0 and the guardrails keep "
             "today's scoring unless this says otherwise (`moqwk cv` does not use it: it "
             "scores `mapping:`)")


def parse_baseline(raw: Mapping[str, Any]) -> tuple[dict[str, Any], MappingSpec]:
    """The baseline's XGBoost params (merged over the defaults) and its mapping (``round``
    unless ``baseline.mapping`` says otherwise: the guardrails keep today's scoring)."""
    b: BaselineConfig = parse(BaselineConfig, raw.get("baseline"), "baseline")
    return dict(b.params), b.mapping


def parse_objectives(raw: Mapping[str, Any]) -> ObjectivesConfig:
    objectives: ObjectivesConfig = parse(ObjectivesConfig, raw.get("objectives"), "objectives")
    return objectives
