"""A workspace: a config, its corpus and a run directory, what every command starts from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moqwk.base.progress import NO_PROGRESS, Progress
from moqwk.config import Config
from moqwk.data.corpus import Corpus, load_corpus
from moqwk.engine.cv import CVEngine
from moqwk.errors import DataError
from moqwk.run.holdout import Holdout, draw_holdout, record_holdout
from moqwk.run.record import Level, check_same_config, read_run_record, record_config, run_config
from moqwk.run.splits_file import ensure_splits


@dataclass
class Workspace:
    """A config, its corpus and a run directory.

    With ``cv.holdout``, ``corpus`` is the development essays only (every command's folds,
    trials and selection see nothing else) and ``holdout`` the whole corpus with its reserved
    essays, which only ``select`` scores, once, after its choice.
    """

    config: Config
    corpus: Corpus
    run_dir: Path
    holdout: Holdout | None = field(default=None)

    @classmethod
    def open(cls, config: Config, run_dir: Path, *, level: Level = "scoring") -> Workspace:
        """Open (or start) ``run_dir`` with ``config``.

        A run directory that already has a config refuses one that differs on what ``level``
        covers (see :func:`moqwk.run.record.resolve_config`), and refuses other data than it
        was made with. A new run directory keeps ``config`` as its ``config.yaml``.
        """
        run_dir = Path(run_dir)
        recorded = run_config(run_dir)
        if recorded is not None:
            check_same_config(config, recorded, level=level, run_dir=run_dir)
        corpus = load_corpus(config)
        record = read_run_record(run_dir)
        if record is not None and record.data_hash != corpus.data_hash:
            raise DataError(f"{run_dir} was made from other data (data hash "
                            f"{record.data_hash[:12]}…, now {corpus.data_hash[:12]}…); use a "
                            "new --run-dir for new data")
        holdout = draw_holdout(corpus, config)  # a bad holdout fails before anything is written
        run_dir.mkdir(parents=True, exist_ok=True)
        record_config(run_dir, config)
        if holdout is not None:
            record_holdout(run_dir, holdout)
            return cls(config, holdout.development, run_dir, holdout)
        return cls(config, corpus, run_dir)

    def engine(self, scheme: str = "prompt_holdout", *, seed: int | None = None,
               repeats: int | None = None, nthread: int | None = None,
               store: Any = None, predictions: Any = None,
               progress: Progress = NO_PROGRESS,
               forbidden: frozenset[str] = frozenset()) -> CVEngine:
        splits = ensure_splits(self.run_dir, self.corpus, self.config, scheme, seed=seed,
                               repeats=repeats, forbidden=forbidden)
        return CVEngine(self.config, self.corpus, splits, nthread=nthread, store=store,
                        predictions=predictions, progress=progress)

    def pool(self, levels: Any) -> Any:
        """Out-of-fold levels of several configs (each: fold assignments x essays) with this
        corpus's prompts, true levels, scales, eligible prompts and tails, as
        :func:`moqwk.core.pooled.pool` takes them (for the tie band, BBC, compare's noise)."""
        return pool_of(self.corpus, self.config, levels)


def pool_of(corpus: Corpus, config: Config, levels: Any, *, eligible: Any = None) -> Any:
    """:meth:`Workspace.pool` for any corpus; ``eligible`` (one flag per prompt of
    ``corpus.prompt_names``) overrides ``cv.min_prompt_n`` on the corpus's own prompt sizes."""
    import numpy as np

    from moqwk.core.metrics import tail_masks
    from moqwk.core.pooled import pool

    c = corpus
    es = c.essay_scale
    n_levels = np.ones(len(c.prompt_names), dtype=np.int64)
    n_levels[c.prompt_codes] = es.n_levels
    if eligible is None:
        sizes = np.bincount(c.prompt_codes, minlength=len(c.prompt_names))
        eligible = sizes >= config.cv.min_prompt_n
    low, high = tail_masks(c.y_norm, config.tails.low_band, config.tails.high_band)
    return pool(prompt_codes=c.prompt_codes, true_level=es.level(c.scores),
                preds=np.asarray(levels), n_levels_by_prompt=n_levels,
                eligible=np.asarray(eligible, dtype=bool), low_tail=low, high_tail=high)
