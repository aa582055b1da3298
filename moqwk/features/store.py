"""The fold cache: per-fold feature blocks, built leak-free once per family variant, then read.

``FeatureStore.fold(train_idx, val_idx)`` fits every enabled family of the config
(:data:`moqwk.features.registry.FAMILIES`) on the training essays and transforms the validation
essays with what it fitted: the same :meth:`~moqwk.features.family.Family.fit` and
:meth:`~moqwk.features.family.Family.transform` calls that ``moqwk fit`` and ``predict`` make.
Each family's block is cached on its own, keyed by the corpus, the family's config (its
*variant*), the seed if the family uses it, the two id sets and the library versions: in an
in-process memo and in ``cache_dir/folds/<key>.npz``, written with
:func:`moqwk.base.atomic.atomic_write` so readers and racing writers never see a partial file. Two
configs that share a family variant (say, trials that differ only in ``features.word.*``) share
that family's blocks.

:meth:`FeatureStore.variant` gives the store of another feature config over the same corpus,
sharing the caches, the memo and the counters.

Rows are fitted in id order, so a fold's result depends on the id *sets*, not on the order of
``train_idx``; the returned rows follow the caller's order. What a family may share across
folds (the corpus's raw n-gram counts, pure per-essay columns) is sliced to the fold's rows
before the family sees it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import sklearn

from moqwk.base.atomic import atomic_write, read_npz
from moqwk.errors import DataError
from moqwk.features.config import FeatureConfig
from moqwk.features.family import PerEssayFn
from moqwk.features.ngrams import CorpusCounts, count_corpus
from moqwk.features.registry import FAMILIES

#: Bump whenever the features or the cache layout change: it is part of every cache key.
FEATURE_CODE_VERSION = "2"
_LOAD_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
_ANALYZER = {"word": "word", "char": "char_wb"}


@dataclass(frozen=True)
class FoldFeatures:
    """One fold's features: rows follow ``train_idx`` / ``val_idx`` as passed to ``fold``."""

    X_train: np.ndarray
    X_val: np.ndarray
    feature_names: tuple[str, ...]
    key: str


def atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    """Write an uncompressed ``.npz`` so that ``path`` is either absent or complete."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]

    atomic_write(path, write)


def _load_npz(path: Path, names: Sequence[str]) -> dict[str, np.ndarray] | None:
    """The arrays ``names`` of ``path``, or None when it is missing or unreadable."""
    try:
        return read_npz(path, names)
    except _LOAD_ERRORS:
        return None


def _sha(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _versions() -> dict[str, str]:
    return {
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "moqwk.features": FEATURE_CODE_VERSION,
    }


class _Shared:
    """What every variant of a store over one corpus shares: caches, memo, counters, lock."""

    def __init__(self, ids: np.ndarray, texts: list[str], cache_dir: Path, memo_size: int):
        self.ids = ids
        self.texts = texts
        self.cache_dir = cache_dir
        self.memo_size = memo_size
        self.lock = threading.RLock()
        #: block keys being built now, by any thread: the others wait instead of building too
        self.building: dict[str, threading.Event] = {}
        self.memo: OrderedDict[str, tuple[np.ndarray, np.ndarray, tuple[str, ...]]] = \
            OrderedDict()
        self.counts: dict[tuple[str, tuple[int, int]], CorpusCounts] = {}
        self.per_essay: dict[str, np.ndarray] = {}
        self.stats: dict[str, float] = dict.fromkeys(("hits", "memo_hits", "disk_hits"), 0)
        self.stats |= {"misses": 0, "build_seconds": 0.0, "load_seconds": 0.0,
                       "corpus_seconds": 0.0}
        self.stats |= dict.fromkeys(("blocks_memo", "blocks_loaded", "blocks_built"), 0)
        h = hashlib.sha256()
        for j in np.argsort(ids, kind="stable"):  # content hash, independent of row order
            for s in (ids[j], texts[j]):
                b = s.encode("utf-8", "surrogatepass")
                h.update(len(b).to_bytes(8, "little") + b)
        self.corpus_hash = h.hexdigest()
        self.rows_hash = _sha(self.corpus_hash, ids.tolist())  # also pins the row order


class _Rows:
    """:class:`~moqwk.features.family.EssayData` of some corpus rows, served from the store's
    corpus-level caches sliced to those rows (nothing of the other essays reaches a family)."""

    def __init__(self, store: FeatureStore, rows: np.ndarray) -> None:
        self._store = store
        self._rows = rows
        self.ids = store.ids[rows]
        self.texts = [store.texts[i] for i in rows]
        self.options: dict[str, Any] = {}

    def counts(self, analyzer: str, ngram_range: tuple[int, int]) -> CorpusCounts:
        return self._store._corpus_counts(analyzer, ngram_range).rows(self._rows)

    def per_essay(self, key: str, fn: PerEssayFn, *, persist: bool = True) -> np.ndarray:
        return self._store._per_essay(key, fn, persist)[self._rows]


class FeatureStore:
    """Leak-free per-fold features over one corpus, cached in memory and under ``cache_dir``."""

    def __init__(
        self,
        ids: np.ndarray,
        texts: Sequence[str],
        config: FeatureConfig,
        cache_dir: Path,
        *,
        memo_size: int = 64,
        _shared: _Shared | None = None,
    ) -> None:
        self.config = config
        if _shared is not None:
            self._s = _shared
            return
        ids = np.asarray(ids).astype(str)
        texts = list(texts)
        if ids.ndim != 1 or len(ids) != len(texts):
            raise DataError(f"need one id per text, got {ids.shape} ids, {len(texts)} texts")
        bad = [str(i) for i, t in zip(ids, texts, strict=True) if not isinstance(t, str)]
        if bad:
            raise DataError(f"essay texts must be strings; not so for ids {', '.join(bad[:5])}")
        uniq, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise DataError(f"duplicate essay ids: {', '.join(uniq[counts > 1][:5])}")
        self._s = _Shared(ids, texts, Path(cache_dir), memo_size)

    # ------------------------------------------------------------------ public API

    @property
    def ids(self) -> np.ndarray:
        return self._s.ids

    @property
    def texts(self) -> list[str]:
        return self._s.texts

    @property
    def cache_dir(self) -> Path:
        return self._s.cache_dir

    @property
    def corpus_hash(self) -> str:
        return self._s.corpus_hash

    def variant(self, config: FeatureConfig) -> FeatureStore:
        """The store of ``config`` over the same corpus, sharing caches, memo and counters."""
        if config == self.config:
            return self
        return FeatureStore(self.ids, self.texts, config, self.cache_dir, _shared=self._s)

    @property
    def stats(self) -> dict[str, float]:
        """Counters over all variants. Per fold: ``hits`` (= ``memo_hits`` + ``disk_hits``:
        every block was cached) and ``misses`` (some block was built). Per family block:
        ``blocks_memo``, ``blocks_loaded`` (from disk), ``blocks_built``. Seconds spent."""
        with self._s.lock:
            return dict(self._s.stats)

    def key(self, train_idx: np.ndarray, val_idx: np.ndarray) -> str:
        """The fold's cache key (sha256 hex); order of the indices does not matter."""
        train, val = self._check(train_idx, val_idx)
        return self._fold_key(self._block_keys(train, val))

    def block_keys(self, train_idx: np.ndarray, val_idx: np.ndarray) -> dict[str, str]:
        """Each enabled family's cache key for this fold."""
        train, val = self._check(train_idx, val_idx)
        return self._block_keys(train, val)

    def fold(self, train_idx: np.ndarray, val_idx: np.ndarray) -> FoldFeatures:
        """Features of one fold, fitted on ``train_idx`` only (from memo, disk, or built).

        Safe to call from several threads: different folds build at the same time (the lock
        is held only to look up and record), and a block that another thread is building is
        waited for, not built twice.
        """
        train, val = self._check(train_idx, val_idx)
        s = self._s
        keys = self._block_keys(train, val)
        ctr, cva = self._canonical(train), self._canonical(val)
        blocks = []
        sources = []
        for name, cfg in self.config.enabled():
            entry, source = self._block(name, cfg, keys[name], ctr, cva)
            blocks.append(entry)
            sources.append(source)
        with s.lock:
            if "built" in sources:
                s.stats["misses"] += 1
            elif "disk" in sources:
                s.stats["disk_hits"] += 1
            else:
                s.stats["memo_hits"] += 1
            s.stats["hits"] = s.stats["memo_hits"] + s.stats["disk_hits"]
        X_train = np.hstack([b[0] for b in blocks]) if blocks else np.zeros((len(train), 0))
        X_val = np.hstack([b[1] for b in blocks]).reshape(len(val), X_train.shape[1])
        names = tuple(n for b in blocks for n in b[2])
        return FoldFeatures(
            X_train=X_train[self._from_canonical(train)],
            X_val=X_val[self._from_canonical(val)],
            feature_names=names,
            key=self._fold_key(keys),
        )

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The names of the columns every fold has, in order."""
        return tuple(n for name, cfg in self.config.enabled()
                     for n in FAMILIES[name].feature_names(cfg))

    def corpus_counts(self, kind: str) -> CorpusCounts:
        """Raw corpus counts for ``kind`` in {"word", "char", "unigram"} (cached on disk)."""
        if kind == "unigram":
            return self._corpus_counts("word", (1, 1))
        return self._corpus_counts(_ANALYZER[kind], self.config.family(kind).ngram_range)

    # ------------------------------------------------------------------ internals

    def _check(self, train_idx: np.ndarray, val_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = []
        for name, idx in (("train_idx", train_idx), ("val_idx", val_idx)):
            a = np.asarray(idx)
            if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
                raise ValueError(
                    f"{name} must be a 1-D array of row positions, got {a.dtype} {a.shape}"
                )
            a = a.astype(np.intp)
            if a.size and (a.min() < 0 or a.max() >= len(self.ids)):
                raise ValueError(f"{name} has positions outside 0..{len(self.ids) - 1}")
            if len(np.unique(a)) != len(a):
                raise ValueError(f"{name} repeats a row")
            out.append(a)
        if len(out[0]) < 2:
            raise ValueError("train_idx needs at least 2 rows")
        if np.intersect1d(out[0], out[1]).size:
            raise ValueError("train_idx and val_idx overlap")
        return out[0], out[1]

    def _order(self, idx: np.ndarray) -> np.ndarray:
        return np.argsort(self.ids[idx], kind="stable")

    def _canonical(self, idx: np.ndarray) -> np.ndarray:
        return idx[self._order(idx)]

    def _from_canonical(self, idx: np.ndarray) -> np.ndarray:
        return np.argsort(self._order(idx), kind="stable")

    def _block_keys(self, train: np.ndarray, val: np.ndarray) -> dict[str, str]:
        tr, va = sorted(self.ids[train].tolist()), sorted(self.ids[val].tolist())
        out = {}
        for name, cfg in self.config.enabled():
            fam = FAMILIES[name]
            out[name] = _sha(self.corpus_hash, name, fam.version, fam.fingerprint(cfg),
                             self.config.seed if fam.uses_seed else None, tr, va, _versions())
        return out

    @staticmethod
    def _fold_key(keys: dict[str, str]) -> str:
        return _sha(list(keys.items()))

    def _block(self, name: str, cfg: Any, key: str, train: np.ndarray, val: np.ndarray):
        """One family's (X_train, X_val, names) of a fold, rows in id order; and its source."""
        s = self._s
        while True:
            with s.lock:
                entry = s.memo.get(key)
                if entry is not None:
                    s.memo.move_to_end(key)
                    s.stats["blocks_memo"] += 1
                    return entry, "memo"
                busy = s.building.get(key)
                if busy is None:
                    s.building[key] = threading.Event()
                    break
            busy.wait()  # another thread builds this block; then it is in the memo
        try:
            return self._load_or_build(name, cfg, key, train, val)
        finally:
            with s.lock:
                s.building.pop(key).set()

    def _load_or_build(self, name: str, cfg: Any, key: str, train: np.ndarray,
                       val: np.ndarray):
        s = self._s
        t0 = time.perf_counter()
        path = s.cache_dir / "folds" / f"{key}.npz"
        z = _load_npz(path, ("X_train", "X_val", "feature_names"))
        names = FAMILIES[name].feature_names(cfg)
        if z is not None and tuple(str(n) for n in z["feature_names"].tolist()) == names \
                and z["X_train"].shape == (len(train), len(names)) \
                and z["X_val"].shape == (len(val), len(names)):
            entry, source = (z["X_train"], z["X_val"], names), "disk"
            with s.lock:
                s.stats["blocks_loaded"] += 1
                s.stats["load_seconds"] += time.perf_counter() - t0
        else:
            fam = FAMILIES[name]
            state, b_train = fam.fit(cfg, _Rows(self, train), seed=self.config.seed)
            b_val = fam.transform(cfg, state, _Rows(self, val))
            d = len(names)
            entry = (np.asarray(b_train).astype(np.float32).reshape(len(train), d),
                     np.asarray(b_val).astype(np.float32).reshape(len(val), d), names)
            atomic_savez(path, X_train=entry[0], X_val=entry[1],
                         feature_names=np.asarray(names, dtype=str))
            source = "built"
            with s.lock:
                s.stats["blocks_built"] += 1
                s.stats["build_seconds"] += time.perf_counter() - t0
        for arr in entry[:2]:
            arr.flags.writeable = False
        with s.lock:
            s.memo[key] = entry
            while len(s.memo) > s.memo_size:
                s.memo.popitem(last=False)
        return entry, source

    def _per_essay(self, key: str, fn: PerEssayFn, persist: bool) -> np.ndarray:
        s = self._s
        with s.lock:
            if key not in s.per_essay:
                t0 = time.perf_counter()
                path = s.cache_dir / "corpus" / f"{key}-{_sha(s.rows_hash, _versions())}.npz"
                z = _load_npz(path, ("X",)) if persist else None
                if z is None or len(z["X"]) != len(self.ids):
                    z = {"X": np.asarray(fn(self.ids, self.texts))}
                    if persist:
                        atomic_savez(path, **z)
                arr = z["X"]
                arr.flags.writeable = False
                s.per_essay[key] = arr
                s.stats["corpus_seconds"] += time.perf_counter() - t0
            return s.per_essay[key]

    def _corpus_counts(self, analyzer: str, ngram_range: tuple[int, int]) -> CorpusCounts:
        s = self._s
        rng = (int(ngram_range[0]), int(ngram_range[1]))
        with s.lock:
            if (analyzer, rng) not in s.counts:
                t0 = time.perf_counter()
                s.counts[(analyzer, rng)] = self._count(analyzer, rng)
                s.stats["corpus_seconds"] += time.perf_counter() - t0
            return s.counts[(analyzer, rng)]

    def _count(self, analyzer: str, rng: tuple[int, int]) -> CorpusCounts:
        s = self._s
        if analyzer == "word" and rng == (1, 1):
            # unigrams are the 1-gram columns of word counts from 1-grams up (same numbers)
            have = next((r for a, r in s.counts if a == "word" and r[0] == 1 and r != rng), None)
            word = self.config.family("word")
            if have is None and word.enabled and word.ngram_range[0] == 1 \
                    and word.ngram_range != rng:
                have = word.ngram_range
            if have is not None:
                return self._corpus_counts("word", have).unigrams()
        name = f"{analyzer}-{_sha(s.rows_hash, rng, _versions())}.npz"
        path = s.cache_dir / "corpus" / name
        z = _load_npz(path, ("data", "indices", "indptr", "shape", "terms"))
        if z is not None:
            counts = CorpusCounts.from_arrays(analyzer, rng, z)
            if counts.counts.shape == (len(self.ids), len(counts.terms)):
                return counts
        counts = count_corpus(self.texts, analyzer, rng)
        atomic_savez(path, **counts.to_arrays())
        return counts
