"""Which CV fold a fit corpus is: so ``moqwk fit`` can reproduce that fold exactly.

A user checks a fitted model against CV by fitting it without one fold's prompts and scoring
them (docs/how-to/score-new-essays.md §7). For a label-based mapping (a fitted ``stretch``) the
numbers come from an inner cross-fit; CV seeds a fold's inner folds from the fold seed, the
repeat and the fold, and trains every model of repeat r with seed ``cv.seed + r``. When the fit
corpus holds exactly the training essays of a prompt-holdout fold, ``fit`` uses that fold's inner
seed and model seed, so its stretch (and its scores) equal the fold's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from moqwk.base import artifacts
from moqwk.core.splits import Splits
from moqwk.run.layout import SPLITS


@dataclass(frozen=True)
class CVFold:
    """One outer fold of a prompt-holdout fold set: its fold seed, repeat and fold index."""

    seed: int
    repeat: int
    fold: int

    @property
    def model_seed(self) -> int:
        """XGBoost's seed in that fold (:meth:`moqwk.engine.cv.CVEngine.model_seed`)."""
        return self.seed + self.repeat

    @property
    def inner_seed(self) -> int:
        from moqwk.engine.cv import inner_seed

        return inner_seed(self.seed, self.repeat, self.fold)

    def to_dict(self) -> dict:
        return {"seed": self.seed, "repeat": self.repeat, "fold": self.fold,
                "inner_seed": self.inner_seed, "model_seed": self.model_seed}


def matching_fold(splits: Splits | None, ids: Iterable[object]) -> CVFold | None:
    """The first (repeat, fold) of ``splits`` whose training essays are exactly ``ids``."""
    if splits is None or splits.scheme != "prompt_holdout":
        return None
    want = {str(i) for i in ids}
    for r, k, tr, _va in splits.iter_folds():
        if len(tr) == len(want) and {splits.ids[i] for i in tr} == want:
            return CVFold(int(splits.seed), int(r), int(k))
    return None


def run_splits(run_dir: Path, key: str = "prompt_holdout") -> Splits | None:
    """A run's recorded prompt-holdout folds (``splits.json``), None when it has none."""
    path = Path(run_dir) / SPLITS
    if not path.is_file():
        return None
    body = artifacts.read_json(path).get("schemes", {}).get(key)
    if not body:
        return None
    ids = sorted({i for fold in body["repeats"][0] for i in fold})
    pos = {i: n for n, i in enumerate(ids)}
    folds = []
    for rep in body["repeats"]:
        a = [0] * len(ids)
        for k, members in enumerate(rep):
            for i in members:
                a[pos[i]] = k
        folds.append(tuple(a))
    return Splits(body["scheme"], int(body["n_folds"]), int(body["seed"]), tuple(ids),
                  tuple(folds))
