"""The Python API, private here and re-exported from :mod:`moqwk` (as Optuna does).

- :mod:`moqwk._api.scoring`: :func:`cv`, :func:`compare`;
- :mod:`moqwk._api.study`: :func:`search`, :func:`select`;
- :mod:`moqwk._api.model`: :func:`fit`, :func:`load_model`, :func:`predict`;
- :mod:`moqwk._api.results`: the frozen result of each.

The CLI commands call these functions and print their results. Import them from ``moqwk``:
``moqwk.cv(config={...}, run_dir="runs/x")``.
"""

from moqwk._api.model import fit, load_model, predict
from moqwk._api.results import (
    CompareResult,
    CompareRun,
    CVResult,
    Estimate,
    FitResult,
    SearchResult,
    SelectResult,
)
from moqwk._api.scoring import compare, cv
from moqwk._api.study import search, select

__all__ = [
    "CVResult", "CompareResult", "CompareRun", "Estimate", "FitResult", "SearchResult",
    "SelectResult", "compare", "cv", "fit", "load_model", "predict", "search", "select",
]
