"""The score mapping of a fitted model: raw normalised predictions to scores on each scale.

A model directory's ``model.json`` holds one ``mapping`` record (:func:`mapping_record`):

```json
{"method": "round", "params": {}, "transductive": false, "min_batch": null,
 "fallback": null, "fitted_on": null, "source": "..."}
```

- ``method``: the mapping's name; ``round`` (rounded to the step, clipped to the range: the CV
  engine's behaviour) is the only one this version applies;
- ``params``: the numbers the method fitted (a stretch's slope and intercept, thresholds, target
  mean and SD), JSON values only;
- ``transductive``: true when the method uses statistics of the batch being scored (per-prompt
  centring or standardising): each prompt's essays are then mapped together, and a prompt with
  fewer than ``min_batch`` essays in the batch is refused, or mapped with ``fallback`` (a
  non-transductive method name) when the caller asks for it;
- ``fitted_on``: which essays the numbers came from; ``source``: where the record was read.

:func:`apply_score_mapping` is the one place predictions become scores; a new method plugs in
there (see ``_METHODS``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from moqwk.core.scale import EssayScale
from moqwk.errors import DataError, ModelError

SMALL_BATCH = ("refuse", "fallback")

#: A method: ``(params, raw_norm, prompts, essay_scale) -> scores``, all arrays row-aligned.
Method = Callable[[Mapping[str, Any], np.ndarray, np.ndarray, EssayScale], np.ndarray]


def _round(params: Mapping[str, Any], raw_norm: np.ndarray, prompts: np.ndarray,
           essay_scale: EssayScale) -> np.ndarray:
    return essay_scale.to_scale(raw_norm)


_METHODS: dict[str, Method] = {"round": _round}


def mapping_record(mapping: Mapping[str, Any] | None, *, source: str) -> dict[str, Any]:
    """The manifest's ``mapping`` record from a selection's ``mapping`` entry (None: ``round``).

    Unknown methods are recorded as they are: fitting does not need to apply them, and a later
    moqwk may. Fields the entry lacks get their defaults.
    """
    m = dict(mapping or {"method": "round"})
    method = m.get("method")
    if not isinstance(method, str) or not method:
        raise ModelError(f"{source}: the score mapping has no method name ({mapping!r})")
    out = {"method": method, "params": m.get("params") or {},
           "transductive": bool(m.get("transductive", False)), "min_batch": m.get("min_batch"),
           "fallback": m.get("fallback"), "fitted_on": m.get("fitted_on"), "source": source}
    if out["transductive"]:
        if not isinstance(out["min_batch"], int) or out["min_batch"] < 1:
            raise ModelError(f"{source}: transductive mapping {method!r} needs min_batch >= 1, "
                             f"got {out['min_batch']!r}")
    return out


def batch_plan(mapping: Mapping[str, Any], prompts: np.ndarray, *,
               small_batch: str = "refuse") -> dict[str, str]:
    """How each prompt of a batch is mapped: ``{prompt: method}``.

    A transductive mapping maps each prompt's essays together; a prompt with fewer than
    ``min_batch`` essays in the batch is refused (``small_batch="refuse"``) or takes the
    mapping's ``fallback`` method (``small_batch="fallback"``).
    """
    if small_batch not in SMALL_BATCH:
        raise ValueError(f"small_batch must be one of {SMALL_BATCH}, got {small_batch!r}")
    names, counts = np.unique(np.asarray(prompts).astype(str), return_counts=True)
    method = str(mapping["method"])
    if not mapping.get("transductive"):
        return dict.fromkeys(names.tolist(), method)
    need = int(mapping["min_batch"])
    small = {str(p): int(n) for p, n in zip(names, counts, strict=True) if n < need}
    if small and small_batch == "refuse":
        shown = ", ".join(f"{p} ({n})" for p, n in list(small.items())[:5])
        fallback = mapping.get("fallback")
        how = (f"or pass --small-batch fallback (small_batch='fallback' in Python) to map them "
               f"with {fallback!r}" if fallback else "(the mapping has no fallback method)")
        raise DataError(
            f"the score mapping {method!r} standardises each prompt's predictions as a batch and "
            f"needs at least {need} essays per prompt; these prompts have fewer in this batch: "
            f"{shown}; score more of their essays together, {how}")
    if small and not mapping.get("fallback"):
        raise DataError(f"the score mapping {method!r} has no fallback method for prompts with "
                        f"fewer than {need} essays; score at least {need} per prompt together")
    return {str(p): (str(mapping["fallback"]) if str(p) in small else method) for p in names}


def apply_score_mapping(mapping: Mapping[str, Any], raw_norm: np.ndarray, prompts: np.ndarray,
                        essay_scale: EssayScale, *, small_batch: str = "refuse") -> np.ndarray:
    """Scores on each essay's scale from raw normalised predictions, as ``mapping`` says.

    ``raw_norm``, ``prompts`` and ``essay_scale`` are row-aligned; the rows are one batch (what a
    transductive method computes its per-prompt statistics on).
    """
    raw = np.asarray(raw_norm, dtype=float)
    prompts = np.asarray(prompts).astype(str)
    if raw.ndim != 1 or len(prompts) != len(raw) or len(essay_scale.lo) != len(raw):
        raise ValueError(f"raw_norm, prompts and essay_scale must be row-aligned 1-D, got "
                         f"{raw.shape}, {prompts.shape}, {essay_scale.lo.shape}")
    plan = batch_plan(mapping, prompts, small_batch=small_batch)
    unknown = sorted({m for m in plan.values() if m not in _METHODS})
    if unknown:
        raise ModelError(
            f"the model's score mapping {unknown[0]!r} cannot be applied by this moqwk "
            f"(it applies: {', '.join(sorted(_METHODS))}); upgrade moqwk, or fit the model "
            "again with a mapping it applies")
    out = np.full(len(raw), np.nan)
    for method in sorted(set(plan.values())):
        rows = np.flatnonzero(np.isin(prompts, [p for p, m in plan.items() if m == method]))
        params = mapping.get("params") or {} if method == mapping["method"] else {}
        out[rows] = _METHODS[method](params, raw[rows], prompts[rows], essay_scale.take(rows))
    return out
