"""Worst-prompt estimators against hand-computed and brute-force values, and their properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moqwk.core.worst_prompt import (
    REGISTRY,
    WorstPromptEstimator,
    eb_shrink,
    eb_worst,
    estimator,
    lower_tail_mean,
    weighted_mean,
    worst_min,
)

_qwks = st.lists(st.integers(-4, 20).map(lambda i: i / 20), min_size=1, max_size=30)
_qs = st.sampled_from([0.01, 0.05, 0.1, 0.2, 0.25, 1 / 3, 0.5, 0.9, 1.0])


def _brute_cvar(values: list[float], q: float) -> float:
    """Spelled out: sort, take whole prompts while they fit in t = max(q m, 1), then a part."""
    xs = sorted(values)
    t = max(q * len(xs), 1.0)
    total, taken = 0.0, 0.0
    for x in xs:
        part = min(1.0, t - taken)
        if part <= 0:
            break
        total += part * x
        taken += part
    return total / taken


def test_cvar_hand_computed_39_prompts_worst_10_percent():
    x = np.arange(39, dtype=float) / 100  # 0.00, 0.01, ..., 0.38
    rng = np.random.default_rng(3)
    shuffled = rng.permutation(x)
    # t = 3.9: three whole prompts and 0.9 of the fourth.
    expected = (0.00 + 0.01 + 0.02 + 0.9 * 0.03) / 3.9
    assert float(lower_tail_mean(shuffled, q=0.1)) == pytest.approx(expected, abs=1e-15)


def test_cvar_small_share_is_the_min_and_full_share_the_mean():
    x = np.array([0.5, 0.1, 0.3, 0.2, 0.9])
    assert float(lower_tail_mean(x, q=0.1)) == 0.1  # t = max(0.5, 1) = 1 prompt
    assert float(lower_tail_mean(x, q=1.0)) == pytest.approx(x.mean())
    assert float(lower_tail_mean(x, q=0.5)) == pytest.approx((0.1 + 0.2 + 0.5 * 0.3) / 2.5)


@settings(max_examples=200, deadline=None)
@given(_qwks, _qs, st.randoms(use_true_random=False))
def test_cvar_matches_brute_force_and_ignores_prompt_order(values, q, rnd):
    got = float(lower_tail_mean(np.array(values), q=q))
    assert got == pytest.approx(_brute_cvar(values, q), abs=1e-12)
    shuffled = list(values)
    rnd.shuffle(shuffled)
    assert float(lower_tail_mean(np.array(shuffled), q=q)) == pytest.approx(got, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(_qwks, _qs, _qs)
def test_min_le_cvar_le_mean_and_cvar_grows_with_q(values, q1, q2):
    x = np.array(values)
    lo_q, hi_q = sorted((q1, q2))
    mn, mean = float(worst_min(x)), float(weighted_mean(x))
    a, b = float(lower_tail_mean(x, q=lo_q)), float(lower_tail_mean(x, q=hi_q))
    assert mn - 1e-12 <= a <= b + 1e-12 <= mean + 2e-12


@settings(max_examples=100, deadline=None)
@given(_qwks, _qs, st.data())
def test_integer_weights_count_a_prompt_that_many_times(values, q, data):
    """A prompt drawn twice by a cluster bootstrap is two prompts: weights == repetition."""
    w = data.draw(st.lists(st.integers(0, 3), min_size=len(values), max_size=len(values)))
    if sum(w) == 0:
        w[0] = 1
    rep = np.repeat(np.array(values), w)
    x, wa = np.array(values), np.array(w, dtype=float)
    assert float(lower_tail_mean(x, q=q, weights=wa)) == pytest.approx(
        float(lower_tail_mean(rep, q=q)), abs=1e-12)
    assert float(worst_min(x, weights=wa)) == rep.min()
    assert float(weighted_mean(x, weights=wa)) == pytest.approx(rep.mean(), abs=1e-12)


def test_ineligible_and_nan_prompts_are_left_out_and_nothing_left_is_nan():
    x = np.array([0.05, np.nan, 0.4, 0.6])
    w = np.array([0.0, 1.0, 1.0, 1.0])  # the 0.05 prompt is ineligible
    assert float(worst_min(x, weights=w)) == 0.4
    assert float(weighted_mean(x, weights=w)) == pytest.approx(0.5)
    assert float(lower_tail_mean(x, q=0.5, weights=w)) == 0.4
    assert math.isnan(float(worst_min(x, weights=np.zeros(4))))
    assert math.isnan(float(lower_tail_mean(np.array([np.nan]), q=0.1)))


def test_estimators_broadcast_over_leading_axes():
    rng = np.random.default_rng(0)
    q = rng.uniform(0, 1, (4, 3, 9))
    v = rng.uniform(0.001, 0.02, (4, 3, 9))
    for name, e in REGISTRY.items():
        out = e(q, sampling_var=v)
        assert out.shape == (4, 3), name
        for i in range(4):
            for j in range(3):
                assert out[i, j] == pytest.approx(float(e(q[i, j], sampling_var=v[i, j])))


# ----------------------------------------------------------------------------- empirical Bayes


def test_eb_with_zero_sampling_variance_is_exactly_the_min():
    rng = np.random.default_rng(1)
    x = rng.uniform(-0.1, 0.9, 39)
    assert float(eb_worst(x, sampling_var=np.zeros(39))) == x.min()


def test_eb_with_equal_variances_keeps_the_worst_prompt_and_pulls_it_up():
    x = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    v = np.full(5, 0.02)
    s = eb_shrink(x, sampling_var=v)
    # Hand-computed: var(x) = 0.1, tau2 = 0.1 - 0.02 = 0.08, b = 0.08 / 0.10 = 0.8, mu = 0.5.
    assert float(s.tau2) == pytest.approx(0.08)
    assert float(s.mu) == pytest.approx(0.5)
    np.testing.assert_allclose(s.b, 0.8)
    assert float(eb_worst(x, sampling_var=v)) == pytest.approx(0.5 + 0.8 * (0.1 - 0.5))
    assert np.argmin(s.qwk) == np.argmin(x)


def test_eb_pulls_a_noisy_small_prompt_toward_the_mean_more_than_a_precise_one():
    x = np.array([0.1, 0.15, 0.5, 0.55, 0.6, 0.5])
    v = np.array([0.09, 0.001, 0.001, 0.001, 0.001, 0.001])  # prompt 0: ~20 essays
    s = eb_shrink(x, sampling_var=v)
    assert s.b[0] < s.b[1]
    assert s.qwk[0] > s.qwk[1]  # the noisy low prompt is no longer the worst
    assert float(eb_worst(x, sampling_var=v)) == pytest.approx(s.qwk[1])


def test_eb_with_all_noise_and_no_spread_gives_the_mean():
    x = np.array([0.4, 0.5, 0.6])
    v = np.full(3, 1.0)  # var(x) = 0.01 < mean v: tau2 = 0, everything is mu
    s = eb_shrink(x, sampling_var=v)
    assert float(s.tau2) == 0.0
    np.testing.assert_allclose(s.qwk, 0.5)


def test_eb_infinite_variance_prompt_is_fully_shrunk():
    x = np.array([0.0, 0.5, 0.6, 0.7])
    s = eb_shrink(x, sampling_var=np.array([np.inf, 0.001, 0.001, 0.001]))
    assert s.b[0] == 0.0
    assert s.qwk[0] == pytest.approx(float(s.mu))


@settings(max_examples=100, deadline=None)
@given(_qwks, st.randoms(use_true_random=False))
def test_eb_is_invariant_to_prompt_order(values, rnd):
    x = np.array(values)
    v = np.linspace(0.001, 0.05, len(values))
    perm = list(range(len(values)))
    rnd.shuffle(perm)
    a = float(eb_worst(x, sampling_var=v))
    b = float(eb_worst(x[perm], sampling_var=v[perm]))
    assert a == pytest.approx(b, abs=1e-12) or (math.isnan(a) and math.isnan(b))


def test_eb_worst_cannot_read_above_the_mean_prompt():
    """Large precise prompts score high, small noisy ones low: the precision-weighted target
    lies above the plain mean and, with no spread left (tau^2 = 0), every shrunk prompt sits on
    it. Uncapped, the "worst" prompt read above the mean per-prompt QWK (issue 20)."""
    x = np.array([0.70, 0.68, 0.40, 0.45, 0.42])
    v = np.array([0.0004, 0.0004, 0.09, 0.09, 0.09])
    s = eb_shrink(x, sampling_var=v)
    assert float(s.tau2) == 0.0 and float(s.mu) > float(weighted_mean(x))  # the trap
    assert float(worst_min(s.qwk)) > float(weighted_mean(x))  # what eb_min used to report
    assert float(eb_worst(x, sampling_var=v)) == pytest.approx(float(weighted_mean(x)))


@settings(max_examples=300, deadline=None)
@given(values=_qwks, data=st.data())
def test_eb_worst_never_exceeds_the_mean_per_prompt_qwk(values, data):
    n = len(values)
    x = np.array(values)
    v = np.array(data.draw(st.lists(st.floats(0, 0.2), min_size=n, max_size=n)))
    w = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=float)
    eb = float(eb_worst(x, sampling_var=v, weights=w))
    mean = float(weighted_mean(x, weights=w))
    if w.sum() == 0:
        assert math.isnan(eb) and math.isnan(mean)
    else:
        assert eb <= mean + 1e-12
        assert eb >= float(worst_min(x, weights=w)) - 1e-12  # shrinking never lowers the min


# ----------------------------------------------------------------------------- registry


def test_registry_names_and_honest_labels():
    assert list(REGISTRY) == ["min", "cvar10", "eb_min"]
    assert REGISTRY["min"].long_label == "worst-prompt QWK (min)"
    assert REGISTRY["cvar10"].long_label == "mean of worst 10% prompts' QWK"
    assert REGISTRY["eb_min"].long_label == "EB-shrunk worst-prompt QWK"
    assert estimator("cvar25").q == 0.25 and estimator("cvar25").short_label == "worst-25% QWK"
    assert estimator("cvar12.5").name == "cvar12.5"
    d = REGISTRY["cvar10"].to_dict()
    assert d["name"] == "cvar10" and d["q"] == 0.1
    assert REGISTRY["eb_min"].needs_variance and not REGISTRY["min"].needs_variance


@pytest.mark.parametrize("bad", ["max", "cvar", "cvar0", "cvar101", "cvarx", "EB", ""])
def test_unknown_estimator_names_are_refused_with_the_choices(bad):
    with pytest.raises(ValueError, match="min, eb_min or cvarNN"):
        estimator(bad)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="cvar needs q"):
        WorstPromptEstimator(kind="cvar")
    with pytest.raises(ValueError, match="takes no q"):
        WorstPromptEstimator(kind="min", q=0.1)
    with pytest.raises(ValueError, match="q must be in"):
        lower_tail_mean(np.array([0.1]), q=0.0)
    with pytest.raises(ValueError, match="sampling_var"):
        REGISTRY["eb_min"](np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="weights must be finite"):
        worst_min(np.array([0.1, 0.2]), weights=np.array([1.0, -1.0]))


def test_every_kind_is_a_registered_function():
    from moqwk.core.worst_prompt import KINDS

    assert list(KINDS) == ["min", "cvar", "eb_min"]
    x = np.array([0.2, 0.5, 0.9, 0.4])
    v = np.full(4, 0.01)
    for name, est in REGISTRY.items():
        kind = KINDS[est.kind]
        assert est.spec is kind and est.needs_variance == kind.needs_variance
        got = est(x, sampling_var=v)
        assert float(got) == float(kind.estimate(x, weights=None, sampling_var=v, q=est.q)), name
    assert REGISTRY["min"].monotone and REGISTRY["cvar10"].monotone
    assert not REGISTRY["eb_min"].monotone
