"""Features fitted once and applied to new essays later: no refitting, no pickle.

:meth:`FittedFeatures.fit` fits the feature pipeline on a set of essays exactly as
:meth:`moqwk.features.FeatureStore.fold` fits a fold on its training essays, and keeps what it
fitted as plain arrays:

- per n-gram family (``word``, ``char``): the kept terms (sorted), the IDF vector and the SVD
  components; a new essay is counted over the kept terms, weighted by the stored IDF, L2-normalised
  and projected as ``tfidf @ components.T`` (what ``TruncatedSVD.transform`` computes);
- the spelling proxy: the words seen in at least ``SPELL_MIN_DOCS`` of the fitted essays;
- handcrafted features: pure functions of each essay, nothing fitted;
- a ``features.table``: nothing fitted either; the table is read for the ids being transformed.

Fitted on the training essays of a fold, :meth:`FittedFeatures.transform` of the validation texts
equals that fold's ``X_val`` bit for bit, and the training matrix equals its ``X_train`` (a test
checks both): rows are fitted in id order as the store fits them, and every step runs the same
floating-point operations in the same order.

:meth:`FittedFeatures.save` writes ``features.npz`` (numeric arrays and UTF-8 byte blobs only,
read back with ``allow_pickle=False``) and ``features.json`` (versions, config, names, the
arrays' sha256). Loading executes nothing from the directory.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.utils.extmath import safe_sparse_dot
from threadpoolctl import threadpool_limits

from moqwk.artifacts import sha256_file
from moqwk.atomic import atomic_write, atomic_write_text
from moqwk.errors import ConfigError, DataError, ModelError
from moqwk.features.config import FeatureConfig, TableConfig
from moqwk.features.ngrams import (
    SPELL_MIN_DOCS,
    CorpusCounts,
    _tfidf,
    count_corpus,
    document_frequency,
    fold_tfidf,
)
from moqwk.features.store import FEATURE_CODE_VERSION, FeatureStore, _versions
from moqwk.features.text import HANDCRAFTED_NAMES, handcrafted_features, load_table, table_sha256

#: Version of the files :meth:`FittedFeatures.save` writes; bump when their layout changes.
FITTED_FORMAT_VERSION = 1
ARRAYS_FILE = "features.npz"
META_FILE = "features.json"
_FORMAT = "moqwk-fitted-features"
_ANALYZER = {"word": "word", "char": "char_wb"}


def _blob(terms: Sequence[str]) -> np.ndarray:
    """Terms as one newline-joined UTF-8 byte array (no term contains a newline)."""
    return np.frombuffer("\n".join(terms).encode("utf-8", "surrogatepass"), dtype=np.uint8)


def _unblob(arr: np.ndarray) -> tuple[str, ...]:
    if arr.size == 0:
        return ()
    return tuple(arr.tobytes().decode("utf-8", "surrogatepass").split("\n"))


@dataclass(frozen=True)
class FittedNgrams:
    """One n-gram family fitted: kept terms (sorted), IDF and SVD components.

    ``components`` has ``k <= n_components`` rows (fewer when the fitted essays or kept terms
    were fewer, as in :func:`moqwk.features.ngrams.fold_svd`); the trailing columns are zeros.
    """

    kind: str
    ngram_range: tuple[int, int]
    sublinear_tf: bool
    n_components: int
    terms: tuple[str, ...]
    idf: np.ndarray
    components: np.ndarray

    @property
    def analyzer(self) -> str:
        return _ANALYZER[self.kind]

    def counts(self, texts: Sequence[str]) -> sp.csr_array:
        """Raw counts of the kept terms in ``texts`` (columns in ``terms`` order)."""
        vocab = {t: j for j, t in enumerate(self.terms)}
        cv = CountVectorizer(analyzer=self.analyzer, ngram_range=self.ngram_range,
                             vocabulary=vocab, dtype=np.int64)
        X = sp.csr_array(cv.transform(list(texts)))
        X.sort_indices()
        return X

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), n_components)`` float64: tf-idf over the kept terms, projected."""
        Z = np.zeros((len(texts), self.n_components))
        k = self.components.shape[0]
        if k and len(texts):
            X = _tfidf(self.counts(texts), self.idf, self.sublinear_tf)
            Z[:, :k] = safe_sparse_dot(X, self.components.T)
        return Z


def _fit_svd(X: sp.csr_array, n_components: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Components and training projection, as :func:`moqwk.features.ngrams.fold_svd` fits them."""
    n_train, n_terms = X.shape
    Z = np.zeros((n_train, n_components))
    k = min(n_components, n_train, n_terms)
    if not (k >= 1 and n_terms >= 2):
        return np.zeros((0, n_terms)), Z
    with threadpool_limits(limits=1, user_api="blas"):
        svd = TruncatedSVD(n_components=k, algorithm="randomized", random_state=seed)
        Z[:, :k] = svd.fit_transform(X)
    return np.ascontiguousarray(svd.components_, dtype=np.float64), Z


@dataclass(frozen=True)
class FittedSpelling:
    """The spelling proxy's vocabulary: words in at least ``min_docs`` of the fitted essays."""

    known: tuple[str, ...]
    min_docs: int = SPELL_MIN_DOCS

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Share of each essay's word tokens not in the vocabulary (0 for no tokens)."""
        known = frozenset(self.known)
        analyze = CountVectorizer(analyzer="word", ngram_range=(1, 1)).build_analyzer()
        total = np.zeros(len(texts))
        oov = np.zeros(len(texts))
        for i, text in enumerate(texts):
            tokens = analyze(text)
            total[i] = len(tokens)
            oov[i] = sum(1 for t in tokens if t not in known)
        return np.divide(oov, total, out=np.zeros_like(total), where=total > 0)


def _check_texts(ids: np.ndarray, texts: Sequence[str]) -> None:
    if ids.ndim != 1 or len(ids) != len(texts):
        raise DataError(f"need one id per text, got {ids.shape} ids, {len(texts)} texts")
    bad = [str(i) for i, t in zip(ids, texts, strict=True) if not isinstance(t, str)]
    if bad:
        raise DataError(f"essay texts must be strings; not so for ids {', '.join(bad[:5])}")


@dataclass(frozen=True)
class FittedFeatures:
    """The feature pipeline fitted on a set of essays; :meth:`transform` applies it to others."""

    config: FeatureConfig
    feature_names: tuple[str, ...]
    ngrams: tuple[FittedNgrams, ...]
    spelling: FittedSpelling | None
    table: dict[str, Any] | None
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
        sorted_texts = [texts[i] for i in order]
        rows = np.arange(len(ids))
        blocks: list[np.ndarray] = []
        spelling: FittedSpelling | None = None
        counts: dict[str, CorpusCounts] = {}
        if config.word.enabled:
            counts["word"] = count_corpus(sorted_texts, "word", config.word.ngram_range)
        if config.handcrafted:  # the word unigrams, counted as the store counts them
            uni = (counts["word"].unigrams() if "word" in counts and
                   config.word.ngram_range[0] == 1 else count_corpus(sorted_texts, "word", (1, 1)))
            df = document_frequency(uni.counts, rows)
            spelling = FittedSpelling(tuple(t for t, d in zip(uni.terms, df, strict=True)
                                            if d >= SPELL_MIN_DOCS))
            # the spelling proxy exactly as oov_share computes it for training rows
            unknown = (df < SPELL_MIN_DOCS).astype(np.float64)
            total = np.asarray(uni.counts.sum(axis=1), dtype=np.float64).ravel()
            miss = np.asarray(uni.counts @ unknown, dtype=np.float64).ravel()
            spell = np.divide(miss, total, out=np.zeros_like(total), where=total > 0)
            blocks.append(np.hstack([handcrafted_features(sorted_texts), spell[:, None]]))
        fitted: list[FittedNgrams] = []
        for kind, ncfg in (("word", config.word), ("char", config.char)):
            if not ncfg.enabled:
                continue
            corpus = counts.get(kind) or count_corpus(sorted_texts, _ANALYZER[kind],
                                                      ncfg.ngram_range)
            tfidf = fold_tfidf(corpus, rows, np.arange(0), ncfg, f"features.{kind}")
            df = document_frequency(corpus.counts, rows)[tfidf.columns].astype(np.float64) + 1.0
            idf = np.full_like(df, fill_value=len(rows) + 1, dtype=np.float64)
            idf /= df
            np.log(idf, out=idf)
            idf += 1.0
            components, Z = _fit_svd(tfidf.X_train, ncfg.svd_components, config.seed)
            fitted.append(FittedNgrams(kind, ncfg.ngram_range, ncfg.sublinear_tf,
                                       ncfg.svd_components, tfidf.vocabulary, idf, components))
            blocks.append(Z)
        table_meta = None
        if config.table is not None:
            values, names = load_table(config.table, ids[order])
            blocks.append(values)
            table_meta = {"path": str(config.table.resolved), "id_column": config.table.id_column,
                          "columns": [n.removeprefix("table.") for n in names],
                          "sha256_at_fit": table_sha256(config.table)}
        X_sorted = np.hstack(blocks).astype(np.float32)
        X = np.empty_like(X_sorted)
        X[order] = X_sorted
        X.flags.writeable = False
        out = cls(config=config, feature_names=store.feature_names, ngrams=tuple(fitted),
                  spelling=spelling, table=table_meta,
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
        id_arr = (np.asarray(ids).astype(str) if ids is not None
                  else np.asarray([str(i) for i in range(len(texts))]))
        _check_texts(id_arr, texts)
        blocks: list[np.ndarray] = []
        if self.config.handcrafted:
            assert self.spelling is not None
            blocks.append(np.hstack([handcrafted_features(texts),
                                     self.spelling.transform(texts)[:, None]]))
        blocks += [ng.transform(texts) for ng in self.ngrams]
        if self.table is not None:
            if ids is None:
                raise DataError("these features include a features.table: pass the essays' ids "
                                "so their table rows can be read")
            blocks.append(self._table_rows(id_arr, table_path))
        X = np.hstack(blocks).astype(np.float32).reshape(len(texts), len(self.feature_names))
        return X

    def _table_rows(self, ids: np.ndarray, table_path: Path | None) -> np.ndarray:
        assert self.table is not None
        path = Path(table_path) if table_path is not None else Path(self.table["path"])
        cfg = TableConfig(path=str(path), id_column=self.table["id_column"],
                          columns=tuple(self.table["columns"]), resolved=path.resolve())
        try:
            values, _names = load_table(cfg, ids)
        except DataError as e:
            raise DataError(f"{e}; the model reads features.table columns for the essays it "
                            "scores: add their rows to the table, or give another table with "
                            "--feature-table (feature_table= in Python)") from None
        return values

    # ------------------------------------------------------------------ save and load

    def meta(self, arrays_sha256: str) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "format_version": FITTED_FORMAT_VERSION,
            "feature_code_version": FEATURE_CODE_VERSION,
            "versions": self.versions,
            "key": self.key,
            "config": self.config.to_dict(),
            "feature_names": list(self.feature_names),
            # a list: the column order of the families (JSON objects are written key-sorted)
            "families": [{"kind": ng.kind, "analyzer": ng.analyzer,
                          "ngram_range": list(ng.ngram_range), "sublinear_tf": ng.sublinear_tf,
                          "n_components": ng.n_components,
                          "n_fitted_components": int(ng.components.shape[0]),
                          "n_terms": len(ng.terms)} for ng in self.ngrams],
            "spelling": (None if self.spelling is None else
                         {"min_docs": self.spelling.min_docs, "n_known": len(self.spelling.known)}),
            "handcrafted": list(HANDCRAFTED_NAMES) if self.config.handcrafted else [],
            "table": self.table,
            "fitted_on": self.fitted_on,
            "arrays": ARRAYS_FILE,
            "arrays_sha256": arrays_sha256,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for ng in self.ngrams:
            out[f"{ng.kind}.terms"] = _blob(ng.terms)
            out[f"{ng.kind}.idf"] = np.asarray(ng.idf, dtype=np.float64)
            out[f"{ng.kind}.components"] = np.asarray(ng.components, dtype=np.float64)
        if self.spelling is not None:
            out["spell.known"] = _blob(self.spelling.known)
        return out

    def save(self, directory: Path) -> dict[str, str]:
        """Write ``features.npz`` and ``features.json`` into ``directory``; their sha256s."""
        directory = Path(directory)
        arrays = self.arrays()

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)  # type: ignore[arg-type]

        atomic_write(directory / ARRAYS_FILE, write)
        sha = sha256_file(directory / ARRAYS_FILE)
        text = json.dumps(self.meta(sha), indent=2, sort_keys=True) + "\n"
        atomic_write_text(directory / META_FILE, text)
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
            with np.load(arr_path, allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise ModelError(f"{arr_path} cannot be read without executing code ({e})") from None
        try:
            return cls._from(meta, arrays)
        except (KeyError, TypeError, ValueError, ConfigError) as e:
            raise ModelError(f"{meta_path}: inconsistent fitted features ({e})") from None

    @classmethod
    def _from(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> FittedFeatures:
        config = FeatureConfig.from_mapping(meta["config"])
        table = meta["table"]
        if (table is None) != (config.table is None):
            raise ValueError("the table record and features.table disagree")
        if config.table is not None:  # the file the features were fitted with, as resolved then
            config = replace(config, table=replace(config.table, resolved=Path(table["path"])))
        ngrams = []
        for fam in meta["families"]:
            kind = fam["kind"]
            if kind not in _ANALYZER:
                raise ValueError(f"unknown n-gram family {kind!r}")
            terms = _unblob(_typed(arrays[f"{kind}.terms"], np.uint8))
            idf = _typed(arrays[f"{kind}.idf"], np.float64)
            comps = _typed(arrays[f"{kind}.components"], np.float64)
            if idf.shape != (len(terms),) or comps.ndim != 2 or comps.shape[1] != len(terms) \
                    or comps.shape[0] > fam["n_components"] or len(terms) != fam["n_terms"]:
                raise ValueError(f"{kind}: {len(terms)} terms, idf {idf.shape}, "
                                 f"components {comps.shape}")
            ngrams.append(FittedNgrams(kind, (int(fam["ngram_range"][0]),
                                              int(fam["ngram_range"][1])),
                                       bool(fam["sublinear_tf"]), int(fam["n_components"]),
                                       terms, idf, comps))
        spelling = None
        if meta["spelling"] is not None:
            known = _unblob(_typed(arrays["spell.known"], np.uint8))
            if len(known) != meta["spelling"]["n_known"]:
                raise ValueError(f"spelling: {len(known)} known words, expected "
                                 f"{meta['spelling']['n_known']}")
            spelling = FittedSpelling(known, int(meta["spelling"]["min_docs"]))
        kinds = [ng.kind for ng in ngrams]
        expected = [k for k, n in (("word", config.word), ("char", config.char)) if n.enabled]
        if kinds != expected:
            raise ValueError(f"n-gram families {kinds}, the config enables {expected}")
        if (spelling is None) == config.handcrafted:
            raise ValueError("the spelling vocabulary and features.handcrafted disagree")
        return cls(config=config, feature_names=tuple(meta["feature_names"]),
                   ngrams=tuple(ngrams), spelling=spelling, table=table,
                   fitted_on=dict(meta["fitted_on"]), key=str(meta["key"]),
                   versions=dict(meta["versions"]))


def _typed(arr: np.ndarray, dtype: type) -> np.ndarray:
    if arr.dtype != np.dtype(dtype):
        raise ValueError(f"expected a {np.dtype(dtype)} array, got {arr.dtype}")
    return arr

