"""The metric registry: every number moqwk optimises, selects on or reports, defined once.

A :class:`Metric` holds a metric's name, its direction, its long and short labels, how it is
formatted and how it is read from a CV run's :class:`~moqwk.core.metrics.CVMetrics`. Search
(Optuna directions and metric names), trial records, the live table, reports, ``compare`` and
selection all read from here, so adding an objective is one entry below plus its tests.

Direction is written one way only, in Optuna's words: ``"maximize"`` or ``"minimize"``.
Diagnostics with no better side (signed biases) have ``direction=None``.

An :class:`ObjectiveSet` says which metrics the search optimises and the role of each in the
selection rule: the *primary* objective (ranked first, with a tie band), the *secondary* one
(breaks ties in the band) and the two *tail* objectives (which the guardrails constrain).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from moqwk.core.metrics import CVMetrics
from moqwk.core.worst_prompt import estimator

Direction = Literal["maximize", "minimize"]


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
    #: (``min``, ``cvar10``, ``eb_min``), which the tie band, BBC and compare's noise reuse.
    worst_prompt: str | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("maximize", "minimize", None):
            raise ValueError(f"{self.name}: direction must be 'maximize', 'minimize' or None, "
                             f"got {self.direction!r}")

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


def _attr(name: str) -> Callable[[CVMetrics], float | None]:
    def read(m: CVMetrics) -> float | None:
        v = getattr(m, name)
        return None if v is None else float(v)

    read.__name__ = f"read_{name}"
    return read


_ALL: tuple[Metric, ...] = (
    Metric(name="worst_prompt_qwk", direction="maximize", label="worst-prompt QWK",
           short="worst QWK", value=_attr("worst_prompt_qwk"), worst_prompt="min",
           description="lowest per-prompt QWK among prompts with at least min_prompt_n essays "
                       "(the minimum)"),
    Metric(name="cvar10_prompt_qwk", direction="maximize",
           label="mean of worst 10% prompts' QWK", short="worst-10% QWK",
           value=_worst("cvar10"), worst_prompt="cvar10",
           description="mean QWK of the worst 10% of the prompts with at least min_prompt_n "
                       "essays (a lower-tail mean, CVaR-style; at least one prompt)"),
    Metric(name="eb_worst_prompt_qwk", direction="maximize",
           label="EB-shrunk worst-prompt QWK", short="EB worst QWK", value=_worst("eb_min"),
           worst_prompt="eb_min",
           description="lowest per-prompt QWK after an empirical-Bayes shrinkage of each "
                       "prompt's QWK toward the mean, more for noisier (smaller) prompts"),
    Metric(name="mean_qwk", direction="maximize", label="mean per-prompt QWK",
           short="mean QWK", value=_attr("mean_qwk"),
           description="mean of the per-prompt QWKs of prompts with at least min_prompt_n "
                       "essays"),
    Metric(name="low_tail_mae", direction="minimize", label="low-tail MAE",
           short="low MAE", value=_attr("low_tail_mae"),
           description="mean absolute error, in normalised units, of essays whose true score "
                       "is in the bottom band"),
    Metric(name="high_tail_mae", direction="minimize", label="high-tail MAE",
           short="high MAE", value=_attr("high_tail_mae"),
           description="mean absolute error, in normalised units, of essays whose true score "
                       "is in the top band"),
    Metric(name="pooled_qwk", direction="maximize", label="pooled QWK", short="pooled QWK",
           value=_attr("pooled_qwk"),
           description="QWK over all essays at once (global scale only)"),
    Metric(name="low_tail_bias", direction=None, label="low-tail bias", short="low bias",
           value=_attr("low_tail_bias"),
           description="mean signed error of the low tail (positive: predicted too high)"),
    Metric(name="high_tail_bias", direction=None, label="high-tail bias", short="high bias",
           value=_attr("high_tail_bias"),
           description="mean signed error of the high tail (negative: predicted too low)"),
)

#: Every metric by name.
METRICS: Mapping[str, Metric] = {m.name: m for m in _ALL}


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
