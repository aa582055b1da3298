"""Weighted QWK from moments against qwk_by_group, tail MAEs against compute_metrics, resampling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moqwk.core.metrics import compute_metrics, qwk_by_group
from moqwk.core.pooled import lin_variance, pool, prompt_stats, resample, tail_maes


def _corpus(seed: int, n: int = 300, n_prompts: int = 7, k: int = 5, configs: int = 3,
            repeats: int = 2):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, n_prompts, n)
    a = rng.integers(0, k, n)
    preds = np.clip(a + rng.integers(-2, 3, (configs, repeats, n)), 0, k - 1)
    return codes, a, preds


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 9), st.integers(1, 3))
def test_moment_qwk_equals_qwk_by_group_averaged_over_repeats(seed, k, repeats):
    codes, a, preds = _corpus(seed, n=120, n_prompts=6, k=k, repeats=repeats)
    pl = pool(prompt_codes=codes, true_level=a, preds=preds, n_levels_by_prompt=np.full(6, k),
              eligible=np.ones(6, bool))
    got = prompt_stats(pl, np.ones(len(a))).qwk[0]
    for c in range(preds.shape[0]):
        per = np.stack([qwk_by_group(codes, a, preds[c, r], np.full(6, k)) for r in range(repeats)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a prompt undefined in every repeat
            want = np.nanmean(per, axis=0)
        np.testing.assert_allclose(got[c], want, atol=1e-12, equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000))
def test_integer_weights_equal_duplicating_rows(seed):
    codes, a, preds = _corpus(seed, repeats=1)
    w = np.random.default_rng(seed + 1).integers(0, 4, len(a))
    idx = np.repeat(np.arange(len(a)), w)
    pl = pool(prompt_codes=codes, true_level=a, preds=preds[0, 0],
              n_levels_by_prompt=np.full(7, 5), eligible=np.ones(7, bool))
    got = prompt_stats(pl, w).qwk[0, 0]
    want = qwk_by_group(codes[idx], a[idx], preds[0, 0][idx], np.full(7, 5))
    np.testing.assert_allclose(got, want, atol=1e-12, equal_nan=True)


def test_undefined_qwk_is_nan_as_in_qwk_by_group():
    codes = np.array([0, 0, 0, 1, 1, 1])
    a = np.array([2, 2, 2, 0, 1, 2])
    b = np.array([2, 2, 2, 1, 1, 1])  # prompt 0: one level on both sides
    pl = pool(prompt_codes=codes, true_level=a, preds=b, n_levels_by_prompt=np.array([3, 3]),
              eligible=np.ones(2, bool))
    got = prompt_stats(pl, np.ones(6)).qwk[0, 0]
    want = qwk_by_group(codes, a, b, np.array([3, 3]))
    assert np.isnan(got[0]) and np.isnan(want[0])
    assert got[1] == pytest.approx(want[1])


def test_tail_maes_equal_compute_metrics_on_per_prompt_scales():
    rng = np.random.default_rng(5)
    n = 400
    codes = rng.integers(0, 4, n)
    levels = np.array([5, 9, 13, 4])  # per-prompt scales: 1-5, 0-8, 0-12 (step 1), 0-1.5 (0.5)
    lo = np.array([1.0, 0.0, 0.0, 0.0])[codes]
    step = np.array([1.0, 1.0, 1.0, 0.5])[codes]
    a = rng.integers(0, levels[codes])
    preds = np.clip(a[None, :] + rng.integers(-2, 3, (3, n)), 0, levels[codes] - 1)
    hi = lo + (levels[codes] - 1) * step
    y_norm = a / (levels[codes] - 1)
    low, high = y_norm <= 0.25 + 1e-9, y_norm >= 0.75 - 1e-9
    pl = pool(prompt_codes=codes, true_level=a, preds=preds[:, None, :], n_levels_by_prompt=levels,
              eligible=np.ones(4, bool), low_tail=low, high_tail=high)
    lo_mae, hi_mae = tail_maes(pl, np.ones(n))
    for c in range(3):
        m = compute_metrics(prompt_codes=codes, prompt_names=["a", "b", "c", "d"],
                            repeat=np.zeros(n, int), y_true=lo + a * step,
                            y_pred=lo + preds[c] * step, lo=lo, hi=hi, step=step,
                            min_prompt_n=1, low_band=0.25, high_band=0.75, global_scale=False)
        assert lo_mae[0, c] == pytest.approx(m.low_tail_mae)
        assert hi_mae[0, c] == pytest.approx(m.high_tail_mae)
        q = prompt_stats(pl, np.ones(n)).qwk[0, c]
        assert np.nanmin(q) == pytest.approx(m.worst_prompt_qwk)
        assert np.nanmean(q) == pytest.approx(m.mean_qwk)


def test_lin_variance_agrees_with_the_bootstrap_on_a_large_prompt():
    """The analytic variance is within 25% of a 2,000-replicate bootstrap at n = 400."""
    rng = np.random.default_rng(11)
    n = 400
    a = np.clip(np.rint(rng.normal(4, 1.5, n)), 0, 8).astype(int)
    b = np.clip(np.rint(a + rng.normal(0.3, 1.2, n)), 0, 8).astype(int)
    pl = pool(prompt_codes=np.zeros(n, int), true_level=a, preds=b,
              n_levels_by_prompt=np.array([9]), eligible=np.array([True]))
    st_ = prompt_stats(pl, np.ones(n))
    w, _, _ = resample(np.zeros(n, int), 1, 2000, np.random.default_rng(0), scheme="essays")
    boot = prompt_stats(pl, w).qwk[:, 0, 0]
    assert float(st_.var[0, 0, 0]) == pytest.approx(np.var(boot, ddof=1), rel=0.25)


def test_lin_variance_is_finite_when_r_is_zero_and_infinite_for_tiny_prompts():
    # Constant predictions: r undefined; the fallback keeps it finite and positive.
    n, sa, saa = np.array([30.0]), np.array([60.0]), np.array([150.0])
    sb, sbb, sab = np.array([60.0]), np.array([120.0]), np.array([120.0])
    v = lin_variance(n, sa, saa, sb, sbb, sab)
    assert np.isfinite(v).all() and (v > 0).all()
    assert np.isinf(lin_variance(np.array([2.0]), sa, saa, sb, sbb, sab)).all()


@pytest.mark.parametrize("scheme", ["essays", "prompts", "prompts+essays"])
def test_resampling_schemes_keep_their_units_together(scheme):
    rng = np.random.default_rng(2)
    codes = np.repeat(np.arange(6), [5, 9, 12, 3, 20, 7])
    codes = rng.permutation(codes)
    sizes = np.bincount(codes)
    w, mult, oob = resample(codes, 6, 300, np.random.default_rng(0), scheme=scheme)
    assert w.shape == oob.shape == (300, len(codes)) and mult.shape == (300, 6)
    per_prompt = np.stack([np.bincount(codes, weights=row, minlength=6) for row in w])
    if scheme == "essays":
        np.testing.assert_array_equal(per_prompt, np.broadcast_to(sizes, per_prompt.shape))
        np.testing.assert_array_equal(oob, w == 0)
        assert (mult == 1).all()
    else:
        assert (mult.sum(axis=1) == 6).all()
        np.testing.assert_array_equal(per_prompt, mult * sizes)
        np.testing.assert_array_equal(oob, mult[:, codes] == 0)  # whole prompts out of bag
        if scheme == "prompts":
            np.testing.assert_array_equal(w, mult[:, codes])
        else:
            assert (w != mult[:, codes]).any()  # essays within copies vary
    # About 1/e of the units are out of bag.
    assert 0.3 < oob.mean() < 0.45


def test_resampling_is_deterministic_for_a_seed():
    codes = np.repeat(np.arange(4), 10)
    for scheme in ("essays", "prompts", "prompts+essays"):
        a = resample(codes, 4, 20, np.random.default_rng(7), scheme=scheme)
        b = resample(codes, 4, 20, np.random.default_rng(7), scheme=scheme)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="scheme must be one of"):
        resample(codes, 4, 2, np.random.default_rng(0), scheme="clusters")


def test_pool_refuses_bad_inputs_naming_them():
    codes, a, preds = _corpus(0, n=20, n_prompts=2)
    ok = dict(prompt_codes=codes, true_level=a, preds=preds, n_levels_by_prompt=np.full(2, 5),
              eligible=np.ones(2, bool))
    pool(**ok)
    with pytest.raises(ValueError, match="must agree"):
        pool(**{**ok, "true_level": a[:-1]})
    with pytest.raises(ValueError, match="eligible"):
        pool(**{**ok, "eligible": np.ones(3, bool)})
    with pytest.raises(ValueError, match="prompt codes"):
        pool(**{**ok, "prompt_codes": codes + 5})
    with pytest.raises(ValueError, match="predicted levels"):
        pool(**{**ok, "preds": preds + 5})
    with pytest.raises(ValueError, match="low_tail"):
        pool(**ok, low_tail=np.ones(3, bool))
    with pytest.raises(ValueError, match="weights"):
        prompt_stats(pool(**ok), np.ones(5))
