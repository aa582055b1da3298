"""The tie band and paired SEs: duplicates never collapse the band; ties on fresh folds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from moqwk.core.noise import (
    bootstrap_objectives,
    distinct_from,
    paired_differences,
    tie_band,
)
from moqwk.core.pooled import pool
from moqwk.core.selection import bootstrap_worst_qwk_diff_se, bootstrap_worst_qwk_replicates


def _data(seed: int = 0, n: int = 500, n_prompts: int = 8, repeats: int = 1):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, n_prompts, n)
    a = np.clip(np.rint(rng.normal(4, 1.6, n)), 0, 8).astype(int)

    def config(noise_seed: int, noise: float = 1.0) -> np.ndarray:
        r = np.random.default_rng(noise_seed)
        return np.clip(np.rint(a + r.normal(0, noise, (repeats, n))), 0, 8).astype(int)

    return codes, a, config


def _pool(codes, a, preds, n_prompts=8):
    return pool(prompt_codes=codes, true_level=a, preds=np.stack(preds),
                n_levels_by_prompt=np.full(n_prompts, 9), eligible=np.ones(n_prompts, bool),
                low_tail=a <= 2, high_tail=a >= 6)


def test_worst_prompt_replicates_equal_the_existing_bootstrap_for_a_seed():
    codes, a, config = _data(1, repeats=2)
    preds = [config(10), config(11)]
    mine = bootstrap_objectives(_pool(codes, a, preds), n_boot=64, seed=5)[:, :, 0]
    old = bootstrap_worst_qwk_replicates(prompt_codes=codes, true_level=a, preds=preds,
                                         n_levels_by_prompt=np.full(8, 9),
                                         eligible=np.ones(8, bool), n_boot=64, seed=5)
    np.testing.assert_allclose(mine, old.T, atol=1e-12)


def test_tie_band_of_a_duplicate_top_pair_is_not_zero():
    """Today's estimator (SE of the top two's difference) is exactly 0 for a duplicate pair."""
    codes, a, config = _data(2)
    top, others = config(20), [config(s) for s in (21, 22, 23)]
    pl = _pool(codes, a, [top, top.copy(), *others])
    today = bootstrap_worst_qwk_diff_se(prompt_codes=codes, true_level=a, pred_a=top,
                                        pred_b=top.copy(), n_levels_by_prompt=np.full(8, 9),
                                        eligible=np.ones(8, bool), n_boot=100, seed=0)
    assert today == 0.0
    band = tie_band(pl, order=np.arange(5), n_boot=100, seed=0)
    assert band.value > 0.01
    assert band.pairs == (2, 3, 4)  # the duplicate (config 1) is skipped
    assert band.method == "paired_median"


def test_clones_among_the_competitors_count_once():
    codes, a, config = _data(9)
    top, x, y, z = config(90), config(91), config(92), config(93)
    pl = _pool(codes, a, [top, x, x.copy(), x.copy(), y, z])
    band = tie_band(pl, order=np.arange(6), k=3, n_boot=50, seed=0)
    assert band.pairs == (1, 4, 5)


def test_tie_band_with_only_duplicates_falls_back_to_independent_noise():
    codes, a, config = _data(3)
    top = config(30)
    pl = _pool(codes, a, [top, top.copy(), top.copy()])
    band = tie_band(pl, order=np.array([0, 1, 2]), n_boot=100, seed=0)
    assert band.pairs == () and band.method == "independent"
    assert band.value == pytest.approx(math.sqrt(2) * band.single_se)
    assert band.value > 0.01
    assert "fallback" in band.description


def test_one_near_clone_does_not_shrink_the_band():
    """A near-identical runner-up gives a tiny paired SE; the median over competitors ignores it."""
    codes, a, config = _data(4)
    top = config(40)
    clone = top.copy()
    clone[0, :3] = np.clip(clone[0, :3] + 1, 0, 8)  # differs on 3 of 500 essays
    others = [config(s) for s in (41, 42, 43, 44)]
    pl = _pool(codes, a, [top, clone, *others])
    band = tie_band(pl, order=np.arange(6), k=5, n_boot=150, seed=0)
    clone_se = band.pair_ses[0]
    assert band.pairs == (1, 2, 3, 4, 5)
    assert clone_se < 0.3 * band.value
    assert band.value == pytest.approx(float(np.median(band.pair_ses)))
    indep = tie_band(pl, order=np.arange(6), n_boot=150, seed=0, method="independent")
    assert indep.value == pytest.approx(math.sqrt(2) * band.single_se)


def test_distinct_from_compares_every_essay_of_every_repeat():
    p = np.zeros((3, 2, 4), dtype=int)
    p[2, 1, 3] = 1
    assert distinct_from(p, 0).tolist() == [2]


def test_tie_band_refuses_bad_arguments():
    codes, a, config = _data(5)
    pl = _pool(codes, a, [config(1), config(2)])
    with pytest.raises(ValueError, match="method"):
        tie_band(pl, order=np.arange(2), method="top_two")
    with pytest.raises(ValueError, match="order"):
        tie_band(pl, order=np.array([0, 2]))
    with pytest.raises(ValueError, match="k must"):
        tie_band(pl, order=np.arange(2), k=0)


# ----------------------------------------------------------------------------- paired SEs


def test_identical_configs_differ_by_zero_and_tie():
    codes, a, config = _data(6, repeats=2)
    p = config(60)
    rows = paired_differences(_pool(codes, a, [p, p.copy()]), n_boot=50, seed=0)
    assert [r.metric for r in rows] == ["worst_prompt_qwk", "mean_qwk", "low_tail_mae",
                                        "high_tail_mae"]
    for r in rows:
        assert r.difference == 0.0 and r.se == 0.0 and r.tie


def test_paired_differences_are_antisymmetric_and_see_a_real_gap():
    codes, a, config = _data(7)
    good, bad = config(70, noise=0.6), config(71, noise=2.0)
    pl = _pool(codes, a, [good, bad])
    ab = paired_differences(pl, first=0, second=1, n_boot=200, seed=0)
    ba = paired_differences(pl, first=1, second=0, n_boot=200, seed=0)
    for x, y in zip(ab, ba, strict=True):
        assert x.difference == pytest.approx(-y.difference)
        assert x.se == pytest.approx(y.se)
    mean = ab[1]
    assert mean.difference > 0.1 and mean.se < mean.difference and not mean.tie
    low = ab[2]
    assert low.difference < 0 and not low.tie  # the noisier config errs more in the tail


def test_paired_differences_call_a_tie_within_one_se():
    codes, a, config = _data(8)
    p, q = config(80), config(81)  # same skill: differences are noise
    rows = paired_differences(_pool(codes, a, [p, q]), n_boot=200, seed=0)
    for r in rows:
        assert r.tie == (abs(r.difference) <= r.se)
    assert rows[1].se > 0


@pytest.mark.parametrize("n_changed", [5, 20])
def test_a_front_of_near_duplicates_cannot_collapse_the_band(n_changed):
    """Every competitor differs from the top on only 5 (or 20) of 500 essays: their paired SEs
    are near 0, and the median of them was the band (0.001 and 0.012 in the audit). The band is
    floored at the top config's own SE."""
    codes, a, config = _data(6)
    top = config(60)
    comps = []
    for s in range(5):
        c = top.copy()
        idx = np.random.default_rng(600 + s).choice(top.shape[1], n_changed, replace=False)
        c[0, idx] = np.clip(c[0, idx] + 1, 0, 8)
        comps.append(c)
    pl = _pool(codes, a, [top, *comps])
    band = tie_band(pl, order=np.arange(6), n_boot=150, seed=0)
    assert band.pairs == (1, 2, 3, 4, 5) and band.method == "paired_median"
    assert float(np.median(band.pair_ses)) < 0.5 * band.single_se  # what used to be the band
    assert band.value == pytest.approx(band.single_se) and band.value > 0.01
    assert "floor applied" in band.description
