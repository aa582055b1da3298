"""Deterministic CV fold assignments: ``prompt_holdout`` and ``stratified_text``.

Pure functions on arrays: they return, per repeat, a fold number for every essay. Nothing here
reads or writes files; ``moqwk.run.splits_file`` records them in ``splits.json``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import numpy as np

SCHEMES = ("prompt_holdout", "stratified_text")


@dataclass(frozen=True)
class Splits:
    """Fold assignments of one scheme: ``folds[r][i]`` is essay i's validation fold in repeat r."""

    scheme: str
    n_folds: int
    seed: int
    ids: tuple[str, ...]
    folds: tuple[tuple[int, ...], ...]

    @property
    def repeats(self) -> int:
        return len(self.folds)

    def assignment(self, repeat: int) -> np.ndarray:
        return np.asarray(self.folds[repeat], dtype=np.int64)

    def iter_folds(self):
        """Yield ``(repeat, fold, train_idx, val_idx)`` for every fold of every repeat."""
        for r in range(self.repeats):
            a = self.assignment(r)
            for k in range(self.n_folds):
                yield r, k, np.flatnonzero(a != k), np.flatnonzero(a == k)

    def to_dict(self) -> dict:
        body = {
            "scheme": self.scheme,
            "n_folds": self.n_folds,
            "seed": self.seed,
            "repeats": [
                [sorted(self.ids[i] for i in np.flatnonzero(self.assignment(r) == k))
                 for k in range(self.n_folds)]
                for r in range(self.repeats)
            ],
        }
        body["sha256"] = hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        return body

    @property
    def sha256(self) -> str:
        return self.to_dict()["sha256"]


def _balanced_prompt_folds(
    prompt_codes: np.ndarray, n_folds: int, rng: np.random.Generator
) -> np.ndarray:
    """Assign whole prompts to folds, balancing essay counts.

    Largest-first greedy assignment to the lightest fold, on sizes jittered by the seed so that
    different seeds give different (still balanced) assignments.
    """
    sizes = np.bincount(prompt_codes)
    present = np.flatnonzero(sizes > 0)
    jitter = rng.uniform(0.75, 1.25, size=len(present))
    order = present[np.lexsort((rng.permutation(len(present)), -sizes[present] * jitter))]
    load = np.zeros(n_folds)
    fold_of_prompt = np.full(len(sizes), -1, dtype=np.int64)
    for p in order:
        k = int(np.argmin(load + rng.uniform(0, 1e-6, n_folds)))
        fold_of_prompt[p] = k
        load[k] += sizes[p]
    return fold_of_prompt[prompt_codes]


def prompt_holdout(
    ids: np.ndarray, prompt_codes: np.ndarray, *, n_folds: int, repeats: int, seed: int
) -> Splits:
    """Every prompt's essays lie in exactly one validation fold; folds balanced by essay count."""
    n_prompts = len(np.unique(prompt_codes))
    if n_prompts < n_folds:
        raise ValueError(f"prompt_holdout needs at least {n_folds=} prompts, got {n_prompts}")
    folds = []
    for r in range(repeats):
        rng = np.random.default_rng([seed, r, 1])
        folds.append(tuple(int(x) for x in _balanced_prompt_folds(prompt_codes, n_folds, rng)))
    return Splits("prompt_holdout", n_folds, seed, tuple(str(i) for i in ids), tuple(folds))


_WS = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Lowercased, whitespace-collapsed text: essays equal under this stay in one fold."""
    return _WS.sub(" ", text.strip().lower())


def stratified_text(
    ids: np.ndarray,
    texts: list[str] | np.ndarray,
    strata: np.ndarray,
    *,
    n_folds: int,
    repeats: int,
    seed: int,
) -> Splits:
    """Folds stratified by score level; essays with identical normalised text stay together."""
    from sklearn.model_selection import StratifiedGroupKFold

    _, groups = np.unique([normalise_text(t) for t in texts], return_inverse=True)
    folds = []
    for r in range(repeats):
        splitter = StratifiedGroupKFold(
            n_splits=n_folds, shuffle=True, random_state=int(seed * 1000 + r) % (2**32)
        )
        a = np.full(len(ids), -1, dtype=np.int64)
        for k, (_, val) in enumerate(splitter.split(np.zeros(len(ids)), strata, groups)):
            a[val] = k
        folds.append(tuple(int(x) for x in a))
    return Splits("stratified_text", n_folds, seed, tuple(str(i) for i in ids), tuple(folds))


def score_strata(y_norm: np.ndarray, n_bins: int = 9) -> np.ndarray:
    """Stratification labels: normalised scores binned so that per-prompt scales compare."""
    return np.minimum((np.asarray(y_norm) * n_bins).astype(np.int64), n_bins - 1)
