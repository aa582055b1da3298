"""The fold cache: per-fold feature matrices, built leak-free once and then read from disk.

``FeatureStore.fold(train_idx, val_idx)`` returns float32 matrices whose fitted parts (n-gram
vocabularies, IDF, SVD, the spelling proxy's vocabulary) saw the training essays only. Results
are keyed by the corpus, the config, the two id sets and the library versions; they live in an
in-process memo and in ``cache_dir/folds/<key>.npz``, written with :func:`moqwk.atomic.atomic_write`
so readers and racing writers never see a partial file.

Rows are fitted in id order, so a fold's result depends on the id *sets*, not on the order of
``train_idx``; the returned rows follow the caller's order.
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

import numpy as np
import scipy
import sklearn

from moqwk.atomic import atomic_write
from moqwk.errors import DataError
from moqwk.features.config import FeatureConfig
from moqwk.features.ngrams import CorpusCounts, count_corpus, fold_svd, fold_tfidf, oov_share
from moqwk.features.text import HANDCRAFTED_NAMES, handcrafted_features, load_table, table_sha256

FEATURE_CODE_VERSION = "1"  # bump whenever any feature changes: it is part of every cache key
_LOAD_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


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
        with np.load(path, allow_pickle=False) as z:
            return {n: z[n] for n in names}
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
    ) -> None:
        self.ids = np.asarray(ids).astype(str)
        self.texts = list(texts)
        if self.ids.ndim != 1 or len(self.ids) != len(self.texts):
            raise DataError(
                f"need one id per text, got {self.ids.shape} ids, {len(self.texts)} texts"
            )
        bad = [str(i) for i, t in zip(self.ids, self.texts, strict=True) if not isinstance(t, str)]
        if bad:
            raise DataError(f"essay texts must be strings; not so for ids {', '.join(bad[:5])}")
        uniq, counts = np.unique(self.ids, return_counts=True)
        if (counts > 1).any():
            raise DataError(f"duplicate essay ids: {', '.join(uniq[counts > 1][:5])}")
        self.config = config
        self.cache_dir = Path(cache_dir)
        self._memo_size = memo_size
        self._lock = threading.RLock()
        self._building: dict[str, threading.Event] = {}
        self._memo: OrderedDict[str, tuple[np.ndarray, np.ndarray, tuple[str, ...]]] = OrderedDict()
        self._corpus: dict[str, CorpusCounts] = {}
        self._handcrafted: np.ndarray | None = None
        self._table: tuple[np.ndarray, tuple[str, ...]] | None = None
        self._table_sha: str | None = None
        self._stats: dict[str, float] = dict.fromkeys(("hits", "memo_hits", "disk_hits"), 0)
        self._stats |= {"misses": 0, "build_seconds": 0.0, "load_seconds": 0.0}
        self._stats["corpus_seconds"] = 0.0
        h = hashlib.sha256()
        for j in np.argsort(self.ids, kind="stable"):  # content hash, independent of row order
            for s in (self.ids[j], self.texts[j]):
                b = s.encode("utf-8", "surrogatepass")
                h.update(len(b).to_bytes(8, "little") + b)
        self.corpus_hash = h.hexdigest()
        self._rows_hash = _sha(self.corpus_hash, self.ids.tolist())  # also pins the row order

    # ------------------------------------------------------------------ public API

    @property
    def stats(self) -> dict[str, float]:
        """Counters: ``hits`` (= ``memo_hits`` + ``disk_hits``), ``misses`` and seconds spent."""
        with self._lock:
            return dict(self._stats)

    def key(self, train_idx: np.ndarray, val_idx: np.ndarray) -> str:
        """The fold's cache key (sha256 hex); order of the indices does not matter."""
        train, val = self._check(train_idx, val_idx)
        return self._key(train, val)

    def fold(self, train_idx: np.ndarray, val_idx: np.ndarray) -> FoldFeatures:
        """Features of one fold, fitted on ``train_idx`` only (from memo, disk, or built).

        Safe to call from several threads: different folds build at the same time (the lock
        is held only to look up and record), and a fold that another thread is building is
        waited for, not built twice.
        """
        train, val = self._check(train_idx, val_idx)
        key = self._key(train, val)
        while True:
            with self._lock:
                entry = self._memo.get(key)
                if entry is not None:
                    self._memo.move_to_end(key)
                    self._stats["memo_hits"] += 1
                    self._stats["hits"] = self._stats["memo_hits"] + self._stats["disk_hits"]
                    break
                busy = self._building.get(key)
                if busy is None:
                    self._building[key] = threading.Event()
                    break
            busy.wait()
        if entry is None:
            try:
                entry = self._load_or_build(key, train, val)
            finally:
                with self._lock:
                    self._building.pop(key).set()
        X_train, X_val, names = entry
        return FoldFeatures(
            X_train=X_train[self._from_canonical(train)],
            X_val=X_val[self._from_canonical(val)],
            feature_names=names,
            key=key,
        )

    def _load_or_build(self, key: str, train: np.ndarray, val: np.ndarray) -> tuple:
        t0 = time.perf_counter()
        entry = self._load(key, len(train), len(val))
        if entry is not None:
            stat, secs = "disk_hits", "load_seconds"
        else:
            entry = self._build(self._canonical(train), self._canonical(val))
            saved = np.asarray(entry[2], dtype=str)
            atomic_savez(self._fold_path(key), X_train=entry[0], X_val=entry[1],
                         feature_names=saved)  # fmt: skip
            stat, secs = "misses", "build_seconds"
        with self._lock:
            self._stats[stat] += 1
            self._stats[secs] += time.perf_counter() - t0
            self._remember(key, entry)
            self._stats["hits"] = self._stats["memo_hits"] + self._stats["disk_hits"]
        return entry

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The names of the columns every fold has, in order."""
        cfg, names = self.config, []
        if cfg.handcrafted:
            names += [f"hc.{n}" for n in HANDCRAFTED_NAMES] + ["hc.spell_oov_share"]
        for kind, ncfg in (("word", cfg.word), ("char", cfg.char)):
            if ncfg.enabled:
                names += [f"{kind}.svd_{i:03d}" for i in range(ncfg.svd_components)]
        if cfg.table is not None:
            names += list(self._table_features()[1])
        return tuple(names)

    def corpus_counts(self, kind: str) -> CorpusCounts:
        """Raw corpus counts for ``kind`` in {"word", "char", "unigram"} (cached on disk)."""
        with self._lock:
            if kind not in self._corpus:
                t0 = time.perf_counter()
                self._corpus[kind] = self._count(kind)
                self._stats["corpus_seconds"] += time.perf_counter() - t0
            return self._corpus[kind]

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

    def _key(self, train: np.ndarray, val: np.ndarray) -> str:
        table_sha = self._table_file_sha() if self.config.table is not None else None
        return _sha(
            self.corpus_hash,
            self.config.to_dict(),
            table_sha,
            sorted(self.ids[train].tolist()),
            sorted(self.ids[val].tolist()),
            _versions(),
        )

    def _fold_path(self, key: str) -> Path:
        return self.cache_dir / "folds" / f"{key}.npz"

    def _load(self, key: str, n_train: int, n_val: int):
        z = _load_npz(self._fold_path(key), ("X_train", "X_val", "feature_names"))
        if z is None:
            return None
        names = tuple(str(n) for n in z["feature_names"].tolist())
        d = len(names)
        if z["X_train"].shape != (n_train, d) or z["X_val"].shape != (n_val, d):
            return None
        return z["X_train"], z["X_val"], names

    def _remember(self, key: str, entry: tuple) -> None:
        for arr in entry[:2]:
            arr.flags.writeable = False
        self._memo[key] = entry
        while len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)

    def _build(self, train: np.ndarray, val: np.ndarray):
        """Fit on ``train`` (rows in id order) and transform both; float32 blocks + names."""
        cfg, tr, va = self.config, [], []
        table = self._table_features()[0] if cfg.table is not None else None  # fail fast
        if cfg.handcrafted:
            H = self._handcrafted_features()
            spell = oov_share(self.corpus_counts("unigram"), train)[:, None]
            tr.append(np.hstack([H[train], spell[train]]))
            va.append(np.hstack([H[val], spell[val]]))
        for kind, ncfg in (("word", cfg.word), ("char", cfg.char)):
            if ncfg.enabled:
                tfidf = fold_tfidf(self.corpus_counts(kind), train, val, ncfg, f"features.{kind}")
                z_tr, z_va = fold_svd(tfidf, ncfg.svd_components, cfg.seed)
                tr.append(z_tr)
                va.append(z_va)
        if table is not None:
            tr.append(table[train])
            va.append(table[val])
        X_train = np.hstack(tr).astype(np.float32)
        X_val = np.hstack(va).astype(np.float32).reshape(len(val), X_train.shape[1])
        return X_train, X_val, self.feature_names

    def _handcrafted_features(self) -> np.ndarray:
        with self._lock:  # computed once, whichever thread asks first
            return self._handcrafted_locked()

    def _handcrafted_locked(self) -> np.ndarray:
        if self._handcrafted is None:
            t0 = time.perf_counter()
            name = f"handcrafted-{_sha(self._rows_hash, _versions())}.npz"
            path = self.cache_dir / "corpus" / name
            z = _load_npz(path, ("H",))
            if z is None or z["H"].shape != (len(self.ids), len(HANDCRAFTED_NAMES)):
                z = {"H": handcrafted_features(self.texts)}
                atomic_savez(path, **z)
            self._handcrafted = z["H"]
            self._stats["corpus_seconds"] += time.perf_counter() - t0
        return self._handcrafted

    def _count(self, kind: str) -> CorpusCounts:
        word = self.config.word
        if kind == "unigram" and word.enabled and word.ngram_range[0] == 1:
            return self.corpus_counts("word").unigrams()
        analyzer, rng = {
            "word": ("word", word.ngram_range),
            "char": ("char_wb", self.config.char.ngram_range),
            "unigram": ("word", (1, 1)),
        }[kind]
        name = f"{analyzer}-{_sha(self._rows_hash, rng, _versions())}.npz"
        z = _load_npz(
            self.cache_dir / "corpus" / name, ("data", "indices", "indptr", "shape", "terms")
        )
        if z is not None:
            counts = CorpusCounts.from_arrays(analyzer, rng, z)
            if counts.counts.shape == (len(self.ids), len(counts.terms)):
                return counts
        counts = count_corpus(self.texts, analyzer, rng)
        atomic_savez(self.cache_dir / "corpus" / name, **counts.to_arrays())
        return counts

    def _table_file_sha(self) -> str:
        if self._table_sha is None:
            assert self.config.table is not None
            self._table_sha = table_sha256(self.config.table)
        return self._table_sha

    def _table_features(self) -> tuple[np.ndarray, tuple[str, ...]]:
        if self._table is None:
            assert self.config.table is not None
            self._table = load_table(self.config.table, self.ids)
        return self._table
