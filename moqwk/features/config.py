"""The ``features:`` block of a moqwk config, validated into frozen dataclasses.

Every bad field raises :class:`~moqwk.errors.ConfigError` naming its full path (for example
``features.word.min_df``) and what to write instead. ``FeatureConfig.to_dict()`` is canonical
and JSON-able: the feature store hashes it into every cache key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from moqwk.errors import ConfigError

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
_MAX_NGRAM = 10


@dataclass(frozen=True)
class NgramConfig:
    """One n-gram family: tf-idf over a document-frequency-pruned vocabulary, then TruncatedSVD.

    ``min_df`` / ``max_df`` follow scikit-learn: an int is a count of training essays, a float in
    [0, 1] a share of them. Both are applied to each fold's training essays only.
    """

    enabled: bool = True
    ngram_range: tuple[int, int] = (1, 2)
    min_df: int | float = 2
    max_df: int | float = 0.95
    sublinear_tf: bool = True
    svd_components: int = 64

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "ngram_range": list(self.ngram_range),
            "min_df": self.min_df,
            "max_df": self.max_df,
            "sublinear_tf": self.sublinear_tf,
            "svd_components": self.svd_components,
        }


WORD_DEFAULTS = NgramConfig()
CHAR_DEFAULTS = NgramConfig(ngram_range=(2, 4), min_df=3)


@dataclass(frozen=True)
class TableConfig:
    """Precomputed per-essay features in a CSV or Parquet file, joined on ``id_column``.

    ``path`` is kept as written (it goes into hashes); ``resolved`` is the absolute file.
    ``columns=None`` takes every column but the id column.
    """

    path: str
    id_column: str = "essay_id"
    columns: tuple[str, ...] | None = None
    resolved: Path = field(default=Path(), compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        cols = None if self.columns is None else list(self.columns)
        return {"path": self.path, "id_column": self.id_column, "columns": cols}


@dataclass(frozen=True)
class FeatureConfig:
    """What the feature store builds; ``FeatureConfig()`` is the default configuration."""

    handcrafted: bool = True
    word: NgramConfig = WORD_DEFAULTS
    char: NgramConfig = CHAR_DEFAULTS
    table: TableConfig | None = None
    seed: int = 0

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
        m = _mapping(mapping, path, ("handcrafted", "word", "char", "table", "seed"))
        cfg = cls(
            handcrafted=_bool(m.get("handcrafted", True), f"{path}.handcrafted"),
            word=_ngram(m.get("word"), f"{path}.word", WORD_DEFAULTS),
            char=_ngram(m.get("char"), f"{path}.char", CHAR_DEFAULTS),
            table=_table(m.get("table"), f"{path}.table", base_dir),
            seed=_int(m.get("seed", 0), f"{path}.seed", lo=0, hi=2**32 - 1),
        )
        if not (cfg.handcrafted or cfg.word.enabled or cfg.char.enabled or cfg.table):
            raise ConfigError(
                f"{path}: every feature kind is disabled; set {path}.handcrafted: true, "
                f"enable {path}.word or {path}.char, or give {path}.table"
            )
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON-able form (also what goes into cache keys)."""
        return {
            "handcrafted": self.handcrafted,
            "word": self.word.to_dict(),
            "char": self.char.to_dict(),
            "table": None if self.table is None else self.table.to_dict(),
            "seed": self.seed,
        }


# --------------------------------------------------------------------------- field validators


def _mapping(value: Any, path: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path} must be a mapping, got {type(value).__name__} {value!r}")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise ConfigError(
            f"{path} has unknown key(s) {', '.join(unknown)}; allowed keys: {', '.join(allowed)}"
        )
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{path} must be true or false, got {value!r}")
    return value


def _int(value: Any, path: str, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ConfigError(f"{path} must be a whole number, got {value!r}")
    number = int(value)
    if number < lo or (hi is not None and number > hi):
        bound = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise ConfigError(f"{path} must be {bound}, got {number}")
    return number


def _df(value: Any, path: str) -> int | float:
    """An int count of essays (>= 1) or a float share in [0, 1], as in scikit-learn."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(
            f"{path} must be a whole number of essays (e.g. 2) or a share in [0, 1] "
            f"(e.g. 0.95), got {value!r}"
        )
    if isinstance(value, Integral):
        if value < 1:
            raise ConfigError(f"{path} as a count of essays must be >= 1, got {value}")
        return int(value)
    if not 0.0 <= float(value) <= 1.0:
        raise ConfigError(
            f"{path} as a share of essays must be in [0, 1], got {value}; "
            "write a whole number (e.g. 5) for a count"
        )
    return float(value)


def _ngram(value: Any, path: str, defaults: NgramConfig) -> NgramConfig:
    if value is None:
        return defaults
    allowed = ("enabled", "ngram_range", "min_df", "max_df", "sublinear_tf", "svd_components")
    if isinstance(value, bool):
        raise ConfigError(
            f"{path} must be a mapping; write {path}: {{enabled: {str(value).lower()}}}"
        )
    m = _mapping(value, path, allowed)
    rng = m.get("ngram_range", list(defaults.ngram_range))
    if (
        not isinstance(rng, list | tuple)
        or len(rng) != 2
        or any(isinstance(v, bool) or not isinstance(v, Integral) for v in rng)
        or not 1 <= rng[0] <= rng[1] <= _MAX_NGRAM
    ):
        raise ConfigError(
            f"{path}.ngram_range must be two whole numbers [low, high] with "
            f"1 <= low <= high <= {_MAX_NGRAM}, got {rng!r}"
        )
    min_df = _df(m.get("min_df", defaults.min_df), f"{path}.min_df")
    max_df = _df(m.get("max_df", defaults.max_df), f"{path}.max_df")
    if type(min_df) is type(max_df) and max_df < min_df:
        raise ConfigError(
            f"{path}.max_df ({max_df}) is below {path}.min_df ({min_df}); no term could be kept"
        )
    return NgramConfig(
        enabled=_bool(m.get("enabled", defaults.enabled), f"{path}.enabled"),
        ngram_range=(int(rng[0]), int(rng[1])),
        min_df=min_df,
        max_df=max_df,
        sublinear_tf=_bool(m.get("sublinear_tf", defaults.sublinear_tf), f"{path}.sublinear_tf"),
        svd_components=_int(
            m.get("svd_components", defaults.svd_components), f"{path}.svd_components", lo=1
        ),
    )


def _table(value: Any, path: str, base_dir: Path | None) -> TableConfig | None:
    if value is None:
        return None
    m = _mapping(value, path, ("path", "id_column", "columns"))
    file = m.get("path")
    if not isinstance(file, str) or not file.strip():
        raise ConfigError(f"{path}.path must be the CSV or Parquet file's path, got {file!r}")
    if Path(file).suffix.lower() not in TABLE_SUFFIXES:
        raise ConfigError(
            f"{path}.path must end in one of {', '.join(TABLE_SUFFIXES)}, got {file!r}"
        )
    id_column = m.get("id_column", "essay_id")
    if not isinstance(id_column, str) or not id_column:
        raise ConfigError(f"{path}.id_column must be a column name, got {id_column!r}")
    columns = m.get("columns")
    if columns is not None:
        if (
            not isinstance(columns, list | tuple)
            or not columns
            or any(not isinstance(c, str) or not c for c in columns)
        ):
            raise ConfigError(
                f"{path}.columns must be a non-empty list of column names or null (all), "
                f"got {columns!r}"
            )
        dupes = sorted({c for c in columns if list(columns).count(c) > 1})
        if dupes or id_column in columns:
            bad = dupes or [id_column]
            raise ConfigError(
                f"{path}.columns lists {', '.join(bad)} twice or lists the id column; "
                "name each feature column once"
            )
        columns = tuple(columns)
    resolved = (Path(base_dir) if base_dir is not None else Path.cwd()) / Path(file).expanduser()
    return TableConfig(path=file, id_column=id_column, columns=columns, resolved=resolved.resolve())
