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


# --------------------------------------------------------------------------- distinct partitions


def partition_key(assignment: np.ndarray, *, ids: np.ndarray | None = None) -> str:
    """A key equal for two fold assignments iff they split the essays the same way.

    Fold numbers are labels, so they are dropped: the partition is the set of its folds, each a
    set of essays. Essays are named by ``ids`` when given (then the key does not depend on the
    essays' order either, and equals :func:`partition_key_of_folds` of ``splits.json``'s lists),
    else by their position. sha256 of the canonical form (folds sorted, each sorted).
    """
    a = np.asarray(assignment)
    if a.ndim != 1:
        raise ValueError(f"assignment must be 1-D (one fold per essay), got shape {a.shape}")
    names = (np.arange(len(a)).astype(str) if ids is None
             else np.asarray([str(i) for i in ids]))
    if len(names) != len(a):
        raise ValueError(f"{len(names)} ids for {len(a)} essays: one id per essay")
    return partition_key_of_folds([names[a == k].tolist() for k in np.unique(a)])


def partition_key_of_folds(folds: list[list[str]] | tuple[tuple[str, ...], ...]) -> str:
    """:func:`partition_key` of a partition given as its folds' essay ids (any order)."""
    canon = sorted(sorted(str(i) for i in f) for f in folds if len(f))
    return hashlib.sha256(json.dumps(canon, separators=(",", ":")).encode()).hexdigest()


def distinct_prompt_holdout(
    ids: np.ndarray, prompt_codes: np.ndarray, *, n_folds: int, repeats: int, seed: int,
    forbidden: frozenset[str] | set[str] | tuple[str, ...] = (), max_redraws: int = 200,
) -> Splits:
    """:func:`prompt_holdout` whose repeats differ from each other and from ``forbidden``.

    Repeat r is first drawn exactly as :func:`prompt_holdout` draws it (generator seeded
    ``[seed, r, 1]``), so wherever those repeats are already distinct, and none is forbidden,
    the result is identical to ``prompt_holdout``'s (a run made before this function existed
    reproduces). Only a repeat whose partition (compared without fold labels, see
    :func:`partition_key` with ``ids``) equals an earlier repeat or a ``forbidden`` key is
    redrawn, with generators seeded ``[seed, r, 1, attempt]`` for attempt = 1, 2, ...

    Raises ValueError when a repeat cannot differ: at once when every prompt is its own fold
    (prompts == folds: one partition exists up to labels), else after ``max_redraws``
    attempts.
    """
    codes = np.asarray(prompt_codes)
    n_prompts = len(np.unique(codes))
    if n_prompts < n_folds:
        raise ValueError(f"prompt_holdout needs at least {n_folds=} prompts, got {n_prompts}")
    if max_redraws < 1:
        raise ValueError(f"max_redraws must be >= 1, got {max_redraws}")
    id_arr = np.asarray([str(i) for i in ids])
    taken = set(forbidden)
    need = repeats + len(taken)
    if n_prompts == n_folds and need > 1:
        raise ValueError(
            f"{n_prompts} prompts in {n_folds} folds: every prompt is its own fold, so only one "
            f"partition exists and {repeats} repeat(s) plus {len(taken)} forbidden partition(s) "
            "cannot all differ; use fewer folds, one repeat, or a corpus with more prompts")
    folds = []
    for r in range(repeats):
        for attempt in range(max_redraws + 1):
            key_seed = [seed, r, 1] if attempt == 0 else [seed, r, 1, attempt]
            a = _balanced_prompt_folds(codes, n_folds, np.random.default_rng(key_seed))
            key = partition_key(a, ids=id_arr)
            if key not in taken:
                break
        else:
            raise ValueError(
                f"prompt_holdout repeat {r} (seed {seed}) equals an earlier repeat or a "
                f"forbidden partition in all {max_redraws + 1} draws: with {n_prompts} prompts in "
                f"{n_folds} folds too few balanced partitions exist; use fewer repeats or folds")
        taken.add(key)
        folds.append(tuple(int(x) for x in a))
    return Splits("prompt_holdout", n_folds, seed, tuple(id_arr.tolist()), tuple(folds))


# --------------------------------------------------------------------------- the holdout

HOLDOUT_UNITS = ("essays", "prompts")


def holdout_split(prompt_codes: np.ndarray, strata: np.ndarray, *, share: float, unit: str,
                  seed: int, n_folds: int) -> np.ndarray:
    """Which essays the holdout reserves (a boolean mask), before any fold is made.

    ``essays``: within each prompt, ``round(share * n)`` of its n essays (never all of them, so
    every prompt stays in the folds), spread evenly over the prompt's essays ordered by score
    stratum (``strata``) and, within a stratum, at random: a stratified systematic sample, so
    the holdout has each prompt's score distribution. ``prompts``: ``round(share * P)`` whole
    prompts (at least one), drawn at random; at least ``n_folds`` prompts must remain.
    Deterministic for a seed (generators seeded ``[seed, 2, ...]``, apart from the folds').
    """
    codes = np.asarray(prompt_codes, dtype=np.int64)
    strata = np.asarray(strata)
    if not 0 < share <= 0.5:
        raise ValueError(f"the holdout share must lie in (0, 0.5], got {share}")
    if unit not in HOLDOUT_UNITS:
        raise ValueError(f"unknown holdout unit {unit!r}; choose one of "
                         f"{', '.join(HOLDOUT_UNITS)}")
    mask = np.zeros(len(codes), dtype=bool)
    present = np.unique(codes)
    if unit == "prompts":
        m = max(1, int(np.floor(share * len(present) + 0.5)))
        if len(present) - m < n_folds:
            raise ValueError(
                f"a holdout of {m} of {len(present)} prompts leaves {len(present) - m}, fewer "
                f"than the {n_folds} folds need; lower the share or hold out essays")
        rng = np.random.default_rng([seed, 2, 0])
        mask[np.isin(codes, rng.permutation(present)[:m])] = True
        return mask
    for p in present:
        rows = np.flatnonzero(codes == p)
        n = len(rows)
        m = min(int(np.floor(share * n + 0.5)), n - 1)
        if m <= 0:
            continue
        rng = np.random.default_rng([seed, 2, int(p)])
        order = rows[np.lexsort((rng.permutation(n), strata[rows]))]
        step = n / m
        picks = np.floor(rng.uniform(0, step) + step * np.arange(m)).astype(np.int64)
        mask[order[np.minimum(picks, n - 1)]] = True
    return mask


@dataclass(frozen=True)
class ScoringFolds(Splits):
    """Folds that train on some essays and score others: the holdout's scoring.

    ``folds[r][i]`` is essay i's fold in repeat r among the *training* essays (-1: it never
    trains, as a holdout essay), ``scored[r][i]`` the fold whose model scores it (-1: none).
    So fold k trains on the essays with ``folds != k`` and ``folds >= 0`` (exactly the
    training essays of the development folds' fold k) and predicts the essays with
    ``scored == k``, which never train any model.
    """

    scored: tuple[tuple[int, ...], ...] = ()

    def iter_folds(self):
        for r in range(self.repeats):
            a = self.assignment(r)
            s = np.asarray(self.scored[r], dtype=np.int64)
            for k in range(self.n_folds):
                yield r, k, np.flatnonzero((a != k) & (a >= 0)), np.flatnonzero(s == k)

    def to_dict(self) -> dict:
        body = {"scheme": self.scheme, "n_folds": self.n_folds, "seed": self.seed,
                "scoring": "holdout",
                "trained": [list(f) for f in self.folds], "scored": [list(f) for f in self.scored],
                "ids": list(self.ids)}
        body["sha256"] = hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        return body


def holdout_scoring(dev: Splits, ids: np.ndarray, prompt_codes: np.ndarray,
                    holdout: np.ndarray, *, seed: int) -> ScoringFolds:
    """The folds that score the holdout essays with the development folds' models.

    ``dev`` are the prompt-holdout folds of the development essays (``ids`` minus the
    holdout), ``ids``/``prompt_codes``/``holdout`` describe the whole corpus. A holdout essay
    of prompt P is scored by the model of the fold that holds P out (trained on the other
    prompts' development essays only), in every repeat. A holdout prompt (``prompts`` unit)
    is in no development fold: it is scored by fold ``i mod n_folds`` of a seeded order of the
    holdout prompts (generator ``[seed, r, 3]``), whose model never saw it either.
    """
    if dev.scheme != "prompt_holdout":
        raise ValueError(f"the holdout is scored by prompt_holdout folds, got {dev.scheme}")
    ids = np.asarray([str(i) for i in ids])
    codes = np.asarray(prompt_codes, dtype=np.int64)
    hold = np.asarray(holdout, dtype=bool)
    pos = {i: n for n, i in enumerate(ids)}
    dev_pos = np.asarray([pos[i] for i in dev.ids], dtype=np.int64)
    if len(dev_pos) + int(hold.sum()) != len(ids) or hold[dev_pos].any():
        raise ValueError("the development folds must cover exactly the essays outside the "
                         "holdout")
    trained, scored = [], []
    for r in range(dev.repeats):
        t = np.full(len(ids), -1, dtype=np.int64)
        t[dev_pos] = dev.assignment(r)
        fold_of_prompt = np.full(int(codes.max()) + 1 if len(codes) else 0, -1, dtype=np.int64)
        fold_of_prompt[codes[dev_pos]] = t[dev_pos]
        lonely = np.unique(codes[hold & (fold_of_prompt[codes] < 0)])
        order = np.random.default_rng([seed, r, 3]).permutation(lonely)
        fold_of_prompt[order] = np.arange(len(order)) % dev.n_folds
        s = np.where(hold, fold_of_prompt[codes], -1)
        trained.append(tuple(int(x) for x in t))
        scored.append(tuple(int(x) for x in s))
    return ScoringFolds(dev.scheme, dev.n_folds, dev.seed, tuple(ids.tolist()), tuple(trained),
                        scored=tuple(scored))
