"""The one registry of feature families: ``features.<name>`` -> a Family.

Config parsing (``features:``), the search-space checks (``features.<name>.<field>``), the
per-fold store, ``fit``, ``predict`` and ``moqwk cv``'s report all read :data:`FAMILIES`.
The order is the column order of the feature matrix: append a new family at the end, so the
columns of existing configs keep their places (and their cache keys and models stay valid).

Adding a family is one module under ``moqwk/features/families/``, its tests and one line
here; see :mod:`moqwk.features.family` for the interface.
"""

from __future__ import annotations

from moqwk.features.families.connectives import CONNECTIVES
from moqwk.features.families.handcrafted import HANDCRAFTED
from moqwk.features.families.lexical import LEXICAL
from moqwk.features.families.ngram import CHAR, WORD
from moqwk.features.families.readability import READABILITY
from moqwk.features.families.table import TABLE
from moqwk.features.family import Family

FAMILIES: dict[str, Family] = {
    # the prompt-agnostic families (issue 19) are off by default until a benchmark shows they
    # earn a place in the default (docs/research/cross-prompt-features.md)
    f.name: f for f in (HANDCRAFTED, WORD, CHAR, TABLE, READABILITY, CONNECTIVES, LEXICAL)
}


def family(name: str) -> Family:
    """The registered family ``name`` (KeyError naming the known ones)."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown feature family {name!r}; known: {', '.join(FAMILIES)}") from None
