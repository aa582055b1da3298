"""moqwk: constrained multi-objective hyperparameter search for XGBoost essay scoring.

CV-first and selection-disciplined: features built once per fold without leakage, prompt-holdout
cross-validation, four objectives (worst-prompt QWK, mean per-prompt QWK, low- and high-tail error),
tail guardrails as constraints, and a separate, auditable selector.
"""

from __future__ import annotations

import os as _os
from typing import TYPE_CHECKING as _TYPE_CHECKING

# XGBoost's OpenMP threads spin while waiting by default. When trials run in parallel, or anything
# else competes for the cores, spinning threads starve each other: on 2 cores we measured a
# 120-round fit go from 1.7 s to 40 s. Passive waiting costs nothing measurable when the cores
# are free. libgomp reads this once, when XGBoost loads, so it is set before any import of it.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

if _TYPE_CHECKING:
    from pathlib import Path as _Path

    from moqwk.model.predict import Model


def load_model(path: str | _Path) -> Model:
    """Load a model directory written by ``moqwk fit``: ``load_model(path).predict(frame)``.

    See :func:`moqwk.model.predict.load_model` (imported on first use: XGBoost loads slowly).
    """
    from moqwk.model.predict import load_model as _load

    return _load(path)


__all__ = ["__version__", "load_model"]
