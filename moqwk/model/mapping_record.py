"""The score mapping of a fitted model: raw normalised predictions to scores on each scale.

A model directory's ``model.json`` holds one ``mapping`` record (:func:`mapping_record`). Its
fields are those of a fitted mapping's JSON record (``method``, ``params``, ``numbers``,
``fitted_on``, ``transductive``) plus ``source``, where the record was read:

```json
{"method": "round", "params": {}, "numbers": {}, "fitted_on": {}, "transductive": false,
 "source": "RUN/artifacts/selected_params.json (the selected trial): no mapping recorded, ..."}
```

- ``method``: the mapping's name, one of :data:`moqwk.core.mapping.METHODS`;
- ``params`` / ``numbers``: the method's settings and what it fitted (JSON values only);
- ``fitted_on``: which essays the numbers came from;
- ``transductive``: true when the method maps each prompt's essays with statistics of that
  prompt's essays in the batch being scored. ``batch`` (in ``numbers`` and ``params``) is the
  deployment batch its CV numbers assume (``prompt`` or an integer; missing in a record from
  before batches were declared: ``prompt``). The fewest essays of a prompt it maps that way is
  ``min_batch``, or an integer ``batch`` when larger (:func:`min_batch`); a prompt with fewer
  is refused, or, when the caller allows it, takes the method's ``fallback``
  (``params.fallback``), exactly as CV mapped a batch below the declared size.

:func:`apply_score_mapping` is the one place a model's predictions become scores; it applies the
recorded numbers with :func:`moqwk.core.mapping.apply_mapping`, as the CV engine does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from moqwk.core.mapping import METHODS, FittedMapping, apply_mapping
from moqwk.core.scale import EssayScale
from moqwk.errors import DataError, ModelError

SMALL_BATCH = ("refuse", "fallback")


def mapping_record(entry: Mapping[str, Any] | None, *, source: str) -> dict[str, Any]:
    """The manifest's ``mapping`` record: a fitted mapping's JSON record (None: ``round``) plus
    ``source``, where it came from. A method this moqwk does not know is refused."""
    m = dict(entry or {"method": "round"})
    method = m.get("method")
    if not isinstance(method, str) or not method:
        raise ModelError(f"{source}: the score mapping has no method name ({entry!r})")
    if method not in METHODS:
        raise ModelError(f"{source}: unknown score mapping {method!r} (this moqwk knows "
                         f"{', '.join(METHODS)}); upgrade moqwk or refit the model")
    out = {"method": method, "params": dict(m.get("params") or {}),
           "numbers": dict(m.get("numbers") or {}), "fitted_on": dict(m.get("fitted_on") or {}),
           "transductive": bool(m.get("transductive", False)), "source": source}
    if out["transductive"]:
        need = min_batch(out)
        if not isinstance(need, int) or isinstance(need, bool) or need < 1:
            raise ModelError(f"{source}: transductive mapping {method!r} needs min_batch >= 1 "
                             f"in its numbers or params, got {need!r}")
    return out


def min_batch(mapping: Mapping[str, Any]) -> Any:
    """A transductive mapping's fewest essays per prompt and batch (None: not transductive):
    its ``min_batch``, or its declared integer ``batch`` when larger. The CV numbers assumed
    batches of the declared size; a smaller one is refused, or takes the fallback."""
    if not mapping.get("transductive"):
        return None
    numbers, params = mapping.get("numbers") or {}, mapping.get("params") or {}
    need = numbers.get("min_batch", params.get("min_batch"))
    batch = declared_batch(mapping)
    if isinstance(need, int) and not isinstance(need, bool) and isinstance(batch, int):
        return max(need, batch)
    return need


def declared_batch(mapping: Mapping[str, Any]) -> Any:
    """The deployment batch a transductive mapping's numbers assume: ``"prompt"`` or an integer
    (None: not transductive). A record from before batches were declared: ``"prompt"``."""
    if not mapping.get("transductive"):
        return None
    numbers, params = mapping.get("numbers") or {}, mapping.get("params") or {}
    return numbers.get("batch", params.get("batch", "prompt"))


def small_prompts(mapping: Mapping[str, Any], prompts: np.ndarray, *,
                  small_batch: str = "refuse") -> dict[str, int]:
    """Prompts of the batch with fewer essays than a transductive mapping needs: ``{prompt: n}``.

    Raises :class:`DataError` for any with ``small_batch="refuse"``; with ``"fallback"`` they are
    returned, and the method maps them with its fallback. Empty for other mappings.
    """
    if small_batch not in SMALL_BATCH:
        raise ValueError(f"small_batch must be one of {SMALL_BATCH}, got {small_batch!r}")
    need = min_batch(mapping)
    if need is None:
        return {}
    names, counts = np.unique(np.asarray(prompts).astype(str), return_counts=True)
    small = {str(p): int(n) for p, n in zip(names, counts, strict=True) if n < need}
    if small and small_batch == "refuse":
        shown = ", ".join(f"{p} ({n})" for p, n in list(small.items())[:5])
        fallback = (mapping.get("params") or {}).get("fallback")
        batch = declared_batch(mapping)
        why = (f"its CV numbers assume batches of {batch} essays per prompt (mapping.params."
               f"batch), so it needs at least {need} essays per prompt in one batch"
               if isinstance(batch, int) else
               f"needs at least {need} essays per prompt in one batch (its CV numbers assume a "
               f"prompt's whole cohort at once, mapping.params.batch = prompt)")
        raise DataError(
            f"the score mapping {mapping['method']!r} maps each prompt's essays with their own "
            f"statistics and {why}; these prompts have fewer: {shown}; score at least {need} of "
            f"a prompt's essays together, or pass --small-batch fallback (small_batch="
            f"'fallback' in Python) to map them with its fallback ({fallback!r})")
    return small


def apply_score_mapping(mapping: Mapping[str, Any], raw_norm: np.ndarray, prompts: np.ndarray,
                        essay_scale: EssayScale, *, small_batch: str = "refuse") -> np.ndarray:
    """Scores on each essay's scale from raw normalised predictions, as ``mapping`` says.

    ``raw_norm``, ``prompts`` and ``essay_scale`` are row-aligned, and the rows are one batch:
    what a transductive method computes its per-prompt statistics on. A prompt below a
    transductive mapping's ``min_batch`` is refused unless ``small_batch="fallback"``.
    """
    raw = np.asarray(raw_norm, dtype=float)
    prompts = np.asarray(prompts).astype(str)
    if raw.ndim != 1 or len(prompts) != len(raw) or len(essay_scale.lo) != len(raw):
        raise ValueError(f"raw_norm, prompts and essay_scale must be row-aligned 1-D, got "
                         f"{raw.shape}, {prompts.shape}, {essay_scale.lo.shape}")
    small_prompts(mapping, prompts, small_batch=small_batch)
    if mapping["method"] == "round":
        return essay_scale.to_scale(raw)
    _, codes = np.unique(prompts, return_inverse=True)  # a prompt's essays are one batch
    try:
        fitted = FittedMapping.from_dict({k: v for k, v in mapping.items() if k != "source"})
        return apply_mapping(fitted, pred=raw, prompt_codes=codes.astype(np.int64),
                             lo=essay_scale.lo, hi=essay_scale.hi, step=essay_scale.step).y_pred
    except (KeyError, TypeError) as e:  # a number the method needs is missing or malformed
        raise ModelError(f"the model's score mapping record is damaged (missing or malformed "
                         f"{e}); refit the model") from None
