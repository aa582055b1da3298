"""Word and character n-grams: tf-idf over a pruned vocabulary, then TruncatedSVD.

Fitted on training essays: the kept terms (document frequency within ``[min_df, max_df]``), the
smoothed IDF and the SVD components; a new essay is counted over the kept terms, weighted by the
stored IDF, L2-normalised and projected as ``tfidf @ components.T`` (what
``TruncatedSVD.transform`` computes). See :mod:`moqwk.features.ngrams` for the arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.utils.extmath import safe_sparse_dot
from threadpoolctl import threadpool_limits

from moqwk.base.fields import dump, setting
from moqwk.errors import ConfigError, DataError
from moqwk.features.family import EssayData, Family, parse_family_fields
from moqwk.features.ngrams import _tfidf, fold_tfidf, restrict_counts

_MAX_NGRAM = 10


def _ngram_range(rng: Any, path: str) -> tuple[int, int]:
    if (
        not isinstance(rng, list | tuple)
        or len(rng) != 2
        or any(isinstance(v, bool) or not isinstance(v, Integral) for v in rng)
        or not 1 <= rng[0] <= rng[1] <= _MAX_NGRAM
    ):
        raise ConfigError(
            f"{path}: must be two whole numbers [low, high] with "
            f"1 <= low <= high <= {_MAX_NGRAM}, got {rng!r}"
        )
    return int(rng[0]), int(rng[1])


def doc_frequency(value: Any, path: str) -> int | float:
    """An int count of essays (>= 1) or a float share in [0, 1], as in scikit-learn."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(
            f"{path}: must be a whole number of essays (e.g. 2) or a share in [0, 1] "
            f"(e.g. 0.95), got {value!r}"
        )
    if isinstance(value, Integral):
        if value < 1:
            raise ConfigError(f"{path}: as a count of essays must be >= 1, got {value}")
        return int(value)
    if not 0.0 <= float(value) <= 1.0:
        raise ConfigError(
            f"{path}: as a share of essays must be in [0, 1], got {value}; "
            "write a whole number (e.g. 5) for a count"
        )
    return float(value)


_DF = "int or float"


@dataclass(frozen=True)
class NgramConfig:
    """One n-gram family: tf-idf over a document-frequency-pruned vocabulary, then TruncatedSVD.

    ``min_df`` / ``max_df`` follow scikit-learn: an int is a count of training essays, a float in
    [0, 1] a share of them. Both are applied to each fold's training essays only. The defaults
    here are ``word``'s; ``char`` gives its own (:data:`CHAR_DEFAULTS`).
    """

    enabled: bool = setting(True, help="build this block")
    ngram_range: tuple[int, int] = setting(
        (1, 2), check=_ngram_range, type_doc="`[low, high]`",
        help=f"n-gram lengths, 1 <= low <= high <= {_MAX_NGRAM}")
    min_df: int | float = setting(
        2, kind=None, check=doc_frequency, type_doc=_DF,
        help="drop terms in fewer training essays than this: an int is a count of essays "
             "(>= 1), a float in [0, 1] a share")
    max_df: int | float = setting(
        0.95, kind=None, check=doc_frequency, type_doc=_DF,
        help="drop terms in more training essays than this (same convention)")
    sublinear_tf: bool = setting(True, help="`1 + log(tf)` instead of raw counts")
    svd_components: int = setting(64, lo=1, help="SVD dimensions kept")

    def __bool__(self) -> bool:
        return self.enabled

    def to_dict(self) -> dict[str, Any]:
        return dump(self)


WORD_DEFAULTS = NgramConfig()
CHAR_DEFAULTS = NgramConfig(ngram_range=(2, 4), min_df=3)


@dataclass(frozen=True)
class NgramState:
    """Kept terms (sorted), their IDF and the SVD components (``k <= svd_components`` rows;
    fewer when the fitted essays or kept terms were fewer; the trailing columns are zeros)."""

    terms: tuple[str, ...]
    idf: np.ndarray
    components: np.ndarray


def _fit_svd(X: sp.csr_array, n_components: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Components and the training projection (``fit_transform``, as a fold always had it)."""
    n_train, n_terms = X.shape
    Z = np.zeros((n_train, n_components))
    k = min(n_components, n_train, n_terms)
    if not (k >= 1 and n_terms >= 2):
        return np.zeros((0, n_terms)), Z
    # One BLAS thread: with another process or worker on the cores, OpenBLAS threads spin
    # against each other (measured on ELLIPSE char n-grams under load: 7.6 s with one thread,
    # 13.3 s with two). The result does not depend on the thread count.
    with threadpool_limits(limits=1, user_api="blas"):
        svd = TruncatedSVD(n_components=k, algorithm="randomized", random_state=seed)
        Z[:, :k] = svd.fit_transform(X)
    return np.ascontiguousarray(svd.components_, dtype=np.float64), Z


class NgramFamily(Family):
    """``word`` (sklearn's word analyzer) or ``char`` (``char_wb``) n-grams."""

    searchable = ("enabled", "svd_components", "min_df", "max_df", "sublinear_tf")
    uses_seed = True
    accepts_bool = False

    def __init__(self, name: str, analyzer: str, defaults: NgramConfig, help: str) -> None:
        self.name = self.prefix = name
        self.help = help
        self.analyzer = analyzer
        self.defaults = defaults
        self.config_type = NgramConfig

    def default(self) -> NgramConfig:
        return self.defaults

    def parse(self, raw: Any, path: str, base_dir: Path | None) -> NgramConfig:
        cfg: NgramConfig = parse_family_fields(self, raw, path)
        if type(cfg.min_df) is type(cfg.max_df) and cfg.max_df < cfg.min_df:
            raise ConfigError(f"{path}.max_df: ({cfg.max_df}) is below {path}.min_df "
                              f"({cfg.min_df}); no term could be kept")
        return cfg

    def feature_names(self, cfg: NgramConfig) -> tuple[str, ...]:
        return tuple(f"{self.prefix}.svd_{i:03d}" for i in range(cfg.svd_components))

    def fit(self, cfg: NgramConfig, data: EssayData, *, seed: int) -> tuple[NgramState, np.ndarray]:
        corpus = data.counts(self.analyzer, cfg.ngram_range)
        if not corpus.terms:
            raise DataError(f"no {self.analyzer} n-grams in any essay: the texts hold no words")
        rows = np.arange(len(data.texts))
        tfidf = fold_tfidf(corpus, rows, np.arange(0), cfg, f"features.{self.name}")
        components, Z = _fit_svd(tfidf.X_train, cfg.svd_components, seed)
        assert tfidf.idf is not None
        return NgramState(tfidf.vocabulary, tfidf.idf, components), Z

    def transform(self, cfg: NgramConfig, state: NgramState, data: EssayData) -> np.ndarray:
        n = len(data.texts)
        Z = np.zeros((n, cfg.svd_components))
        k = state.components.shape[0]
        if k and n:
            counts = restrict_counts(data.counts(self.analyzer, cfg.ngram_range), state.terms)
            X = _tfidf(counts, state.idf, cfg.sublinear_tf)
            Z[:, :k] = safe_sparse_dot(X, state.components.T)
        return Z

    def save_state(self, state: NgramState) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        from moqwk.features.blobs import blob

        meta = {"analyzer": self.analyzer, "n_terms": len(state.terms),
                "n_fitted_components": int(state.components.shape[0])}
        return meta, {"terms": blob(state.terms), "idf": np.asarray(state.idf, np.float64),
                      "components": np.asarray(state.components, np.float64)}

    def load_state(self, cfg: NgramConfig, meta: Mapping[str, Any],
                   arrays: Mapping[str, np.ndarray]) -> NgramState:
        from moqwk.features.blobs import typed, unblob

        terms = unblob(typed(arrays["terms"], np.uint8))
        idf = typed(arrays["idf"], np.float64)
        comps = typed(arrays["components"], np.float64)
        if idf.shape != (len(terms),) or comps.ndim != 2 or comps.shape[1] != len(terms) \
                or comps.shape[0] > cfg.svd_components or len(terms) != meta["n_terms"]:
            raise ValueError(f"{self.name}: {len(terms)} terms, idf {idf.shape}, "
                             f"components {comps.shape}")
        return NgramState(terms, idf, comps)


WORD = NgramFamily("word", "word", WORD_DEFAULTS,
                   "word n-gram tf-idf, reduced by TruncatedSVD (`word.svd_000`, ...)")
CHAR = NgramFamily("char", "char_wb", CHAR_DEFAULTS,
                   "character n-gram tf-idf within word boundaries (scikit-learn's `char_wb`), "
                   "reduced by TruncatedSVD (`char.svd_000`, ...)")
