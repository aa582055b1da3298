"""BBC-CV: the selector on arrays, the replay of the selection, and the optimism it removes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moqwk.core.bbc import (
    bbc,
    guardrail_constraints,
    lexicographic_selector,
    objective_matrix,
)
from moqwk.core.metrics import qwk_by_group
from moqwk.core.pooled import pool
from moqwk.core.worst_prompt import estimator


def _exchangeable(seed: int, configs: int = 12, n: int = 600, n_prompts: int = 8,
                  noise: float = 1.0):
    """Configs of equal skill: truth plus independent noise, so any winner won by luck."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, n_prompts, n)
    a = np.clip(np.rint(rng.normal(4, 1.6, n)), 0, 8).astype(int)
    preds = np.clip(np.rint(a[None, None, :] + rng.normal(0, noise, (configs, 1, n))), 0, 8)
    return pool(prompt_codes=codes, true_level=a, preds=preds.astype(int),
                n_levels_by_prompt=np.full(n_prompts, 9), eligible=np.ones(n_prompts, bool),
                low_tail=a <= 2, high_tail=a >= 6)


def test_objective_matrix_on_all_essays_is_the_objectives():
    pl = _exchangeable(0, configs=3)
    elig = np.array([True] * 6 + [False] * 2)
    obj = objective_matrix(pl, np.ones((1, pl.n_essays)), elig.astype(float),
                           worst_prompt=estimator("min"))[0]
    for c in range(3):
        q = qwk_by_group(pl.prompt_codes, pl.true_level, pl.preds[c, 0], pl.n_levels)
        assert obj[c, 0] == pytest.approx(q[elig].min())
        assert obj[c, 1] == pytest.approx(q[elig].mean())
        err = np.abs(pl.preds[c, 0] - pl.true_level) / 8
        assert obj[c, 2] == pytest.approx(err[pl.low_tail].mean())
        assert obj[c, 3] == pytest.approx(err[pl.high_tail].mean())


def test_guardrails_are_tail_mae_minus_the_baseline_plus_tolerance():
    obj = np.array([[0.3, 0.5, 0.10, 0.20], [0.4, 0.6, 0.16, 0.21], [0.2, 0.4, 0.12, 0.30]])
    cons = guardrail_constraints(obj, baseline=0, tolerance=0.05)
    np.testing.assert_allclose(cons, [[-0.05, -0.05], [0.01, -0.04], [-0.03, 0.05]])


def _brute_choice(obj: np.ndarray, cons: np.ndarray, tol: float) -> int | None:
    """The rule spelled out with loops: feasible, non-dominated, band, then the tie-breaks."""
    n = len(obj)
    feas = [i for i in range(n) if all(c <= 0 for c in cons[i])]
    loss = np.column_stack([-obj[:, 0], -obj[:, 1], obj[:, 2], obj[:, 3]])
    front = [i for i in feas if not any(
        (loss[j] <= loss[i]).all() and (loss[j] < loss[i]).any() for j in feas)]
    if not front:
        return None
    best = max(obj[i, 0] for i in front)
    band = [i for i in front if obj[i, 0] >= best - tol]
    return min(band, key=lambda i: (-obj[i, 1], -obj[i, 0], obj[i, 2] + obj[i, 3], i))


_val = st.integers(0, 6).map(lambda i: i / 6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_val, _val, _val, _val, st.sampled_from([-1.0, 0.0, 0.5]),
                          st.sampled_from([-1.0, 0.0, 0.5])), min_size=1, max_size=12),
       st.sampled_from([0.0, 1 / 6, 0.25, 0.5]))
def test_lexicographic_selector_matches_the_rule_spelled_out(rows, tol):
    arr = np.array(rows, dtype=float)
    obj, cons = arr[:, :4], arr[:, 4:]
    got = lexicographic_selector(tie_tolerance=tol)(obj, cons)
    assert got == _brute_choice(obj, cons, tol)


def test_bbc_removes_the_optimism_of_picking_the_luckiest_of_equals():
    """40 configs of equal skill; the truth is their QWK on 200,000 essays of the same kind.

    The in-sample best is optimistic on every data set. BBC-CV as published overcorrects
    (out-of-bag QWK on about 37% of each prompt's essays is lower whatever was chosen); the
    size-corrected estimate is closer to the truth than the in-sample number on average.
    """
    big = _exchangeable(99, configs=1, n=200_000, noise=1.5)
    truth = objective_matrix(big, np.ones((1, big.n_essays)), big.eligible.astype(float),
                             worst_prompt=estimator("min"))[0, 0, 1]

    def best_mean(obj, _cons):
        return int(np.argmax(obj[:, 1]))

    err_in, err_raw, err_corr = [], [], []
    for seed in range(1, 7):
        pl = _exchangeable(seed, configs=40, n=400, noise=1.5)
        full = objective_matrix(pl, np.ones((1, pl.n_essays)), pl.eligible.astype(float),
                                worst_prompt=estimator("min"))[0]
        r = bbc(pl, selector=best_mean, baseline=0, tolerance=0.05, n_boot=200, seed=0,
                scheme="essays")
        assert r.n_used == 200 and r.chosen_counts.sum() == 200
        assert (r.chosen_counts > 0).sum() > 3  # luck picks many different configs
        est = r.corrected["mean_qwk"]
        assert est.lo < est.point < est.hi
        err_in.append(full[:, 1].max() - truth)
        err_raw.append(r.estimates["mean_qwk"].point - truth)
        err_corr.append(est.point - truth)
    assert min(err_in) > 0  # the in-sample best always flatters
    assert max(err_raw) < 0  # published BBC-CV is conservative here
    assert abs(np.mean(err_corr)) < np.mean(err_in)
    assert np.mean(np.abs(err_corr)) < np.mean(np.abs(err_in))


def test_selector_sees_in_bag_objectives_and_guardrails_against_the_in_bag_baseline():
    pl = _exchangeable(2, configs=4)
    seen = []

    def spy(obj, cons):
        seen.append((obj.copy(), cons.copy()))
        return 1

    bbc(pl, selector=spy, baseline=2, tolerance=0.03, n_boot=10, seed=0)
    assert len(seen) == 10
    for obj, cons in seen:
        assert obj.shape == (4, 4) and cons.shape == (4, 2)
        np.testing.assert_allclose(cons[2], [-0.03, -0.03])
        np.testing.assert_allclose(cons, obj[:, 2:4] - obj[2, 2:4] - 0.03)
    assert not np.allclose(seen[0][0], seen[1][0])  # every replicate is its own resample


def test_replicates_without_a_choice_are_dropped_and_counted():
    pl = _exchangeable(3, configs=3)
    calls = {"n": 0}

    def every_other(obj, cons):
        calls["n"] += 1
        return None if calls["n"] % 2 else 0

    r = bbc(pl, selector=every_other, baseline=0, tolerance=0.05, n_boot=20, seed=0)
    assert r.n_used == 10 and r.oob.shape == (10, 4)
    none = bbc(pl, selector=lambda o, c: None, baseline=0, tolerance=0.05, n_boot=5, seed=0)
    assert none.n_used == 0 and math.isnan(none.estimates["mean_qwk"].point)


@pytest.mark.parametrize("scheme", ["essays", "prompts", "prompts+essays"])
def test_bbc_is_deterministic_for_a_seed_and_records_how_it_was_made(scheme):
    pl = _exchangeable(4, configs=5)
    sel = lexicographic_selector(tie_tolerance=0.05)
    a = bbc(pl, selector=sel, baseline=0, tolerance=0.05, n_boot=50, seed=3, scheme=scheme,
            worst_prompt=estimator("cvar10"))
    b = bbc(pl, selector=sel, baseline=0, tolerance=0.05, n_boot=50, seed=3, scheme=scheme,
            worst_prompt=estimator("cvar10"))
    c = bbc(pl, selector=sel, baseline=0, tolerance=0.05, n_boot=50, seed=4, scheme=scheme,
            worst_prompt=estimator("cvar10"))
    np.testing.assert_array_equal(a.oob, b.oob)
    assert not np.array_equal(a.oob, c.oob)
    d = a.to_dict()
    assert d["resampling"] == scheme and d["n_boot"] == 50 and d["seed"] == 3
    assert d["worst_prompt"]["long_label"] == "mean of worst 10% prompts' QWK"
    assert set(d["estimates"]) == {"worst_prompt_qwk", "mean_qwk", "low_tail_mae",
                                   "high_tail_mae"}


def test_prompt_schemes_score_only_out_of_bag_prompts():
    """One prompt is hopeless for every config: it is the OOB worst only when it is OOB."""
    rng = np.random.default_rng(5)
    n_prompts, per = 10, 60
    codes = np.repeat(np.arange(n_prompts), per)
    a = rng.integers(0, 9, len(codes))
    good = np.clip(a + rng.integers(-1, 2, len(codes)), 0, 8)
    bad = rng.integers(0, 9, len(codes))  # chance agreement
    p = np.where(codes == 0, bad, good)
    pl = pool(prompt_codes=codes, true_level=a, preds=np.stack([p, p])[:, None, :],
              n_levels_by_prompt=np.full(n_prompts, 9), eligible=np.ones(n_prompts, bool))
    q0 = qwk_by_group(codes, a, p, np.full(n_prompts, 9))
    r = bbc(pl, selector=lambda o, c: 0, baseline=0, tolerance=1.0, n_boot=400, seed=0,
            scheme="prompts")
    worst = r.oob[:, 0]
    at_bad = np.isclose(worst, q0[0])
    assert 0.25 < at_bad.mean() < 0.5  # prompt 0 is out of bag in about 1/e of replicates
    assert (worst[~at_bad] > 0.5).all()


def test_bbc_refuses_bad_arguments():
    pl = _exchangeable(6, configs=2)
    sel = lexicographic_selector(tie_tolerance=0.0)
    for kwargs, msg in (({"baseline": 2}, "baseline"), ({"n_boot": 1}, "n_boot"),
                        ({"level": 1.0}, "level"), ({"tolerance": -0.1}, "tolerance"),
                        ({"scheme": "folds"}, "scheme")):
        args = {"selector": sel, "baseline": 0, "tolerance": 0.05, "n_boot": 4, **kwargs}
        with pytest.raises(ValueError, match=msg):
            bbc(pl, **args)


@pytest.mark.parametrize("scheme", ["essays", "prompts", "prompts+essays"])
def test_without_selection_the_corrected_estimate_is_the_full_data_value(scheme):
    """Always choosing config 1 costs nothing: the correction removes exactly the size shift."""
    pl = _exchangeable(7, configs=3)
    full = objective_matrix(pl, np.ones((1, pl.n_essays)), pl.eligible.astype(float),
                            worst_prompt=estimator("min"))[0]
    r = bbc(pl, selector=lambda o, c: 1, baseline=0, tolerance=0.05, n_boot=100, seed=0,
            scheme=scheme)
    for k, name in enumerate(("worst_prompt_qwk", "mean_qwk", "low_tail_mae", "high_tail_mae")):
        assert r.corrected[name].point == pytest.approx(full[1, k], abs=1e-12)
    assert r.estimates["worst_prompt_qwk"].point != pytest.approx(full[1, 0], abs=0.01)
