"""The ``features:`` block of a moqwk config: one validated config per registered family.

Every bad field raises :class:`~moqwk.errors.ConfigError` naming its full path (for example
``features.word.min_df``) and what to write instead. ``FeatureConfig.to_dict()`` is canonical
and JSON-able. The families and their order come from :data:`moqwk.features.registry.FAMILIES`.

``features.<family>.<field>`` keys of a trial's params (drawn from ``search.space``) give a
*variant* of the config: :meth:`FeatureConfig.with_params`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moqwk.base.fields import read, setting
from moqwk.errors import ConfigError
from moqwk.features.families.ngram import CHAR_DEFAULTS, WORD_DEFAULTS, NgramConfig
from moqwk.features.families.table import TABLE_SUFFIXES, TableConfig

__all__ = ["CHAR_DEFAULTS", "PARAM_PREFIX", "TABLE_SUFFIXES", "WORD_DEFAULTS", "FeatureConfig",
           "NgramConfig", "TableConfig", "feature_params", "split_param"]

#: Trial params whose name starts with this configure a feature family.
PARAM_PREFIX = "features."


def _families() -> dict[str, Any]:
    from moqwk.features.registry import FAMILIES

    return FAMILIES


@dataclass(frozen=True, init=False)
class FeatureConfig:
    """What the feature store builds: each family's config, in registry order, and the seed.

    ``FeatureConfig()`` is the default configuration. A family's config is ``cfg.family(name)``
    or, for short, ``cfg.<name>`` (``cfg.word``, ``cfg.table``); keyword arguments of the
    constructor set families by name (``FeatureConfig(handcrafted=False, seed=1)``).
    """

    families: tuple[tuple[str, Any], ...]
    seed: int = setting(0, lo=0, hi=2**32 - 1, type_doc="int in [0, 2^32-1]",
                        help="`random_state` of the TruncatedSVDs")

    def __init__(self, families: Mapping[str, Any] | None = None, seed: int = 0,
                 **by_name: Any) -> None:
        registry = _families()
        given = {**dict(families or {}), **by_name}
        unknown = sorted(set(given) - set(registry))
        if unknown:
            raise TypeError(f"unknown feature family {unknown[0]!r}; known: {', '.join(registry)}")
        out = []
        for name, fam in registry.items():
            cfg = given.get(name, fam.default())
            if isinstance(cfg, bool) and not isinstance(fam.default(), bool | None):
                cfg = fam.parse(cfg, f"features.{name}", None)
            out.append((name, cfg))
        object.__setattr__(self, "families", tuple(out))
        object.__setattr__(self, "seed", int(seed))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("families", "seed"):
            raise AttributeError(name)
        for n, cfg in self.families:
            if n == name:
                return cfg
        raise AttributeError(f"FeatureConfig has no family {name!r}")

    def family(self, name: str) -> Any:
        """The config of family ``name``."""
        return dict(self.families)[name]

    def replace_family(self, name: str, cfg: Any) -> FeatureConfig:
        """This config with family ``name``'s config replaced."""
        return FeatureConfig({**dict(self.families), name: cfg}, seed=self.seed)

    def enabled(self) -> Iterator[tuple[str, Any]]:
        """``(name, config)`` of the families that contribute columns, in column order."""
        registry = _families()
        for name, cfg in self.families:
            if registry[name].enabled(cfg):
                yield name, cfg

    def enabled_names(self) -> list[str]:
        return [n for n, _ in self.enabled()]

    @classmethod
    def from_mapping(
        cls,
        mapping: Mapping[str, Any] | None,
        path: str = "features",
        base_dir: Path | None = None,
    ) -> FeatureConfig:
        """Validate a ``features:`` mapping (``None`` means all defaults).

        ``base_dir`` anchors a relative ``table.path`` (default: the working directory).
        """
        if mapping is None:
            return cls()
        registry = _families()
        m = read(cls, mapping, path, also=registry)
        families = {name: fam.parse(m[name], f"{path}.{name}", base_dir)
                    for name, fam in registry.items() if m.get(name) is not None}
        cfg = cls(families, seed=m["seed"])
        if not any(True for _ in cfg.enabled()):
            raise ConfigError(
                f"{path}: every feature kind is disabled; set {path}.handcrafted: true, "
                f"enable {path}.word or {path}.char, or give {path}.table"
            )
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON-able form (what the normalised config records)."""
        registry = _families()
        out = {name: registry[name].to_dict(cfg) for name, cfg in self.families}
        out["seed"] = self.seed
        return out

    # ------------------------------------------------------------------ variants

    def with_params(self, params: Mapping[str, Any], path: str = "params") -> FeatureConfig:
        """This config with the ``features.<family>.<field>`` keys of ``params`` applied
        (other keys are ignored); each value is validated as the config validates it."""
        changes: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            if key.startswith(PARAM_PREFIX):
                name, fld = split_param(key, where=f"{path}.{key}")
                changes.setdefault(name, {})[fld] = value
        if not changes:
            return self
        registry = _families()
        families = dict(self.families)
        for name, fields in changes.items():
            fam = registry[name]
            raw = {**fam.to_mapping(families[name]), **fields}
            families[name] = fam.parse(raw, f"features.{name}", None)
        cfg = FeatureConfig(families, seed=self.seed)
        if not any(True for _ in cfg.enabled()):
            keys = ", ".join(sorted(k for k in params if k.startswith(PARAM_PREFIX)))
            raise ConfigError(f"{path}: {keys} switch off every feature family; keep one on")
        return cfg

    def params(self, names: Any) -> dict[str, Any]:
        """The current values of the ``features.<family>.<field>`` keys ``names`` (the others
        are skipped): what the baseline trial records for a space that names them."""
        registry = _families()
        out = {}
        for key in names:
            if not str(key).startswith(PARAM_PREFIX):
                continue
            name, fld = split_param(key, where=key)
            value = registry[name].to_mapping(self.family(name)).get(fld)
            out[key] = list(value) if isinstance(value, tuple) else value
        return out


def split_param(key: str, *, where: str) -> tuple[str, str]:
    """``features.<family>.<field>`` -> ``(family, field)``; ConfigError naming ``where``."""
    registry = _families()
    parts = key[len(PARAM_PREFIX):].split(".")
    if len(parts) != 2 or parts[0] not in registry:
        raise ConfigError(f"{where}: expected features.<family>.<field> with a family among "
                          f"{', '.join(registry)}")
    name, fld = parts
    if fld not in registry[name].searchable:
        allowed = ", ".join(registry[name].searchable) or "none"
        raise ConfigError(f"{where}: {fld!r} of features.{name} cannot be searched; "
                          f"searchable fields: {allowed}")
    return name, fld


def feature_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``features.*`` keys of a trial's params."""
    return {k: v for k, v in params.items() if k.startswith(PARAM_PREFIX)}
