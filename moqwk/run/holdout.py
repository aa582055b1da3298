"""``cv.holdout``: essays (or prompts) reserved before any fold is made, scored once by select.

:func:`draw_holdout` draws the holdout (:func:`moqwk.core.splits.holdout_split`) and
:func:`record_holdout` records its ids in ``splits.json`` (a run never changes its holdout);
the :class:`~moqwk.run.workspace.Workspace` then hands every command the development essays only,
so no search, CV, tie band, gate, BBC-CV or compare sees a holdout label.
:func:`score_holdout` scores the chosen config on the holdout, once, after the choice: each
holdout essay by the model of the development fold that held its prompt out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moqwk.base import artifacts
from moqwk.config import Config
from moqwk.core.splits import holdout_split, score_strata
from moqwk.data.corpus import Corpus
from moqwk.errors import ConfigError, SplitsError
from moqwk.run.layout import SPLITS as SPLITS_FILE
from moqwk.run.splits_file import open_record


@dataclass(frozen=True)
class Holdout:
    """The whole corpus and which of its essays the holdout reserves."""

    corpus: Corpus
    mask: np.ndarray
    unit: str
    share: float
    seed: int

    @property
    def development(self) -> Corpus:
        """The essays every search, CV and selection sees."""
        return self.corpus.subset(~self.mask)

    @property
    def essays(self) -> Corpus:
        """The holdout essays."""
        return self.corpus.subset(self.mask)

    def to_dict(self) -> dict:
        ids = sorted(str(i) for i in self.corpus.ids[self.mask])
        prompts = sorted(set(self.corpus.prompts[self.mask].tolist()))
        body: dict[str, Any] = {"unit": self.unit, "share": self.share, "seed": self.seed,
                                "n_essays": len(ids), "n_prompts": len(prompts),
                                "n_development_essays": int((~self.mask).sum()),
                                "ids": ids}
        if self.unit == "prompts":
            body["prompts"] = prompts
        body["sha256"] = _sha(body)
        return body


def _sha(body: dict) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
                          ).hexdigest()


def draw_holdout(corpus: Corpus, config: Config) -> Holdout | None:
    """The holdout ``cv.holdout`` asks for (None when it is off); deterministic."""
    cv = config.cv
    if cv.holdout is None:
        return None
    try:
        mask = holdout_split(corpus.prompt_codes, score_strata(corpus.y_norm), share=cv.holdout,
                             unit=cv.holdout_unit, seed=cv.holdout_draw_seed,
                             n_folds=cv.n_folds)
    except ValueError as e:
        raise ConfigError(f"cv.holdout: {e}") from None
    if not mask.any():
        raise ConfigError(f"cv.holdout: a share of {cv.holdout} reserves no essay of this "
                          "corpus (every prompt too small); raise the share or drop it")
    return Holdout(corpus, mask, cv.holdout_unit, float(cv.holdout), cv.holdout_draw_seed)


def record_holdout(run_dir: Path, h: Holdout) -> Holdout:
    """Check the holdout against ``splits.json`` and record it there."""
    corpus = h.corpus
    path = Path(run_dir) / SPLITS_FILE
    record = open_record(path, corpus.data_hash)
    body = h.to_dict()
    old = record.get("holdout")
    if old is not None:
        if old["sha256"] != body["sha256"]:
            raise SplitsError(
                f"{path}: the recorded holdout (sha256 {old['sha256'][:12]}…) differs from what "
                f"the config gives now ({body['sha256'][:12]}…); a run never changes its "
                "holdout: restore cv.holdout/holdout_unit/holdout_seed or use a new --run-dir")
        return h
    record["data_hash"] = corpus.data_hash
    record["holdout"] = body
    artifacts.write_json(path, record)
    return h


def score_holdout(config: Config, holdout: Holdout, dev_splits: Any, params: dict, *,
                  progress: Any = None) -> Any:
    """The chosen ``params`` scored on the holdout: a :class:`~moqwk.engine.cv.CVResult` on the
    whole corpus whose out-of-fold rows are the holdout essays (``fold`` -1 elsewhere).

    Fold k of every repeat trains on exactly the training essays of the development fold k
    (features, model, a label-based mapping's inner cross-fit: all on development essays,
    with the fold's seeds, so for the ``essays`` unit it is the same model CV trained) and
    predicts the holdout essays of the prompts fold k held out; a transductive mapping scores
    them in its declared batches.
    """
    from moqwk.base.progress import NO_PROGRESS
    from moqwk.core.splits import holdout_scoring
    from moqwk.engine.cv import CVEngine

    c = holdout.corpus
    folds = holdout_scoring(dev_splits, c.ids, c.prompt_codes, holdout.mask, seed=holdout.seed)
    engine = CVEngine(config, c, folds, progress=progress or NO_PROGRESS)
    engine.prepare()
    with engine.progress.stage(f"holdout: {int(holdout.mask.sum())} essays",
                               total=engine.n_fits, unit="folds") as st:
        return engine.run(params, on_fold=st.advance)
