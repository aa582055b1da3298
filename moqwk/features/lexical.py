"""Lexical sophistication and spelling against a reference word list (``lex.*``).

PAES (Ridley et al. 2020) counts spelling errors against a fixed word list and feeds word-level
statistics; Li & Ng (2024) keep lexical sophistication and spelling among the feature groups of
their feature-only cross-prompt scorer. Both need general-English word frequencies that are the
same for every prompt, so no prompt's topic words enter (docs/research/cross-prompt-features.md).

``reference`` chooses where the frequencies come from:

- ``"package"`` (default): the English frequency dictionary that ``pyspellchecker`` ships
  (``spellchecker/resources/en.json.gz``, 160k words with counts; pyspellchecker is a
  dependency of moqwk). Nothing is fitted: the family is leak-free by construction.
- ``"training"``: the fold's training essays, fitted in :meth:`LexicalFamily.fit` (a word's
  frequency is the number of training essays that use it; words in fewer than ``min_df`` of them
  are unknown). Leak-free because only the training texts are read; weaker because the training
  prompts' topic words look common. No extra package needed.

A word's *rank* is its position in the reference sorted by frequency (1 = most frequent). The
features, over an essay's words (letters only, lowercased):

- ``known_share``: the share found in the reference; ``oov_rate``: the rest, per word, the
  spelling-error proxy (the share of distinct unknown words is ``oov_type_share``);
- ``band_1k`` .. ``band_beyond``: the shares of words of rank <= 1,000, 1,001-2,000,
  2,001-5,000, 5,001-10,000 and beyond (Laufer & Nation 1995's lexical frequency profile);
- ``content_log_freq_mean`` / ``content_log_freq_sd``: the mean and sd of ``log10`` of the
  reference count of the known content words (stop words excluded): lower is rarer;
- ``content_rank_median``: the median rank of the known content words (log10);
- ``sophisticated_type_share``: the share of content word types beyond rank 2,000.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from moqwk.errors import ConfigError
from moqwk.features.tokens import WORD

FAMILY = "lexical"
PREFIX = "lex."
REFERENCES = ("package", "training")
BANDS: tuple[int, ...] = (1_000, 2_000, 5_000, 10_000)
SOPHISTICATED_RANK = 2_000
_STOP = frozenset(ENGLISH_STOP_WORDS)

NAMES: tuple[str, ...] = tuple(
    PREFIX + n
    for n in (
        "known_share",
        "oov_rate",
        "oov_type_share",
        "band_1k",
        "band_2k",
        "band_5k",
        "band_10k",
        "band_beyond",
        "content_log_freq_mean",
        "content_log_freq_sd",
        "content_rank_median",
        "sophisticated_type_share",
    )
)


@lru_cache(maxsize=1)
def package_counts() -> dict[str, int]:
    """pyspellchecker's English word frequencies (loaded once per process)."""
    try:
        from spellchecker import SpellChecker
    except ImportError as exc:
        raise ConfigError(
            "features.lexical.reference: package needs pyspellchecker, a dependency of moqwk "
            "(pip install pyspellchecker), or set features.lexical.reference: training"
        ) from exc
    return dict(SpellChecker(language="en", distance=1).word_frequency.dictionary)


def words_of(text: str) -> list[str]:
    """The essay's alphabetic words, lowercased (numbers and tokens with digits dropped)."""
    found = WORD.findall(text.lower().replace("\u2019", "'"))
    return [w for w in found if w.replace("'", "").isalpha()]


class _Reference:
    """Counts and ranks of one reference list (ranks 1-based, by count then word)."""

    def __init__(self, counts: Mapping[str, int]):
        order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        self.count = {w: c for w, c in order}
        self.rank = {w: i + 1 for i, (w, _) in enumerate(order)}


def _essay(words: list[str], ref: _Reference) -> list[float]:
    n = len(words)
    if n == 0:
        return [0.0] * len(NAMES)
    ranks = np.array([ref.rank.get(w, 0) for w in words], dtype=np.float64)
    known = ranks > 0
    n_known = int(known.sum())
    types = set(words)
    oov_types = sum(1 for w in types if w not in ref.rank)
    edges = np.array((0, *BANDS), dtype=np.float64)
    bands = [
        float(np.count_nonzero((ranks > lo) & (ranks <= hi))) / n
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    bands.append(float(np.count_nonzero(ranks > BANDS[-1])) / n)
    content = [w for w in words if w not in _STOP and w in ref.rank]
    if content:
        logf = np.log10(np.array([ref.count[w] for w in content], dtype=np.float64))
        logr = np.log10(np.array([ref.rank[w] for w in content], dtype=np.float64))
        ctypes = set(content)
        soph = sum(ref.rank[w] > SOPHISTICATED_RANK for w in ctypes) / len(ctypes)
        content_stats = [float(logf.mean()), float(logf.std()), float(np.median(logr)), soph]
    else:
        content_stats = [0.0, 0.0, 0.0, 0.0]
    return [n_known / n, (n - n_known) / n, oov_types / len(types), *bands, *content_stats]


class LexicalFamily:
    """``lex.*``: frequency bands, rarity of content words, and the unknown-word (spelling) rate.

    With ``reference="package"`` nothing is fitted; with ``"training"`` :meth:`fit` counts, in
    how many training essays each word occurs, and keeps the words in at least ``min_df``."""

    name = FAMILY
    feature_names: tuple[str, ...] = NAMES

    def __init__(self, reference: str = "package", min_df: int = 3):
        if reference not in REFERENCES:
            raise ConfigError(
                f"features.lexical.reference must be one of {', '.join(REFERENCES)}, "
                f"got {reference!r}"
            )
        if isinstance(min_df, bool) or not isinstance(min_df, int) or min_df < 1:
            raise ConfigError(
                f"features.lexical.min_df must be a whole number >= 1, got {min_df!r}"
            )
        self.reference = reference
        self.min_df = min_df
        self.counts: dict[str, int] | None = None  # the fitted list ("training" only)
        self._ref: _Reference | None = None

    def fit(self, texts: Sequence[str]) -> LexicalFamily:
        """Count the reference on ``texts`` (the fold's training essays) when it is
        ``"training"``; a no-op for ``"package"``."""
        if self.reference == "training":
            df: Counter[str] = Counter()
            for text in texts:
                df.update(set(words_of(text)))
            self.counts = {w: c for w, c in sorted(df.items()) if c >= self.min_df}
            self._ref = _Reference(self.counts)
        return self

    def _reference(self) -> _Reference:
        if self._ref is None:
            if self.reference == "training":
                raise RuntimeError("LexicalFamily(reference='training') is used before fit()")
            self._ref = _package_reference()
        return self._ref

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        ref = self._reference()
        out = np.zeros((len(texts), len(NAMES)), dtype=np.float64)
        for i, text in enumerate(texts):
            out[i] = _essay(words_of(text), ref)
        return out

    def state(self) -> dict[str, Any]:
        """JSON-able: the knobs, and the fitted word counts for ``"training"``."""
        return {
            "family": FAMILY,
            "version": 1,
            "reference": self.reference,
            "min_df": self.min_df,
            "counts": self.counts,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> LexicalFamily:
        if state.get("family") != FAMILY:
            raise ValueError(f"not a {FAMILY} state: {dict(state)!r}")
        fam = cls(reference=state["reference"], min_df=int(state["min_df"]))
        if state.get("counts") is not None:
            fam.counts = {str(w): int(c) for w, c in state["counts"].items()}
            fam._ref = _Reference(fam.counts)
        return fam


@lru_cache(maxsize=1)
def _package_reference() -> _Reference:
    return _Reference(package_counts())

