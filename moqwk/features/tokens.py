"""Words and sentences of an essay, by the same rules as the handcrafted features (``text.py``).

Words are runs of letters/digits with inner apostrophes kept; sentences end at ``.!?`` followed by
a space, or at a line break. The prompt-agnostic families (``readability``, ``connectives``,
``lexical``) all read essays through :func:`sentences`, so their counts agree with ``hc.*``.
"""

from __future__ import annotations

import re

WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
SENT_SPLIT = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?:\s+|$)|\n+")


def sentences(text: str, *, lower: bool = True) -> list[list[str]]:
    """The essay's non-empty sentences, each a list of its words (lowercased by default)."""
    out = []
    for s in SENT_SPLIT.split(text):
        toks = WORD.findall(s.lower() if lower else s)
        if toks:
            out.append(toks)
    return out


def sentence_texts(text: str) -> list[str]:
    """The raw text of each non-empty sentence (for phrase matching), lowercased."""
    return [s.lower() for s in SENT_SPLIT.split(text) if WORD.search(s)]
