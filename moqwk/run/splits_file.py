"""``splits.json``: every scheme's folds for a run, each with its sha256.

A run never silently changes its splits: if the recorded folds of a scheme differ from what the
config and data produce now, the run stops with an error instead of mixing two fold definitions.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from moqwk.base import artifacts
from moqwk.config import Config
from moqwk.core.splits import (
    SCHEMES,
    Splits,
    distinct_prompt_holdout,
    partition_key_of_folds,
    score_strata,
    stratified_text,
)
from moqwk.data.corpus import Corpus
from moqwk.errors import SplitsError
from moqwk.run.layout import SPLITS as SPLITS_FILE


def make_splits(corpus: Corpus, config: Config, scheme: str, *, seed: int | None = None,
                repeats: int | None = None, forbidden: frozenset[str] = frozenset()) -> Splits:
    """The folds ``scheme`` gives for this corpus and config (seed and repeats overridable).

    ``prompt_holdout`` repeats are distinct partitions (compared without fold labels), and none
    is in ``forbidden`` (partition keys, e.g. a search's own folds when fresh folds are drawn):
    a repeat that would equal one is redrawn; where they already differ, the folds are those of
    a plain draw. A corpus whose folds cannot differ (as many prompts as folds) is refused.
    """
    if scheme not in SCHEMES:
        raise SplitsError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    seed = config.cv.seed if seed is None else seed
    repeats = config.cv.repeats if repeats is None else repeats
    if scheme == "prompt_holdout":
        try:
            return distinct_prompt_holdout(corpus.ids, corpus.prompt_codes,
                                           n_folds=config.cv.n_folds, repeats=repeats, seed=seed,
                                           forbidden=forbidden)
        except ValueError as e:
            raise SplitsError(f"prompt_holdout folds (seed {seed}): {e}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class" on thin tails
        return stratified_text(corpus.ids, list(corpus.texts), score_strata(corpus.y_norm),
                               n_folds=config.cv.n_folds, repeats=repeats, seed=seed)


def scheme_key(scheme: str, seed: int, repeats: int, default_seed: int,
               default_repeats: int | None = None) -> str:
    """The name a fold set is recorded under: the scheme, plus seed and repeats when either is
    not the config's (``default_repeats=None``: only the seed is compared)."""
    if seed == default_seed and default_repeats in (None, repeats):
        return scheme
    return f"{scheme}@seed={seed},repeats={repeats}"


def open_record(path: Path, data_hash: str) -> dict[str, Any]:
    """``splits.json`` as recorded (a new record when there is none), refused when it was
    written for other data."""
    record: dict[str, Any] = (artifacts.read_json(path) if path.exists()
                              else {"version": 1, "schemes": {}})
    if record.get("data_hash") not in (None, data_hash):
        raise SplitsError(
            f"{path} was written for other data (data hash {record['data_hash'][:12]}…, now "
            f"{data_hash[:12]}…); use a new --run-dir for new data"
        )
    return record


def ensure_splits(run_dir: Path, corpus: Corpus, config: Config, scheme: str, *,
                  seed: int | None = None, repeats: int | None = None,
                  forbidden: frozenset[str] = frozenset()) -> Splits:
    """Make the scheme's folds, check them against ``splits.json`` and record them there."""
    splits = make_splits(corpus, config, scheme, seed=seed, repeats=repeats, forbidden=forbidden)
    key = scheme_key(scheme, splits.seed, splits.repeats, config.cv.seed, config.cv.repeats)
    path = Path(run_dir) / SPLITS_FILE
    record = open_record(path, corpus.data_hash)
    body = splits.to_dict()
    old = record["schemes"].get(key)
    if old is not None:
        if old["sha256"] != body["sha256"]:
            raise SplitsError(
                f"{path}: the recorded {key} folds (sha256 {old['sha256'][:12]}…) differ from "
                f"what the config gives now ({body['sha256'][:12]}…); a run never changes its "
                "splits: restore cv.n_folds/repeats/seed or use a new --run-dir"
            )
        return splits
    record["data_hash"] = corpus.data_hash
    record["schemes"][key] = body
    artifacts.write_json(path, record)
    return splits


def splits_hash(run_dir: Path, key: str = "prompt_holdout") -> str | None:
    path = Path(run_dir) / SPLITS_FILE
    if not path.exists():
        return None
    return artifacts.read_json(path)["schemes"].get(key, {}).get("sha256")


def partition_keys(run_dir: Path, scheme: str = "prompt_holdout") -> frozenset[str]:
    """The partitions (keys without fold labels) of every ``scheme`` fold set a run recorded."""
    path = Path(run_dir) / SPLITS_FILE
    if not path.exists():
        return frozenset()
    keys: set[str] = set()
    for name, body in artifacts.read_json(path)["schemes"].items():
        if name.split("@")[0] == scheme:
            keys.update(partition_key_of_folds(folds) for folds in body["repeats"])
    return frozenset(keys)
