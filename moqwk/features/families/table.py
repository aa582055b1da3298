"""The researcher's table (``table.<column>``): precomputed per-essay features joined on an id.

Nothing is fitted: the block is the table's rows for the essays at hand. The fitted state
records the file as resolved at fit time and its sha256; ``predict --feature-table`` reads
another file (``EssayData.options["table_path"]``). ``features.table`` absent (``None``) is
the family switched off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from moqwk.base.fields import REQUIRED, dump, read, setting
from moqwk.errors import ConfigError, DataError
from moqwk.features.family import EssayData, Family
from moqwk.features.text import load_table, table_sha256

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def _file(file: Any, path: str) -> str:
    if not isinstance(file, str) or not file.strip():
        raise ConfigError(f"{path}: must be the CSV or Parquet file's path, got {file!r}")
    if Path(file).suffix.lower() not in TABLE_SUFFIXES:
        raise ConfigError(f"{path}: must end in one of {', '.join(TABLE_SUFFIXES)}, got {file!r}")
    return file


def _column(name: Any, path: str) -> str:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: must be a column name, got {name!r}")
    return name


def _columns(columns: Any, path: str) -> tuple[str, ...]:
    if (
        not isinstance(columns, list | tuple)
        or not columns
        or any(not isinstance(c, str) or not c for c in columns)
    ):
        raise ConfigError(f"{path}: must be a non-empty list of column names or null (all), "
                          f"got {columns!r}")
    return tuple(columns)


@dataclass(frozen=True)
class TableConfig:
    """Precomputed per-essay features in a CSV or Parquet file, joined on ``id_column``.

    ``path`` is kept as written (it goes into hashes); ``resolved`` is the absolute file.
    ``columns=None`` takes every column but the id column.
    """

    path: str = setting(
        REQUIRED, kind=None, check=_file,
        type_doc="string ending `" + "`, `".join(TABLE_SUFFIXES) + "`",
        help="the CSV or Parquet file; relative to the config file's directory (`~` "
             "expanded, no `${VAR}`)")
    id_column: str = setting("essay_id", kind=None, check=_column, type_doc="string",
                             help="the table's column holding the corpus ids")
    columns: tuple[str, ...] | None = setting(
        None, kind=None, check=_columns, type_doc="list of strings or null",
        help="feature columns to use; `null` means every column but the id")
    resolved: Path = field(default=Path(), compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return dump(self)


def parse_table(value: Any, path: str, base_dir: Path | None) -> TableConfig:
    m = read(TableConfig, value, path)
    columns = m["columns"]
    if columns is not None:
        dupes = sorted({c for c in columns if list(columns).count(c) > 1})
        if dupes or m["id_column"] in columns:
            bad = dupes or [m["id_column"]]
            raise ConfigError(
                f"{path}.columns: lists {', '.join(bad)} twice or lists the id column; "
                "name each feature column once"
            )
    file = m["path"]
    resolved = (Path(base_dir) if base_dir is not None else Path.cwd()) / Path(file).expanduser()
    return TableConfig(**m, resolved=resolved.resolve())


@dataclass(frozen=True)
class TableState:
    """The file the features were fitted with (as resolved then), its columns and sha256."""

    path: str
    id_column: str
    columns: tuple[str, ...]
    sha256_at_fit: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "id_column": self.id_column, "columns": list(self.columns),
                "sha256_at_fit": self.sha256_at_fit}


class TableFamily(Family):
    name = prefix = "table"
    config_type = TableConfig
    searchable = ()
    needs_ids = True
    accepts_bool = False
    help = ("your own per-essay features from a CSV/Parquet file "
            "([how-to](../how-to/own-features.md)); absent or null: none")

    def default(self) -> None:
        return None

    def parse(self, raw: Any, path: str, base_dir: Path | None) -> TableConfig:
        return parse_table(raw, path, base_dir)

    def to_dict(self, cfg: TableConfig | None) -> dict[str, Any] | None:
        return None if cfg is None else cfg.to_dict()

    def enabled(self, cfg: TableConfig | None) -> bool:
        return cfg is not None

    def fingerprint(self, cfg: TableConfig) -> Any:
        return [cfg.to_dict(), table_sha256(cfg)]  # an edited file is another variant

    def feature_names(self, cfg: TableConfig) -> tuple[str, ...]:
        if cfg.columns is not None:
            return tuple(f"table.{c}" for c in cfg.columns)
        return load_table(cfg, np.asarray([], dtype=str))[1]

    def _rows(self, cfg: TableConfig, data: EssayData) -> np.ndarray:
        def read(ids: np.ndarray, texts: Any) -> np.ndarray:
            return load_table(cfg, ids)[0]

        return data.per_essay(f"table-{table_sha256(cfg)}", read, persist=False)

    def fit(self, cfg: TableConfig, data: EssayData, *, seed: int
            ) -> tuple[TableState, np.ndarray]:
        values = self._rows(cfg, data)
        names = self.feature_names(cfg)
        state = TableState(str(cfg.resolved), cfg.id_column,
                           tuple(n.removeprefix("table.") for n in names), table_sha256(cfg))
        return state, values

    def transform(self, cfg: TableConfig, state: TableState, data: EssayData) -> np.ndarray:
        given = data.options.get("table_path")
        path = Path(given) if given is not None else Path(state.path)
        read_cfg = TableConfig(path=str(path), id_column=state.id_column,
                               columns=tuple(state.columns), resolved=path.resolve())
        if given is None and path == cfg.resolved and read_cfg.columns == cfg.columns:
            return self._rows(cfg, data)  # the store's fold: the table the config names
        try:
            return load_table(read_cfg, data.ids)[0]
        except DataError as e:
            raise DataError(f"{e}; the model reads features.table columns for the essays it "
                            "scores: add their rows to the table, or give another table with "
                            "--feature-table (feature_table= in Python)") from None

    def save_state(self, state: TableState) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return state.to_dict(), {}

    def load_state(self, cfg: TableConfig, meta: Mapping[str, Any],
                   arrays: Mapping[str, np.ndarray]) -> TableState:
        return TableState(str(meta["path"]), str(meta["id_column"]),
                          tuple(str(c) for c in meta["columns"]), str(meta["sha256_at_fit"]))

    def config_for_state(self, cfg: TableConfig, state: TableState) -> TableConfig:
        # the file the features were fitted with, as resolved then, and its columns
        return replace(cfg, columns=state.columns, resolved=Path(state.path))


TABLE = TableFamily()
