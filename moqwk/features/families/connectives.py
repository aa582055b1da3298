"""``features.connectives`` (``conn.*``): discourse connectives per sentence, by category.

The features are :mod:`moqwk.features.connectives`'s (the fixed lists and their sources are
there). Per essay, nothing fitted; off by default.
"""

from __future__ import annotations

import numpy as np

from moqwk.features import connectives as impl
from moqwk.features.families.switch import SwitchFamily


class ConnectivesFamily(SwitchFamily):
    name = "connectives"
    prefix = "conn"
    help = ("discourse connectives per sentence in 7 fixed categories, their variety, and "
            "sentences opened by one (`conn.*`, 11 columns); per essay, nothing fitted")

    def names(self) -> tuple[str, ...]:
        return impl.NAMES

    def columns(self, texts: list[str]) -> np.ndarray:
        return impl.ConnectivesFamily().transform(texts)


CONNECTIVES = ConnectivesFamily()
