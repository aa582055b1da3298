"""The metric registry: every number moqwk optimises, selects on or reports, defined once.

A :class:`Metric` holds a metric's name, its direction, its long and short labels, how it is
formatted, how it is read from a CV run's :class:`~moqwk.core.metrics.CVMetrics`, how it is
computed on a resample of pooled out-of-fold predictions (:class:`Sample`: what BBC-CV, the tie
band and ``compare``'s paired SEs recompute it with), which roles of an :class:`ObjectiveSet`
it may take (so which values the config's ``objectives:`` accepts) and where the stability gate
checks it. Search (Optuna directions and metric names), trial records, the live table, reports,
``compare``, selection, BBC-CV and the gate all read from here, so adding an objective is one
entry below plus its tests (:func:`prompt_metric` builds one from a summary of per-prompt
QWKs; :func:`register` adds one from elsewhere).

Direction is written one way only, in Optuna's words: ``"maximize"`` or ``"minimize"``.
Diagnostics with no better side (signed biases) have ``direction=None``.

An :class:`ObjectiveSet` says which metrics the search optimises and the role of each in the
selection rule: the *primary* objective (ranked first, with a tie band), the *secondary* one
(breaks ties in the band) and the two *tail* objectives (which the guardrails constrain).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Literal

import numpy as np

from moqwk.core.metrics import CVMetrics
from moqwk.core.worst_prompt import estimator, weighted_mean

Direction = Literal["maximize", "minimize"]

#: The roles a metric may take in an :class:`ObjectiveSet`.
ROLES = ("primary", "secondary", "tail")


@dataclass(frozen=True)
class Sample:
    """Every config's statistics on one (re)sample of the pooled out-of-fold predictions.

    ``qwk`` and ``var`` (..., C, P): each config's QWK on each prompt and its sampling
    variance; ``weights`` (..., 1 or C, P): how many times each prompt counts (0: not at all,
    an ineligible or out-of-sample prompt; 2: drawn twice); ``low_tail_mae`` and
    ``high_tail_mae`` (..., C). A metric's ``resampled`` maps a Sample to (..., C).
    """

    qwk: np.ndarray
    var: np.ndarray
    weights: np.ndarray
    low_tail_mae: np.ndarray
    high_tail_mae: np.ndarray


def fmt(x: float | None, digits: int = 3) -> str:
    """A number as text with ``digits`` decimals; ``n/a`` for None or NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}"


@dataclass(frozen=True, kw_only=True)
class Metric:
    """One metric: ``value(metrics)`` reads it from a CV run."""

    name: str
    direction: Direction | None
    label: str
    short: str
    value: Callable[[CVMetrics], float | None]
    digits: int = 3
    description: str = ""
    #: For a worst-prompt objective: the estimator of :mod:`moqwk.core.worst_prompt` it is
    #: (``min``, ``cvar10``, ``eb_min``); the config's ``objectives.worst_prompt`` names it.
    worst_prompt: str | None = None
    #: The metric on a resample (:class:`Sample`), shape (..., C): what BBC-CV, the tie band
    #: and compare's paired SEs compute. None: it cannot be an objective.
    resampled: Callable[[Sample], np.ndarray] | None = None
    #: The roles of :data:`ROLES` it may take in an :class:`ObjectiveSet` (the config offers
    #: it there): ``primary`` (ranked first; chosen by ``objectives.worst_prompt``),
    #: ``secondary`` (breaks ties in the band; ``objectives.secondary``), ``tail`` (guarded).
    roles: AbstractSet[str] = frozenset()
    #: Its place among the stability gate's checks (None: not checked).
    gate: int | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("maximize", "minimize", None):
            raise ValueError(f"{self.name}: direction must be 'maximize', 'minimize' or None, "
                             f"got {self.direction!r}")
        object.__setattr__(self, "roles", frozenset(self.roles))
        unknown = sorted(set(self.roles) - set(ROLES))
        if unknown:
            raise ValueError(f"{self.name}: unknown role {unknown[0]!r}; roles: "
                             f"{', '.join(ROLES)}")
        if self.roles and (self.direction is None or self.resampled is None):
            raise ValueError(f"{self.name}: an objective needs a direction and a resampled "
                             "function")

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def loss(self, x: float) -> float:
        """``x`` as a loss (lower is better): maximised metrics are negated."""
        if self.direction is None:
            raise ValueError(f"{self.name} has no direction, so it has no loss")
        return -x if self.maximize else x

    def better(self, a: float, b: float) -> bool:
        """True when ``a`` is strictly better than ``b``."""
        return self.loss(a) < self.loss(b)

    def regressed(self, candidate: float, baseline: float, margin: float) -> bool:
        """True when ``candidate`` is worse than ``baseline`` by more than ``margin``."""
        return self.loss(candidate) > self.loss(baseline) + margin

    def format(self, x: float | None) -> str:
        return fmt(x, self.digits)


def _worst(kind: str) -> Callable[[CVMetrics], float | None]:
    """A worst-prompt estimator (:mod:`moqwk.core.worst_prompt`) over the eligible prompts."""

    def read(m: CVMetrics) -> float | None:
        rows = [r for r in m.per_prompt if r.eligible]
        if not rows:
            return None
        est = estimator(kind)
        q = np.array([r.qwk for r in rows])
        var = np.array([r.qwk_var for r in rows]) if est.needs_variance else None
        v = float(est(q, sampling_var=var))
        return None if math.isnan(v) else v

    read.__name__ = f"read_{kind}"
    return read


def _resampled_worst(kind: str) -> Callable[[Sample], np.ndarray]:
    def on(s: Sample) -> np.ndarray:
        return estimator(kind)(s.qwk, weights=s.weights, sampling_var=s.var)

    on.__name__ = f"resampled_{kind}"
    return on


def _resampled_attr(name: str) -> Callable[[Sample], np.ndarray]:
    def on(s: Sample) -> np.ndarray:
        return np.asarray(getattr(s, name))

    on.__name__ = f"resampled_{name}"
    return on


def prompt_metric(*, name: str, summary: Callable[..., np.ndarray],
                  needs_variance: bool = False, **fields: object) -> Metric:
    """A metric that summarises the per-prompt QWKs, defined once for every place it is used.

    ``summary(qwk, weights=..., sampling_var=...)`` works on the last axis of ``qwk`` (prompts),
    broadcasts over leading ones, counts prompt p ``weights[p]`` times (0: not at all) and
    ignores NaN; ``sampling_var`` is given when ``needs_variance``. On a CV run it sees the
    eligible prompts, each once; on a resample (:class:`Sample`), the resample's weights. The
    other ``fields`` are :class:`Metric`'s (direction, label, short, roles, ...).
    """

    def read(m: CVMetrics) -> float | None:
        rows = [r for r in m.per_prompt if r.eligible]
        if not rows:
            return None
        var = np.array([r.qwk_var for r in rows]) if needs_variance else None
        v = float(summary(np.array([r.qwk for r in rows]), weights=None, sampling_var=var))
        return None if math.isnan(v) else v

    def on(s: Sample) -> np.ndarray:
        return np.asarray(summary(s.qwk, weights=s.weights,
                                  sampling_var=s.var if needs_variance else None))

    read.__name__, on.__name__ = f"read_{name}", f"resampled_{name}"
    return Metric(name=name, value=read, resampled=on, **fields)  # type: ignore[arg-type]


def _attr(name: str) -> Callable[[CVMetrics], float | None]:
    def read(m: CVMetrics) -> float | None:
        v = getattr(m, name)
        return None if v is None else float(v)

    read.__name__ = f"read_{name}"
    return read


_ALL: tuple[Metric, ...] = (
    Metric(name="worst_prompt_qwk", direction="maximize", label="worst-prompt QWK",
           short="worst QWK", value=_attr("worst_prompt_qwk"), worst_prompt="min",
           resampled=_resampled_worst("min"), roles={"primary"}, gate=2,
           description="lowest per-prompt QWK among prompts with at least min_prompt_n essays "
                       "(the minimum)"),
    Metric(name="cvar10_prompt_qwk", direction="maximize",
           label="mean of worst 10% prompts' QWK", short="worst-10% QWK",
           value=_worst("cvar10"), worst_prompt="cvar10", resampled=_resampled_worst("cvar10"),
           roles={"primary"},
           description="mean QWK of the worst 10% of the prompts with at least min_prompt_n "
                       "essays (a lower-tail mean, CVaR-style; at least one prompt)"),
    Metric(name="eb_worst_prompt_qwk", direction="maximize",
           label="EB-shrunk worst-prompt QWK", short="EB worst QWK", value=_worst("eb_min"),
           worst_prompt="eb_min", resampled=_resampled_worst("eb_min"), roles={"primary"},
           description="lowest per-prompt QWK after an empirical-Bayes shrinkage of each "
                       "prompt's QWK toward the mean, more for noisier (smaller) prompts"),
    Metric(name="mean_qwk", direction="maximize", label="mean per-prompt QWK",
           short="mean QWK", value=_attr("mean_qwk"), roles={"secondary"}, gate=0,
           resampled=lambda s: weighted_mean(s.qwk, weights=s.weights),
           description="mean of the per-prompt QWKs of prompts with at least min_prompt_n "
                       "essays"),
    Metric(name="low_tail_mae", direction="minimize", label="low-tail MAE",
           short="low MAE", value=_attr("low_tail_mae"), roles={"tail"}, gate=3,
           resampled=_resampled_attr("low_tail_mae"),
           description="mean absolute error, in normalised units, of essays whose true score "
                       "is in the bottom band"),
    Metric(name="high_tail_mae", direction="minimize", label="high-tail MAE",
           short="high MAE", value=_attr("high_tail_mae"), roles={"tail"}, gate=4,
           resampled=_resampled_attr("high_tail_mae"),
           description="mean absolute error, in normalised units, of essays whose true score "
                       "is in the top band"),
    Metric(name="pooled_qwk", direction="maximize", label="pooled QWK", short="pooled QWK",
           value=_attr("pooled_qwk"), gate=1,
           description="QWK over all essays at once (global scale only)"),
    Metric(name="low_tail_bias", direction=None, label="low-tail bias", short="low bias",
           value=_attr("low_tail_bias"),
           description="mean signed error of the low tail (positive: predicted too high)"),
    Metric(name="high_tail_bias", direction=None, label="high-tail bias", short="high bias",
           value=_attr("high_tail_bias"),
           description="mean signed error of the high tail (negative: predicted too low)"),
)

#: Every metric by name (:func:`register` adds one from another module).
METRICS: dict[str, Metric] = {m.name: m for m in _ALL}


def register(m: Metric) -> Metric:
    """Add ``m`` to :data:`METRICS` (a ValueError when the name is taken); returns it."""
    if m.name in METRICS:
        raise ValueError(f"metric {m.name!r} is registered already")
    METRICS[m.name] = m
    return m


def candidates(role: str) -> tuple[str, ...]:
    """The names of the metrics that may take ``role`` (see :data:`ROLES`), in registry order."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    return tuple(m.name for m in METRICS.values() if role in m.roles)


def worst_prompt_choices() -> dict[str, str]:
    """``objectives.worst_prompt``'s choices: estimator name -> the primary metric it names."""
    return {m.worst_prompt: m.name for m in METRICS.values()
            if m.worst_prompt is not None and "primary" in m.roles}


def gate_metrics() -> tuple[str, ...]:
    """The metrics the stability gate checks, in its order."""
    gated = [m for m in METRICS.values() if m.gate is not None]
    return tuple(m.name for m in sorted(gated, key=lambda m: (m.gate, m.name)))


def metric(name: str) -> Metric:
    """The registered metric ``name``; a ValueError lists the known ones."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None


@dataclass(frozen=True, kw_only=True)
class ObjectiveSet:
    """The metrics a search optimises, in Optuna's order, and each one's role in selection."""

    primary: str = "worst_prompt_qwk"
    secondary: str = "mean_qwk"
    tails: tuple[str, str] = ("low_tail_mae", "high_tail_mae")

    def __post_init__(self) -> None:
        for name in self.names:
            if metric(name).direction is None:
                raise ValueError(f"objective {name!r} has no direction")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"objectives repeat a metric: {self.names}")

    @property
    def names(self) -> tuple[str, ...]:
        return (self.primary, self.secondary, *self.tails)

    @property
    def worst_prompt(self) -> str:
        """The worst-prompt estimator of the primary objective (``min`` when it is not one)."""
        return metric(self.primary).worst_prompt or "min"

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return tuple(metric(n) for n in self.names)

    @property
    def directions(self) -> list[Direction]:
        return [m.direction for m in self.metrics if m.direction is not None]

    def index(self, name: str) -> int:
        """The column of objective ``name`` in :attr:`names` order."""
        return self.names.index(name)

    def on_sample(self, sample: Sample) -> np.ndarray:
        """(..., C, K): every objective on a resample, in :attr:`names` order."""
        cols = []
        for m in self.metrics:
            if m.resampled is None:
                raise ValueError(f"objective {m.name!r} has no resampled function: it cannot "
                                 "be recomputed on a resample")
            cols.append(np.broadcast_to(m.resampled(sample), sample.qwk.shape[:-1]))
        return np.stack(cols, axis=-1)

    def values(self, m: CVMetrics) -> dict[str, float]:
        """The objective values of a CV run, NaN where a metric is undefined."""
        out = {}
        for obj in self.metrics:
            v = obj.value(m)
            out[obj.name] = math.nan if v is None else float(v)
        return out

    def to_dict(self) -> dict:
        return {"primary": self.primary, "secondary": self.secondary, "tails": list(self.tails),
                "directions": dict(zip(self.names, self.directions, strict=True)),
                "labels": {n: metric(n).label for n in self.names}}

    @classmethod
    def from_names(cls, names: Iterable[str]) -> ObjectiveSet:
        """The set whose ``names`` are these (as a study records them), roles by position."""
        n = list(names)
        if len(n) != 4:
            raise ValueError(f"an objective set has 4 metrics, got {n}")
        return cls(primary=n[0], secondary=n[1], tails=(n[2], n[3]))


#: The default objectives: worst-prompt QWK, mean QWK, low- and high-tail MAE.
DEFAULT_OBJECTIVES = ObjectiveSet()


def objectives_of(record: Mapping) -> ObjectiveSet:
    """The objectives an artifact was made with (its ``objectives`` entry, as
    :meth:`ObjectiveSet.to_dict` wrote it; the default set for older artifacts)."""
    o = record.get("objectives")
    if not o:
        return DEFAULT_OBJECTIVES
    return ObjectiveSet(primary=o["primary"], secondary=o["secondary"], tails=tuple(o["tails"]))
