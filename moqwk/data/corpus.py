"""The corpus: essays with an id, a prompt, a text and a human score, validated on load.

Every validation error names the column, the first offending ids and the fix.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from moqwk.config import Config, DataConfig, ScaleConfig
from moqwk.core.scale import EssayScale, Scale, ScoreScales
from moqwk.errors import DataError


@dataclass(frozen=True, eq=False)
class Corpus:
    """Validated essays, row-aligned arrays; ``prompt_codes`` index ``prompt_names``."""

    ids: np.ndarray
    prompts: np.ndarray
    texts: tuple[str, ...]
    scores: np.ndarray
    scales: ScoreScales
    source: str
    #: A subset's :attr:`data_hash` is the hash of the data it was cut from (the development
    #: essays of a run with ``cv.holdout`` name the data file the run was made with).
    parent_hash: str | None = None

    def subset(self, mask: np.ndarray) -> Corpus:
        """The essays where ``mask`` is true, in order, with the same scales and data hash."""
        m = np.asarray(mask, dtype=bool)
        return Corpus(self.ids[m], self.prompts[m],
                      tuple(t for t, keep in zip(self.texts, m, strict=True) if keep),
                      self.scores[m], self.scales, self.source, parent_hash=self.data_hash)

    @cached_property
    def prompt_names(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.prompts.tolist())))

    @cached_property
    def prompt_codes(self) -> np.ndarray:
        lookup = {p: i for i, p in enumerate(self.prompt_names)}
        return np.array([lookup[p] for p in self.prompts], dtype=np.int64)

    @cached_property
    def essay_scale(self) -> EssayScale:
        return EssayScale.from_scales(self.scales, self.prompts)

    @cached_property
    def y_norm(self) -> np.ndarray:
        return self.essay_scale.normalise(self.scores)

    @cached_property
    def data_hash(self) -> str:
        """sha256 over ids, prompts, texts and scores (what the results depend on); a
        :meth:`subset`'s is its parent's."""
        if self.parent_hash is not None:
            return self.parent_hash
        h = hashlib.sha256()
        for i, p, t, s in zip(self.ids, self.prompts, self.texts, self.scores, strict=True):
            # float(): repr(np.float64) differs between numpy 1 ("3.0") and 2 ("np.float64(3.0)")
            h.update(f"{i}\x1f{p}\x1f{float(s)!r}\x1f".encode())
            h.update(t.encode())
            h.update(b"\x1e")
        return h.hexdigest()

    def __len__(self) -> int:
        return len(self.ids)


def _first(ids: pd.Series, mask: pd.Series | np.ndarray, k: int = 5) -> str:
    bad = ids[np.asarray(mask)].astype(str).tolist()
    more = f" (and {len(bad) - k} more)" if len(bad) > k else ""
    return ", ".join(bad[:k]) + more


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a frame; a clear error when it cannot be read."""
    if not path.exists():
        raise DataError(f"data file {path} not found; check data.path in the config")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as e:  # noqa: BLE001 - one clear line for any reader failure
        raise DataError(f"could not read {path}: {e}") from None


#: A prompt with at least this many essays shows its own score range in ``infer_scale``...
_SCALE_EVIDENCE_N = 20
#: ...and on a shared scale spans at least this share of the pooled range (ELLIPSE: >= 0.375).
_MIN_SHARED_SPAN = 0.25


def _duplicates(ids: pd.Series, k: int = 5) -> str:
    """Each repeated id once, with the file lines (header = line 1) it appears on."""
    lines = pd.Series(np.arange(len(ids)) + 2, index=ids.index)
    groups = lines[ids.duplicated(keep=False)].groupby(ids[ids.duplicated(keep=False)],
                                                       sort=False)
    parts = [f"{i} (lines {', '.join(map(str, g.tolist()))})" for i, g in groups]
    more = f" (and {len(parts) - k} more)" if len(parts) > k else ""
    return ", ".join(parts[:k]) + more


def check_essays(df: pd.DataFrame, *, id_column: str, text_column: str, prompt_column: str
                 ) -> tuple[pd.Series, pd.Series, pd.Series]:
    """The ids (as text), texts and prompts (as text) of ``df``, or one DataError naming the
    column, the rows or ids at fault, and the fix. Shared by the corpus loader and ``predict``."""
    ids = df[id_column]
    empty_id = ids.isna().to_numpy() | (ids.astype(str).str.strip() == "").to_numpy()
    if empty_id.any():
        lines = ", ".join(map(str, np.flatnonzero(empty_id)[:5] + 2))
        raise DataError(f"column {id_column!r}: empty ids in rows {lines} "
                        "(file line numbers); every essay needs an id")
    ids = ids.astype(str)
    if ids.duplicated().any():
        raise DataError(f"column {id_column!r}: duplicate ids {_duplicates(ids)}; "
                        "ids must be unique: drop or rename the repeated essays")
    texts = df[text_column]
    not_text = texts.map(lambda t: not isinstance(t, str))
    empty = not_text | texts.map(lambda t: isinstance(t, str) and not t.strip())
    if empty.any():
        raise DataError(f"column {text_column!r}: empty or non-text essays for ids "
                        f"{_first(ids, empty)}; remove them or fill in the text")
    prompts = df[prompt_column]
    missing = prompts.isna() | (prompts.astype(str).str.strip() == "")
    if missing.any():
        raise DataError(f"column {prompt_column!r}: missing prompt for ids "
                        f"{_first(ids, missing)}; every essay needs a prompt")
    return ids, texts, prompts.astype(str)


def thin_step(scores: np.ndarray, step: float, *, max_share: float = 0.005) -> float | None:
    """A coarser step that all but a handful of scores sit on, or None.

    A scale inferred from data takes the finest step any score shows: one 3.25 among scores in
    halves makes the step 0.25. When at most ``max(2, max_share * n)`` scores are off a step
    twice (or five times) as coarse, that coarser step is probably the rubric's.
    """
    scores = np.asarray(scores, dtype=float)
    allowed = max(2, int(max_share * len(scores)))
    for factor in (2, 5):
        coarse = step * factor
        base = scores.min()
        off = np.abs((scores - base) / coarse - np.rint((scores - base) / coarse)) > 1e-6
        if 0 < off.sum() <= allowed:
            return coarse
    return None


def infer_scale(prompts: pd.Series, scores: pd.Series) -> ScoreScales:
    """Global when all prompts share one observed range and step, per prompt otherwise."""

    def observed(values: np.ndarray) -> Scale:
        levels = np.unique(values)
        if len(levels) < 2:
            return Scale(float(levels[0]), float(levels[0]) + 1.0, 1.0)
        gaps = np.diff(levels)
        step = float(np.round(gaps.min(), 9))
        # the step is the largest common divisor of the gaps, up to rounding
        for candidate in (step, step / 2, step / 4, step / 5, step / 10):
            if np.allclose(np.round(gaps / candidate), gaps / candidate, atol=1e-6):
                step = candidate
                break
        return Scale(float(levels[0]), float(levels[-1]), step)

    groups = scores.groupby(prompts)
    per = {str(p): observed(g.to_numpy(float)) for p, g in groups}
    sizes = {str(p): len(g) for p, g in groups}
    shapes = {(s.min, s.max, s.step) for s in per.values()}
    if len(shapes) == 1:
        return ScoreScales(global_scale=next(iter(per.values())))
    pooled = observed(scores.to_numpy(float))
    width = pooled.max - pooled.min

    def aligned(s: Scale) -> bool:
        k = (s.min - pooled.min) / pooled.step
        return abs(k - round(k)) < 1e-6

    # Prompts differ only because some levels are unobserved in small prompts: every prompt sits
    # on the pooled grid, one spans most of the pooled range, and none with enough essays to show
    # its range (_SCALE_EVIDENCE_N) spans only a small part of it (0-3 next to 0-60 is two scales).
    if all(aligned(s) for s in per.values()) and \
            max(s.max - s.min for s in per.values()) >= 0.75 * width and \
            all(s.max - s.min >= _MIN_SHARED_SPAN * width
                for p, s in per.items() if sizes[p] >= _SCALE_EVIDENCE_N):
        return ScoreScales(global_scale=pooled)
    return ScoreScales(per_prompt=per)


#: Why ``scale.kind: infer`` is warned about on every load (see docs/explanation/method.md).
INFER_LEAK = (
    "scale.kind: infer reads the score range off the labels. Under prompt_holdout that is a "
    "label leak: a held-out prompt's labels help set its range, which maps predictions back to "
    "scores, clips them and decides the tails. Declare the rubric's range: scale.kind: global "
    "with min, max and step (or per_prompt with each prompt's declared range)")


def _scales_from_config(sc: ScaleConfig, prompts: pd.Series, scores: pd.Series) -> ScoreScales:
    if sc.kind == "global":
        return ScoreScales(global_scale=Scale(sc.min, sc.max, sc.step))  # type: ignore[arg-type]
    if sc.kind == "per_prompt":
        per = {str(p): Scale(float(v["min"]), float(v["max"]), float(v["step"]))
               for p, v in sc.per_prompt.items()}
        missing = sorted(set(prompts.astype(str)) - set(per))
        if missing:
            raise DataError(
                f"scale.per_prompt: no scale for prompt(s) {', '.join(missing[:5])}; "
                "add them to the config or use scale.kind: infer"
            )
        return ScoreScales(per_prompt=per)
    warnings.warn(INFER_LEAK, UserWarning, stacklevel=3)
    return infer_scale(prompts, scores)


def validate_frame(df: pd.DataFrame, dc: DataConfig, sc: ScaleConfig, *, n_folds: int,
                   min_prompt_n: int, source: str) -> Corpus:
    """Check a raw frame column by column and build a :class:`Corpus`."""
    cols = {"id": dc.id_column, "text": dc.text_column, "prompt": dc.prompt_column,
            "score": dc.score_column}
    for role, col in cols.items():
        if col not in df.columns:
            shown = ", ".join(map(str, df.columns[:12]))
            raise DataError(
                f"column {col!r} ({role}) not found in {source}; columns are: {shown}; "
                f"set data.{role}_column in the config"
            )
    if len(df) == 0:
        raise DataError(f"{source} has no essays (a header but no rows); check data.path")
    ids, texts, prompts = check_essays(df, id_column=dc.id_column, text_column=dc.text_column,
                                       prompt_column=dc.prompt_column)
    raw_scores = df[dc.score_column]
    scores = pd.to_numeric(raw_scores, errors="coerce")
    bad = scores.isna() | ~np.isfinite(scores.fillna(0))
    if bad.any():
        raise DataError(f"column {dc.score_column!r}: NaN or non-numeric scores for ids "
                        f"{_first(ids, bad)}; drop those essays or fix their scores")
    try:
        scales = _scales_from_config(sc, prompts, scores)
    except ValueError as e:
        raise DataError(f"column {dc.score_column!r}: cannot infer a scale ({e}); "
                        "set scale.kind: global with min, max and step") from None
    es = EssayScale.from_scales(scales, prompts.to_numpy())
    y = scores.to_numpy(float)
    off_range = (y < es.lo - 1e-9) | (y > es.hi + 1e-9)
    steps = (y - es.lo) / es.step
    off_step = np.abs(steps - np.rint(steps)) > 1e-6
    if off_range.any() or off_step.any():
        what = "off the scale" if off_range.any() else "off the scale's step"
        mask = off_range if off_range.any() else off_step
        scale_txt = (f"{scales.global_scale.min:g} to {scales.global_scale.max:g} in steps of "
                     f"{scales.global_scale.step:g}" if scales.global_scale
                     else "its prompt's scale")
        raise DataError(f"column {dc.score_column!r}: scores {what} ({scale_txt}) for ids "
                        f"{_first(ids, mask)}; fix the scores or the scale section of the config")
    n_prompts = prompts.nunique()
    if n_prompts < 2:  # cv.n_folds >= 2: "lower cv.n_folds to 2" would not help
        raise DataError(f"column {dc.prompt_column!r}: only {n_prompts} prompt; prompt_holdout "
                        "holds out whole prompts and needs at least 2: add prompts, or check "
                        "data.prompt_column")
    if n_prompts < n_folds:
        raise DataError(f"column {dc.prompt_column!r}: {n_prompts} prompts but cv.n_folds is "
                        f"{n_folds}; prompt_holdout needs at least one prompt per fold: "
                        f"lower cv.n_folds to {n_prompts} or add prompts")
    small = prompts.value_counts()
    small = small[small < min_prompt_n]
    if len(small):
        warnings.warn(
            f"{len(small)} prompt(s) have fewer than min_prompt_n={min_prompt_n} essays "
            f"({', '.join(map(str, small.index[:5]))}): scored, but left out of the "
            "worst-prompt objective", UserWarning, stacklevel=2)
    return Corpus(
        ids=ids.to_numpy(dtype=object),
        prompts=prompts.to_numpy(dtype=object),
        texts=tuple(texts.tolist()),
        scores=y,
        scales=scales,
        source=source,
    )


def load_corpus(config: Config) -> Corpus:
    """The corpus a config names: a CSV/Parquet file, or the built-in demo corpus."""
    dc = config.data
    if dc.demo and dc.path is None:
        from moqwk.data.demo_corpus import make_demo_corpus

        df = make_demo_corpus(dc.demo_seed, per_prompt_scales=dc.demo_per_prompt_scales)
        dc = DataConfig(path=None, id_column="essay_id", text_column="text",
                        prompt_column="prompt", score_column="score", demo=True)
        source = f"demo corpus (seed {config.data.demo_seed})"
    else:
        assert dc.path is not None
        df = read_table(dc.path)
        source = str(dc.path)
    return validate_frame(df, dc, config.scale, n_folds=config.cv.n_folds,
                          min_prompt_n=config.cv.min_prompt_n, source=source)
