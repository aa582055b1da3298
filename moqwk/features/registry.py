"""The one registry of feature families: ``features.<name>`` -> a Family.

Config parsing (``features:``), the search-space checks (``features.<name>.<field>``), the
per-fold store, ``fit``, ``predict`` and ``moqwk cv``'s report all read :data:`FAMILIES`.
The order is the column order of the feature matrix: append a new family at the end, so the
columns of existing configs keep their places (and their cache keys and models stay valid).

Adding a family is one module under ``moqwk/features/families/``, its tests and one line
here; see :mod:`moqwk.features.family` for the interface.
"""

from __future__ import annotations

from moqwk.features.families.handcrafted import HANDCRAFTED
from moqwk.features.families.ngram import CHAR, WORD
from moqwk.features.families.table import TABLE
from moqwk.features.family import Family

FAMILIES: dict[str, Family] = {
    f.name: f for f in (HANDCRAFTED, WORD, CHAR, TABLE)
}


def family(name: str) -> Family:
    """The registered family ``name`` (KeyError naming the known ones)."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown feature family {name!r}; known: {', '.join(FAMILIES)}") from None
