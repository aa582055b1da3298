"""QWK and the CV metrics against scikit-learn and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from moqwk.core.metrics import compute_metrics, qwk, qwk_by_group, tail_masks


def test_qwk_uses_the_full_label_range_not_the_labels_present():
    # level 3 and 4 are absent: scikit-learn's default re-indexes 5 next to 2
    true = np.array([1, 2, 5, 2, 1, 5, 5])
    pred = np.array([1, 2, 2, 2, 1, 5, 1])
    full = cohen_kappa_score(true, pred, weights="quadratic", labels=np.arange(9))
    present = cohen_kappa_score(true, pred, weights="quadratic")
    assert qwk(true, pred, 9) == pytest.approx(full)
    assert full != pytest.approx(present)


@st.composite
def labelled(draw):
    k = draw(st.integers(2, 12))
    n = draw(st.integers(2, 60))
    a = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    b = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    return k, np.array(a), np.array(b)


@settings(max_examples=200, deadline=None)
@given(labelled())
def test_qwk_matches_sklearn_with_full_labels(case):
    k, a, b = case
    ours = qwk(a, b, k)
    with np.errstate(all="ignore"):
        ref = cohen_kappa_score(a, b, weights="quadratic", labels=np.arange(k))
    if np.isnan(ref):
        assert np.isnan(ours)
    else:
        assert ours == pytest.approx(ref, abs=1e-10)


@settings(max_examples=100, deadline=None)
@given(labelled(), st.integers(0, 2**32 - 1))
def test_qwk_properties_symmetry_bounds_row_order(case, seed):
    k, a, b = case
    q = qwk(a, b, k)
    if np.isnan(q):
        return
    assert q == pytest.approx(qwk(b, a, k))
    assert -1 - 1e-9 <= q <= 1 + 1e-9
    perm = np.random.default_rng(seed).permutation(len(a))
    assert qwk(a[perm], b[perm], k) == pytest.approx(q)
    assert qwk(a, a, k) == pytest.approx(1.0) or len(set(a)) == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(labelled(), min_size=1, max_size=6))
def test_qwk_by_group_equals_one_call_per_group(cases):
    group = np.concatenate([np.full(len(a), g) for g, (_, a, _) in enumerate(cases)])
    a = np.concatenate([c[1] for c in cases])
    b = np.concatenate([c[2] for c in cases])
    levels = np.array([c[0] for c in cases])
    got = qwk_by_group(group, a, b, levels)
    for g, (k, ag, bg) in enumerate(cases):
        expected = qwk(ag, bg, k)
        assert (np.isnan(got[g]) and np.isnan(expected)) or got[g] == pytest.approx(expected)


def test_qwk_by_group_rejects_levels_outside_the_scale():
    with pytest.raises(ValueError, match="levels must lie"):
        qwk_by_group(np.zeros(2, int), np.array([0, 5]), np.array([0, 1]), np.array([3]))


def _frame(rng, n_prompts=4, per_prompt=30, repeats=1, levels=9):
    codes = np.repeat(np.arange(n_prompts), per_prompt)
    y = 1.0 + 0.5 * rng.integers(0, levels, len(codes))
    preds = [np.clip(y + 0.5 * rng.integers(-2, 3, len(codes)), 1.0, 5.0) for _ in range(repeats)]
    return codes, y, preds


def test_compute_metrics_worst_and_mean_are_over_eligible_prompts_only():
    rng = np.random.default_rng(3)
    codes, y, (pred,) = _frame(rng)
    codes = codes.copy()
    codes[:5] = 4  # a fifth, tiny prompt
    names = [f"p{i}" for i in range(5)]
    n = len(y)
    m = compute_metrics(prompt_codes=codes, prompt_names=names, repeat=np.zeros(n, int),
                        y_true=y, y_pred=pred, lo=np.ones(n), hi=np.full(n, 5.0),
                        step=np.full(n, 0.5), min_prompt_n=20, low_band=0.25, high_band=0.75,
                        global_scale=True)
    per = {r.prompt: r for r in m.per_prompt}
    assert not per["p4"].eligible and per["p0"].eligible
    eligible = [r.qwk for r in m.per_prompt if r.eligible]
    assert m.worst_prompt_qwk == pytest.approx(min(eligible))
    assert m.mean_qwk == pytest.approx(np.mean(eligible))
    for name, r in per.items():
        mask = codes == names.index(name)
        ref = cohen_kappa_score(((y[mask] - 1) / 0.5).astype(int),
                                ((pred[mask] - 1) / 0.5).astype(int),
                                weights="quadratic", labels=np.arange(9))
        assert r.qwk == pytest.approx(ref)
    pooled = cohen_kappa_score(((y - 1) / 0.5).astype(int), ((pred - 1) / 0.5).astype(int),
                               weights="quadratic", labels=np.arange(9))
    assert m.pooled_qwk == pytest.approx(pooled)


def test_repeats_average_prompt_qwk_before_the_minimum():
    rng = np.random.default_rng(5)
    codes, y, preds = _frame(rng, repeats=3)
    n = len(y)
    kw = dict(lo=np.ones(3 * n), hi=np.full(3 * n, 5.0), step=np.full(3 * n, 0.5),
              min_prompt_n=20, low_band=0.25, high_band=0.75, global_scale=True)
    m = compute_metrics(prompt_codes=np.tile(codes, 3), prompt_names=["a", "b", "c", "d"],
                        repeat=np.repeat(np.arange(3), n), y_true=np.tile(y, 3),
                        y_pred=np.concatenate(preds), **kw)
    per_repeat = np.array([[qwk(((y[codes == p] - 1) * 2).astype(int),
                                ((pr[codes == p] - 1) * 2).astype(int), 9) for p in range(4)]
                           for pr in preds])
    assert m.worst_prompt_qwk == pytest.approx(per_repeat.mean(axis=0).min())
    assert m.repeats == 3


def test_tail_slices_on_ellipse_defaults_are_overall_le_2_and_ge_4():
    y = np.arange(1.0, 5.01, 0.5)
    z = (y - 1) / 4
    low, high = tail_masks(z, 0.25, 0.75)
    assert y[low].tolist() == [1.0, 1.5, 2.0]
    assert y[high].tolist() == [4.0, 4.5, 5.0]


def test_tail_mae_and_bias_in_normalised_and_score_units():
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 3.0])
    pred = np.array([2.0, 2.0, 3.0, 3.0, 4.0, 3.0])
    n = len(y)
    m = compute_metrics(prompt_codes=np.zeros(n, int), prompt_names=["a"],
                        repeat=np.zeros(n, int), y_true=y, y_pred=pred, lo=np.ones(n),
                        hi=np.full(n, 5.0), step=np.full(n, 0.5), min_prompt_n=1,
                        low_band=0.25, high_band=0.75, global_scale=True)
    assert m.low_tail.n == 2 and m.high_tail.n == 2
    assert m.low_tail_mae == pytest.approx((0.25 + 0) / 2)
    assert m.low_tail_bias == pytest.approx(0.125)
    assert m.high_tail_mae == pytest.approx(0.25)
    assert m.high_tail_bias == pytest.approx(-0.25)
    assert m.high_tail.mae_units == pytest.approx(1.0)


def test_per_prompt_scales_compare_on_the_normalised_scale():
    # prompt a scored 0-3, prompt b 0-60: the same relative error gives the same normalised MAE
    y = np.array([0.0, 3.0, 0.0, 60.0])
    pred = np.array([1.0, 3.0, 20.0, 60.0])
    lo = np.zeros(4)
    hi = np.array([3.0, 3.0, 60.0, 60.0])
    step = np.ones(4)
    m = compute_metrics(prompt_codes=np.array([0, 0, 1, 1]), prompt_names=["a", "b"],
                        repeat=np.zeros(4, int), y_true=y, y_pred=pred, lo=lo, hi=hi, step=step,
                        min_prompt_n=1, low_band=0.25, high_band=0.75, global_scale=False)
    per = {r.prompt: r for r in m.per_prompt}
    assert per["a"].mae == pytest.approx(per["b"].mae)
    assert per["a"].n_levels == 4 and per["b"].n_levels == 61
    assert m.pooled_qwk is None
    assert m.low_tail.mae_units is None
