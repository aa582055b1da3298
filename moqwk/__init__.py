"""moqwk: constrained multi-objective hyperparameter search for XGBoost essay scoring.

CV-first and selection-disciplined: features built once per fold without leakage, prompt-holdout
cross-validation, four objectives (worst-prompt QWK, mean per-prompt QWK, low- and high-tail error),
tail guardrails as constraints, and a separate, auditable selector.

The Python API (each function returns a frozen result; errors are :mod:`moqwk.errors`)::

    import moqwk
    moqwk.cv(config={...} or "config.yaml", run_dir="runs/a")       # -> moqwk.CVResult
    moqwk.search(config=..., run_dir="runs/a", n_trials=40)          # -> moqwk.SearchResult
    moqwk.select(run_dir="runs/a")                                   # -> moqwk.SelectResult
    moqwk.compare("runs/a", "runs/grid", out="runs/compare")         # -> moqwk.CompareResult
    moqwk.fit(run_dir="runs/a")                                      # -> moqwk.FitResult
    moqwk.load_model("runs/a/model").predict(frame)                  # or moqwk.predict(...)

The names are imported on first use (module ``__getattr__``), so ``import moqwk`` stays light:
it imports no Optuna, SQLAlchemy, matplotlib or XGBoost, and the scoring path
(``load_model``, ``predict``) never imports the search stack.
"""

from __future__ import annotations

import os as _os
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

# XGBoost's OpenMP threads spin while waiting by default. When trials run in parallel, or anything
# else competes for the cores, spinning threads starve each other: on 2 cores we measured a
# 120-round fit go from 1.7 s to 40 s. Passive waiting costs nothing measurable when the cores
# are free. libgomp reads this once, when XGBoost loads, so it is set before any import of it.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from moqwk._version import __version__ as __version__

#: Public name -> the private module that defines it.
_EXPORTS = {
    "cv": "moqwk._api.scoring",
    "compare": "moqwk._api.scoring",
    "search": "moqwk._api.study",
    "select": "moqwk._api.study",
    "fit": "moqwk._api.model",
    "load_model": "moqwk._api.model",
    "predict": "moqwk._api.model",
    "demo_corpus": "moqwk.data.demo_corpus",
    "CVResult": "moqwk._api.results",
    "SearchResult": "moqwk._api.results",
    "SelectResult": "moqwk._api.results",
    "Estimate": "moqwk._api.results",
    "Holdout": "moqwk._api.results",
    "HoldoutEstimate": "moqwk._api.results",
    "CompareResult": "moqwk._api.results",
    "CompareRun": "moqwk._api.results",
    "FitResult": "moqwk._api.results",
    "Model": "moqwk.model.predict",
    "Config": "moqwk.config.load",
    "load_config": "moqwk.config.load",
    "MoqwkError": "moqwk.errors",
    "ConfigError": "moqwk.errors",
    "DataError": "moqwk.errors",
    "StorageError": "moqwk.errors",
    "RunDirError": "moqwk.errors",
    "ModelError": "moqwk.errors",
    "NoFeasibleTrialError": "moqwk.errors",
    "StabilityGateError": "moqwk.errors",
}

if _TYPE_CHECKING:
    from moqwk._api.model import fit, load_model, predict
    from moqwk._api.results import (
        CompareResult,
        CompareRun,
        CVResult,
        Estimate,
        FitResult,
        Holdout,
        HoldoutEstimate,
        SearchResult,
        SelectResult,
    )
    from moqwk._api.scoring import compare, cv
    from moqwk._api.study import search, select
    from moqwk.config.load import Config, load_config
    from moqwk.data.demo_corpus import demo_corpus
    from moqwk.errors import (
        ConfigError,
        DataError,
        ModelError,
        MoqwkError,
        NoFeasibleTrialError,
        RunDirError,
        StabilityGateError,
        StorageError,
    )
    from moqwk.model.predict import Model


def __getattr__(name: str) -> _Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'moqwk' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


#: Written out (not ``[*_EXPORTS]``) so linters and type checkers see the public names.
__all__ = [
    "CVResult", "CompareResult", "CompareRun", "Config", "ConfigError", "DataError", "Estimate",
    "FitResult", "Holdout", "HoldoutEstimate", "Model", "ModelError", "MoqwkError",
    "NoFeasibleTrialError", "RunDirError", "SearchResult", "SelectResult", "StabilityGateError",
    "StorageError", "__version__", "compare", "cv", "demo_corpus", "fit", "load_config",
    "load_model", "predict", "search", "select",
]
