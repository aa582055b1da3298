"""``moqwk init``: a commented, runnable starter config with the scale inferred and stated."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from moqwk.config import (
    DEFAULT_BASELINE_PARAMS,
    CVConfig,
    MappingConfig,
    SearchConfig,
    TailConfig,
)
from moqwk.core.mapping import METHODS
from moqwk.core.scale import ScoreScales
from moqwk.data.corpus import infer_scale, read_table, thin_step
from moqwk.errors import DataError
from moqwk.features.families.ngram import CHAR_DEFAULTS, WORD_DEFAULTS


def _scale_yaml(scales: ScoreScales) -> list[str]:
    if scales.global_scale is not None:
        s = scales.global_scale
        return [
            "# Inferred: every prompt shares one scale, so it is global.",
            f"# min and max are the lowest and highest scores seen ({s.min:g} and {s.max:g}).",
            "# If the rubric allows scores no essay received, widen them: QWK and the tails",
            "# use this range.",
            "scale:",
            "  kind: global",
            f"  min: {s.min:g}",
            f"  max: {s.max:g}",
            f"  step: {s.step:g}",
        ]
    lines = [
        "# Inferred: prompts are scored on different ranges, so each has its own scale.",
        "# Models train on a normalised target; predictions map back to each prompt's scale.",
        "# Each min and max is the lowest and highest score seen for that prompt; widen any the",
        "# rubric allows beyond them: QWK and the tails use these ranges.",
        "# LEAK: a range read off a prompt's own scores is a label leak under prompt_holdout",
        "# (the held-out prompt's labels set its range, its clipping and its tails). Replace",
        "# each range by the one the prompt's rubric declares.",
        "scale:",
        "  kind: per_prompt",
        "  per_prompt:",
    ]
    for p, s in sorted(scales.per_prompt.items()):
        lines.append(f"    {p!r}: {{min: {s.min:g}, max: {s.max:g}, step: {s.step:g}}}")
    return lines


def _thin_step_note(scales: ScoreScales, scores: np.ndarray, ids: pd.Series) -> str | None:
    """A warning when the inferred global step rests on a handful of scores."""
    s = scales.global_scale
    if s is None:
        return None
    coarse = thin_step(scores, s.step)
    if coarse is None:
        return None
    off = np.abs((scores - s.min) / coarse - np.rint((scores - s.min) / coarse)) > 1e-6
    shown = ", ".join(f"{i}: {v:g}" for i, v in zip(ids[off][:3], scores[off][:3], strict=True))
    return (f"the inferred step {s.step:g} rests on {int(off.sum())} score(s) ({shown}); every "
            f"other score is a multiple of {coarse:g}. If the rubric's step is {coarse:g}, fix "
            f"those scores and set step: {coarse:g}")


def starter_config(*, data: Path, id_column: str, text_column: str, prompt_column: str,
                   score_column: str, out: Path | None = None) -> str:
    """The YAML text of a starter config for a corpus file."""
    frame = read_table(data)
    for role, col in (("id", id_column), ("text", text_column), ("prompt", prompt_column),
                      ("score", score_column)):
        if col not in frame.columns:
            raise DataError(f"column {col!r} ({role}) not found in {data}; columns are: "
                            f"{', '.join(map(str, frame.columns[:12]))}; pass --{role}-column")
    if len(frame) == 0:
        raise DataError(f"{data} has no essays (a header but no rows)")
    scores = pd.to_numeric(frame[score_column], errors="coerce")
    if scores.isna().any():
        bad = frame.loc[scores.isna(), id_column].astype(str).tolist()[:5]
        raise DataError(f"column {score_column!r}: NaN or non-numeric scores for ids "
                        f"{', '.join(bad)}; drop those essays or fix their scores")
    try:
        scales = infer_scale(frame[prompt_column].astype(str), scores)
    except ValueError as e:  # as in corpus.validate_frame: one DataError line, not a crash
        raise DataError(f"column {score_column!r}: cannot infer a scale ({e}); write the scale "
                        "section of the config by hand (scale.kind: global with min, max and "
                        "step)") from None
    step_note = _thin_step_note(scales, scores.to_numpy(float), frame[id_column].astype(str))
    if step_note:
        warnings.warn(step_note, UserWarning, stacklevel=2)
    n_prompts = frame[prompt_column].nunique()
    # Relative to the config file when it is written; printed to stdout (and perhaps redirected
    # anywhere), the config cannot know where it will live, so the path is absolute.
    where = (Path(os.path.relpath(data.resolve(), out.resolve().parent)) if out is not None
             else data.resolve())
    baseline = "\n".join(f"    {k}: {v}" for k, v in DEFAULT_BASELINE_PARAMS.items())
    # the declared defaults, written out so the user sees and can edit them
    cv, tails, mapping, search = CVConfig(), TailConfig(), MappingConfig(), SearchConfig()
    lines = [
        f"# moqwk config for {data.name}: {len(frame)} essays, {n_prompts} prompts.",
        "# Run: moqwk cv --config THIS_FILE --run-dir runs/baseline",
        "data:",
        f"  path: {str(where)!r}   # relative paths are relative to this file; "
        "${VAR:-default} expands",
        f"  id_column: {id_column!r}",
        f"  text_column: {text_column!r}",
        f"  prompt_column: {prompt_column!r}",
        f"  score_column: {score_column!r}",
        "",
        *([f"# WARNING: {step_note}"] if step_note else []),
        *_scale_yaml(scales),
        "",
        "features:        # fitted on each fold's training essays only, cached by content hash",
        "  handcrafted: true",
        *(f"  {name}: {{ngram_range: {list(d.ngram_range)}, min_df: {d.min_df}, "
          f"svd_components: {d.svd_components}}}"
          for name, d in (("word", WORD_DEFAULTS), ("char", CHAR_DEFAULTS))),
        "",
        "cv:",
        f"  n_folds: {max(2, min(5, n_prompts))}       # prompt_holdout: whole prompts per fold",
        f"  repeats: {cv.repeats}       # fold assignments; worst-prompt QWK is noisy, more "
        "repeats steady it",
        f"  seed: {cv.seed}",
        f"  min_prompt_n: {cv.min_prompt_n} # smaller prompts are scored but not in the "
        "worst-prompt objective",
        "",
        "tails:            # normalised units: 0 is the bottom of a scale, 1 the top",
        f"  low_band: {tails.low_band}  # low tail: true score in the bottom quarter",
        f"  high_band: {tails.high_band} # high tail: true score in the top quarter",
        f"  tolerance: {tails.tolerance} # guardrail: a tail MAE may exceed the baseline's by "
        "this much",
        "",
        "mapping:          # raw prediction -> score; fitted on training essays only",
        f"  method: {mapping.method} # or "
        f"{', '.join(m for m in METHODS if m != mapping.method)}",
        "",
        "baseline:        # trial 0 and the guardrails' reference; keeps mapping round",
        "  params:",
        baseline,
        "",
        "search:",
        f"  n_trials: {search.n_trials}",
        f"  sampler: {search.sampler}",
        "",
    ]
    return "\n".join(lines)
