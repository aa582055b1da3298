"""Features fitted once and applied to new essays later: no refitting, no pickle.

:meth:`FittedFeatures.fit` fits every enabled family of the config
(:data:`moqwk.features.registry.FAMILIES`) on a set of essays with the very calls
:meth:`moqwk.features.FeatureStore.fold` makes for a fold's training essays
(:meth:`~moqwk.features.family.Family.fit`), and keeps each family's fitted state;
:meth:`FittedFeatures.transform` applies them (:meth:`~moqwk.features.family.Family.transform`).
Fitted on the training essays of a fold, the transform of the validation texts equals that
fold's ``X_val`` bit for bit, and the training matrix equals its ``X_train`` (a test checks
both): rows are fitted in id order as the store fits them, and the code path is the same.

:meth:`FittedFeatures.save` writes ``features.npz`` (each family's numeric arrays, named
``<family>.<array>``; strings as UTF-8 byte blobs; read back with ``allow_pickle=False``) and
``features.json`` (format version, versions, config, names, each family's JSON state, the
arrays' sha256). Loading executes nothing from the directory.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moqwk.base.artifacts import sha256_file
from moqwk.base.atomic import atomic_write, atomic_write_text, read_npz
from moqwk.errors import ConfigError, DataError, ModelError
from moqwk.features.config import FeatureConfig
from moqwk.features.family import Essays
from moqwk.features.registry import FAMILIES
from moqwk.features.store import FEATURE_CODE_VERSION, FeatureStore, _versions

#: Version of the files :meth:`FittedFeatures.save` writes; bump when their layout changes.
#: 2: one record per feature family (``families``), arrays named ``<family>.<array>``.
FITTED_FORMAT_VERSION = 2
ARRAYS_FILE = "features.npz"
META_FILE = "features.json"
_FORMAT = "moqwk-fitted-features"


def _check_texts(ids: np.ndarray, texts: Sequence[str]) -> None:
    if ids.ndim != 1 or len(ids) != len(texts):
        raise DataError(f"need one id per text, got {ids.shape} ids, {len(texts)} texts")
    bad = [str(i) for i, t in zip(ids, texts, strict=True) if not isinstance(t, str)]
    if bad:
        raise DataError(f"essay texts must be strings; not so for ids {', '.join(bad[:5])}")


@dataclass(frozen=True)
class FittedFeatures:
    """The feature families fitted on a set of essays; :meth:`transform` applies them."""

    config: FeatureConfig
    feature_names: tuple[str, ...]
    #: ``(family name, fitted state)`` of each enabled family, in column order.
    states: tuple[tuple[str, Any], ...]
    fitted_on: dict[str, Any]
    key: str
    versions: dict[str, str]

    # ------------------------------------------------------------------ fit and transform

    @classmethod
    def fit(cls, ids: Sequence[str] | np.ndarray, texts: Sequence[str],
            config: FeatureConfig) -> tuple[FittedFeatures, np.ndarray]:
        """Fit on these essays; return the fitted features and their float32 training matrix.

        The matrix's rows follow ``ids``; it equals ``FeatureStore.fold(train, val).X_train``
        for a fold whose training essays are these.
        """
        ids = np.asarray(ids).astype(str)
        texts = list(texts)
        _check_texts(ids, texts)
        if len(ids) < 2:
            raise DataError(f"fitting features needs at least 2 essays, got {len(ids)}")
        # The store's content hash, duplicate-id check and key: the key of the fold with these
        # training essays and no validation essay (its cache directory is never touched).
        store = FeatureStore(ids, texts, config, cache_dir=Path("/nonexistent"))
        key = store.key(np.arange(len(ids)), np.arange(0))
        order = np.argsort(ids, kind="stable")  # fitted in id order, as the store fits a fold
        data = Essays(ids[order], [texts[i] for i in order])
        blocks, states = [], []
        for name, cfg in config.enabled():
            fam = FAMILIES[name]
            state, block = fam.fit(cfg, data, seed=config.seed)
            d = len(fam.feature_names(cfg))
            blocks.append(np.asarray(block).astype(np.float32).reshape(len(ids), d))
            states.append((name, state))
        X_sorted = np.hstack(blocks)
        X = np.empty_like(X_sorted)
        X[order] = X_sorted
        X.flags.writeable = False
        out = cls(config=config, feature_names=store.feature_names, states=tuple(states),
                  fitted_on={"n_essays": len(ids), "corpus_hash": store.corpus_hash},
                  key=key, versions=_versions())
        return out, X

    def transform(self, texts: Sequence[str], *, ids: Sequence[str] | np.ndarray | None = None,
                  table_path: Path | None = None) -> np.ndarray:
        """Features of new essays, ``(len(texts), len(feature_names))`` float32, no refitting.

        ``ids`` are needed only with a ``features.table``: its rows are read for these ids from
        ``table_path`` (default: the table the features were fitted with).
        """
        texts = list(texts)
        needing = [name for name, _ in self.states if FAMILIES[name].needs_ids]
        if ids is None and needing:
            raise DataError(f"these features include features.{needing[0]}: pass the essays' "
                            "ids so their rows can be read")
        id_arr = (np.asarray(ids).astype(str) if ids is not None
                  else np.asarray([str(i) for i in range(len(texts))]))
        _check_texts(id_arr, texts)
        options = {} if table_path is None else {"table_path": Path(table_path)}
        data = Essays(id_arr, texts, options)
        blocks = []
        for name, state in self.states:
            fam = FAMILIES[name]
            cfg = self.config.family(name)
            d = len(fam.feature_names(cfg))
            blocks.append(np.asarray(fam.transform(cfg, state, data)).astype(np.float32)
                          .reshape(len(texts), d))
        return np.hstack(blocks).reshape(len(texts), len(self.feature_names))

    # ------------------------------------------------------------------ save and load

    def _saved(self) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
        records, arrays = [], {}
        for name, state in self.states:
            meta, arrs = FAMILIES[name].save_state(state)
            records.append({"name": name, "version": FAMILIES[name].version, "state": meta,
                            "arrays": sorted(arrs)})
            arrays.update({f"{name}.{k}": v for k, v in arrs.items()})
        return records, arrays

    def save(self, directory: Path) -> dict[str, str]:
        """Write ``features.npz`` and ``features.json`` into ``directory``; their sha256s."""
        directory = Path(directory)
        records, arrays = self._saved()

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)  # type: ignore[arg-type]

        atomic_write(directory / ARRAYS_FILE, write)
        sha = sha256_file(directory / ARRAYS_FILE)
        meta = {
            "format": _FORMAT,
            "format_version": FITTED_FORMAT_VERSION,
            "feature_code_version": FEATURE_CODE_VERSION,
            "versions": self.versions,
            "key": self.key,
            "config": self.config.to_dict(),
            "feature_names": list(self.feature_names),
            # a list: the column order of the families (JSON objects are written key-sorted)
            "families": records,
            "fitted_on": self.fitted_on,
            "arrays": ARRAYS_FILE,
            "arrays_sha256": sha,
        }
        atomic_write_text(directory / META_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return {ARRAYS_FILE: sha, META_FILE: sha256_file(directory / META_FILE)}

    @classmethod
    def load(cls, directory: Path) -> FittedFeatures:
        """Read what :meth:`save` wrote; refuses another format or feature-code version."""
        directory = Path(directory)
        meta_path, arr_path = directory / META_FILE, directory / ARRAYS_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{meta_path} not found: not a fitted model directory") from None
        except (OSError, ValueError) as e:
            raise ModelError(f"{meta_path} is not readable JSON ({e})") from None
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise ModelError(f"{meta_path} is not a moqwk fitted-features file")
        if meta.get("format_version") != FITTED_FORMAT_VERSION:
            raise ModelError(f"{meta_path} has format version {meta.get('format_version')}; "
                             f"this moqwk reads version {FITTED_FORMAT_VERSION}: fit the model "
                             "again with this moqwk")
        if meta.get("feature_code_version") != FEATURE_CODE_VERSION:
            raise ModelError(
                f"{meta_path} was fitted with feature code version "
                f"{meta.get('feature_code_version')}, this moqwk computes version "
                f"{FEATURE_CODE_VERSION}: its features would differ from the ones the model "
                "learned; fit the model again with this moqwk")
        if not arr_path.is_file():
            raise ModelError(f"{arr_path} not found: the model directory is incomplete")
        if sha256_file(arr_path) != meta.get("arrays_sha256"):
            raise ModelError(f"{arr_path} does not match the sha256 in {meta_path}: the file was "
                             "changed or damaged; fit the model again")
        try:
            arrays = read_npz(arr_path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise ModelError(f"{arr_path} cannot be read without executing code ({e})") from None
        try:
            return cls._from(meta, arrays)
        except (KeyError, TypeError, ValueError, ConfigError) as e:
            raise ModelError(f"{meta_path}: inconsistent fitted features ({e})") from None

    @classmethod
    def _from(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> FittedFeatures:
        config = FeatureConfig.from_mapping(meta["config"])
        records = list(meta["families"])
        names = [r["name"] for r in records]
        expected = config.enabled_names()
        if names != expected:
            raise ValueError(f"feature families {names}, the config enables {expected}")
        states = []
        for rec in records:
            name = rec["name"]
            fam = FAMILIES[name]
            if rec.get("version") != fam.version:
                raise ValueError(f"family {name} has version {rec.get('version')}, this moqwk "
                                 f"computes version {fam.version}; fit the model again")
            mine = {k[len(name) + 1:]: v for k, v in arrays.items() if k.startswith(f"{name}.")}
            if sorted(mine) != sorted(rec["arrays"]):
                raise ValueError(f"family {name}: arrays {sorted(mine)}, expected "
                                 f"{sorted(rec['arrays'])}")
            state = fam.load_state(config.family(name), rec["state"], mine)
            config = config.replace_family(name, fam.config_for_state(config.family(name), state))
            states.append((name, state))
        names_all = tuple(n for name, cfg in config.enabled()
                          for n in FAMILIES[name].feature_names(cfg))
        if tuple(meta["feature_names"]) != names_all:
            raise ValueError("the feature names differ from the families' columns")
        return cls(config=config, feature_names=tuple(meta["feature_names"]),
                   states=tuple(states), fitted_on=dict(meta["fitted_on"]),
                   key=str(meta["key"]), versions=dict(meta["versions"]))
