"""Score scales: a global one (for example 1.0-5.0 in steps of 0.5) or one per prompt.

Models train on a normalised target in [0, 1]; predictions map back to each prompt's own scale,
rounded to its step and clipped to its range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Scale:
    """One score scale: ``min`` to ``max`` inclusive in steps of ``step``."""

    min: float
    max: float
    step: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.min) and np.isfinite(self.max) and np.isfinite(self.step)):
            raise ValueError(f"scale bounds must be finite: {self}")
        if self.step <= 0:
            raise ValueError(f"scale step must be > 0, got {self.step=}")
        if self.max <= self.min:
            raise ValueError(f"scale max must exceed min, got {self.min=} and {self.max=}")
        n = (self.max - self.min) / self.step
        if abs(n - round(n)) > 1e-6:
            raise ValueError(f"(max - min) must be a whole number of steps, got {self}")

    @property
    def n_levels(self) -> int:
        return int(round((self.max - self.min) / self.step)) + 1

    def as_dict(self) -> dict[str, float]:
        return {"min": self.min, "max": self.max, "step": self.step}


@dataclass(frozen=True)
class ScoreScales:
    """The scale of every prompt: ``global_scale`` when all share one, else ``per_prompt``."""

    global_scale: Scale | None = None
    per_prompt: Mapping[str, Scale] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.global_scale is None and not self.per_prompt:
            raise ValueError("ScoreScales needs a global scale or a scale per prompt")

    @property
    def is_global(self) -> bool:
        return self.global_scale is not None

    def for_prompt(self, prompt: str) -> Scale:
        if self.global_scale is not None:
            return self.global_scale
        return self.per_prompt[prompt]

    def as_dict(self) -> dict:
        if self.global_scale is not None:
            return {"kind": "global", **self.global_scale.as_dict()}
        return {
            "kind": "per_prompt",
            "prompts": {p: s.as_dict() for p, s in sorted(self.per_prompt.items())},
        }


@dataclass(frozen=True)
class EssayScale:
    """Per-essay scale arrays (``lo``, ``hi``, ``step``), aligned with a corpus's rows."""

    lo: np.ndarray
    hi: np.ndarray
    step: np.ndarray

    @classmethod
    def from_scales(cls, scales: ScoreScales, prompts: np.ndarray) -> EssayScale:
        if scales.global_scale is not None:
            s = scales.global_scale
            n = len(prompts)
            return cls(np.full(n, s.min), np.full(n, s.max), np.full(n, s.step))
        lo = np.array([scales.per_prompt[p].min for p in prompts], dtype=float)
        hi = np.array([scales.per_prompt[p].max for p in prompts], dtype=float)
        step = np.array([scales.per_prompt[p].step for p in prompts], dtype=float)
        return cls(lo, hi, step)

    def take(self, idx: np.ndarray) -> EssayScale:
        return EssayScale(self.lo[idx], self.hi[idx], self.step[idx])

    @property
    def n_levels(self) -> np.ndarray:
        return (np.rint((self.hi - self.lo) / self.step) + 1).astype(np.int64)

    def normalise(self, y: np.ndarray) -> np.ndarray:
        """Scores to [0, 1]: 0 is the bottom of each essay's scale, 1 the top."""
        return (np.asarray(y, dtype=float) - self.lo) / (self.hi - self.lo)

    def to_scale(self, z: np.ndarray) -> np.ndarray:
        """Normalised predictions back to scores: rounded to the step, clipped to the range."""
        raw = self.lo + np.asarray(z, dtype=float) * (self.hi - self.lo)
        snapped = self.lo + np.rint((raw - self.lo) / self.step) * self.step
        return np.clip(snapped, self.lo, self.hi)

    def raw_to_scale(self, z: np.ndarray) -> np.ndarray:
        """Normalised predictions back to the score's units, unrounded (``y_pred_raw``)."""
        return self.lo + np.asarray(z, dtype=float) * (self.hi - self.lo)

    def level(self, y: np.ndarray) -> np.ndarray:
        """Scores to level indices 0..n_levels-1 (what QWK weights by)."""
        return np.rint((np.asarray(y, dtype=float) - self.lo) / self.step).astype(np.int64)
