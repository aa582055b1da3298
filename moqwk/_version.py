"""moqwk's version, in the bottom layer so that any module may read it (``moqwk.__version__``
re-exports it; the package itself sits at the top, as the public API).

Keep it equal to ``version`` in ``pyproject.toml``.
"""

__version__ = "0.1.0"
