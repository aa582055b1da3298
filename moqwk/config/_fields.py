"""Field readers shared by every config section: each error names the field's full path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moqwk.errors import ConfigError


def section(raw: Mapping[str, Any], key: str, allowed: set[str]) -> dict[str, Any]:
    """``raw[key]`` as a dict (absent or empty: ``{}``); unknown fields are an error."""
    value = raw.get(key) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
    unknown = set(value) - allowed
    if unknown:
        raise ConfigError(
            f"{key}.{sorted(map(str, unknown))[0]}: unknown field; allowed: "
            f"{', '.join(sorted(allowed))}"
        )
    return dict(value)


def typed(sec: Mapping[str, Any], name: str, path: str, kind: type, default: Any) -> Any:
    """``sec[name]`` checked to be a ``kind`` (an int is accepted as a float); absent: default."""
    if name not in sec or sec[name] is None:
        return default
    value = sec[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if (kind in (int, float) and isinstance(value, bool)) or not isinstance(value, kind):
        what = {int: "a whole number", float: "a number", str: "a string",
                bool: "true or false"}.get(kind, kind.__name__)
        raise ConfigError(f"{path}.{name}: expected {what}, got {value!r}")
    return value


def bounded(sec: Mapping[str, Any], name: str, path: str, kind: type, default: Any, *,
            lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> Any:
    """A number with optional bounds (``lo < x`` when ``lo_open``, else ``lo <= x``)."""
    value = typed(sec, name, path, kind, default)
    if value is None:
        return None
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise ConfigError(f"{path}.{name}: must be {'>' if lo_open else '>='} {lo:g}, "
                          f"got {value}")
    if hi is not None and value > hi:
        raise ConfigError(f"{path}.{name}: must be <= {hi:g}, got {value}")
    return value


def choice(sec: Mapping[str, Any], name: str, path: str, allowed: tuple[str, ...],
           default: str) -> str:
    value = typed(sec, name, path, str, default)
    if value not in allowed:
        raise ConfigError(f"{path}.{name}: must be one of {', '.join(allowed)}, got {value!r}")
    return value
