"""Field validators for feature-family configs: each error names the field's full path.

A family's :meth:`~moqwk.features.family.Family.parse` uses these so that a bad value is one
:class:`~moqwk.errors.ConfigError` such as ``features.word.min_df must be ...``.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

from moqwk.errors import ConfigError


def mapping_of(value: Any, path: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    """``value`` as a mapping whose keys are all in ``allowed``."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path} must be a mapping, got {type(value).__name__} {value!r}")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise ConfigError(
            f"{path} has unknown key(s) {', '.join(unknown)}; allowed keys: {', '.join(allowed)}"
        )
    return value


def boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{path} must be true or false, got {value!r}")
    return value


def whole(value: Any, path: str, lo: int, hi: int | None = None) -> int:
    """A whole number in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ConfigError(f"{path} must be a whole number, got {value!r}")
    number = int(value)
    if number < lo or (hi is not None and number > hi):
        bound = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise ConfigError(f"{path} must be {bound}, got {number}")
    return number


def number(value: Any, path: str, lo: float | None = None, hi: float | None = None) -> float:
    """A real number in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(f"{path} must be a number, got {value!r}")
    x = float(value)
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        raise ConfigError(f"{path} must be between {lo} and {hi}, got {x}")
    return x


def doc_frequency(value: Any, path: str) -> int | float:
    """An int count of essays (>= 1) or a float share in [0, 1], as in scikit-learn."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(
            f"{path} must be a whole number of essays (e.g. 2) or a share in [0, 1] "
            f"(e.g. 0.95), got {value!r}"
        )
    if isinstance(value, Integral):
        if value < 1:
            raise ConfigError(f"{path} as a count of essays must be >= 1, got {value}")
        return int(value)
    if not 0.0 <= float(value) <= 1.0:
        raise ConfigError(
            f"{path} as a share of essays must be in [0, 1], got {value}; "
            "write a whole number (e.g. 5) for a count"
        )
    return float(value)
