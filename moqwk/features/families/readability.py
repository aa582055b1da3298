"""``features.readability`` (``read.*``): readability indices and clause-marker complexity.

The features are :mod:`moqwk.features.readability`'s (why and how: its docstring and
docs/research/cross-prompt-features.md). Per essay, nothing fitted; off by default.
"""

from __future__ import annotations

import numpy as np

from moqwk.features import readability as impl
from moqwk.features.families.switch import SwitchFamily


class ReadabilityFamily(SwitchFamily):
    name = "readability"
    prefix = "read"
    help = ("readability indices (Flesch, Flesch-Kincaid, fog, Coleman-Liau, ARI), syllables, "
            "sentence-length spread, and clause markers per sentence (`read.*`, 15 columns); "
            "per essay, nothing fitted")

    def names(self) -> tuple[str, ...]:
        return impl.NAMES

    def columns(self, texts: list[str]) -> np.ndarray:
        return impl.ReadabilityFamily().transform(texts)


READABILITY = ReadabilityFamily()
