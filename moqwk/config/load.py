"""The run config: YAML parsed in one place into frozen dataclasses.

Every error names the field path (``cv.n_folds``) and what to do about it. A parsed config
also has a normalised form (``Config.raw``, every default filled in) that a run directory keeps
as its ``config.yaml`` and that the hashes are computed from.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from moqwk.base.fields import dump, unknown_message
from moqwk.config.search import (
    SearchConfig,
    SelectConfig,
    SpaceParam,
    check_feature_space,
    parse_search,
    parse_select,
)
from moqwk.config.sections import (
    BaselineConfig,
    CVConfig,
    DataConfig,
    MappingConfig,
    ModelConfig,
    ObjectivesConfig,
    ScaleConfig,
    TailConfig,
    parse_baseline,
    parse_cv,
    parse_data,
    parse_mapping,
    parse_model,
    parse_objectives,
    parse_scale,
    parse_tails,
)
from moqwk.config.xgb_params import check_param_names
from moqwk.config.yaml_load import load_yaml
from moqwk.core.mapping import DEFAULT_BATCH, METHODS, MappingSpec, spec_to_params
from moqwk.core.objectives import ObjectiveSet
from moqwk.errors import ConfigError

#: Every section but ``features`` (the family registry's), as its declared dataclass: what the
#: parser, the normalised form and the config reference (:mod:`moqwk.config.reference`) read.
DECLARED: dict[str, type] = {
    "data": DataConfig, "scale": ScaleConfig, "cv": CVConfig, "tails": TailConfig,
    "model": ModelConfig, "objectives": ObjectivesConfig, "mapping": MappingConfig,
    "baseline": BaselineConfig, "search": SearchConfig, "select": SelectConfig}
SECTIONS = ("data", "scale", "features", "cv", "tails", "model", "objectives", "mapping",
            "baseline", "search", "select")

#: Fields that never change what a trial computes: where files live, threads, the budget.
_NOT_SCORING: set[tuple[str, ...]] = {("data", "path"), ("model", "nthread"),
                                       ("features", "table", "path")}
#: Fold racing decides how much a trial may spend, not what a finished trial computes (a
#: finished trial's values are the same with racing on or off), so, like the budget and the
#: workers, it is left out of the study hash: a run made before racing existed resumes (with
#: racing on unless its config turns it off), and a study may mix the two.
_NOT_STUDY: set[tuple[str, ...]] = {("search", "n_trials"), ("search", "timeout"),
                                    ("search", "n_jobs"), ("search", "racing"),
                                    ("search", "racing_rungs"), ("search", "racing_margin"),
                                    ("search", "racing_bound"), ("search", "racing_z")}


def _without(d: Mapping[str, Any], paths: set[tuple[str, ...]]) -> dict[str, Any]:
    out = copy.deepcopy(dict(d))
    for p in paths:
        node: Any = out
        for key in p[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, dict):
            node.pop(p[-1], None)
    return out


def _sha(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _minus(d: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``d`` without the values that equal ``defaults`` (recursively; empty sections dropped)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if k not in defaults:
            out[k] = v
        elif isinstance(v, Mapping) and isinstance(defaults[k], Mapping):
            sub = _minus(v, defaults[k])
            if sub:
                out[k] = sub
        elif v != defaults[k]:
            out[k] = v
    return out


_DEFAULTS: dict[str, Any] = {}


#: Defaults as they were when hashes began to leave defaults out. A default that changes later is
#: pinned here at its old value, so a config that relied on the old default hashes differently
#: from one that relies on the new: its runs refuse to be resumed under a changed scoring,
#: instead of silently mixing the two. ``mapping.method`` was ``round`` until ADR 0002;
#: ``features.lexical.enabled`` was ``false`` until ADR 0005; ``model.max_bin`` was 256 until
#: ADR 0006.
_HASH_BASE: dict[str, Any] = {"data": {"demo": True}, "mapping": {"method": "round"},
                              "features": {"lexical": {"enabled": False}},
                              "model": {"max_bin": 256}}


def _default_raw() -> dict[str, Any]:
    """The normalised form of a config that sets nothing (the demo corpus, as data is required),
    with the pinned historical defaults of :data:`_HASH_BASE`."""
    if not _DEFAULTS:
        _DEFAULTS.update(parse_config(_HASH_BASE, base_dir=Path("/")).raw)
    return _DEFAULTS


def _hash_of(d: Mapping[str, Any]) -> str:
    """sha256 of what differs from the defaults: a field moqwk adds later, at its default, does
    not change the hash of a config written before it existed (its runs stay resumable)."""
    return _sha(_minus(_unpin_batch(d), _default_raw()))


def _unpin_batch(d: Mapping[str, Any]) -> dict[str, Any]:
    """``d`` without a transductive mapping's ``params.batch: prompt``: how every such mapping
    was scored before batches were declared (the new default is an integer), so a config that
    says ``batch: prompt`` hashes as configs written before the field did, and their runs can be
    resumed as they were scored."""
    out = copy.deepcopy(dict(d))
    for m in (out.get("mapping"), (out.get("baseline") or {}).get("mapping")):
        if not isinstance(m, dict):
            continue
        params = m.get("params")
        if (isinstance(params, dict) and params.get("batch") == "prompt"
                and m.get("method") in METHODS and METHODS[m["method"]].transductive):
            del params["batch"]
    return out


def diff_paths(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths whose values differ between two normalised configs (sorted)."""
    out = []
    for k in sorted(set(a) | set(b), key=str):
        path = f"{prefix}{k}"
        va, vb = a.get(k), b.get(k)
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out += diff_paths(va, vb, path + ".")
        elif va != vb:
            out.append(path)
    return out


@dataclass(frozen=True)
class Config:
    data: DataConfig
    scale: ScaleConfig
    features: Any  # moqwk.features.FeatureConfig
    cv: CVConfig
    tails: TailConfig
    model: ModelConfig
    objectives_config: ObjectivesConfig
    baseline_params: Mapping[str, Any]
    search: SearchConfig
    select: SelectConfig
    mapping: MappingConfig = field(default_factory=MappingConfig)
    baseline_mapping: MappingSpec = field(default_factory=MappingSpec)
    source: Path | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def baseline_trial_params(self) -> dict[str, Any]:
        """Everything the baseline is scored with: its XGBoost params and, as ``mapping.*``
        keys, its mapping (what ``moqwk cv`` runs and what trial 0 of a search is)."""
        return {**self.baseline_params, **spec_to_params(self.baseline_mapping)}

    @property
    def objectives(self) -> ObjectiveSet:
        """The four objectives the search optimises, with their roles in selection."""
        return self.objectives_config.objective_set()

    @property
    def search_seed(self) -> int:
        """The sampler's seed: ``search.seed``, or ``cv.seed`` when it is not set."""
        return self.cv.seed if self.search.seed is None else self.search.seed

    def hash(self) -> str:
        """sha256 of the whole normalised config (data.path resolved)."""
        return _sha(self.raw)

    def scoring_dict(self) -> dict[str, Any]:
        """What scoring one config depends on: data columns, scale, features, CV, tails, model,
        objectives and the score mapping; not where files live or how many threads run."""
        keep = {k: self.raw[k] for k in ("data", "scale", "features", "cv", "tails", "model",
                                         "objectives", "mapping")}
        return _without(keep, _NOT_SCORING)

    def scoring_hash(self) -> str:
        """sha256 of :meth:`scoring_dict`: runs that share it can be compared and selected."""
        return _hash_of(self.scoring_dict())

    def study_dict(self) -> dict[str, Any]:
        """What a study's trials depend on: the scoring, the baseline and the search settings,
        not the budget, timeout, workers or selection."""
        keep = {**self.scoring_dict(), "baseline": self.raw["baseline"],
                "search": self.raw["search"]}
        batch = self._searched_transductive_batch()
        if batch is not None:
            keep["transductive_batch_default"] = batch
        return _without(keep, _NOT_STUDY)

    def _searched_transductive_batch(self) -> Any:
        """The default ``mapping.params.batch`` a search space relies on when it offers a
        transductive method without searching or setting its batch (None otherwise). Trials of
        such a space were scored with whole prompts before batches were declared; keeping the
        default in the study hash stops a resume from mixing the two scorings."""
        names = {p.name: p for p in self.search.space}
        method = names.get("mapping.method")
        if method is None or "mapping.batch" in names:
            return None
        if not any(c in METHODS and METHODS[c].transductive for c in method.choices):
            return None
        if METHODS[self.mapping.spec.method].transductive:
            return None  # mapping.params holds the batch, already in the hash
        return DEFAULT_BATCH

    def study_hash(self) -> str:
        """sha256 of :meth:`study_dict`.

        Not data.path: where the file lives differs between machines sharing a storage, and the
        data itself is checked by the corpus's data_hash. Not model.nthread: XGBoost's
        predictions are identical for any thread count (tested), so workers on machines with
        other core counts can share a study.
        """
        return _hash_of(self.study_dict())

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.raw, default=str))

    def to_yaml(self) -> str:
        """The normalised config as YAML that :func:`load_config` reads back unchanged."""
        head = ("# The resolved config of this run: every default filled in, paths absolute.\n"
                "# moqwk reads it when a command is given --run-dir without --config.\n")
        return head + yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def with_search(self, **changes: Any) -> Config:
        """This config with ``search`` fields replaced (``--sampler``, ``--seed``)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        raw = self.to_dict()
        raw["search"] = {**raw["search"], **changes}
        return replace(self, search=parse_search(raw), raw=raw)


def parse_config(raw: Mapping[str, Any], *, base_dir: Path, source: Path | None = None) -> Config:
    """Validate a config mapping (what ``yaml.safe_load`` returned)."""
    from moqwk.features import FeatureConfig

    if not isinstance(raw, Mapping):
        raise ConfigError("config: the top level must be a mapping of sections")
    unknown = set(raw) - set(SECTIONS)
    if unknown:
        key = sorted(map(str, unknown))[0]
        raise ConfigError(unknown_message(key, key, SECTIONS, what="section"))
    data = parse_data(raw, base_dir)
    scale = parse_scale(raw)
    cv = parse_cv(raw)
    tails = parse_tails(raw)
    model = parse_model(raw)
    objectives = parse_objectives(raw)
    mapping = parse_mapping(raw)
    baseline, baseline_mapping = parse_baseline(raw)
    search = parse_search(raw)
    _check_xgb_names(raw, search)
    _check_mapping_space(search)
    select = parse_select(raw)
    features = FeatureConfig.from_mapping(raw.get("features"), path="features", base_dir=base_dir)
    check_feature_space(search.space, features)
    check_feature_space(tuple(SpaceParam(k, "categorical", choices=tuple(v))
                              for k, v in search.grid.items()), features, path="search.grid")
    feature_dict = features.to_dict()
    if features.table is not None:  # absolute, so the run directory's copy finds the table
        feature_dict["table"]["path"] = str(features.table.resolved)
    normalised = {
        "data": dump(data),
        "scale": dump(scale),
        "features": feature_dict,
        "cv": dump(cv),
        "tails": dump(tails),
        "model": dump(model),
        "objectives": dump(objectives),
        "mapping": mapping.to_dict(),
        "baseline": dump(BaselineConfig(baseline, baseline_mapping)),
        "search": search.to_dict(),
        "select": select.to_dict(),
    }
    return Config(data, scale, features, cv, tails, model, objectives, baseline, search, select,
                  mapping=mapping, baseline_mapping=baseline_mapping, source=source,
                  raw=json.loads(json.dumps(normalised, default=str)))


def _check_xgb_names(raw: Mapping[str, Any], search: SearchConfig) -> None:
    """Every params mapping the config gives names XGBoost parameters (or moqwk's): a typo
    would otherwise train with XGBoost's default, silently."""
    given = (raw.get("baseline") or {}).get("params") or {}
    check_param_names(given, "baseline.params")
    check_param_names([p.name for p in search.space], "search.space")
    if isinstance(raw.get("search"), Mapping) and raw["search"].get("grid") is not None:
        check_param_names(search.grid, "search.grid")
    for i, c in enumerate(search.initial_configs):
        check_param_names(c, f"search.initial_configs[{i}]")


def _check_mapping_space(search: SearchConfig) -> None:
    """``mapping.*`` entries of the search space must name a mapping method or parameter."""
    known = {k for m in METHODS.values() for k in m.defaults}
    for p in search.space:
        if not p.name.startswith("mapping."):
            continue
        name = p.name[len("mapping."):]
        where = f"search.space.{p.name}"
        if name == "method":
            if p.type != "categorical":
                raise ConfigError(f"{where}: the method is categorical: "
                                  f"{{type: categorical, choices: [{', '.join(METHODS)}]}}")
            bad = [c for c in p.choices if c not in METHODS]
            if bad:
                raise ConfigError(f"{where}.choices: unknown method {bad[0]!r}; choose from "
                                  f"{', '.join(METHODS)}")
        elif name not in known:
            raise ConfigError(f"{where}: not a mapping parameter; known: method, "
                              f"{', '.join(sorted(known))}")


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} not found; write one with `moqwk init`")
    try:
        raw = load_yaml(p.read_text(encoding="utf-8"), source=p)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}: not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if raw is None:
        raise ConfigError(f"{p}: the file is empty; write one with `moqwk init`")
    return parse_config(raw, base_dir=p.resolve().parent, source=p.resolve())
