"""Count once, fit per fold: n-gram tf-idf + TruncatedSVD without refitting vectorizers.

The corpus is tokenised and counted a single time with scikit-learn's raw analyzers (no
``min_df``/``max_df``), giving a sparse count matrix whose columns are the sorted terms of the
whole corpus. Each fold then uses only its training rows to

1. keep the terms whose training document frequency is within ``[min_df, max_df]`` (and > 0),
2. compute smoothed IDF, sublinear tf and L2-normalised tf-idf, exactly as
   ``TfidfVectorizer(min_df, max_df, ngram_range, sublinear_tf)`` fitted on the training texts,
3. fit ``TruncatedSVD(algorithm="randomized", random_state=seed)``, and transform both sides.

Because the corpus vocabulary is sorted and a fold's kept terms are a subset chosen by training
rows alone, the training matrix is bit-for-bit what it would be if validation essays were absent.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from numbers import Integral
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from moqwk.errors import ConfigError, DataError


class NgramConfig(Protocol):
    """What :func:`fold_tfidf` reads of an n-gram family's config (the family's
    :class:`moqwk.features.families.ngram.NgramConfig` is one). Declared here, not imported: the
    family imports this module, and the import would close a circle."""

    @property
    def min_df(self) -> int | float: ...
    @property
    def max_df(self) -> int | float: ...
    @property
    def sublinear_tf(self) -> bool: ...


ANALYZERS = ("word", "char_wb")
SPELL_MIN_DOCS = 2
_WHITE_SPACES = re.compile(r"\s\s+")  # the normalisation sklearn's char_wb analyzer applies


@dataclass(frozen=True)
class CorpusCounts:
    """Raw n-gram counts of every essay: ``counts[i, j]`` is how often ``terms[j]`` occurs in i.

    Columns are in sorted term order (as CountVectorizer orders its vocabulary); indices sorted.
    """

    analyzer: str
    ngram_range: tuple[int, int]
    counts: sp.csr_array
    terms: tuple[str, ...]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for ``np.savez`` (terms joined by newlines, which no term contains)."""
        blob = "\n".join(self.terms).encode("utf-8", "surrogatepass")
        X = self.counts
        return {
            "data": X.data,
            "indices": X.indices,
            "indptr": X.indptr,
            "shape": np.asarray(X.shape),
            "terms": np.frombuffer(blob, dtype=np.uint8),
        }

    @classmethod
    def from_arrays(cls, analyzer: str, ngram_range: tuple[int, int], z: dict) -> CorpusCounts:
        """Inverse of :meth:`to_arrays`."""
        terms = tuple(z["terms"].tobytes().decode("utf-8", "surrogatepass").split("\n"))
        shape = (int(z["shape"][0]), int(z["shape"][1]))
        X = sp.csr_array((z["data"], z["indices"], z["indptr"]), shape=shape)
        return cls(analyzer, ngram_range, X, terms)

    @cached_property
    def index(self) -> dict[str, int]:
        """Column of each term."""
        return {t: j for j, t in enumerate(self.terms)}

    def rows(self, rows: np.ndarray) -> CorpusCounts:
        """The counts of essays ``rows`` only (all columns kept)."""
        sub = sp.csr_array(self.counts[np.asarray(rows, dtype=np.intp)])
        sub.sort_indices()
        return CorpusCounts(self.analyzer, self.ngram_range, sub, self.terms)

    def unigrams(self) -> CorpusCounts:
        """The 1-gram columns of word counts (the terms without a space)."""
        cols = np.array([j for j, t in enumerate(self.terms) if " " not in t], dtype=np.intp)
        sub = sp.csr_array(self.counts[:, cols])
        return CorpusCounts(self.analyzer, (1, 1), sub, tuple(self.terms[j] for j in cols))


@dataclass(frozen=True)
class FoldTfidf:
    """One fold's tf-idf matrices (float64 CSR) over the kept corpus columns ``columns``."""

    X_train: sp.csr_array
    X_val: sp.csr_array
    columns: np.ndarray
    corpus: CorpusCounts
    idf: np.ndarray | None = None

    @property
    def vocabulary(self) -> tuple[str, ...]:
        """The kept terms, sorted: what ``TfidfVectorizer.get_feature_names_out()`` would give."""
        return tuple(self.corpus.terms[j] for j in self.columns)


def _canonical(X: sp.sparray | sp.spmatrix) -> sp.csr_array:
    X = sp.csr_array(X)
    X.sum_duplicates()
    X.sort_indices()
    X.data = X.data.astype(np.int32, copy=False)
    return X


def _count_char_wb(texts: Sequence[str], ngram_range: tuple[int, int]) -> tuple[sp.csr_array, list]:
    """``char_wb`` counts via (essay x word) @ (word x n-gram): the analyzer works word by word.

    Same result as ``CountVectorizer(analyzer="char_wb")`` (a test checks it), several times faster
    because each distinct word is analysed once instead of at every occurrence.
    """
    lower = CountVectorizer(analyzer="char_wb", ngram_range=ngram_range).build_preprocessor()
    vocab: dict[str, int] = {}
    indptr, indices, data = [0], [], []
    for doc in texts:
        for tok, n in Counter(_WHITE_SPACES.sub(" ", lower(doc)).split()).items():
            indices.append(vocab.setdefault(tok, len(vocab)))
            data.append(n)
        indptr.append(len(indices))
    if not vocab:
        raise ValueError("empty vocabulary")
    D = sp.csr_array(
        (np.asarray(data, np.int64), np.asarray(indices, np.int64), np.asarray(indptr, np.int64)),
        shape=(len(texts), len(vocab)),
    )
    per_word = CountVectorizer(
        analyzer="char_wb", ngram_range=ngram_range, lowercase=False, dtype=np.int64
    )
    T = per_word.fit_transform(list(vocab))
    return D @ sp.csr_array(T), list(per_word.get_feature_names_out())


def empty_counts(analyzer: str, ngram_range: tuple[int, int], n: int) -> CorpusCounts:
    """Counts of ``n`` essays that hold no n-gram: no terms."""
    X = sp.csr_array((np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(n + 1, np.int32)),
                     shape=(n, 0))
    return CorpusCounts(analyzer, (int(ngram_range[0]), int(ngram_range[1])), X, ())


def restrict_counts(counts: CorpusCounts, terms: tuple[str, ...]) -> sp.csr_array:
    """``counts`` over the columns ``terms`` (in that order; a term not counted is zeros)."""
    index = counts.index
    src = np.fromiter((index.get(t, -1) for t in terms), dtype=np.intp, count=len(terms))
    present = np.flatnonzero(src >= 0)
    sub = sp.csr_array(counts.counts[:, src[present]]).tocoo()
    out = sp.csr_array((sub.data, (sub.row, present[sub.col])),
                       shape=(counts.counts.shape[0], len(terms)))
    out.sum_duplicates()
    out.sort_indices()
    return out


def oov_of_known(counts: CorpusCounts, known: frozenset[str] | set[str]) -> np.ndarray:
    """Share of each essay's word tokens whose term is not in ``known`` (0 for no tokens)."""
    unknown = np.fromiter((t not in known for t in counts.terms), dtype=np.float64,
                          count=len(counts.terms))
    X = counts.counts
    total = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    oov = np.asarray(X @ unknown, dtype=np.float64).ravel()
    return np.divide(oov, total, out=np.zeros_like(total), where=total > 0)


def count_corpus(texts: Sequence[str], analyzer: str, ngram_range: tuple[int, int]) -> CorpusCounts:
    """Count ``analyzer`` ("word" or "char_wb") n-grams in every text; sklearn's defaults."""
    if analyzer not in ANALYZERS:
        raise ValueError(f"analyzer must be one of {ANALYZERS}, got {analyzer!r}")
    rng = (int(ngram_range[0]), int(ngram_range[1]))
    try:
        if analyzer == "char_wb":
            X, terms = _count_char_wb(texts, rng)
        else:
            cv = CountVectorizer(analyzer="word", ngram_range=rng, dtype=np.int64)
            X = cv.fit_transform(texts)
            terms = list(cv.get_feature_names_out())
    except ValueError as exc:
        if "empty vocabulary" not in str(exc):
            raise
        raise DataError(f"no {analyzer} n-grams in any essay: the texts hold no words") from exc
    return CorpusCounts(analyzer, rng, _canonical(X), tuple(str(t) for t in terms))


def document_frequency(counts: sp.csr_array, rows: np.ndarray) -> np.ndarray:
    """How many of the essays ``rows`` contain each term (int64, one per column)."""
    sub = counts[np.asarray(rows, dtype=np.intp)]
    return np.bincount(sub.indices, minlength=counts.shape[1]).astype(np.int64)


def select_terms(
    df: np.ndarray, n_train: int, min_df: int | float, max_df: int | float, path: str
) -> np.ndarray:
    """Corpus columns kept by sklearn's ``min_df``/``max_df`` rule on training counts ``df``.

    Terms absent from training (``df == 0``) are never kept, whatever ``min_df`` says.
    """
    high = max_df if isinstance(max_df, Integral) else max_df * n_train
    low = min_df if isinstance(min_df, Integral) else min_df * n_train
    if high < low:
        raise ConfigError(
            f"{path}.max_df ({max_df}) allows fewer training essays ({high:g}) than "
            f"{path}.min_df ({min_df}) requires ({low:g}); raise max_df or lower min_df"
        )
    kept = np.flatnonzero((df > 0) & (df >= low) & (df <= high))
    if kept.size == 0:
        raise ConfigError(
            f"{path}: after pruning by min_df={min_df} and max_df={max_df} on {n_train} training "
            f"essays no term remains; lower {path}.min_df or raise {path}.max_df"
        )
    return kept


def _tfidf(counts: sp.csr_array, idf: np.ndarray, sublinear: bool) -> sp.csr_array:
    """sklearn's TfidfTransformer.transform, step for step (so results match to the bit)."""
    X = sp.csr_array(counts, dtype=np.float64, copy=True)
    if sublinear:
        np.log(X.data, X.data)
        X.data += 1.0
    X.data *= idf[X.indices]
    return sp.csr_array(normalize(X, norm="l2", copy=False)) if X.shape[0] else X


def fold_tfidf(
    corpus: CorpusCounts,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    cfg: NgramConfig,
    path: str = "features.word",
) -> FoldTfidf:
    """Tf-idf of ``train_rows`` and ``val_rows``; vocabulary and IDF from ``train_rows`` only."""
    train_rows = np.asarray(train_rows, dtype=np.intp)
    val_rows = np.asarray(val_rows, dtype=np.intp)
    n_train = len(train_rows)
    df = document_frequency(corpus.counts, train_rows)
    cols = select_terms(df, n_train, cfg.min_df, cfg.max_df, path)
    # sklearn's TfidfTransformer.fit: smoothed idf = ln((1 + n) / (1 + df)) + 1, in this order
    df_kept = df[cols].astype(np.float64) + 1.0
    idf = np.full_like(df_kept, fill_value=n_train + 1, dtype=np.float64)
    idf /= df_kept
    np.log(idf, out=idf)
    idf += 1.0

    def part(rows: np.ndarray) -> sp.csr_array:
        sub = sp.csr_array(corpus.counts[rows][:, cols])
        sub.sort_indices()
        return _tfidf(sub, idf, cfg.sublinear_tf)

    return FoldTfidf(part(train_rows), part(val_rows), cols, corpus, idf)


def fold_svd(tfidf: FoldTfidf, n_components: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """TruncatedSVD fitted on the training tf-idf; float64 ``(n, n_components)`` pair.

    When a fold has fewer kept terms or training essays than ``n_components``, the surplus
    trailing components are zero columns, so every fold has the same feature names.
    """
    n_train, n_terms = tfidf.X_train.shape
    Z_train = np.zeros((n_train, n_components))
    Z_val = np.zeros((tfidf.X_val.shape[0], n_components))
    k = min(n_components, n_train, n_terms)
    if k >= 1 and n_terms >= 2:
        # One BLAS thread: with another process or worker on the cores, OpenBLAS threads spin
        # against each other (measured on ELLIPSE char n-grams under load: 7.6 s with one
        # thread, 13.3 s with two). The result does not depend on the thread count.
        with threadpool_limits(limits=1, user_api="blas"):
            svd = TruncatedSVD(n_components=k, algorithm="randomized", random_state=seed)
            Z_train[:, :k] = svd.fit_transform(tfidf.X_train)
            if Z_val.shape[0]:
                Z_val[:, :k] = svd.transform(tfidf.X_val)
    return Z_train, Z_val


def oov_share(
    unigrams: CorpusCounts, train_rows: np.ndarray, min_docs: int = SPELL_MIN_DOCS
) -> np.ndarray:
    """Spelling proxy for every essay: share of its word tokens seen in < ``min_docs`` training
    essays. Tokens are sklearn's default word tokens (lowercased, 2+ word characters)."""
    df = document_frequency(unigrams.counts, train_rows)
    unknown = (df < min_docs).astype(np.float64)
    counts = unigrams.counts
    total = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    oov = np.asarray(counts @ unknown, dtype=np.float64).ravel()
    return np.divide(oov, total, out=np.zeros_like(total), where=total > 0)
