"""Declared deployment batches for transductive score mappings.

A transductive mapping (``prompt_center``, ``prompt_standardize``) maps each essay with
statistics of the other essays of its prompt *in the batch being scored*. How large that batch
is in use is part of what a reported number means, so it is declared:
``mapping.params.batch`` is ``"prompt"`` (a prompt's whole cohort is scored at once) or an
integer B (essays arrive B at a time per prompt).

CV scores held-out essays the way they will be scored: :func:`batch_plan` splits each prompt's
held-out essays, in a seeded random order, into batches of exactly B. The last ``r < B`` essays
are scored in a batch with the ``B - r`` essays before them, which serve only as context (their
scores come from their own batch), so every essay is mapped with the statistics of exactly B
essays. A prompt with fewer than B held-out essays is one short batch; the method maps it with
its fallback (a batch below the declared size takes the fallback, in CV as in ``predict``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from moqwk.core.mapping import FittedMapping, MappedScores, apply_mapping

__all__ = ["PROMPT", "apply_in_batches", "batch_of", "batch_plan", "batch_seed",
           "describe_batch"]

#: ``mapping.params.batch`` meaning "a prompt's whole cohort is scored at once".
PROMPT = "prompt"


def batch_of(fitted_or_params: Any) -> int | str | None:
    """The declared batch of a fitted mapping (or a params/numbers mapping): ``"prompt"``, an
    integer, or None for a mapping that is not transductive. A transductive record written
    before batches were declared was scored with whole prompts: ``"prompt"``."""
    if isinstance(fitted_or_params, FittedMapping):
        if not fitted_or_params.transductive:
            return None
        return fitted_or_params.numbers.get("batch", PROMPT)
    return fitted_or_params.get("batch", PROMPT)


def describe_batch(batch: int | str | None) -> str:
    """The batch in words, for every number reported for a transductive pipeline."""
    if batch is None:
        return "not transductive (each essay is scored on its own)"
    if batch == PROMPT:
        return "batch = prompt (each prompt's whole cohort scored at once)"
    return f"batch = {batch} (each prompt's essays scored {batch} at a time)"


def batch_seed(seed: int, repeat: int, fold: int) -> int:
    """The seed of one outer fold's batch order: from the fold seed, the repeat and the fold."""
    return int(np.random.default_rng([int(seed), int(repeat), int(fold), 31]).integers(2**31))


def batch_plan(prompt_codes: np.ndarray, batch: int | str,
               seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batches of positions: ``(scored, members)`` pairs, ``scored`` a subset of ``members``.

    Every position is scored exactly once. With ``batch="prompt"`` each prompt is one batch.
    """
    codes = np.asarray(prompt_codes)
    rng = np.random.default_rng(int(seed))
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for code in np.unique(codes):
        pos = np.flatnonzero(codes == code)
        if batch == PROMPT or len(pos) <= int(batch):
            out.append((pos, pos))
            continue
        b = int(batch)
        perm = rng.permutation(pos)
        full = len(perm) // b
        for i in range(full):
            chunk = perm[i * b:(i + 1) * b]
            out.append((chunk, chunk))
        rest = len(perm) - full * b
        if rest:
            out.append((perm[-rest:], perm[-b:]))
    return out


def apply_in_batches(fitted: FittedMapping, *, pred: np.ndarray, prompt_codes: np.ndarray,
                     lo: np.ndarray, hi: np.ndarray, step: np.ndarray,
                     seed: int) -> MappedScores:
    """:func:`apply_mapping` as the declared batch says: one call for a mapping that is not
    transductive or declares ``batch="prompt"``, else one call per batch of :func:`batch_plan`.
    ``batches`` then has one row per prompt and batch (``batch`` numbers them)."""
    batch = batch_of(fitted)
    pred, codes = np.asarray(pred, dtype=float), np.asarray(prompt_codes)
    lo, hi, step = (np.broadcast_to(np.asarray(a, dtype=float), pred.shape)
                    for a in (lo, hi, step))
    if batch is None or batch == PROMPT:
        return apply_mapping(fitted, pred=pred, prompt_codes=codes, lo=lo, hi=hi, step=step)
    n = len(pred)
    y_pred, z, fallback = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, dtype=bool)
    tables: list[pd.DataFrame] = []
    for i, (scored, members) in enumerate(batch_plan(codes, batch, seed)):
        m = apply_mapping(fitted, pred=pred[members], prompt_codes=codes[members],
                          lo=lo[members], hi=hi[members], step=step[members])
        at = np.isin(members, scored)
        y_pred[members[at]] = m.y_pred[at]
        z[members[at]] = m.z[at]
        fallback[members[at]] = m.fallback[at]
        if m.batches is not None:
            tables.append(m.batches.assign(batch=i, scored=int(at.sum())))
    return MappedScores(y_pred=y_pred, z=z, fallback=fallback,
                        batches=pd.concat(tables, ignore_index=True) if tables else None)


def batch_sizes(plan: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[int]:
    """The member count of each batch of a plan (for records and tests)."""
    return [len(members) for _, members in plan]
