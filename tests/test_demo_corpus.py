"""Tests for the built-in demo corpus generator."""

from __future__ import annotations

import re
from functools import cache

import numpy as np
import pandas as pd
import pytest

from moqwk.data.demo_corpus import DEMO_GLOBAL_SCALE, DEMO_PER_PROMPT_SCALES, make_demo_corpus


@cache
def _make(seed: int, per_prompt_scales: bool = False) -> pd.DataFrame:
    """Generated once per module run; tests must not modify the frame."""
    return make_demo_corpus(seed, per_prompt_scales=per_prompt_scales)


@pytest.fixture
def corpus() -> pd.DataFrame:
    return _make(0)


@pytest.fixture
def corpus_pp() -> pd.DataFrame:
    return _make(0, per_prompt_scales=True)


def _on_step(score: pd.Series, lo: float, hi: float, step: float) -> bool:
    k = (score - lo) / step
    return bool(score.between(lo, hi).all() and np.allclose(k, k.round(), atol=1e-9))


def test_same_seed_gives_identical_frame(corpus: pd.DataFrame) -> None:
    again = make_demo_corpus(0)
    pd.testing.assert_frame_equal(corpus, again)
    assert corpus.to_csv(index=False) == again.to_csv(index=False)


def test_other_seed_differs(corpus: pd.DataFrame) -> None:
    other = _make(1)
    assert len(other) == len(corpus)
    assert (other["text"] != corpus["text"]).mean() > 0.9
    assert not other["score"].equals(corpus["score"])


def test_columns_and_dtypes(corpus: pd.DataFrame) -> None:
    assert list(corpus.columns) == ["essay_id", "prompt", "text", "score"]
    assert len(corpus) == 720
    for col in ("essay_id", "prompt", "text"):
        assert pd.api.types.is_string_dtype(corpus[col])
        assert all(isinstance(v, str) for v in corpus[col])
    assert corpus["score"].dtype == np.float64
    assert corpus["score"].notna().all()


def test_ids_unique_and_formatted(corpus: pd.DataFrame) -> None:
    assert corpus["essay_id"].is_unique
    assert corpus["essay_id"].iloc[0] == "demo-0001"
    assert corpus["essay_id"].str.fullmatch(r"demo-\d{4}").all()


def test_prompts_uneven_with_one_small(corpus: pd.DataFrame) -> None:
    sizes = corpus["prompt"].value_counts()
    assert len(sizes) >= 8
    assert set(sizes.index) == set(DEMO_PER_PROMPT_SCALES)
    assert sizes.min() < 20
    assert (sizes >= 20).sum() >= len(sizes) - 1
    assert sizes.max() >= 100
    assert sizes.max() >= 5 * sizes.min()


def test_n_essays_is_respected() -> None:
    small = make_demo_corpus(3, n_essays=100)
    assert len(small) == 100
    assert small["prompt"].nunique() == 10
    assert small["essay_id"].is_unique
    with pytest.raises(ValueError):
        make_demo_corpus(0, n_essays=5)


def test_texts_look_like_essays(corpus: pd.DataFrame) -> None:
    texts = corpus["text"]
    assert (texts.str.strip().str.len() > 0).all()
    n_words = texts.str.split().str.len()
    assert n_words.between(80, 450).all()
    assert n_words.std() > 40  # lengths vary
    assert texts.str.contains("\n\n").all()  # several paragraphs
    assert not texts.str.contains(r"\n\n\s*\n").any()  # no empty paragraph
    assert texts.str.fullmatch(r"[A-Za-z].*[.?]", flags=re.S).all()
    assert texts.str.match(r"[A-Z]").mean() > 0.7
    assert (texts.str.count(r"[.?]") >= 4).all()


def test_prompt_vocabulary_differs(corpus: pd.DataFrame) -> None:
    def vocab(prompt: str) -> set[str]:
        words = corpus.loc[corpus["prompt"] == prompt, "text"].str.lower().str.findall(r"[a-z]+")
        return {w for ws in words for w in ws}

    a, b = vocab("P01"), vocab("P02")
    assert "phone" in a and "phone" not in b
    assert "library" in b and "library" not in a
    assert {"the", "and", "people"} <= a & b  # shared vocabulary


def test_global_scores_on_scale(corpus: pd.DataFrame) -> None:
    assert DEMO_GLOBAL_SCALE == (1.0, 5.0, 0.5)
    assert _on_step(corpus["score"], *DEMO_GLOBAL_SCALE)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_global_thin_tails(seed: int) -> None:
    score = _make(seed)["score"]
    assert score.between(2.5, 3.5).mean() > 0.6
    assert (score <= 2.0).sum() >= 25
    assert (score >= 4.0).sum() >= 25
    assert (score <= 1.5).mean() < 0.06
    assert (score >= 4.5).mean() < 0.06
    for level in np.arange(1.5, 4.51, 0.5):
        assert (score == level).any(), level


def test_per_prompt_scores_on_each_scale(corpus_pp: pd.DataFrame) -> None:
    assert len(DEMO_PER_PROMPT_SCALES) >= 8
    assert len({hi - lo for lo, hi, _ in DEMO_PER_PROMPT_SCALES.values()}) >= 5  # varied ranges
    for prompt, group in corpus_pp.groupby("prompt"):
        lo, hi, step = DEMO_PER_PROMPT_SCALES[str(prompt)]
        assert _on_step(group["score"], lo, hi, step), prompt
        if len(group) >= 50:
            assert group["score"].nunique() >= min(4, round((hi - lo) / step) + 1), prompt


def test_per_prompt_mode_keeps_texts(corpus: pd.DataFrame, corpus_pp: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(corpus.drop(columns="score"), corpus_pp.drop(columns="score"))
    assert not corpus["score"].equals(corpus_pp["score"])


def test_score_tracks_text_length(corpus: pd.DataFrame, corpus_pp: pd.DataFrame) -> None:
    n_words = corpus["text"].str.split().str.len()
    assert corpus["score"].rank().corr(n_words.rank()) > 0.3
    # Per-prompt scores, normalised to [0, 1], track length too.
    lo = corpus_pp["prompt"].map(lambda p: DEMO_PER_PROMPT_SCALES[p][0])
    hi = corpus_pp["prompt"].map(lambda p: DEMO_PER_PROMPT_SCALES[p][1])
    norm = (corpus_pp["score"] - lo) / (hi - lo)
    assert norm.rank().corr(n_words.rank()) > 0.3


def test_score_is_noisy_not_a_function_of_length(corpus: pd.DataFrame) -> None:
    n_words = corpus["text"].str.split().str.len()
    assert corpus["score"].rank().corr(n_words.rank()) < 0.9
