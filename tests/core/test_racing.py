"""Fold racing's pure rule against brute force: the optimistic bounds never fall on the wrong
side of the finished trial's value, and dominance with a margin is what it says."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from moqwk.core import racing
from moqwk.core.metrics import compute_metrics
from moqwk.core.objectives import metric
from moqwk.core.worst_prompt import estimator

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # empty prompts

NAMES = ("worst_prompt_qwk", "mean_qwk", "low_tail_mae", "high_tail_mae")


def _corpus(rng: np.random.Generator, n_prompts: int):
    """Random essays on a 1..5 scale (step 1), random predictions, random prompt sizes."""
    sizes = rng.integers(3, 30, size=n_prompts)
    codes = np.repeat(np.arange(n_prompts), sizes)
    y = rng.integers(1, 6, size=len(codes)).astype(float)
    noise = rng.integers(-2, 3, size=len(codes)) * rng.integers(0, 2, size=len(codes))
    pred = np.clip(y + noise, 1, 5).astype(float)
    return codes, y, pred


def _metrics(codes, y, pred, n_prompts, min_n):
    ones = np.ones(len(y))
    return compute_metrics(prompt_codes=codes, prompt_names=[f"p{i}" for i in range(n_prompts)],
                           repeat=np.zeros(len(y), dtype=int), y_true=y, y_pred=pred,
                           lo=ones, hi=5 * ones, step=ones, min_prompt_n=min_n, low_band=0.25,
                           high_band=0.75, global_scale=True)


def _partial(codes, y, pred, seen_prompts, n_prompts, min_n) -> racing.Partial:
    """What a rung knows, computed directly (not through moqwk.engine.racing): the seen prompts'
    QWK, the unseen ones that could be eligible, and the seen tail errors."""
    seen = np.isin(codes, list(seen_prompts))
    q = np.array([], dtype=float)
    if seen.any():
        m = _metrics(codes[seen], y[seen], pred[seen], n_prompts, min_n)
        q = np.array([r.qwk for r in m.per_prompt if r.eligible])
    sizes = np.bincount(codes, minlength=n_prompts)
    unseen = [p for p in range(n_prompts) if p not in seen_prompts and sizes[p] >= min_n]
    z = (y - 1) / 4
    err = np.abs((pred - 1) / 4 - z)
    low, high = z <= 0.25 + 1e-9, z >= 0.75 - 1e-9
    return racing.Partial(seen_qwk=q, n_unseen=len(unseen),
                          low_abs_sum=float(err[low & seen].sum()), low_rows=int(low.sum()),
                          high_abs_sum=float(err[high & seen].sum()), high_rows=int(high.sum()))


@pytest.mark.parametrize("seed", range(40))
def test_the_bound_is_optimistic_for_every_prefix_of_folds(seed):
    """Brute force: for random corpora, every fold order and every prefix, each objective's
    bound is on the optimistic side of the whole CV's value (QWK above, MAE below)."""
    rng = np.random.default_rng(seed)
    n_prompts = int(rng.integers(3, 9))
    min_n = int(rng.integers(3, 15))
    codes, y, pred = _corpus(rng, n_prompts)
    final = _metrics(codes, y, pred, n_prompts, min_n)
    if final.n_eligible_prompts == 0:
        pytest.skip("no eligible prompt")
    full = {"worst_prompt_qwk": final.worst_prompt_qwk, "mean_qwk": final.mean_qwk,
            "low_tail_mae": final.low_tail_mae, "high_tail_mae": final.high_tail_mae}
    q_final = np.array([r.qwk for r in final.per_prompt if r.eligible])
    full["cvar10_prompt_qwk"] = float(estimator("cvar10")(q_final))
    fold_of = rng.integers(0, 4, size=n_prompts)
    for order in itertools.permutations(range(4)):
        for k in range(5):
            seen = {p for p in range(n_prompts) if fold_of[p] in order[:k]}
            part = _partial(codes, y, pred, seen, n_prompts, min_n)
            for name, v in full.items():
                b = racing.optimistic_value(name, part)
                if np.isnan(v):
                    continue
                if metric(name).maximize:
                    assert b >= v - 1e-12, (name, k, b, v)
                else:
                    assert b <= v + 1e-12, (name, k, b, v)
            if k == 4:  # everything seen: the bound is the value itself
                for name in NAMES:
                    assert racing.optimistic_value(name, part) == pytest.approx(full[name])


def test_eb_min_gets_no_bound_because_it_is_not_monotone():
    part = racing.Partial(seen_qwk=np.array([0.1, 0.2]), n_unseen=1, low_abs_sum=0, low_rows=1,
                          high_abs_sum=0, high_rows=1)
    assert racing.optimistic_value("eb_worst_prompt_qwk", part) == np.inf


def test_unseen_prompts_count_as_qwk_one():
    part = racing.Partial(seen_qwk=np.array([0.4, 0.6]), n_unseen=2, low_abs_sum=2.0,
                          low_rows=10, high_abs_sum=1.0, high_rows=4)
    assert racing.optimistic_value("mean_qwk", part) == pytest.approx((0.4 + 0.6 + 2) / 4)
    assert racing.optimistic_value("worst_prompt_qwk", part) == pytest.approx(0.4)
    assert racing.optimistic_value("low_tail_mae", part) == pytest.approx(0.2)
    assert racing.optimistic_value("high_tail_mae", part) == pytest.approx(0.25)


def _brute_dominates(f, b, m) -> bool:
    return all(fi + mi <= bi for fi, bi, mi in zip(f, b, m, strict=True)) and any(
        fi + mi < bi for fi, bi, mi in zip(f, b, m, strict=True))


@pytest.mark.parametrize("seed", range(30))
def test_dominating_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    front = np.round(rng.normal(size=(int(rng.integers(0, 6)), 4)), 1)
    bound = np.round(rng.normal(size=4), 1)
    margins = np.round(rng.uniform(0, 0.3, size=4), 1)
    hit = racing.dominating(bound, front, margins)
    expect = [i for i, f in enumerate(front) if _brute_dominates(f, bound, margins)]
    assert hit == (expect[0] if expect else None)


def test_an_equal_trial_is_not_dominated_and_an_unbounded_objective_never_prunes():
    f = np.array([[0.1, 0.2, 0.3, 0.4]])
    assert racing.dominating(np.array([0.1, 0.2, 0.3, 0.4]), f, np.zeros(4)) is None
    assert racing.dominating(np.array([0.2, 0.3, 0.4, 0.5]), f, np.zeros(4)) == 0
    assert racing.dominating(np.array([0.2, 0.3, 0.4, 0.5]), f, np.full(4, 0.2)) is None
    assert racing.dominating(np.array([-np.inf, 0.3, 0.4, 0.5]), f, np.zeros(4)) is None


def test_a_tail_whose_seen_errors_already_pass_the_limit_is_certainly_infeasible():
    part = racing.Partial(seen_qwk=np.array([0.5]), n_unseen=3, low_abs_sum=3.0, low_rows=10,
                          high_abs_sum=0.1, high_rows=10)
    assert racing.certainly_infeasible(part, {"low_tail_mae": 0.25,
                                              "high_tail_mae": 0.25}) == "low_tail_mae"
    assert racing.certainly_infeasible(part, {"low_tail_mae": 0.35,
                                              "high_tail_mae": 0.25}) is None


def test_default_rungs():
    assert racing.default_rungs(5) == (2, 4)
    assert racing.default_rungs(10) == (5, 9)
    assert racing.default_rungs(3) == (1, 2)
    assert racing.default_rungs(2) == (1,)
    assert racing.default_rungs(1) == ()


# --------------------------------------------------------------------------- statistical bound


def _draws(rng: np.random.Generator, population: np.ndarray, n: int, k: int):
    for _ in range(k):
        idx = rng.permutation(len(population))
        yield idx[:n], idx[n:]


@pytest.mark.parametrize("n_seen", [8, 16, 30])
def test_the_sampled_mean_bound_covers_the_final_mean_as_often_as_z_says(n_seen):
    # 40 prompts' QWKs, skewed as real ones are; the seen ones a random sample, as
    # prompt-holdout folds draw them. z = 2 is one-sided 97.7% under normality; the finite
    # population and the skew cost a little, so the check is 95% over 2,000 draws.
    rng = np.random.default_rng(3)
    q = np.clip(rng.beta(5, 3, size=40), 0, 1)
    covered = worse = 0
    for seen, unseen in _draws(rng, q, n_seen, 2000):
        b = racing.sampled_mean_bound(q[seen], len(unseen), z=2.0)
        covered += b >= q.mean()
        worst = racing.filled_qwk(q[seen], len(unseen)).mean()
        worse += b > worst
    assert covered / 2000 >= 0.95
    assert worse == 0  # always tighter than the worst case at these sizes
    # and a smaller z covers less: the knob does what it says
    low = sum(racing.sampled_mean_bound(q[s], len(u), z=0.5) >= q.mean()
              for s, u in _draws(np.random.default_rng(4), q, n_seen, 500))
    assert low / 500 < covered / 2000


def test_the_sampled_mean_bound_is_exact_with_nothing_unseen_and_silent_on_one_prompt():
    q = np.array([0.2, 0.5, 0.9])
    assert racing.sampled_mean_bound(q, 0, z=2.0) == pytest.approx(q.mean())
    assert racing.sampled_mean_bound(q[:1], 5, z=2.0) is None


def test_the_sampled_ratio_bound_covers_the_final_tail_mae_as_often_as_z_says():
    rng = np.random.default_rng(5)
    rows = rng.integers(1, 25, size=36).astype(float)            # tail essays per prompt
    sums = rows * rng.gamma(4.0, 0.04, size=36)                   # their absolute errors
    truth = sums.sum() / rows.sum()
    covered = 0
    for seen, _ in _draws(rng, rows, 14, 2000):
        b = racing.sampled_ratio_bound(sums[seen], rows[seen], 36, z=2.0)
        covered += b <= truth
    assert covered / 2000 >= 0.95
    assert racing.sampled_ratio_bound(sums, rows, 36, z=2.0) == pytest.approx(truth)
    assert racing.sampled_ratio_bound(sums[:1], rows[:1], 36, z=2.0) is None


@pytest.mark.parametrize("seed", range(20))
def test_the_statistical_bound_is_between_the_estimate_and_the_worst_case(seed):
    rng = np.random.default_rng(seed)
    n_prompts, min_n = 12, 5
    codes, y, pred = _corpus(rng, n_prompts)
    seen = set(rng.choice(n_prompts, size=6, replace=False).tolist())
    p = _partial(codes, y, pred, seen, n_prompts, min_n)
    rows = np.isin(codes, sorted(seen))
    z = (y - 1) / 4
    zp = (pred - 1) / 4
    clusters = {}
    for tail, name in (((z <= 0.25), "low"), ((z >= 0.75), "high")):
        s = np.array([np.abs(zp - z)[rows & tail & (codes == c)].sum() for c in sorted(seen)])
        r = np.array([(rows & tail & (codes == c)).sum() for c in sorted(seen)], dtype=float)
        clusters[name] = ((s, r), int(len(np.unique(codes[tail]))))
    p = racing.Partial(**{**p.__dict__, "low_by_prompt": clusters["low"][0],
                          "low_prompts": clusters["low"][1],
                          "high_by_prompt": clusters["high"][0],
                          "high_prompts": clusters["high"][1]})
    for name in NAMES:
        worst = racing.optimistic_value(name, p)
        stat = racing.optimistic_value(name, p, bound="statistical", z=2.0)
        if metric(name).maximize:
            assert stat <= worst
        else:
            assert stat >= worst
    # the minimum is already bounded by the seen prompts: the statistical bound leaves it be
    assert racing.optimistic_value("worst_prompt_qwk", p, bound="statistical") == \
        racing.optimistic_value("worst_prompt_qwk", p)
    with pytest.raises(ValueError, match="bound must be one of"):
        racing.optimistic_value("mean_qwk", p, bound="hopeful")
