"""Discourse connectives by category: a prompt-agnostic feature family (``conn.*``).

Cohesion is scored on every ELLIPSE prompt by the same rubric, and the cues a rater reads for it
(``however``, ``for example``, ``in conclusion``) do not depend on the topic. The lists below are
fixed and written here, so nothing is fitted and no prompt's vocabulary enters:

- the categories follow the top-level senses of the Penn Discourse Treebank 2.0's explicit
  connectives (Prasad et al. 2008: Expansion, Comparison, Contingency, Temporal), split as TAACO
  splits them for essays (Crossley, Kyle & McNamara 2016: addition, contrast, cause, sequence,
  example, conclusion), plus the stance markers of argumentative essays ("in my opinion");
- each phrase is in one category; ambiguous one-word items whose discourse use is the exception
  (``like``, ``as``, ``still``, ``too``) are left out.

Counts are per sentence; phrases match on word boundaries, longest first (``even though`` is one
contrast, not also a ``though``), case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from moqwk.features.tokens import sentence_texts

FAMILY = "connectives"
PREFIX = "conn."

CONNECTIVES: dict[str, tuple[str, ...]] = {
    "addition": (
        "also", "in addition", "furthermore", "moreover", "additionally", "besides",
        "as well as", "not only", "what is more", "along with",
    ),
    "contrast": (
        "however", "but", "although", "though", "even though", "on the other hand",
        "in contrast", "nevertheless", "nonetheless", "yet", "whereas", "while", "instead",
        "despite", "in spite of", "on the contrary", "otherwise", "conversely", "even if",
        "rather than", "unlike",
    ),
    "cause": (
        "because", "because of", "since", "so", "so that", "therefore", "thus", "hence",
        "as a result", "consequently", "due to", "for this reason", "that is why",
        "this is why", "in order to", "which means", "this means",
    ),
    "sequence": (
        "first", "firstly", "first of all", "second", "secondly", "third", "thirdly",
        "finally", "lastly", "next", "then", "to begin with", "after that", "afterwards",
        "meanwhile", "at the same time", "eventually", "later",
    ),
    "example": (
        "for example", "for instance", "such as", "in particular", "specifically",
        "namely", "to illustrate", "in fact", "especially",
    ),
    "conclusion": (
        "in conclusion", "to conclude", "in summary", "to sum up", "overall", "in short",
        "all in all", "to summarize", "in the end", "ultimately", "in brief",
    ),
    "stance": (
        "in my opinion", "i think", "i believe", "i agree", "i disagree", "personally",
        "from my point of view", "in my view", "i feel", "in my experience",
    ),
}  # fmt: skip

CATEGORIES: tuple[str, ...] = tuple(CONNECTIVES)
_CATEGORY_OF: dict[str, int] = {
    phrase: k for k, cat in enumerate(CATEGORIES) for phrase in CONNECTIVES[cat]
}
if len(_CATEGORY_OF) != sum(map(len, CONNECTIVES.values())):  # pragma: no cover - a list edit
    raise AssertionError("a connective is listed in two categories")

_ALTERNATION = "|".join(
    re.escape(p).replace(r"\ ", r"\s+") for p in sorted(_CATEGORY_OF, key=len, reverse=True)
)
_ANY = re.compile(rf"(?<![\w'\u2019])(?:{_ALTERNATION})(?![\w'\u2019])")
_OPENER = re.compile(rf"^[\W_]*(?:{_ALTERNATION})(?![\w'\u2019])")
_SPACES = re.compile(r"\s+")

NAMES: tuple[str, ...] = tuple(
    [f"{PREFIX}{c}_per_sentence" for c in CATEGORIES]
    + [
        f"{PREFIX}all_per_sentence",
        f"{PREFIX}distinct",
        f"{PREFIX}categories_used",
        f"{PREFIX}opener_share",
    ]
)


def essay_features(text: str) -> list[float]:
    """The :data:`NAMES` values of one essay; an essay with no sentence gives zeros."""
    sents = sentence_texts(text)
    n_sent = len(sents)
    if n_sent == 0:
        return [0.0] * len(NAMES)
    counts = [0] * len(CATEGORIES)
    seen: set[str] = set()
    openers = 0
    for s in sents:
        for m in _ANY.finditer(s):
            phrase = _SPACES.sub(" ", m.group())
            counts[_CATEGORY_OF[phrase]] += 1
            seen.add(phrase)
        openers += _OPENER.match(s) is not None
    total = sum(counts)
    return [
        *(c / n_sent for c in counts),
        total / n_sent,
        float(len(seen)),
        sum(c > 0 for c in counts) / len(CATEGORIES),
        openers / n_sent,
    ]


class ConnectivesFamily:
    """``conn.*``: connectives per sentence by category, their variety, sentence openers.

    Stateless: the lists are fixed in this module (nothing is fitted, nothing leaks)."""

    name = FAMILY
    feature_names: tuple[str, ...] = NAMES

    def fit(self, texts: Sequence[str]) -> ConnectivesFamily:
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(NAMES)), dtype=np.float64)
        for i, text in enumerate(texts):
            out[i] = essay_features(text)
        return out

    def state(self) -> dict[str, Any]:
        return {"family": FAMILY, "version": 1}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ConnectivesFamily:
        if state.get("family") != FAMILY:
            raise ValueError(f"not a {FAMILY} state: {dict(state)!r}")
        return cls()
