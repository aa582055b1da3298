"""A corpus whose prompts differ in declared scale and in score distribution (issue 19, item 4).

moqwk's default mapping was chosen on ELLIPSE, whose prompts share one 1.0-5.0 scale. This module
builds the opposite case from any corpus on one shared scale: each prompt is given its own
declared rubric range (0-3 up to 0-60) and its own skew, by a documented monotone transform of
the shared score. Because the transform is monotone within a prompt, the essays' order inside a
prompt (what per-prompt QWK rewards) is the source's; only the scale and the distribution change.

The transform, per prompt with spec ``(min, max, step, lo, hi, gamma)``::

    u     = (score - source_min) / (source_max - source_min)      # the shared score in [0, 1]
    v     = lo + (hi - lo) * u ** gamma                           # skew, then the used band
    score = min + round(v * (max - min) / step) * step            # onto the declared scale

``gamma < 1`` bunches scores towards the top of the band, ``gamma > 1`` towards the bottom;
``[lo, hi]`` is the part of the declared range the prompt's essays use (a 0-60 prompt scored 30-60
has ``lo = 0.5``). Two sources use it:

- :func:`ellipse_scaled_frame`: the 8 largest ELLIPSE prompts (1,084 essays) with
  :data:`ELLIPSE_SPECS`; read from the ELLIPSE CSV, never written into the repository;
- :func:`synthetic_scaled_frame`: moqwk's built-in demo corpus (global 1.0-5.0 scale) with
  :data:`SYNTHETIC_SPECS`, small and fast, for tests.

:func:`write_scaled_corpus` writes ``corpus.csv`` and a ``config.yaml`` that declares every
prompt's range (``scale.kind: per_prompt``) and holds one prompt out per fold. Run it as
``python -m moqwk.data.scaled_corpus --out DIR [--ellipse CSV] [--score Overall]``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from moqwk.base.atomic import atomic_write_text
from moqwk.data.demo_corpus import DEMO_GLOBAL_SCALE, make_demo_corpus


@dataclass(frozen=True)
class PromptSpec:
    """One prompt's declared scale (``min``-``max`` by ``step``) and its skew (``lo``, ``hi``,
    ``gamma``: the used band of the range and the power applied to the shared score)."""

    min: float
    max: float
    step: float
    lo: float = 0.0
    hi: float = 1.0
    gamma: float = 1.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.lo < self.hi <= 1.0) or self.gamma <= 0 or self.max <= self.min:
            raise ValueError(f"bad prompt spec {self}")


#: The 8 largest ELLIPSE prompts, each with a declared rubric range and a skew. One prompt on
#: 0-60 with its scores bunched high (30-60, gamma 0.6), three on 0-3, two on 1-6, two on 0-10.
ELLIPSE_SPECS: dict[str, PromptSpec] = {
    "Distance learning": PromptSpec(0, 60, 1, lo=0.5, hi=1.0, gamma=0.6),
    "Success and failure": PromptSpec(0, 3, 1),
    "Career commitment": PromptSpec(0, 3, 1, gamma=1.5),
    "Being busy": PromptSpec(1, 6, 1),
    "Impact of technology": PromptSpec(1, 6, 1, lo=0.2, gamma=0.8),
    "Three-year high school program": PromptSpec(0, 10, 1, gamma=1.3),
    "Trying something beyond what you have mastered": PromptSpec(0, 10, 1, hi=0.8),
    "Individuality": PromptSpec(0, 3, 1, gamma=0.7),
}

#: The demo corpus's 10 prompts with the same kinds of scale and skew (P02 is the 0-60 one).
SYNTHETIC_SPECS: dict[str, PromptSpec] = {
    "P01": PromptSpec(0, 3, 1),
    "P02": PromptSpec(0, 60, 1, lo=0.5, hi=1.0, gamma=0.6),
    "P03": PromptSpec(1, 6, 1),
    "P04": PromptSpec(0, 10, 1, gamma=1.3),
    "P05": PromptSpec(0, 3, 1, gamma=1.5),
    "P06": PromptSpec(1, 6, 1, lo=0.2, gamma=0.8),
    "P07": PromptSpec(0, 10, 1, hi=0.8),
    "P08": PromptSpec(0, 3, 1, gamma=0.7),
    "P09": PromptSpec(0, 60, 1, lo=0.5, hi=1.0, gamma=0.6),
    "P10": PromptSpec(1, 6, 1),
}

ELLIPSE_SOURCE_SCALE: tuple[float, float] = (1.0, 5.0)
ELLIPSE_COLUMNS = {"id": "text_id_kaggle", "text": "full_text", "prompt": "prompt"}


def rescale(scores: np.ndarray, spec: PromptSpec, source: tuple[float, float]) -> np.ndarray:
    """The module docstring's transform: shared scores onto ``spec``'s declared scale."""
    u = np.clip((np.asarray(scores, dtype=float) - source[0]) / (source[1] - source[0]), 0, 1)
    v = spec.lo + (spec.hi - spec.lo) * u**spec.gamma
    levels = np.rint(v * (spec.max - spec.min) / spec.step)
    return np.clip(spec.min + levels * spec.step, spec.min, spec.max)


def scaled_frame(
    df: pd.DataFrame,
    specs: Mapping[str, PromptSpec],
    *,
    source: tuple[float, float],
    id_column: str = "essay_id",
    text_column: str = "text",
    prompt_column: str = "prompt",
    score_column: str = "score",
) -> pd.DataFrame:
    """The rows of ``df`` whose prompt has a spec, as ``essay_id, prompt, text, score,
    source_score`` with ``score`` on the prompt's declared scale. Raises ValueError naming a
    spec'd prompt that ``df`` lacks."""
    missing = sorted(set(specs) - set(df[prompt_column].astype(str)))
    if missing:
        raise ValueError(
            f"no essays for prompt(s) {', '.join(missing)} in column {prompt_column!r}"
        )
    rows = df[df[prompt_column].astype(str).isin(set(specs))]
    prompts = rows[prompt_column].astype(str).to_numpy()
    src = rows[score_column].to_numpy(dtype=float)
    score = np.empty(len(rows))
    for p, spec in specs.items():
        m = prompts == p
        score[m] = rescale(src[m], spec, source)
    return pd.DataFrame(
        {
            "essay_id": rows[id_column].astype(str).to_numpy(),
            "prompt": prompts,
            "text": rows[text_column].to_numpy(),
            "score": score,
            "source_score": src,
        }
    )


def ellipse_path() -> Path:
    """$MOQWK_ELLIPSE_CSV, else ``../shared/data/ellipse`` next to the repository (as in
    ``examples/ellipse.yaml`` and the tests)."""
    env = os.environ.get("MOQWK_ELLIPSE_CSV")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "data" / "ellipse" / "ELLIPSE_Final_github_test.csv"


def ellipse_scaled_frame(path: Path | None = None, score_column: str = "Overall") -> pd.DataFrame:
    """ELLIPSE's 8 largest prompts on :data:`ELLIPSE_SPECS` (``score_column`` is the source)."""
    df = pd.read_csv(path or ellipse_path(), dtype={ELLIPSE_COLUMNS["id"]: str})
    return scaled_frame(
        df,
        ELLIPSE_SPECS,
        source=ELLIPSE_SOURCE_SCALE,
        id_column=ELLIPSE_COLUMNS["id"],
        text_column=ELLIPSE_COLUMNS["text"],
        prompt_column=ELLIPSE_COLUMNS["prompt"],
        score_column=score_column,
    )


def synthetic_scaled_frame(seed: int = 0, n_essays: int = 720) -> pd.DataFrame:
    """The demo corpus (global scale) on :data:`SYNTHETIC_SPECS`: no files, deterministic."""
    demo = make_demo_corpus(seed, n_essays=n_essays)
    return scaled_frame(demo, SYNTHETIC_SPECS, source=DEMO_GLOBAL_SCALE[:2])


def scale_section(specs: Mapping[str, PromptSpec]) -> dict[str, Any]:
    """The config's ``scale`` section declaring every prompt's range."""
    return {
        "kind": "per_prompt",
        "per_prompt": {
            p: {"min": float(s.min), "max": float(s.max), "step": float(s.step)}
            for p, s in specs.items()
        },
    }


def scaled_config(
    corpus_file: str,
    specs: Mapping[str, PromptSpec],
    *,
    mapping: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A leave-one-prompt-out config for a written scaled corpus (``cv.n_folds`` = prompts).
    ``mapping=None`` leaves ``mapping.method`` at moqwk's default (the default pipeline)."""
    cfg: dict[str, Any] = {
        "data": {
            "path": corpus_file,
            "id_column": "essay_id",
            "text_column": "text",
            "prompt_column": "prompt",
            "score_column": "score",
        },
        "scale": scale_section(specs),
        "cv": {"n_folds": len(specs), "repeats": 1, "seed": 42, "min_prompt_n": 10},
        "model": {"nthread": 1},
    }
    if mapping is not None:
        cfg["mapping"] = {"method": mapping}
    for key, value in (extra or {}).items():
        cfg[key] = value
    return cfg


def write_scaled_corpus(
    out_dir: Path,
    frame: pd.DataFrame,
    specs: Mapping[str, PromptSpec],
    *,
    mapping: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """``out_dir/corpus.csv`` and ``out_dir/config.yaml``; returns the config's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cols = ["essay_id", "prompt", "text", "score"]
    atomic_write_text(out_dir / "corpus.csv", frame[cols].to_csv(index=False))
    cfg = scaled_config("corpus.csv", specs, mapping=mapping, extra=extra)
    config_path = out_dir / "config.yaml"
    atomic_write_text(config_path, yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    return config_path


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m moqwk.data.scaled_corpus", description=__doc__)
    ap.add_argument("--out", type=Path, required=True, help="directory for corpus.csv, config.yaml")
    ap.add_argument("--ellipse", type=Path, nargs="?", const=ellipse_path(), default=None,
                    help="build from ELLIPSE (default path: $MOQWK_ELLIPSE_CSV); else synthetic")
    ap.add_argument("--score", default="Overall", help="ELLIPSE score column (default Overall)")
    ap.add_argument("--mapping", default=None, help="mapping.method (default: moqwk's)")
    args = ap.parse_args(argv)
    if args.ellipse is not None:
        frame, specs = ellipse_scaled_frame(args.ellipse, args.score), ELLIPSE_SPECS
    else:
        frame, specs = synthetic_scaled_frame(), SYNTHETIC_SPECS
    path = write_scaled_corpus(args.out, frame, specs, mapping=args.mapping)
    print(f"wrote {len(frame)} essays, {len(specs)} prompts: {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
