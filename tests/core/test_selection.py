"""Lexicographic ranking, bootstrap SEs and the stability gate against brute force."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moqwk.core.metrics import qwk
from moqwk.core.selection import (
    bootstrap_worst_qwk_diff_se,
    bootstrap_worst_qwk_replicates,
    bootstrap_worst_qwk_se,
    gate_verdict,
    rank_lexicographic,
    success_criterion,
    tail_tradeoff,
)

# ----------------------------------------------------------------------------- ranking


def _brute_rank(rows: list[dict], tol: float) -> list[int]:
    """The rule, spelled out: peel the tied band off the top, sort it, recurse; NaN last."""

    def nan_last(x: float, sign: float) -> float:
        return math.inf if math.isnan(x) else sign * x

    def sort_key(r: dict):
        return (nan_last(r["mean_qwk"], -1), nan_last(r["worst_prompt_qwk"], -1),
                nan_last(r["low_tail_mae"] + r["high_tail_mae"], 1), r["trial_number"])

    def rank(rest: list[dict]) -> list[dict]:
        if not rest:
            return []
        b = max(r["worst_prompt_qwk"] for r in rest)
        band = [r for r in rest if r["worst_prompt_qwk"] >= b - tol]
        others = [r for r in rest if not r["worst_prompt_qwk"] >= b - tol]
        return sorted(band, key=sort_key) + rank(others)

    valid = [r for r in rows if not math.isnan(r["worst_prompt_qwk"])]
    nans = [r for r in rows if math.isnan(r["worst_prompt_qwk"])]
    return [r["trial_number"] for r in rank(valid) + sorted(nans, key=sort_key)]


_metric = st.one_of(st.integers(0, 8).map(lambda i: i / 8), st.just(float("nan")))
_row = st.fixed_dictionaries({
    "worst_prompt_qwk": _metric, "mean_qwk": _metric,
    "low_tail_mae": _metric, "high_tail_mae": _metric,
})


@st.composite
def _trials(draw, max_n: int = 25) -> pd.DataFrame:
    rows = draw(st.lists(_row, max_size=max_n))
    numbers = draw(st.permutations(range(len(rows) * 3)))[: len(rows)]
    return pd.DataFrame(
        [{"trial_number": int(t), **r} for t, r in zip(numbers, rows, strict=True)],
        columns=["trial_number", "worst_prompt_qwk", "mean_qwk", "low_tail_mae", "high_tail_mae"],
    )


@settings(max_examples=200, deadline=None)
@given(_trials(), st.sampled_from([0.0, 0.125, 0.25, 0.3, 1.0]))
def test_rank_matches_brute_force(df, tol):
    ranked = rank_lexicographic(df, tie_tolerance=tol)
    assert list(ranked["trial_number"]) == _brute_rank(df.to_dict("records"), tol)
    assert list(ranked["rank"]) == list(range(1, len(df) + 1))
    valid = df["worst_prompt_qwk"].dropna()
    expected_band = (
        set(df.loc[df["worst_prompt_qwk"] >= valid.max() - tol, "trial_number"])
        if len(valid) else set()
    )
    assert set(ranked.loc[ranked["in_tie_band"], "trial_number"]) == expected_band
    # The band is a prefix of the ranking.
    flags = list(ranked["in_tie_band"])
    assert flags == sorted(flags, reverse=True)


@settings(max_examples=100, deadline=None)
@given(_trials(), st.sampled_from([0.0, 0.25]), st.randoms(use_true_random=False))
def test_rank_invariant_to_row_order(df, tol, rnd):
    perm = rnd.sample(range(len(df)), len(df))
    shuffled = df.iloc[perm].set_index(pd.Index([f"x{i}" for i in range(len(df))]))
    a = rank_lexicographic(df, tie_tolerance=tol)
    b = rank_lexicographic(shuffled, tie_tolerance=tol)
    pd.testing.assert_frame_equal(a, b)


@settings(max_examples=100, deadline=None)
@given(_trials())
def test_zero_tolerance_is_strict_lexicographic(df):
    ranked = rank_lexicographic(df, tie_tolerance=0.0)
    recs = df.to_dict("records")

    def key(r):
        nl = lambda x, s: math.inf if math.isnan(x) else s * x  # noqa: E731
        return (nl(r["worst_prompt_qwk"], -1), nl(r["mean_qwk"], -1),
                nl(r["low_tail_mae"] + r["high_tail_mae"], 1), r["trial_number"])

    assert list(ranked["trial_number"]) == [r["trial_number"] for r in sorted(recs, key=key)]


def test_rank_tie_band_prefers_mean_then_tiebreaks():
    df = pd.DataFrame({
        "trial_number": [0, 1, 2, 3, 4, 5],
        "worst_prompt_qwk": [0.70, 0.69, 0.60, 0.69, 0.69, np.nan],
        "mean_qwk": [0.75, 0.80, 0.90, 0.80, 0.80, 0.99],
        "low_tail_mae": [0.1, 0.2, 0.1, 0.1, 0.1, 0.0],
        "high_tail_mae": [0.1, 0.1, 0.1, 0.1, 0.1, 0.0],
        "extra": list("abcdef"),
    })
    ranked = rank_lexicographic(df, tie_tolerance=0.02)
    # 3 and 4 tie on everything but trial_number; 1 has a worse tail sum; 0 has the best
    # worst-prompt QWK but a lower mean; 2 is outside the band; 5 has no worst-prompt QWK.
    assert list(ranked["trial_number"]) == [3, 4, 1, 0, 2, 5]
    assert list(ranked["in_tie_band"]) == [True, True, True, True, False, False]
    assert list(ranked["extra"]) == list("debacf")
    assert list(df.columns) == ["trial_number", "worst_prompt_qwk", "mean_qwk",
                                "low_tail_mae", "high_tail_mae", "extra"]  # input untouched


def test_rank_rejects_bad_input():
    df = pd.DataFrame({"trial_number": [0], "worst_prompt_qwk": [0.5], "mean_qwk": [0.5],
                       "low_tail_mae": [0.1], "high_tail_mae": [0.1]})
    with pytest.raises(ValueError):
        rank_lexicographic(df, tie_tolerance=-0.1)
    with pytest.raises(ValueError):
        rank_lexicographic(df.drop(columns="mean_qwk"), tie_tolerance=0.0)
    assert rank_lexicographic(df.iloc[:0], tie_tolerance=0.0).empty


# ----------------------------------------------------------------------------- bootstrap


def _essays(seed: int, sizes=(60, 80, 50), n_levels=(5, 9, 4), noise=(0.6, 1.0, 0.4)):
    rng = np.random.default_rng(seed)
    codes = np.concatenate([np.full(n, p) for p, n in enumerate(sizes)])
    levels = np.array(n_levels)
    true = rng.integers(0, levels[codes])

    def predict(scale: float) -> np.ndarray:
        jitter = rng.normal(0, np.array(noise)[codes] * scale)
        return np.clip(np.rint(true + jitter), 0, levels[codes] - 1).astype(int)

    return codes, true, levels, predict


def test_bootstrap_deterministic_for_seed_and_varies_with_it():
    codes, true, levels, predict = _essays(0)
    a, b = predict(1.0), predict(1.3)
    kw = dict(prompt_codes=codes, true_level=true, pred_a=a, pred_b=b,
              n_levels_by_prompt=levels, eligible=np.ones(3, bool), n_boot=100)
    assert bootstrap_worst_qwk_diff_se(**kw, seed=5) == bootstrap_worst_qwk_diff_se(**kw, seed=5)
    assert bootstrap_worst_qwk_diff_se(**kw, seed=5) != bootstrap_worst_qwk_diff_se(**kw, seed=6)


def test_bootstrap_diff_zero_for_identical_and_positive_otherwise():
    codes, true, levels, predict = _essays(1)
    a, b = predict(1.0), predict(1.0)
    assert not np.array_equal(a, b)
    kw = dict(prompt_codes=codes, true_level=true, n_levels_by_prompt=levels,
              eligible=np.ones(3, bool), n_boot=50, seed=0)
    assert bootstrap_worst_qwk_diff_se(**kw, pred_a=a, pred_b=a.copy()) == 0.0
    assert bootstrap_worst_qwk_diff_se(**kw, pred_a=a, pred_b=b) > 0.0
    assert bootstrap_worst_qwk_se(**kw, pred=a) > 0.0


def test_bootstrap_chunking_does_not_change_replicates(monkeypatch):
    codes, true, levels, predict = _essays(2)
    kw = dict(prompt_codes=codes, true_level=true, preds=[predict(1.0), predict(0.5)],
              n_levels_by_prompt=levels, eligible=np.ones(3, bool), n_boot=37, seed=11)
    whole = bootstrap_worst_qwk_replicates(**kw)
    monkeypatch.setattr("moqwk.core.selection._BOOT_CELLS", 1)  # one replicate per chunk
    np.testing.assert_array_equal(bootstrap_worst_qwk_replicates(**kw), whole)


def test_bootstrap_ignores_ineligible_prompts_exactly():
    codes, true, levels, predict = _essays(3)
    a = predict(1.0)
    garbage = a.copy()
    on_p1 = codes == 1
    garbage[on_p1] = (levels[1] - 1) - true[on_p1]  # prompt 1 now has strongly negative QWK
    kw = dict(prompt_codes=codes, true_level=true, n_levels_by_prompt=levels,
              eligible=np.array([True, False, True]), n_boot=40, seed=2)
    reps_a = bootstrap_worst_qwk_replicates(**kw, preds=[a])
    reps_g = bootstrap_worst_qwk_replicates(**kw, preds=[garbage])
    np.testing.assert_array_equal(reps_a, reps_g)
    assert (reps_a > 0).all()
    all_eligible = {**kw, "eligible": np.ones(3, bool)}
    assert (bootstrap_worst_qwk_replicates(**all_eligible, preds=[garbage]) < 0).all()


def _naive_bootstrap(codes, true, preds, levels, eligible, n_boot, seed):
    """Loop version with its own RNG: resample each prompt, QWK per prompt, min over eligible."""
    rng = np.random.default_rng(seed)
    out = np.full((len(preds), n_boot), np.nan)
    members = [np.flatnonzero(codes == p) for p in range(len(levels))]
    for r in range(n_boot):
        draws = [rng.choice(m, size=len(m), replace=True) for m in members]
        for j, pred in enumerate(preds):
            rows = np.atleast_2d(pred)  # (repeats, n): per-prompt QWK averaged over repeats
            qs = [np.mean([qwk(true[d], row[d], int(levels[p])) for row in rows])
                  for p, d in enumerate(draws) if eligible[p]]
            qs = [q for q in qs if not np.isnan(q)]
            out[j, r] = min(qs) if qs else np.nan
    return out


def test_bootstrap_se_agrees_with_naive_loop():
    codes, true, levels, predict = _essays(4, sizes=(120, 150, 40), noise=(0.8, 0.8, 3.0))
    a, b = predict(1.0), predict(1.2)
    eligible = np.array([True, True, False])
    n_boot = 1500
    fast = bootstrap_worst_qwk_replicates(prompt_codes=codes, true_level=true, preds=[a, b],
                                          n_levels_by_prompt=levels, eligible=eligible,
                                          n_boot=n_boot, seed=0)
    slow = _naive_bootstrap(codes, true, [a, b], levels, eligible, n_boot, seed=123)
    # Two independent bootstraps of the same statistic: SDs within 12% of each other
    # (sampling error of an SD over 1500 replicates is ~2%), means within 4 SEs.
    for f, s in ((fast[0], slow[0]), (fast[1], slow[1]), (fast[0] - fast[1], slow[0] - slow[1])):
        assert np.std(f, ddof=1) == pytest.approx(np.std(s, ddof=1), rel=0.12)
        assert abs(f.mean() - s.mean()) < 4 * np.std(s, ddof=1) / np.sqrt(n_boot) * np.sqrt(2)
    se = bootstrap_worst_qwk_diff_se(prompt_codes=codes, true_level=true, pred_a=a, pred_b=b,
                                     n_levels_by_prompt=levels, eligible=eligible,
                                     n_boot=n_boot, seed=0)
    assert se == pytest.approx(np.std(fast[0] - fast[1], ddof=1))
    # Replicate worst QWKs centre on the full-sample worst QWK.
    worst_a = min(qwk(true[codes == p], a[codes == p], int(levels[p])) for p in (0, 1))
    assert abs(np.median(fast[0]) - worst_a) < 3 * np.std(fast[0], ddof=1)


def test_bootstrap_with_repeats_averages_each_prompt_before_the_minimum():
    """One row per fold assignment: a prompt's QWK is averaged over the rows, then the minimum
    is taken, as for the worst-prompt objective."""
    codes, true, levels, predict = _essays(6, sizes=(120, 150, 60), noise=(0.8, 1.0, 1.4))
    a, b = predict(1.0), predict(1.0)  # two fold assignments' predictions of the same essays
    assert not np.array_equal(a, b)
    kw = dict(prompt_codes=codes, true_level=true, n_levels_by_prompt=levels,
              eligible=np.ones(3, bool), seed=3)
    single = bootstrap_worst_qwk_replicates(**kw, preds=[a], n_boot=60)
    np.testing.assert_array_equal(bootstrap_worst_qwk_replicates(**kw, preds=[np.stack([a, a])],
                                                                 n_boot=60), single)
    n_boot = 1500
    fast = bootstrap_worst_qwk_replicates(**kw, preds=[np.stack([a, b])], n_boot=n_boot)[0]
    slow = _naive_bootstrap(codes, true, [np.stack([a, b])], levels, np.ones(3, bool), n_boot,
                            seed=99)[0]
    assert np.std(fast, ddof=1) == pytest.approx(np.std(slow, ddof=1), rel=0.12)
    assert abs(fast.mean() - slow.mean()) < 4 * np.std(slow, ddof=1) / np.sqrt(n_boot) * np.sqrt(2)
    # Not the minimum of each row's worst: that would sit below the average-then-minimum.
    min_of_rows = np.minimum(bootstrap_worst_qwk_replicates(**kw, preds=[a], n_boot=n_boot)[0],
                             bootstrap_worst_qwk_replicates(**kw, preds=[b], n_boot=n_boot)[0])
    assert (fast >= min_of_rows - 1e-12).all() and (fast > min_of_rows + 1e-9).any()
    with pytest.raises(ValueError, match="same length"):
        bootstrap_worst_qwk_replicates(**kw, preds=[np.stack([a, b])[:, :-1]], n_boot=5)


def test_bootstrap_all_ineligible_is_nan():
    codes, true, levels, predict = _essays(5)
    se = bootstrap_worst_qwk_se(prompt_codes=codes, true_level=true, pred=predict(1.0),
                                n_levels_by_prompt=levels, eligible=np.zeros(3, bool), n_boot=10)
    assert np.isnan(se)


# ----------------------------------------------------------------------------- gate


BASE = {"mean_qwk": 0.75, "pooled_qwk": 0.5, "low_tail_mae": 0.25, "high_tail_mae": 0.125}


@pytest.mark.parametrize("metric", ["mean_qwk", "pooled_qwk"])
def test_gate_qwk_boundary(metric):
    margin = 0.125  # dyadic values: the boundary is exact in binary
    at = {**BASE, metric: BASE[metric] - margin}
    v = gate_verdict(candidate=at, baseline=BASE, margin=margin)
    assert v.passed and not any(c.regressed for c in v.checks)
    below = {**BASE, metric: np.nextafter(BASE[metric] - margin, -1.0)}
    v = gate_verdict(candidate=below, baseline=BASE, margin=margin)
    assert not v.passed
    assert [c.metric for c in v.checks if c.regressed] == [metric]
    check = next(c for c in v.checks if c.metric == metric)
    assert check.direction == "maximize"
    assert check.delta == pytest.approx(below[metric] - BASE[metric])


@pytest.mark.parametrize("metric", ["low_tail_mae", "high_tail_mae"])
def test_gate_mae_boundary(metric):
    margin = 0.0625
    at = {**BASE, metric: BASE[metric] + margin}
    assert gate_verdict(candidate=at, baseline=BASE, margin=margin).passed
    above = {**BASE, metric: np.nextafter(BASE[metric] + margin, 2.0)}
    v = gate_verdict(candidate=above, baseline=BASE, margin=margin)
    assert not v.passed
    check = next(c for c in v.checks if c.metric == metric)
    assert check.regressed and check.direction == "minimize" and check.delta > 0


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(list(BASE)), st.floats(-1, 2)),
       st.floats(0, 0.5))
def test_gate_matches_definition(cand_updates, margin):
    cand = {**BASE, **cand_updates}
    v = gate_verdict(candidate=cand, baseline=BASE, margin=margin)
    expected = [
        (cand[m] < BASE[m] - margin) if m.endswith("_qwk") else (cand[m] > BASE[m] + margin)
        for m in BASE
    ]
    assert [c.regressed for c in v.checks] == expected
    assert v.passed == (not any(expected))


def test_gate_skips_missing_values_and_serialises():
    cand = {"mean_qwk": 0.7, "pooled_qwk": None, "low_tail_mae": float("nan")}
    v = gate_verdict(candidate=cand, baseline=BASE, margin=0.01)
    assert v.skipped == ("pooled_qwk", "worst_prompt_qwk", "low_tail_mae", "high_tail_mae")
    assert [c.metric for c in v.checks] == ["mean_qwk"]
    assert not v.passed  # 0.7 < 0.75 - 0.01
    d = json.loads(json.dumps(v.to_dict()))
    assert d["passed"] is False and d["skipped"] == list(v.skipped)
    assert d["checks"][0]["metric"] == "mean_qwk" and d["checks"][0]["regressed"] is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.passed = True  # type: ignore[misc]


def test_gate_takes_a_metric_s_own_margin():
    """Worst-prompt QWK is noisier: its own margin lets a drop pass that the common one fails."""
    base = {"worst_prompt_qwk": 0.40}
    cand = {"worst_prompt_qwk": 0.35}
    common = gate_verdict(candidate=cand, baseline=base, margin=0.02,
                          metrics=("worst_prompt_qwk",))
    own = gate_verdict(candidate=cand, baseline=base, margin=0.02,
                       metrics=("worst_prompt_qwk",), margins={"worst_prompt_qwk": 0.10})
    assert not common.passed and own.passed
    assert own.checks[0].margin == 0.10 and common.checks[0].margin == 0.02
    far = gate_verdict(candidate={"worst_prompt_qwk": 0.29}, baseline=base, margin=0.02,
                       metrics=("worst_prompt_qwk",), margins={"worst_prompt_qwk": 0.10})
    assert not far.passed


def test_gate_rejects_unknown_metric_and_negative_margin():
    with pytest.raises(ValueError):
        gate_verdict(candidate=BASE, baseline=BASE, margin=0.0, metrics=("accuracy",))
    with pytest.raises(ValueError):
        gate_verdict(candidate=BASE, baseline=BASE, margin=-0.1)


# ----------------------------------------------------------------------------- tails, success


def test_tail_tradeoff_amounts():
    base = {"low_tail_mae": 0.25, "high_tail_mae": 0.5}
    cand = {"low_tail_mae": 0.375, "high_tail_mae": 0.5625}
    rows = {r["metric"]: r for r in tail_tradeoff(candidate=cand, baseline=base, tolerance=0.0625)}
    low, high = rows["low_tail_mae"], rows["high_tail_mae"]
    assert low["exceeds"] and low["delta"] == 0.125 and low["excess"] == 0.0625
    assert low["guardrail"] == 0.3125
    assert not high["exceeds"] and high["excess"] == 0.0  # exactly at the guardrail
    missing = tail_tradeoff(candidate={"low_tail_mae": None}, baseline=base, tolerance=0.0)
    assert all(not r["comparable"] and not r["exceeds"] for r in missing)


@settings(max_examples=200)
@given(st.lists(st.floats(0, 1), min_size=8, max_size=8))
def test_success_criterion_matches_definition(v):
    names = ["mean_qwk", "worst_prompt_qwk", "low_tail_mae", "high_tail_mae"]
    cand, base = dict(zip(names, v[:4], strict=True)), dict(zip(names, v[4:], strict=True))
    out = success_criterion(candidate=cand, baseline=base)
    expected = {
        "mean_qwk": cand["mean_qwk"] >= base["mean_qwk"],
        "worst_prompt_qwk": cand["worst_prompt_qwk"] >= base["worst_prompt_qwk"],
        "low_tail_mae": cand["low_tail_mae"] <= base["low_tail_mae"],
        "high_tail_mae": cand["high_tail_mae"] <= base["high_tail_mae"],
    }
    assert {k: c["ok"] for k, c in out["checks"].items()} == expected
    assert out["met"] == all(expected.values())
    assert success_criterion(candidate=base, baseline=base)["met"]


def test_success_criterion_nan_is_not_met():
    base = {"mean_qwk": 0.7, "worst_prompt_qwk": 0.6, "low_tail_mae": 0.2, "high_tail_mae": 0.2}
    out = success_criterion(candidate={**base, "worst_prompt_qwk": float("nan")}, baseline=base)
    assert not out["met"] and not out["checks"]["worst_prompt_qwk"]["ok"]
