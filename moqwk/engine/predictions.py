"""The raw-prediction cache: a model's out-of-fold predictions, kept so a mapping can change.

A trial that differs from an earlier one only in its score mapping must not retrain XGBoost.
The engine keys what a set of fold models predicts by everything it depends on (the fold
features' keys, the XGBoost params and seeds, the training labels, the inner folds) and keeps
the raw predictions in memory and on disk beside the feature cache, written atomically like it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from moqwk.base.atomic import atomic_write, read_npz

#: Bump when anything about how raw predictions are made changes: it is part of every key.
PREDICTION_CODE_VERSION = "1"


def prediction_key(**parts: Any) -> str:
    """sha256 of ``parts`` (JSON, sorted keys) and :data:`PREDICTION_CODE_VERSION`."""
    blob = json.dumps({**parts, "version": PREDICTION_CODE_VERSION}, sort_keys=True,
                      default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class PredictionCache:
    """Arrays by key: an in-process memo (LRU) over ``cache_dir/<key>.npz`` files."""

    def __init__(self, cache_dir: Path, *, memo_size: int = 32) -> None:
        self.cache_dir = Path(cache_dir)
        self._memo: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        self._memo_size = memo_size
        self._lock = threading.Lock()
        self.stats = {"memo_hits": 0, "disk_hits": 0, "misses": 0}

    def _path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.npz"

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        with self._lock:
            hit = self._memo.get(key)
            if hit is not None:
                self._memo.move_to_end(key)
                self.stats["memo_hits"] += 1
                return hit
        try:
            arrays = read_npz(self._path(key))
        except (OSError, ValueError, KeyError, EOFError):
            with self._lock:
                self.stats["misses"] += 1
            return None
        self._remember(key, arrays)
        with self._lock:
            self.stats["disk_hits"] += 1
        return arrays

    def put(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)  # type: ignore[arg-type]

        atomic_write(self._path(key), write)
        self._remember(key, arrays)

    def _remember(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        for a in arrays.values():
            a.flags.writeable = False
        with self._lock:
            self._memo[key] = arrays
            self._memo.move_to_end(key)
            while len(self._memo) > self._memo_size:
                self._memo.popitem(last=False)
