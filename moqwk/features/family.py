"""What a feature family is: one block of columns, fitted on training essays, applied to others.

A *family* is one entry of :data:`moqwk.features.registry.FAMILIES`. Its config lives under
``features.<name>:`` in a moqwk config, its columns are named ``<prefix>.<something>``, and the
same three calls serve every place features are built:

- the per-fold store (:class:`moqwk.features.FeatureStore`) calls :meth:`Family.fit` on a fold's
  training essays and :meth:`Family.transform` on its validation essays, and caches the block
  per family variant (the family's config, the seed, the two id sets) by content hash;
- ``moqwk fit`` (:class:`moqwk.features.fitted.FittedFeatures`) calls :meth:`Family.fit` on
  every essay and saves the fitted state with :meth:`Family.save_state`;
- ``moqwk predict`` loads it with :meth:`Family.load_state` and calls :meth:`Family.transform`.

So a fold's validation block and a fitted model's block of the same essays are the same
floating-point operations on the same numbers: bit for bit equal (tests check it per family).

How a family plugs in
---------------------
1. Write one module (e.g. ``moqwk/features/families/readability.py``) with

   - a frozen config dataclass whose fields are declared with
     :func:`moqwk.base.fields.setting` (default, type, check, help; ``enabled:
     bool = setting(False, help=...)`` for an opt-in family). Its parsing, errors naming
     ``features.<name>.<field>``, canonical ``to_dict`` (it goes into cache keys and the
     config's hash: a family at its defaults must not change the hash of an older config,
     which :func:`moqwk.config.load._hash_of` ensures because it drops default values) and
     its rows in the config reference all come from those declarations;
   - a :class:`Family` subclass: ``name`` (the ``features:`` key), ``prefix`` (the column
     prefix), ``config_type``, ``help`` (its reference row), ``searchable`` (the fields
     ``search.space`` may name as ``features.<name>.<field>``), :meth:`Family.feature_names`,
     :meth:`Family.fit`, :meth:`Family.transform` and, if it fits anything,
     :meth:`Family.save_state` / :meth:`Family.load_state`. :meth:`Family.parse` is
     inherited; override it only for a check across fields.

   A family whose columns are a pure function of each essay (nothing fitted) subclasses
   :class:`PerEssayFamily` and writes only :meth:`PerEssayFamily.compute`; the store then
   computes it once per corpus and slices it for each fold.
2. Add one entry to :data:`moqwk.features.registry.FAMILIES` (the order there is the column
   order; append new families at the end so existing models' columns keep their places).
3. Write its tests: fit/transform leak-free, save/load round trip bit for bit (the registry's
   generic tests in ``tests/test_feature_families.py`` already run over every registered family).

Nothing else changes: config parsing, the search-space checks, the per-fold store, ``fit``,
``predict`` and ``moqwk cv``'s report read the registry.

Rules for a family
------------------
- Leak-free: :meth:`Family.fit` sees the training essays only (``EssayData`` holds nothing
  else), and :meth:`Family.transform` of an essay depends on that essay and the fitted state
  only, never on the other essays being transformed.
- Prompt-agnostic by construction if it is to transfer to unseen prompts.
- Deterministic: same essays, config and ``seed`` give the same arrays, in every process.
- ``fit`` receives essays in id order and returns the training block with rows in that order.
- Blocks are float64 (or anything numpy can cast); the store casts the whole row to float32.
- The fitted state is JSON (numbers, strings, lists, dicts) plus numeric numpy arrays; loading
  executes nothing (``np.load(allow_pickle=False)``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from moqwk.base.fields import dump, read
from moqwk.errors import ConfigError

if TYPE_CHECKING:
    from moqwk.features.ngrams import CorpusCounts

#: ``fn(ids, texts) -> (len(texts), d)`` array: a pure per-essay computation.
PerEssayFn = Callable[[np.ndarray, Sequence[str]], np.ndarray]


class EssayData(Protocol):
    """The essays a family fits on or transforms, and shared caches over them.

    ``ids`` (str) and ``texts`` are aligned. :meth:`counts` and :meth:`per_essay` may be served
    from corpus-level caches (the store counts the corpus once and slices it per fold); their
    rows are always these essays and only these, so nothing about other essays leaks in.
    """

    @property
    def ids(self) -> np.ndarray:
        """The essays' ids (str)."""
        ...

    @property
    def texts(self) -> Sequence[str]:
        """The essays' texts, aligned with ``ids``."""
        ...

    @property
    def options(self) -> Mapping[str, Any]:
        """Run-time options that are not part of the fitted state (``table_path`` for
        predict)."""
        ...

    def counts(self, analyzer: str, ngram_range: tuple[int, int]) -> CorpusCounts:
        """Raw n-gram counts of these essays: rows follow ``texts``, columns are sorted terms
        (possibly a superset of the terms these essays contain: those columns are zero)."""
        ...

    def per_essay(self, key: str, fn: PerEssayFn, *, persist: bool = True) -> np.ndarray:
        """``fn(ids, texts)``, possibly memoised across folds (and on disk when ``persist``).
        ``key`` must change whenever ``fn``'s output could (name it and version it)."""
        ...


class Family(ABC):
    """One feature family. Subclasses are stateless singletons; configs and states are data."""

    #: The key under ``features:`` and in ``features.<name>.<field>`` search-space names.
    name: str
    #: The column-name prefix (``<prefix>.<column>``); usually ``name``.
    prefix: str
    #: The frozen config dataclass.
    config_type: type
    #: Fields of the config that ``search.space`` may name (``features.<name>.<field>``).
    searchable: tuple[str, ...] = ("enabled",)
    #: Whether :meth:`fit` uses ``features.seed`` (it then goes into the family's cache key).
    uses_seed: bool = False
    #: Whether :meth:`transform` reads ``data.ids`` (``predict`` then requires the essays' ids).
    needs_ids: bool = False
    #: Bump when the family's output changes: it is part of every cache key and fitted model.
    version: str = "1"

    #: One line for the config reference: what the family's columns are.
    help: str = ""
    #: Whether ``features.<name>: true|false`` is short for ``{enabled: true|false}``.
    accepts_bool: bool = True

    # ------------------------------------------------------------------ config

    def default(self) -> Any:
        """The config when ``features.<name>`` is absent (the config type's declared
        defaults)."""
        return self.config_type()

    def parse(self, raw: Any, path: str, base_dir: Path | None) -> Any:
        """Validate ``features.<name>`` (``raw`` is never None; ``path`` is its dotted path).
        Each error is one :class:`~moqwk.errors.ConfigError` naming ``<path>.<field>``.

        By default every field is read by its declaration (:func:`moqwk.base.fields.setting`
        in the config type), over :meth:`default`; ``true``/``false`` sets ``enabled`` when
        :attr:`accepts_bool`. A family with checks across fields overrides this."""
        return parse_family_fields(self, raw, path)

    def to_dict(self, cfg: Any) -> Any:
        """Canonical JSON form: what the normalised config records and cache keys hash."""
        return cfg.to_dict() if hasattr(cfg, "to_dict") else dump(cfg)

    def to_mapping(self, cfg: Any) -> dict[str, Any]:
        """``cfg`` as a field mapping that :meth:`parse` accepts (for search-space overrides)."""
        out = self.to_dict(cfg)
        return dict(out) if isinstance(out, Mapping) else {}

    def enabled(self, cfg: Any) -> bool:
        return bool(cfg.enabled)

    def fingerprint(self, cfg: Any) -> Any:
        """What, besides the essays, the family's output depends on (default: its config)."""
        return self.to_dict(cfg)

    # ------------------------------------------------------------------ columns

    @abstractmethod
    def feature_names(self, cfg: Any) -> tuple[str, ...]:
        """The block's column names, in order (the same for every fold)."""

    @abstractmethod
    def fit(self, cfg: Any, data: EssayData, *, seed: int) -> tuple[Any, np.ndarray]:
        """Fit on ``data`` (training essays, in id order): the fitted state and the training
        block ``(len(data.texts), len(feature_names(cfg)))``."""

    @abstractmethod
    def transform(self, cfg: Any, state: Any, data: EssayData) -> np.ndarray:
        """The block of ``data``'s essays under a fitted ``state`` (no refitting)."""

    # ------------------------------------------------------------------ the fitted state

    def save_state(self, state: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(json, arrays)``: a JSON-able record and numeric arrays (names without dots)."""
        return {}, {}

    def load_state(self, cfg: Any, meta: Mapping[str, Any],
                   arrays: Mapping[str, np.ndarray]) -> Any:
        """Inverse of :meth:`save_state`; raises ValueError/KeyError on inconsistent input."""
        return None

    def config_for_state(self, cfg: Any, state: Any) -> Any:
        """The config a loaded model transforms with (default ``cfg``): a family whose config
        points at something outside the model directory (a file) pins it to what was fitted."""
        return cfg


def read_family_fields(family: Family, raw: Any, path: str) -> dict[str, Any]:
    """The fields of ``features.<name>`` read by their declarations, over the family's
    defaults (a bare true/false is ``{enabled: ...}`` when the family accepts it)."""
    if isinstance(raw, bool):
        if not family.accepts_bool:
            raise ConfigError(f"{path}: expected a mapping; write {path}: "
                              f"{{enabled: {str(raw).lower()}}}")
        raw = {"enabled": raw}
    elif not isinstance(raw, Mapping):
        what = "true, false or a mapping" if family.accepts_bool else "a mapping"
        raise ConfigError(f"{path}: expected {what}, got {type(raw).__name__} {raw!r}")
    return read(family.config_type, raw, path, defaults=family.default())


def parse_family_fields(family: Family, raw: Any, path: str) -> Any:
    return family.config_type(**read_family_fields(family, raw, path))


class PerEssayFamily(Family):
    """A family whose columns are a pure function of each essay: nothing is fitted.

    Write :meth:`compute` (and ``names``); the store computes the whole corpus once (cached on
    disk under ``<name>-v<version>``) and slices it per fold, ``fit``/``predict`` compute it for
    the essays at hand.
    """

    @abstractmethod
    def compute(self, cfg: Any, ids: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), len(feature_names(cfg)))`` float64, row i from essay i alone."""

    def cache_key(self, cfg: Any) -> str:
        import hashlib
        import json

        blob = json.dumps(self.fingerprint(cfg), sort_keys=True).encode()
        return f"{self.name}-v{self.version}-{hashlib.sha256(blob).hexdigest()[:16]}"

    def _block(self, cfg: Any, data: EssayData) -> np.ndarray:
        return data.per_essay(self.cache_key(cfg),
                              lambda ids, texts: self.compute(cfg, ids, texts))

    def fit(self, cfg: Any, data: EssayData, *, seed: int) -> tuple[Any, np.ndarray]:
        return None, self._block(cfg, data)

    def transform(self, cfg: Any, state: Any, data: EssayData) -> np.ndarray:
        return self._block(cfg, data)


class Essays:
    """:class:`EssayData` over a list of essays, computed directly (``fit`` and ``predict``)."""

    def __init__(self, ids: Sequence[str] | np.ndarray, texts: Sequence[str],
                 options: Mapping[str, Any] | None = None) -> None:
        self.ids = np.asarray(ids).astype(str)
        self.texts = list(texts)
        self.options = dict(options or {})
        self._counts: dict[tuple[str, tuple[int, int]], CorpusCounts] = {}

    def counts(self, analyzer: str, ngram_range: tuple[int, int]) -> CorpusCounts:
        from moqwk.errors import DataError
        from moqwk.features.ngrams import count_corpus, empty_counts

        key = (analyzer, (int(ngram_range[0]), int(ngram_range[1])))
        if key not in self._counts:
            if analyzer == "word" and key[1] == (1, 1):
                word = next((c for (a, r), c in self._counts.items()
                             if a == "word" and r[0] == 1), None)
                if word is not None:  # the unigram columns of word counts, as the store does
                    self._counts[key] = word.unigrams()
                    return self._counts[key]
            try:
                counted: CorpusCounts = count_corpus(self.texts, analyzer, key[1])
            except DataError:  # no n-gram in any of these essays: zero counts over no terms
                counted = empty_counts(analyzer, key[1], len(self.texts))
            self._counts[key] = counted
        return self._counts[key]

    def per_essay(self, key: str, fn: PerEssayFn, *, persist: bool = True) -> np.ndarray:
        return np.asarray(fn(self.ids, self.texts))
