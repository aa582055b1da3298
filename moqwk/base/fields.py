"""One declaration per config field: its default, type, check and help.

A config section is a frozen dataclass whose fields are declared with :func:`setting`::

    @dataclass(frozen=True)
    class CVConfig:
        n_folds: int = setting(5, lo=2, help="folds per assignment")

The declaration is the only place the field is written. Everything else reads it:

- :func:`parse` (and :func:`read`, for a section that checks fields against each other) turns
  the YAML mapping into the dataclass: an unknown key, a wrong type, a value out of range or
  outside the choices is one :class:`~moqwk.errors.ConfigError` naming the field's full path
  (``search.population_size: must be >= 2, got 1``);
- :func:`dump` writes the normalised form (what ``config.yaml`` of a run records and the hashes
  are computed from);
- :func:`override` applies a command-line flag to a field with the field's own check;
- :mod:`moqwk.config.reference` writes the field rows of ``docs/reference/config.md``.

Feature families declare their fields the same way (:mod:`moqwk.features.families`).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moqwk.errors import ConfigError

#: The dataclass metadata key a :class:`Field` is stored under.
KEY = "moqwk.field"

_WHAT = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}
_DOC_KIND = {int: "int", float: "number", str: "string", bool: "bool"}


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of a field that must be given.
REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Field:
    """What one config field is. Read by the parser, the serialiser, the CLI overrides and the
    reference table; written once, by :func:`setting`.

    - ``kind``: ``int``, ``float`` (an int is accepted), ``str`` or ``bool``; ``None`` leaves
      the type to ``check``. Inferred from the default when the default is one of those.
    - ``lo``/``hi``: bounds (``lo_open``: ``lo < x``); ``finite``: no inf/nan;
      ``choices``: the allowed values (or a function returning them, read when checked).
    - ``auto``: the string ``auto`` means None, and None is written ``auto``.
    - ``check(value, path)``: after the checks above, returns the value to keep (may convert;
      raises ConfigError naming ``path``).
    - ``dump(value)``: the normalised (JSON-able) form, when the generic one does not fit.
    - ``type_doc``/``default_doc``: the reference table's words when the derived ones do not
      say enough; ``flag``: the command-line flag that overrides the field.
    """

    default: Any
    help: str
    kind: type | None = None
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    finite: bool = False
    choices: tuple[Any, ...] | Callable[[], Iterable[Any]] | None = None
    auto: bool = False
    check: Callable[[Any, str], Any] | None = None
    dump: Callable[[Any], Any] | None = None
    type_doc: str | None = None
    default_doc: str | None = None
    flag: str | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def allowed(self) -> tuple[Any, ...]:
        if self.choices is None:
            return ()
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def default_value(self) -> Any:
        """The default (a fresh copy of a dict or list: each config gets its own)."""
        return copy.deepcopy(self.default) if isinstance(self.default, dict | list) \
            else self.default

    # ------------------------------------------------------------------ the check

    def read(self, value: Any, path: str) -> Any:
        """``value`` (not None) checked as this field: the value to keep, or ConfigError."""
        if self.auto and value == "auto":
            return None
        kind = self.kind
        if kind is not None:
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if (kind in (int, float) and isinstance(value, bool)) or not isinstance(value, kind) \
                    or (kind is float and self.finite and not math.isfinite(_as_float(value))):
                raise ConfigError(f"{path}: {self._expected()}, got {value!r}")
        allowed = self.allowed()
        if allowed and value not in allowed:
            close = (difflib.get_close_matches(value, list(map(str, allowed)), n=1, cutoff=0.6)
                     if isinstance(value, str) else [])
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{path}: must be one of {', '.join(map(str, allowed))}, "
                              f"got {value!r}{hint}")
        low = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        if low or (self.hi is not None and value > self.hi):
            if self.auto:  # one sentence for everything an `auto` field takes
                raise ConfigError(f"{path}: {self._expected()}, got {value!r}")
            if low:
                raise ConfigError(f"{path}: must be {'>' if self.lo_open else '>='} "
                                  f"{self.lo:g}, got {value}")
            raise ConfigError(f"{path}: must be <= {self.hi:g}, got {value}")
        if self.check is not None:
            value = self.check(value, path)
        return value

    def _expected(self) -> str:
        """``expected a whole number``; for an ``auto`` field ``'auto' or a number >= 0``."""
        assert self.kind is not None
        what = _WHAT.get(self.kind, self.kind.__name__)
        if self.kind is float and self.finite:
            what = "a finite number"
        if not self.auto:
            return f"expected {what}"
        if self.lo is not None:
            what += f" {'>' if self.lo_open else '>='} {self.lo:g}"
        return f"'auto' or {what}"

    # ------------------------------------------------------------------ the normalised form

    def dumped(self, value: Any) -> Any:
        if self.dump is not None:
            return self.dump(value)
        if value is None and self.auto:
            return "auto"
        return jsonable(value)

    # ------------------------------------------------------------------ the reference

    def type_words(self) -> str:
        if self.type_doc is not None:
            return self.type_doc
        allowed = self.allowed()
        if allowed:
            words = " \\| ".join(f"`{literal(c)}`" for c in allowed)
        else:
            words = _DOC_KIND.get(self.kind, "value") if self.kind is not None else "value"
            if self.lo is not None and self.hi is not None and not self.lo_open:
                words += f" in [{self.lo:g}, {self.hi:g}]"
            elif self.lo is not None:
                words += f" {'>' if self.lo_open else '>='} {self.lo:g}"
            elif self.hi is not None:
                words += f" <= {self.hi:g}"
        if self.auto:
            words = f"`auto` \\| {words}"
        elif self.default is None:
            words += " or null"
        return words

    def default_words(self) -> str:
        if self.default_doc is not None:
            return self.default_doc
        if self.required:
            return "required"
        return f"`{literal(self.dumped(self.default))}`"


def _as_float(value: Any) -> float:
    return float(value)


def literal(value: Any) -> str:
    """A value as YAML would show it in a table cell."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {literal(v)}" for k, v in value.items()) + "}"
    return str(value)


def jsonable(value: Any) -> Any:
    """The generic normalised form: tuples as lists, mappings as dicts, paths as strings."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


def setting(default: Any, *, help: str, **declared: Any) -> Any:
    """Declare a config field of a section dataclass: a ``dataclasses.field`` that carries its
    :class:`Field` (see there for the keywords)."""
    if "kind" not in declared and type(default) in _WHAT:
        declared["kind"] = type(default)
    f = Field(default=default, help=help, **declared)
    meta = {KEY: f}
    if default is REQUIRED:
        return dataclasses.field(metadata=meta)
    if isinstance(default, dict | list):
        return dataclasses.field(default_factory=f.default_value, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def fields_of(cls: type) -> tuple[tuple[str, Field], ...]:
    """``(name, Field)`` of a section dataclass's declared fields, in declaration order."""
    return tuple((f.name, f.metadata[KEY]) for f in dataclasses.fields(cls) if KEY in f.metadata)


def field_of(cls: type, name: str) -> Field:
    return dict(fields_of(cls))[name]


# ---------------------------------------------------------------------- parsing


def mapping(value: Any, path: str, allowed: Iterable[str]) -> dict[str, Any]:
    """``value`` as a dict whose keys are all in ``allowed`` (absent or empty: ``{}``)."""
    value = {} if value is None else value
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__} {value!r}")
    allowed = list(allowed)
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise ConfigError(unknown_message(f"{path}.{unknown[0]}", unknown[0], allowed))
    return dict(value)


def unknown_message(where: str, key: str, allowed: Iterable[str], what: str = "field") -> str:
    """``where: unknown field; allowed: ...; did you mean X?``"""
    allowed = sorted(map(str, allowed))
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{where}: unknown {what}; allowed: {', '.join(allowed)}{hint}"


def read(cls: type, raw: Any, path: str, *, defaults: Any = None,
         also: Iterable[str] = ()) -> dict[str, Any]:
    """The declared fields of ``cls`` read from ``raw`` (a mapping; absent or empty: every
    default), each checked by its :class:`Field`; a key that is None takes the default
    (``defaults``' value when given: an instance of ``cls`` with other defaults). ``also``:
    keys the section reads itself (returned as given)."""
    declared = fields_of(cls)
    m = mapping(raw, path, [n for n, _ in declared] + list(also))
    out: dict[str, Any] = {k: m[k] for k in also if k in m}
    for name, f in declared:
        value = m.get(name)
        if value is None:
            if f.required:
                raise ConfigError(f"{path}.{name}: missing; {f.help}")
            out[name] = getattr(defaults, name) if defaults is not None else f.default_value()
        else:
            out[name] = f.read(value, f"{path}.{name}")
    return out


def parse(cls: type, raw: Any, path: str, *, defaults: Any = None) -> Any:
    """``cls(**read(cls, raw, path))``: a section with no checks across its fields."""
    return cls(**read(cls, raw, path, defaults=defaults))


def dump(obj: Any) -> dict[str, Any]:
    """The normalised form of a section: every declared field, JSON-able."""
    return {name: f.dumped(getattr(obj, name)) for name, f in fields_of(type(obj))}


def override(obj: Any, path: str, **given: Any) -> Any:
    """``obj`` with the fields in ``given`` that are not None replaced, each checked by its
    declaration; an error names the field's flag when it has one (``--gate-margin``), else its
    path."""
    declared = dict(fields_of(type(obj)))
    changes = {}
    for name, value in given.items():
        if value is None:
            continue
        f = declared[name]
        changes[name] = f.read(value, f.flag or f"{path}.{name}")
    return dataclasses.replace(obj, **changes) if changes else obj
