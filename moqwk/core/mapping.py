"""Score mapping: from a model's raw normalised prediction to a score on each essay's scale.

Models train on each essay's score normalised to [0, 1] (0 the bottom of its scale, 1 the top).
A mapping turns the raw prediction ``z`` into a continuous normalised value ``z'``, which
:meth:`EssayScale.to_scale` then rounds to the essay's step and clips to its range. Methods are
registered by name in :data:`METHODS`; adding one is one :class:`Method` entry plus its tests.

Two kinds of method, and what "leak-free" means for each:

* **Label-based** (``stretch``, ``thresholds``): numbers fitted by
  :func:`fit_mapping` from *training* essays only: their predictions ``train_pred`` and their
  normalised scores. Which predictions those are is the caller's choice and is recorded
  (``source``). Measured on ELLIPSE (docs/research/score-mapping-design.md): fit on inner
  cross-fitted predictions (3 prompt-grouped folds inside the training fold, features refitted
  on each inner training set); in-sample predictions are less shrunk (fitted slope 1.25 against
  1.58) and inner fits on the outer fold's features miss the held-out predictions' offset.
  ``stretch`` with ``slope`` (and ``shift``) set fits nothing from predictions: those are search
  parameters, and only the training scores' mean is used.
* **Label-free, per prompt** (``prompt_center``, ``prompt_standardize``): statistics of a prompt's
  own predictions, taken over the batch of that prompt's essays passed to :func:`apply_mapping`
  (transductive: an essay's score depends on the other essays of its prompt in the batch),
  mapped to numbers from the training essays' normalised scores. ``batch`` declares how they
  will be scored in use (``prompt``: a prompt's whole cohort at once; an integer B: B essays of
  a prompt at a time; see :mod:`moqwk.core.batching`, which CV uses to score in such batches).
  A prompt with fewer than ``min_batch`` essays in the batch, or fewer than an integer
  ``batch``, takes the method's ``fallback`` (``none``: the raw prediction, as ``round``;
  ``stretch``: the fitted stretch), and ``MappedScores.fallback`` marks its essays.

:func:`apply_mapping` has no label argument: held-out scores cannot enter a mapped prediction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from moqwk.core.metrics import qwk_by_group
from moqwk.core.scale import EssayScale

__all__ = ["DEFAULT_BATCH", "METHODS", "PARAM_PREFIX", "FittedMapping", "MappedScores",
           "MappingSpec", "Method",
           "apply_mapping", "complete_params", "fit_mapping", "model_params", "needed_batch",
           "needs_train_pred",
           "spec_from_params",
           "spec_to_params"]

_EPS_SD = 1e-9  # a batch whose predictions have a smaller sd cannot be standardised


# ---------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class MappingSpec:
    """A method name and its parameters (missing ones take the method's defaults)."""

    method: str = "round"
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"mapping.method: unknown method {self.method!r}; "
                             f"choose one of {', '.join(METHODS)}")
        if not isinstance(self.params, Mapping):
            raise ValueError(f"mapping.params: expected a mapping, got {self.params!r}")
        m = METHODS[self.method]
        unknown = sorted(set(self.params) - set(m.defaults))
        if unknown:
            allowed = ", ".join(sorted(m.defaults)) or "none"
            raise ValueError(f"mapping.params.{unknown[0]}: unknown for method {self.method!r}; "
                             f"allowed: {allowed}")
        full = {**m.defaults, **self.params}
        m.check(full)
        object.__setattr__(self, "params", MappingProxyType(full))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "params": dict(self.params)}

    @property
    def transductive(self) -> bool:
        return METHODS[self.method].transductive

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MappingSpec:
        """The spec :meth:`to_dict` wrote (or a config's ``mapping:`` block)."""
        if not isinstance(d, Mapping) or "method" not in d:
            raise ValueError(f"mapping: expected {{method: ..., params: {{...}}}}, got {d!r}")
        unknown = sorted(set(d) - {"method", "params"})
        if unknown:
            raise ValueError(f"mapping.{unknown[0]}: unknown field; allowed: method, params")
        return cls(d["method"], d.get("params") or {})

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True, default=str))


@dataclass(frozen=True)
class FittedMapping:
    """What :func:`fit_mapping` fitted: the numbers, where they came from, and whether applying
    them uses per-prompt batch statistics of the scored essays (``transductive``)."""

    spec: MappingSpec
    numbers: Mapping[str, Any]
    fitted_on: Mapping[str, Any]
    transductive: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: method, params, fitted numbers, their source and the transductive flag."""
        return {**self.spec.to_dict(), "numbers": _jsonable(self.numbers),
                "fitted_on": _jsonable(self.fitted_on), "transductive": self.transductive}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FittedMapping:
        """A recorded mapping (``to_dict``'s output, e.g. read back from an artifact), ready for
        :func:`apply_mapping`: applying it again needs only these numbers."""
        for name in ("numbers", "fitted_on", "transductive"):
            if name not in d:
                raise ValueError(f"mapping.{name}: missing from the recorded mapping")
        params = dict(d.get("params") or {})
        method = METHODS.get(str(d.get("method")))
        if method is not None and method.transductive and "batch" not in params:
            params["batch"] = "prompt"  # recorded before batches were declared: whole prompts
        spec = MappingSpec.from_dict({"method": d.get("method"), "params": params})
        if bool(d["transductive"]) != METHODS[spec.method].transductive:
            raise ValueError(f"mapping.transductive: {d['transductive']!r} disagrees with method "
                             f"{spec.method!r}")
        return cls(spec, MappingProxyType(dict(d["numbers"])),
                   MappingProxyType(dict(d["fitted_on"])), bool(d["transductive"]))


@dataclass(frozen=True)
class MappedScores:
    """Mapped predictions, aligned with the essays passed to :func:`apply_mapping`.

    ``y_pred``: on each essay's scale, rounded to its step and clipped; ``z``: the continuous
    normalised value before rounding (not clipped); ``fallback``: the essay took the method's
    fallback (too small a prompt batch, or a scale the fit never saw); ``batches``: per prompt of
    the batch, its size, prediction mean and sd and whether it fell back (per-prompt methods only).
    """

    y_pred: np.ndarray
    z: np.ndarray
    fallback: np.ndarray
    batches: pd.DataFrame | None = None


@dataclass(frozen=True)
class _Train:
    pred: np.ndarray | None
    y: np.ndarray
    prompt: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    step: np.ndarray


@dataclass(frozen=True)
class _Batch:
    pred: np.ndarray
    prompt: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    step: np.ndarray


FitFn = Callable[[Mapping[str, Any], _Train], dict[str, Any]]
TransformFn = Callable[[Mapping[str, Any], Mapping[str, Any], _Batch],
                       tuple[np.ndarray, np.ndarray, pd.DataFrame | None]]


@dataclass(frozen=True)
class Method:
    """One registered mapping: its defaults, a parameter check, fit and transform.

    ``fit(params, train) -> numbers`` (JSON-able); ``transform(params, numbers, batch) ->
    (z', fallback mask, batch table or None)``; ``needs_pred(params)``: whether the fit needs the
    training essays' predictions (else only their scores); ``transductive``: the transform uses
    per-prompt statistics of the batch.
    """

    name: str
    summary: str
    defaults: Mapping[str, Any]
    check: Callable[[Mapping[str, Any]], None]
    fit: FitFn
    transform: TransformFn
    needs_pred: Callable[[Mapping[str, Any]], bool]
    transductive: bool


# ---------------------------------------------------------------------------- public functions


def needs_train_pred(spec: MappingSpec) -> bool:
    """Whether fitting ``spec`` needs predictions for the training essays (so the caller must
    produce them, e.g. by inner cross-fitting) or only their normalised scores."""
    return METHODS[spec.method].needs_pred(spec.params)


def fit_mapping(
    spec: MappingSpec,
    *,
    train_y_norm: np.ndarray,
    train_prompt_codes: np.ndarray,
    train_lo: np.ndarray,
    train_hi: np.ndarray,
    train_step: np.ndarray,
    train_pred: np.ndarray | None = None,
    source: str = "",
) -> FittedMapping:
    """Fit ``spec`` on training essays only.

    ``train_pred`` are predictions for the training essays (normalised units), needed when
    :func:`needs_train_pred` says so; ``source`` says which predictions they are (for example
    "inner cross-fit, 5 prompt-grouped folds") and is recorded with the numbers.
    """
    if not isinstance(spec, MappingSpec):
        raise TypeError(f"spec: expected a MappingSpec, got {type(spec).__name__}")
    method = METHODS[spec.method]
    y = _vector("train_y_norm", train_y_norm)
    n = len(y)
    if n < 2:
        raise ValueError(f"train_y_norm: need at least 2 training essays, got {n}")
    if np.any((y < -1e-9) | (y > 1 + 1e-9)):
        bad = y[(y < -1e-9) | (y > 1 + 1e-9)][0]
        raise ValueError(f"train_y_norm: normalised scores must lie in [0, 1], found {bad}")
    prompt = _codes("train_prompt_codes", train_prompt_codes, n)
    lo, hi, step = _scale_arrays("train_", train_lo, train_hi, train_step, n)
    pred = None
    if method.needs_pred(spec.params):
        if train_pred is None:
            raise ValueError(f"train_pred: method {spec.method!r} with params "
                             f"{dict(spec.params)} is fitted on training predictions; pass them")
        pred = _vector("train_pred", train_pred, n)
    numbers = method.fit(spec.params, _Train(pred, y, prompt, lo, hi, step))
    fitted_on = {
        "essays": n,
        "prompts": int(len(np.unique(prompt))),
        "predictions": (source or "unspecified") if pred is not None else "not used",
        "scores": "training essays' normalised scores" if spec.method != "round" else "not used",
    }
    return FittedMapping(spec, MappingProxyType(numbers), MappingProxyType(fitted_on),
                         method.transductive)


def apply_mapping(
    fitted: FittedMapping,
    *,
    pred: np.ndarray,
    prompt_codes: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    step: np.ndarray,
) -> MappedScores:
    """Map raw normalised predictions of a batch of essays to scores on their scales.

    Per-prompt methods take each prompt's statistics over the essays of that prompt in this
    batch (``prompt_codes`` only group; they need not match the training codes).
    """
    if not isinstance(fitted, FittedMapping):
        raise TypeError(f"fitted: expected a FittedMapping, got {type(fitted).__name__}")
    z = _vector("pred", pred)
    n = len(z)
    codes = _codes("prompt_codes", prompt_codes, n)
    lo_, hi_, step_ = _scale_arrays("", lo, hi, step, n)
    method = METHODS[fitted.spec.method]
    z2, fallback, batches = method.transform(fitted.spec.params, fitted.numbers,
                                             _Batch(z, codes, lo_, hi_, step_))
    y_pred = EssayScale(lo_, hi_, step_).to_scale(z2)
    return MappedScores(y_pred=y_pred, z=z2, fallback=np.asarray(fallback, dtype=bool),
                        batches=batches)


# ---------------------------------------------------------------------------- input checks


def _vector(name: str, x: Any, n: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {a.shape}")
    if n is not None and len(a) != n:
        raise ValueError(f"{name}: expected {n} values (one per essay), got {len(a)}")
    if not np.isfinite(a).all():
        i = int(np.flatnonzero(~np.isfinite(a))[0])
        raise ValueError(f"{name}: values must be finite, found {a[i]} at position {i}")
    return a


def _codes(name: str, x: Any, n: int) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1 or len(a) != n:
        raise ValueError(f"{name}: expected {n} prompt codes (one per essay), got shape {a.shape}")
    if len(a) and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name}: expected integer prompt codes, got dtype {a.dtype}")
    if len(a) and a.min() < 0:
        raise ValueError(f"{name}: prompt codes must be >= 0, found {a.min()}")
    return a.astype(np.int64)


def _scale_arrays(prefix: str, lo: Any, hi: Any, step: Any,
                  n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo_ = _vector(f"{prefix}lo", np.broadcast_to(lo, (n,)) if np.ndim(lo) == 0 else lo, n)
    hi_ = _vector(f"{prefix}hi", np.broadcast_to(hi, (n,)) if np.ndim(hi) == 0 else hi, n)
    st = _vector(f"{prefix}step", np.broadcast_to(step, (n,)) if np.ndim(step) == 0 else step, n)
    if np.any(hi_ <= lo_):
        i = int(np.flatnonzero(hi_ <= lo_)[0])
        raise ValueError(f"{prefix}hi: must exceed {prefix}lo, got {hi_[i]} <= {lo_[i]} at {i}")
    if np.any(st <= 0):
        raise ValueError(f"{prefix}step: must be > 0, found {st[st <= 0][0]}")
    return lo_, hi_, st


def _choice(name: str, allowed: tuple[str, ...]) -> Callable[[Mapping[str, Any]], None]:
    def check(p: Mapping[str, Any]) -> None:
        if p[name] not in allowed:
            raise ValueError(f"mapping.params.{name}: must be one of {', '.join(allowed)}, "
                             f"got {p[name]!r}")
    return check


def _int_at_least(name: str, minimum: int) -> Callable[[Mapping[str, Any]], None]:
    def check(p: Mapping[str, Any]) -> None:
        v = p[name]
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < minimum:
            raise ValueError(f"mapping.params.{name}: must be an integer >= {minimum}, got {v!r}")
    return check


def _positive(name: str, allow_none: bool = False) -> Callable[[Mapping[str, Any]], None]:
    def check(p: Mapping[str, Any]) -> None:
        v = p[name]
        if v is None and allow_none:
            return
        if (isinstance(v, bool) or not isinstance(v, int | float | np.number)
                or not np.isfinite(v) or v <= 0):
            raise ValueError(f"mapping.params.{name}: must be a number > 0"
                             f"{' or null' if allow_none else ''}, got {v!r}")
    return check


def _shift_needs_slope(p: Mapping[str, Any]) -> None:
    v = p["shift"]
    if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not np.isfinite(v):
        raise ValueError(f"mapping.params.shift: must be a finite number, got {v!r}")
    if v != 0 and p["slope"] is None:
        raise ValueError("mapping.params.shift: only with params.slope set (a searched stretch); "
                         "a fitted stretch takes its centre from the training predictions")


def _all(*checks: Callable[[Mapping[str, Any]], None]) -> Callable[[Mapping[str, Any]], None]:
    def check(p: Mapping[str, Any]) -> None:
        for c in checks:
            c(p)
    return check


# ---------------------------------------------------------------------------- shared pieces


def _within_sd(x: np.ndarray, groups: np.ndarray) -> float:
    """Pooled within-group sd: sqrt(sum of squared deviations from each group's mean / sum of
    (n_g - 1)), over groups with at least two members; NaN if there are none."""
    _, inv = np.unique(groups, return_inverse=True)
    n = np.bincount(inv).astype(float)
    means = np.bincount(inv, weights=x) / n
    ss = np.bincount(inv, weights=(x - means[inv]) ** 2)
    df = (n - 1)[n >= 2].sum()
    return float(np.sqrt(ss[n >= 2].sum() / df)) if df > 0 else float("nan")


def _spread(x: np.ndarray, groups: np.ndarray, kind: str) -> float:
    if kind == "within":
        s = _within_sd(x, groups)
        if np.isfinite(s):
            return s
    return float(np.std(x, ddof=1))


def _fit_stretch(pred: np.ndarray, y: np.ndarray, prompt: np.ndarray, *, spread: str,
                 max_slope: float) -> dict[str, Any]:
    """Moment matching: the training predictions' centre and spread onto the scores'."""
    sd_p, sd_y = _spread(pred, prompt, spread), _spread(y, prompt, spread)
    raw = sd_y / sd_p if sd_p > _EPS_SD else 1.0
    return {"center_pred": float(pred.mean()), "center_score": float(y.mean()),
            "sd_pred": sd_p, "sd_score": sd_y, "slope_fitted": float(raw),
            "slope": float(min(raw, max_slope)), "spread": spread}


def _stretch(numbers: Mapping[str, Any], z: np.ndarray) -> np.ndarray:
    return numbers["center_score"] + numbers["slope"] * (z - numbers["center_pred"])


def _no_batches(z: np.ndarray) -> np.ndarray:
    return np.zeros(len(z), dtype=bool)


# ---------------------------------------------------------------------------- round


def _fit_round(params: Mapping[str, Any], t: _Train) -> dict[str, Any]:
    return {}


def _transform_round(params: Mapping[str, Any], numbers: Mapping[str, Any], b: _Batch):
    return b.pred, _no_batches(b.pred), None


# ---------------------------------------------------------------------------- stretch


def _fit_stretch_method(params: Mapping[str, Any], t: _Train) -> dict[str, Any]:
    if params["slope"] is not None:  # searched numbers: pivot on the training scores' mean
        m = float(t.y.mean())
        return {"center_pred": m, "center_score": m + float(params["shift"]),
                "slope": float(params["slope"]), "shift": float(params["shift"]),
                "slope_fitted": None, "spread": None}
    assert t.pred is not None
    return _fit_stretch(t.pred, t.y, t.prompt, spread=params["spread"],
                        max_slope=params["max_slope"])


def _transform_stretch(params: Mapping[str, Any], numbers: Mapping[str, Any], b: _Batch):
    return _stretch(numbers, b.pred), _no_batches(b.pred), None


# ---------------------------------------------------------------------------- thresholds


def _distinct_scales(lo: np.ndarray, hi: np.ndarray,
                     step: np.ndarray) -> list[tuple[float, float, float]]:
    """The distinct (lo, hi, step) triples, sorted, rounded to 9 decimals."""
    triples = np.unique(np.round(np.column_stack([lo, hi, step]), 9), axis=0)
    return [(float(a), float(b), float(c)) for a, b, c in triples]


def _on_scale(lo: np.ndarray, hi: np.ndarray, step: np.ndarray, s_lo: float, s_hi: float,
              s_step: float) -> np.ndarray:
    return ((np.abs(lo - s_lo) < 1e-9) & (np.abs(hi - s_hi) < 1e-9)
            & (np.abs(step - s_step) < 1e-9))


def _cut_objective(levels: np.ndarray, true: np.ndarray, groups: np.ndarray, n_groups: int,
                   n_levels: int, eligible: np.ndarray) -> np.ndarray:
    """Mean QWK over eligible groups for each row of ``levels`` (candidates x essays)."""
    n_cand = levels.shape[0]
    g = (np.arange(n_cand)[:, None] * n_groups + groups[None, :]).ravel()
    q = qwk_by_group(g, np.tile(true, n_cand), levels.ravel(),
                     np.full(n_cand * n_groups, n_levels)).reshape(n_cand, n_groups)
    q = q[:, eligible]
    ok = ~np.isnan(q)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(ok, q, 0.0).sum(axis=1) / ok.sum(axis=1)
    return np.where(np.isfinite(out), out, -np.inf)


def _optimise_cuts(pred: np.ndarray, true: np.ndarray, groups: np.ndarray, n_levels: int,
                   init: np.ndarray, *, objective: str, min_prompt_n: int, passes: int,
                   grid: int) -> tuple[np.ndarray, float, float]:
    """Coordinate ascent on the cut points (raw prediction units) of one scale.

    Each cut in turn moves to the best of up to ``grid`` candidates (midpoints between distinct
    sorted predictions, evenly spaced in rank, strictly between its neighbours); ties keep the
    candidate nearest the current cut. Deterministic. Returns (cuts, objective at init, at end).
    """
    if objective == "pooled":
        groups = np.zeros(len(pred), dtype=np.int64)
    _, groups = np.unique(groups, return_inverse=True)
    n_groups = int(groups.max()) + 1
    eligible = np.bincount(groups, minlength=n_groups) >= (
        min_prompt_n if objective == "mean_prompt" else 1)
    if not eligible.any():  # too few essays per prompt: fall back to the pooled objective
        groups = np.zeros(len(pred), dtype=np.int64)
        n_groups, eligible = 1, np.array([True])
    cuts = np.array(init, dtype=float)
    distinct = np.unique(pred)

    def levels_with(j: int, cand: np.ndarray) -> np.ndarray:
        others = np.delete(cuts, j)
        base = np.searchsorted(others, pred, side="left")  # cuts strictly below each pred
        return base[None, :] + (cand[:, None] < pred[None, :])

    start = float(_cut_objective(np.searchsorted(cuts, pred, side="left")[None, :], true,
                                 groups, n_groups, n_levels, eligible)[0])
    best = start
    for _ in range(passes):
        moved = False
        for j in range(len(cuts)):
            left = cuts[j - 1] if j > 0 else -np.inf
            right = cuts[j + 1] if j + 1 < len(cuts) else np.inf
            inside = distinct[(distinct > left) & (distinct < right)]
            mids = (inside[:-1] + inside[1:]) / 2  # never a prediction itself
            if len(mids) > grid:
                mids = mids[np.unique(np.linspace(0, len(mids) - 1, grid).round().astype(int))]
            cand = np.concatenate([[cuts[j]], mids])
            cand = cand[(cand > left) & (cand < right)]
            if len(cand) <= 1:
                continue
            vals = _cut_objective(levels_with(j, cand), true, groups, n_groups, n_levels,
                                  eligible)
            top = vals.max()
            if top > vals[0] + 1e-12:
                winners = np.flatnonzero(vals >= top - 1e-12)
                k = winners[np.argmin(np.abs(cand[winners] - cuts[j]))]
                cuts[j] = cand[k]
                best = float(top)
                moved = True
        if not moved:
            break
    return cuts, start, best


def _fit_thresholds(params: Mapping[str, Any], t: _Train) -> dict[str, Any]:
    assert t.pred is not None
    stretch = _fit_stretch(t.pred, t.y, t.prompt, spread=params["spread"],
                           max_slope=params["max_slope"])
    scales = []
    for lo, hi, step in _distinct_scales(t.lo, t.hi, t.step):
        mask = _on_scale(t.lo, t.hi, t.step, lo, hi, step)
        n_levels = int(round((hi - lo) / step)) + 1
        entry: dict[str, Any] = {"lo": lo, "hi": hi, "step": step, "n_levels": n_levels,
                                 "n": int(mask.sum())}
        if mask.sum() < params["min_scale_n"] or n_levels < 2:
            entry["cuts"] = None  # too few training essays on this scale: the stretch applies
            scales.append(entry)
            continue
        mids = (np.arange(n_levels - 1) + 0.5) / (n_levels - 1)
        init = stretch["center_pred"] + (mids - stretch["center_score"]) / stretch["slope"]
        true = np.rint(t.y[mask] * (n_levels - 1)).astype(np.int64)
        cuts, start, end = _optimise_cuts(
            t.pred[mask], true, t.prompt[mask], n_levels, init, objective=params["objective"],
            min_prompt_n=params["min_prompt_n"], passes=params["passes"], grid=params["grid"])
        entry.update(cuts=[float(c) for c in cuts], objective_start=start, objective_end=end)
        scales.append(entry)
    return {"stretch": stretch, "objective": params["objective"], "scales": scales}


def _transform_thresholds(params: Mapping[str, Any], numbers: Mapping[str, Any], b: _Batch):
    """Cut points as a monotone piecewise-linear map: cut j goes to the rounding midpoint
    between levels j and j+1, so ``to_scale`` rounds exactly at the fitted cuts; beyond the
    outer cuts the stretch's slope continues the line."""
    stretch = numbers["stretch"]
    out = _stretch(stretch, b.pred)
    fallback = np.ones(len(b.pred), dtype=bool)
    for s in numbers["scales"]:
        if s["cuts"] is None:
            continue
        mask = _on_scale(b.lo, b.hi, b.step, s["lo"], s["hi"], s["step"])
        if not mask.any():
            continue
        cuts = np.asarray(s["cuts"], dtype=float)
        mids = (np.arange(len(cuts)) + 0.5) / (len(cuts))
        z = b.pred[mask]
        slope = stretch["slope"]
        inner = np.interp(z, cuts, mids)
        below, above = z < cuts[0], z > cuts[-1]
        inner[below] = mids[0] + slope * (z[below] - cuts[0])
        inner[above] = mids[-1] + slope * (z[above] - cuts[-1])
        out[mask] = inner
        fallback[mask] = False
    return out, fallback, None


# ---------------------------------------------------------------------------- per prompt


def _fit_per_prompt(params: Mapping[str, Any], t: _Train) -> dict[str, Any]:
    out: dict[str, Any] = {"mean_score": float(t.y.mean()), "min_batch": params["min_batch"],
                           "batch": params["batch"], "fallback": params["fallback"]}
    if "spread" in params:  # standardising: the sd every prompt's batch is given
        out.update(sd_score=_spread(t.y, t.prompt, params["spread"]), spread=params["spread"])
    if params["fallback"] == "stretch":
        assert t.pred is not None
        out["stretch"] = _fit_stretch(t.pred, t.y, t.prompt, spread="pooled",
                                      max_slope=params["max_slope"])
    return out


def _per_prompt(numbers: Mapping[str, Any], b: _Batch, standardise: bool):
    z = b.pred
    _, inv = np.unique(b.prompt, return_inverse=True)
    n = np.bincount(inv)
    mean = np.bincount(inv, weights=z) / n
    ss = np.bincount(inv, weights=(z - mean[inv]) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.where(n >= 2, np.sqrt(ss / np.maximum(n - 1, 1)), np.nan)
    ok = n >= needed_batch(numbers)
    if standardise:
        ok &= np.nan_to_num(sd) > _EPS_SD
        out = numbers["mean_score"] + numbers["sd_score"] * (z - mean[inv]) / np.where(
            ok, sd, 1.0)[inv]
    else:
        out = z - mean[inv] + numbers["mean_score"]
    fallback = ~ok[inv]
    if numbers["fallback"] == "stretch":
        out = np.where(fallback, _stretch(numbers["stretch"], z), out)
    else:
        out = np.where(fallback, z, out)
    codes = np.unique(b.prompt)
    batches = pd.DataFrame({"prompt_code": codes, "n": n, "pred_mean": mean, "pred_sd": sd,
                            "fallback": ~ok})
    return out, fallback, batches


def needed_batch(numbers: Mapping[str, Any]) -> int:
    """The fewest essays of a prompt in a batch that a per-prompt method maps with the batch's
    statistics: ``min_batch``, or an integer declared ``batch`` when larger (a smaller batch
    than declared is not what the reported numbers assumed, so it takes the fallback)."""
    batch = numbers.get("batch", "prompt")
    need = int(numbers["min_batch"])
    return need if batch == "prompt" else max(need, int(batch))


def _batch_param(p: Mapping[str, Any]) -> None:
    v = p["batch"]
    if v == "prompt":
        return
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
        raise ValueError(f"mapping.params.batch: must be 'prompt' (a prompt's whole cohort is "
                         f"scored at once) or an integer >= 1 (essays of a prompt scored that "
                         f"many at a time), got {v!r}")
    if v < p["min_batch"]:
        raise ValueError(f"mapping.params.batch: {v} is below min_batch {p['min_batch']}, so "
                         f"every batch would take the fallback; declare batch >= min_batch "
                         f"(or lower min_batch)")


def _transform_center(params: Mapping[str, Any], numbers: Mapping[str, Any], b: _Batch):
    return _per_prompt(numbers, b, standardise=False)


def _transform_standardize(params: Mapping[str, Any], numbers: Mapping[str, Any], b: _Batch):
    return _per_prompt(numbers, b, standardise=True)


# ---------------------------------------------------------------------------- the registry

_FALLBACKS = ("none", "stretch")
_PER_PROMPT_CHECKS = (_int_at_least("min_batch", 2), _choice("fallback", _FALLBACKS),
                      _positive("max_slope"), _batch_param)
#: ``mapping.params.batch`` when a transductive method's config does not say: a small batch,
#: because a user of ``predict`` rarely holds a prompt's whole cohort (docs/explanation/method.md,
#: docs/research/transductive-batch.md). Equal to the default ``min_batch``: the smallest batch
#: predict accepts, so the CV numbers hold for every batch predict maps.
DEFAULT_BATCH = 10

METHODS: Mapping[str, Method] = MappingProxyType({m.name: m for m in (
    Method("round", "the raw normalised prediction, rounded to the step and clipped (today)",
           {}, lambda p: None, _fit_round, _transform_round, lambda p: False, False),
    Method("stretch",
           "affine: the training predictions' mean and sd onto the training scores' "
           "(spread: pooled sd or pooled within-prompt sd); or, with slope set, "
           "m + shift + slope * (z - m) with m the training scores' mean: two search "
           "parameters, nothing fitted from predictions",
           {"spread": "pooled", "max_slope": 5.0, "slope": None, "shift": 0.0},
           _all(_choice("spread", ("pooled", "within")), _positive("max_slope"),
                _positive("slope", allow_none=True), _shift_needs_slope),
           _fit_stretch_method, _transform_stretch, lambda p: p["slope"] is None, False),
    Method("thresholds",
           "cut points between levels maximising the training essays' mean per-prompt QWK "
           "(or pooled QWK), one set per distinct scale with >= min_scale_n training essays; "
           "other scales take the stretch",
           {"objective": "mean_prompt", "min_prompt_n": 20, "min_scale_n": 100, "passes": 3,
            "grid": 64, "spread": "pooled", "max_slope": 5.0},
           _all(_choice("objective", ("mean_prompt", "pooled")), _int_at_least("min_prompt_n", 1),
                _int_at_least("min_scale_n", 2), _int_at_least("passes", 1),
                _int_at_least("grid", 2), _choice("spread", ("pooled", "within")),
                _positive("max_slope")),
           _fit_thresholds, _transform_thresholds, lambda p: True, False),
    Method("prompt_center",
           "label-free: each prompt's batch of predictions shifted to the training scores' mean",
           {"min_batch": 10, "batch": DEFAULT_BATCH, "fallback": "none", "max_slope": 5.0},
           _all(*_PER_PROMPT_CHECKS), _fit_per_prompt, _transform_center,
           lambda p: p["fallback"] == "stretch", True),
    Method("prompt_standardize",
           "label-free: each prompt's batch of predictions z-scored, then given the training "
           "scores' mean and sd (spread: pooled sd, or pooled within-prompt sd)",
           {"min_batch": 10, "batch": DEFAULT_BATCH, "fallback": "none", "spread": "within",
            "max_slope": 5.0},
           _all(*_PER_PROMPT_CHECKS, _choice("spread", ("pooled", "within"))),
           _fit_per_prompt, _transform_standardize, lambda p: p["fallback"] == "stretch", True),
)})


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


# ---------------------------------------------------------------------------- in trial params

#: A trial's params hold XGBoost's parameters and, under this prefix, the score mapping's:
#: ``mapping.method`` and ``mapping.<param>``. One dict then says everything a trial scored
#: with, and the search space, the trial records, the gate and ``compare`` carry it unchanged.
PARAM_PREFIX = "mapping."


def spec_from_params(params: Mapping[str, Any], default: MappingSpec) -> MappingSpec:
    """The mapping a trial's ``params`` ask for: ``default`` with ``mapping.*`` keys applied.

    A changed ``mapping.method`` starts from that method's defaults plus ``default``'s params
    that the method knows; ``mapping.<param>`` keys the chosen method does not take are ignored
    (a search space may hold, say, a stretch slope that only stretch uses).
    """
    keys = {k[len(PARAM_PREFIX):]: v for k, v in params.items() if k.startswith(PARAM_PREFIX)}
    method = keys.pop("method", default.method)
    if method not in METHODS:
        raise ValueError(f"mapping.method: unknown method {method!r}; choose one of "
                         f"{', '.join(METHODS)}")
    known = METHODS[method].defaults
    base = {k: v for k, v in default.params.items() if k in known} if method == default.method \
        else {k: v for k, v in default.params.items() if k in known
              and v != METHODS[default.method].defaults.get(k, object())}
    given = {k: v for k, v in keys.items() if k in known}
    return MappingSpec(method, {**base, **given})


def spec_to_params(spec: MappingSpec) -> dict[str, Any]:
    """``spec`` as ``mapping.*`` keys (the method and the params that differ from defaults)."""
    defaults = METHODS[spec.method].defaults
    out: dict[str, Any] = {f"{PARAM_PREFIX}method": spec.method}
    # a transductive method's batch is always written: every number says which batch it assumes
    out.update({f"{PARAM_PREFIX}{k}": v for k, v in spec.params.items()
                if defaults.get(k) != v or (k == "batch" and spec.transductive)})
    return out


#: Trial params that choose a feature variant (``features.<family>.<field>``), not XGBoost's.
FEATURE_PREFIX = "features."


def model_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's params without the mapping's and the features' keys: XGBoost's params."""
    return {k: v for k, v in params.items()
            if not k.startswith(PARAM_PREFIX) and not k.startswith(FEATURE_PREFIX)}


def complete_params(params: Mapping[str, Any], default: MappingSpec) -> dict[str, Any]:
    """``params`` with its mapping written out: the model's params, the ``features.*`` keys it
    names, and the ``mapping.*`` keys of the mapping they ask for (``default`` where they ask
    for none). What a trial records."""
    features = {k: v for k, v in params.items() if k.startswith(FEATURE_PREFIX)}
    return {**model_params(params), **features,
            **spec_to_params(spec_from_params(params, default))}
