"""Per-essay features that need no fitting: handcrafted ones, and the researcher's own table.

Handcrafted features cover length, sentences, paragraphs, lexical diversity and mechanics; the
table (CSV or Parquet) is joined on an id column and used as it is. Each essay's values depend on
that essay alone, so both are computed once for the whole corpus. The one per-fold handcrafted
feature (the spelling proxy, which needs a training vocabulary) lives in
:mod:`moqwk.features.ngrams`.
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
import string
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from moqwk.errors import ConfigError, DataError


class TableConfig(Protocol):
    """What this module reads of the ``features.table`` config (the family's
    :class:`moqwk.features.families.table.TableConfig` is one). Declared here, not imported: the
    family imports this module, and the import would close a circle."""

    @property
    def id_column(self) -> str: ...
    @property
    def columns(self) -> tuple[str, ...] | None: ...
    @property
    def resolved(self) -> Path: ...


MTLD_THRESHOLD = 0.72
LONG_WORD_LETTERS = 7

HANDCRAFTED_NAMES: tuple[str, ...] = (
    "n_chars",
    "n_words",
    "log_n_words",
    "n_types",
    "n_sentences",
    "sent_len_mean",
    "sent_len_sd",
    "n_paragraphs",
    "para_len_mean",
    "word_len_mean",
    "word_len_sd",
    "long_word_share",
    "ttr",
    "root_ttr",
    "mtld",
    "stopword_share",
    "comma_rate",
    "other_punct_rate",
    "apostrophe_rate",
    "lower_sentence_start_share",
    "lowercase_i_rate",
    "space_before_punct_rate",
    "no_space_after_punct_rate",
    "repeated_word_rate",
    "uppercase_share",
    "digit_share",
)

_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_SENT_SPLIT = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?:\s+|$)|\n+")
_FIRST_ALPHA = re.compile(r"[^\W\d_]")
_LOWER_I = re.compile(r"\bi\b")
_SPACE_BEFORE = re.compile(r"\s[,.;:!?]")
_NO_SPACE_AFTER = re.compile(r"[,;:!?.](?=[^\W\d_])")
_STOP = frozenset(ENGLISH_STOP_WORDS)
# character classes counted on the UTF-8 bytes with bytes.translate (ASCII only, C speed)
_UPPER = bytes(range(65, 91))
_LETTERS = _UPPER + bytes(range(97, 123))
_DIGITS = b"0123456789"
_PUNCT = string.punctuation.encode()


def _count_bytes(data: bytes, chars: bytes) -> int:
    return len(data) - len(data.translate(None, chars))


def mtld_pass(tokens: Sequence[str], threshold: float = MTLD_THRESHOLD) -> float:
    """One directional MTLD pass: tokens per factor (McCarthy & Jarvis 2010).

    A factor ends when the running type-token ratio falls to ``threshold``; the leftover segment
    counts as the partial factor ``(1 - ttr) / (1 - threshold)``. With no factor at all (every
    token distinct) the text never falls below the threshold and the pass returns ``len(tokens)``.
    """
    factors = 0.0
    types: set[str] = set()
    count = n_types = 0
    for tok in tokens:
        count += 1
        if tok not in types:  # a new type never lowers the ratio: only repeats can end a factor
            types.add(tok)
            n_types += 1
        elif n_types / count <= threshold:
            factors += 1.0
            types = set()
            count = n_types = 0
    if count:
        factors += (1.0 - n_types / count) / (1.0 - threshold)
    return len(tokens) / factors if factors > 0 else float(len(tokens))


def mtld(tokens: Sequence[str], threshold: float = MTLD_THRESHOLD) -> float:
    """Bidirectional MTLD: the mean of the forward and the backward pass; 0 for no tokens."""
    if not tokens:
        return 0.0
    return 0.5 * (mtld_pass(tokens, threshold) + mtld_pass(tokens[::-1], threshold))


def _mean_sd(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and population standard deviation; (0, 0) for no values."""
    if len(values) == 0:
        return 0.0, 0.0
    arr = np.asarray(values, dtype=np.float64)
    mean = float(arr.mean())
    return mean, float(np.sqrt(((arr - mean) ** 2).mean()))


def essay_features(text: str) -> list[float]:
    """The :data:`HANDCRAFTED_NAMES` features of one essay, in that order.

    Words are runs of letters/digits (inner apostrophes kept), lowercased; sentences end at
    ``.!?`` followed by a space or at a line break; paragraphs are non-blank lines. Rates are per
    word, shares are fractions in [0, 1]; character classes are ASCII. An empty essay gives zeros.
    """
    sentences, words, lower_starts = [], [], 0
    for s in _SENT_SPLIT.split(text):
        toks = _WORD.findall(s.lower())
        if toks:
            sentences.append(len(toks))
            words += toks
            first = _FIRST_ALPHA.search(s)
            lower_starts += first is not None and first.group().islower()
    n_words, n_sent, n_chars = len(words), len(sentences), len(text)
    per_word = 1.0 / n_words if n_words else 0.0
    sent_mean, sent_sd = _mean_sd(sentences)
    n_paras = sum(1 for p in text.split("\n") if _WORD.search(p))
    word_lens = np.fromiter(map(len, words), dtype=np.float64, count=n_words)
    wl_mean, wl_sd = _mean_sd(word_lens)
    types = Counter(words)
    n_types = len(types)
    data = text.encode("utf-8", "surrogatepass")
    n_commas = text.count(",")
    n_letters = _count_bytes(data, _LETTERS)

    return [
        float(n_chars),
        float(n_words),
        math.log1p(n_words),
        float(n_types),
        float(n_sent),
        sent_mean,
        sent_sd,
        float(n_paras),
        n_words / n_paras if n_paras else 0.0,
        wl_mean,
        wl_sd,
        float(np.count_nonzero(word_lens >= LONG_WORD_LETTERS)) * per_word,
        n_types * per_word,
        n_types / math.sqrt(n_words) if n_words else 0.0,
        mtld(words),
        sum(c for w, c in types.items() if w in _STOP) * per_word,
        n_commas * per_word,
        (_count_bytes(data, _PUNCT) - n_commas) * per_word,
        (text.count("'") + text.count("\u2019")) * per_word,
        lower_starts / n_sent if n_sent else 0.0,
        len(_LOWER_I.findall(text)) * per_word,
        len(_SPACE_BEFORE.findall(text)) * per_word,
        len(_NO_SPACE_AFTER.findall(text)) * per_word,
        sum(map(operator.eq, words, words[1:])) * per_word,
        _count_bytes(data, _UPPER) / n_letters if n_letters else 0.0,
        _count_bytes(data, _DIGITS) / n_chars if n_chars else 0.0,
    ]


def handcrafted_features(texts: Sequence[str]) -> np.ndarray:
    """A float64 array ``(len(texts), len(HANDCRAFTED_NAMES))`` of per-essay features."""
    out = np.zeros((len(texts), len(HANDCRAFTED_NAMES)), dtype=np.float64)
    for i, text in enumerate(texts):
        out[i] = essay_features(text)
    return out


# --------------------------------------------------------------------------- precomputed table

_XGB_FORBIDDEN = ("[", "]", "<")


def table_sha256(table: TableConfig) -> str:
    """sha256 of the table file's bytes (goes into cache keys: an edited file is a new key)."""
    if not table.resolved.is_file():
        raise ConfigError(f"features.table.path: no such file {table.resolved}")
    h = hashlib.sha256()
    with open(table.resolved, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_table(table: TableConfig, ids: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """The table's feature columns as float64 rows aligned to ``ids``, and their names
    (``table.<column>``). Values are used as they are (NaN stays NaN); ids not in ``ids`` are
    ignored. Raises DataError for missing ids, duplicate ids, or a non-numeric column."""
    import pandas as pd  # imported here: pandas is slow to import and rarely needed

    file = table.resolved
    if not file.is_file():
        raise ConfigError(f"features.table.path: no such file {file}")
    try:
        if file.suffix.lower() == ".csv":
            df = pd.read_csv(file, dtype={table.id_column: str})
        else:
            df = pd.read_parquet(file)
    except ImportError as exc:
        raise ConfigError(
            f"features.table.path: reading {file.name} needs pyarrow (pip install 'moqwk[parquet]')"
        ) from exc
    except Exception as exc:  # pandas raises many types for a bad file
        raise DataError(f"cannot read feature table {file}: {exc}") from exc
    df.columns = [str(c) for c in df.columns]
    if table.id_column not in df.columns:
        raise DataError(
            f"feature table {file} has no id column {table.id_column!r} "
            f"(features.table.id_column); its columns: {', '.join(df.columns[:20])}"
        )
    columns = (
        list(table.columns)
        if table.columns is not None
        else [c for c in df.columns if c != table.id_column]
    )
    absent = [c for c in columns if c not in df.columns]
    if absent or not columns:
        raise DataError(
            f"feature table {file} lacks column(s) {', '.join(absent) or '(none left)'} "
            f"named in features.table.columns; its columns: {', '.join(df.columns[:20])}"
        )
    for c in columns:
        if not pd.api.types.is_numeric_dtype(df[c]):
            example = df[c].dropna().iloc[0] if df[c].notna().any() else None
            raise DataError(
                f"feature table {file}: column {c!r} is not numeric "
                f"(e.g. {example!r}); convert it or drop it from features.table.columns"
            )
        if any(ch in c for ch in _XGB_FORBIDDEN):
            raise DataError(
                f"feature table {file}: column {c!r} contains one of [ ] < "
                "which XGBoost forbids in feature names; rename it"
            )
    keys = df[table.id_column].astype(str).str.strip()
    wanted = keys.isin(set(np.asarray(ids).tolist()))
    dupes = keys[wanted & keys.duplicated(keep=False)].unique().tolist()
    if dupes:
        raise DataError(f"feature table {file} has several rows for id(s) {', '.join(dupes[:5])}")
    pos = pd.Index(keys[wanted].tolist()).get_indexer(np.asarray(ids).tolist())
    if (pos < 0).any():
        missing = np.asarray(ids)[pos < 0]
        raise DataError(
            f"feature table {file} has no row for {len(missing)} essay id(s), e.g. "
            f"{', '.join(map(str, missing[:5]))} (column {table.id_column!r})"
        )
    values = df.loc[wanted, columns].to_numpy(dtype=np.float64, na_value=np.nan)[pos]
    return values, tuple(f"table.{c}" for c in columns)
