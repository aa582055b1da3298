"""Readability and syntactic complexity: a prompt-agnostic feature family (``read.*``).

What the cross-prompt literature found to transfer (docs/research/cross-prompt-features.md):
PAES (Ridley et al. 2020) feeds readability indices (Flesch, Flesch-Kincaid, Fog, SMOG, ARI,
Coleman-Liau, ...) and syntactic complexity (clauses per sentence, parse depth) next to POS
sequences. No tagger or parser that ships its model installs here, so syntactic complexity is
approximated by clause markers: subordinating conjunctions and relative pronouns per sentence
(Lu 2010's clauses per sentence is what they stand in for), and the spread of sentence lengths.

Nothing is fitted: every value depends on the essay alone, so the family is leak-free by
construction and its state is empty. No feature reads a content word, so none is topic-bound.

The formulas (words W, sentences S, syllables Y, letters L, complex words C = words of 3 or
more syllables):

- Flesch reading ease ``206.835 - 1.015 W/S - 84.6 Y/W`` (Flesch 1948);
- Flesch-Kincaid grade ``0.39 W/S + 11.8 Y/W - 15.59`` (Kincaid et al. 1975);
- Gunning fog ``0.4 (W/S + 100 C/W)`` (Gunning 1952);
- Coleman-Liau ``0.0588 (100 L/W) - 0.296 (100 S/W) - 15.8`` (Coleman & Liau 1975);
- automated readability index ``4.71 L/W + 0.5 W/S - 21.43`` (Senter & Smith 1967).

Syllables are counted with the usual vowel-group rule (groups of ``aeiouy``, a final silent
``e`` dropped, at least one per word); it is the rule ``textstat``'s fallback uses, and it is
within a syllable of the CMU dictionary's count for most English words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from moqwk.features.tokens import sentences

FAMILY = "readability"
PREFIX = "read."

#: Subordinating conjunctions: each opens an adverbial clause.
SUBORDINATORS = frozenset(
    "after although because before if once since though unless until when whenever "
    "where whereas wherever whether while".split()
)
#: Relative pronouns and ``that``: each may open a relative or complement clause.
RELATIVES = frozenset("who whom whose which that".split())
#: Coordinating conjunctions.
COORDINATORS = frozenset("and but or so yet nor".split())

LONG_SENTENCE = 30  # words: a run-on, or a long multi-clause sentence
SHORT_SENTENCE = 5  # words: a fragment

NAMES: tuple[str, ...] = tuple(
    PREFIX + n
    for n in (
        "syllables_per_word",
        "polysyllable_share",
        "flesch_reading_ease",
        "flesch_kincaid_grade",
        "gunning_fog",
        "coleman_liau",
        "ari",
        "sent_len_median",
        "sent_len_max",
        "long_sentence_share",
        "short_sentence_share",
        "subordinators_per_sentence",
        "relatives_per_sentence",
        "coordinators_per_sentence",
        "clauses_per_sentence",
    )
)

_VOWELS = re.compile(r"[aeiouy]+")


@lru_cache(maxsize=200_000)
def syllables(word: str) -> int:
    """Syllables of one lowercased word by the vowel-group rule; at least 1."""
    if not word.isalpha():
        return 1
    n = len(_VOWELS.findall(word))
    if n > 1 and word.endswith("e") and not word.endswith(("le", "ee", "ye")):
        n -= 1
    return max(n, 1)


def essay_features(text: str) -> list[float]:
    """The :data:`NAMES` values of one essay; an essay with no words gives zeros."""
    sents = sentences(text)
    lens = np.array([len(s) for s in sents], dtype=np.float64)
    n_sent = len(sents)
    words = [w for s in sents for w in s]
    n_words = len(words)
    if n_words == 0:
        return [0.0] * len(NAMES)
    syl = np.fromiter((syllables(w) for w in words), dtype=np.float64, count=n_words)
    letters = float(sum(map(len, words)))
    wps = n_words / n_sent
    spw = float(syl.sum()) / n_words
    complex_share = float(np.count_nonzero(syl >= 3)) / n_words
    n_sub = sum(w in SUBORDINATORS for w in words)
    n_rel = sum(w in RELATIVES for w in words)
    n_coord = sum(w in COORDINATORS for w in words)
    return [
        spw,
        complex_share,
        206.835 - 1.015 * wps - 84.6 * spw,
        0.39 * wps + 11.8 * spw - 15.59,
        0.4 * (wps + 100.0 * complex_share),
        0.0588 * (100.0 * letters / n_words) - 0.296 * (100.0 * n_sent / n_words) - 15.8,
        4.71 * letters / n_words + 0.5 * wps - 21.43,
        float(np.median(lens)),
        float(lens.max()),
        float(np.count_nonzero(lens >= LONG_SENTENCE)) / n_sent,
        float(np.count_nonzero(lens <= SHORT_SENTENCE)) / n_sent,
        n_sub / n_sent,
        n_rel / n_sent,
        n_coord / n_sent,
        1.0 + (n_sub + n_rel) / n_sent,
    ]


class ReadabilityFamily:
    """``read.*``: readability indices and clause-marker complexity. Stateless (nothing fitted)."""

    name = FAMILY
    feature_names: tuple[str, ...] = NAMES

    def fit(self, texts: Sequence[str]) -> ReadabilityFamily:
        """Nothing to fit; returns ``self`` so ``fit(train).transform(val)`` reads as usual."""
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """float64 ``(len(texts), len(feature_names))``."""
        out = np.zeros((len(texts), len(NAMES)), dtype=np.float64)
        for i, text in enumerate(texts):
            out[i] = essay_features(text)
        return out

    def state(self) -> dict[str, Any]:
        """The JSON-able fitted state (empty: the family fits nothing)."""
        return {"family": FAMILY, "version": 1}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ReadabilityFamily:
        if state.get("family") != FAMILY:
            raise ValueError(f"not a {FAMILY} state: {dict(state)!r}")
        return cls()
