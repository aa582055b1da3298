"""Pareto front, feasibility and hypervolume against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from moqwk.core.pareto import (
    feasible_mask,
    hypervolume,
    loss_matrix,
    pareto_front_mask,
    violation,
)


def _naive_front(loss: np.ndarray) -> np.ndarray:
    n = len(loss)
    out = np.zeros(n, dtype=bool)
    for i in range(n):
        if np.isnan(loss[i]).any():
            continue
        dominated = False
        for j in range(n):
            if j == i or np.isnan(loss[j]).any():
                continue
            a, b = loss[j], loss[i]
            if all(x <= y for x, y in zip(a, b, strict=True)) and any(
                x < y for x, y in zip(a, b, strict=True)
            ):
                dominated = True
                break
        out[i] = not dominated
    return out


def _hv_inclusion_exclusion(points: np.ndarray, ref: np.ndarray) -> float:
    """Union of boxes [p, ref]: alternating sum over subsets; an intersection is a box."""
    pts = [p for p in points if not np.isnan(p).any() and (p < ref).all()]
    total = 0.0
    for k in range(1, len(pts) + 1):
        for combo in itertools.combinations(pts, k):
            corner = np.max(combo, axis=0)
            total += (-1) ** (k + 1) * float(np.prod(ref - corner))
    return total


def _hv_grid(points: np.ndarray, ref: np.ndarray) -> int:
    """Integer points, integer reference: count unit cells whose lower corner is dominated."""
    lo = points.min(axis=0).astype(int)
    axes = [np.arange(lo[j], int(ref[j])) for j in range(len(ref))]
    cells = np.array(list(itertools.product(*axes)), dtype=float).reshape(-1, len(ref))
    inside = (points[None, :, :] <= cells[:, None, :]).all(axis=2).any(axis=1)
    return int(inside.sum())


# Small integer-valued coordinates: many ties and duplicates.
def _int_loss(max_n: int, min_m: int = 1, max_m: int = 4, lo: int = 0, hi: int = 4):
    return st.integers(min_m, max_m).flatmap(
        lambda m: hnp.arrays(
            float, st.tuples(st.integers(0, max_n), st.just(m)),
            elements=st.integers(lo, hi).map(float),
        )
    )


# ----------------------------------------------------------------------------- loss_matrix


def test_loss_matrix_negates_maximised_columns():
    values = np.array([[0.7, 0.2, 0.1], [0.5, np.nan, 0.3]])
    loss = loss_matrix(values, ["maximize", "minimize", "MAXIMIZE"])
    np.testing.assert_array_equal(loss[:, 0], -values[:, 0])
    np.testing.assert_array_equal(loss[0, 1], values[0, 1])
    assert np.isnan(loss[1, 1])
    np.testing.assert_array_equal(loss[:, 2], -values[:, 2])


def test_loss_matrix_rejects_bad_directions():
    with pytest.raises(ValueError):
        loss_matrix(np.zeros((2, 2)), ["maximize"])
    with pytest.raises(ValueError):
        loss_matrix(np.zeros((2, 1)), ["up"])


# ----------------------------------------------------------------------------- front


@settings(max_examples=300, deadline=None)
@given(_int_loss(max_n=25), st.data())
def test_front_matches_naive_double_loop(loss, data):
    if len(loss):
        nan_rows = data.draw(hnp.arrays(bool, len(loss)))
        loss[nan_rows, 0] = np.nan
    np.testing.assert_array_equal(pareto_front_mask(loss), _naive_front(loss))


@settings(max_examples=100, deadline=None)
@given(_int_loss(max_n=30), st.randoms(use_true_random=False))
def test_front_invariant_to_row_order(loss, rnd):
    perm = np.array(rnd.sample(range(len(loss)), len(loss)), dtype=int)
    np.testing.assert_array_equal(pareto_front_mask(loss[perm]), pareto_front_mask(loss)[perm])


def test_front_keeps_duplicates_and_drops_nan():
    loss = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 1.0], [2.0, 2.0], [np.nan, 0.0], [0.0, 5.0]])
    np.testing.assert_array_equal(
        pareto_front_mask(loss), [True, True, True, False, False, True]
    )


def test_front_chunking_does_not_change_result(monkeypatch):
    rng = np.random.default_rng(3)
    loss = rng.integers(0, 6, size=(300, 3)).astype(float)
    full = pareto_front_mask(loss)
    monkeypatch.setattr("moqwk.core.pareto._DOMINANCE_CELLS", 7)
    np.testing.assert_array_equal(pareto_front_mask(loss), full)
    np.testing.assert_array_equal(full, _naive_front(loss))


def test_front_of_empty_is_empty():
    assert pareto_front_mask(np.empty((0, 3))).shape == (0,)


# ----------------------------------------------------------------------------- constraints


@given(hnp.arrays(float, st.tuples(st.integers(0, 20), st.integers(0, 3)),
                  elements=st.one_of(st.floats(-5, 5), st.just(np.nan))))
def test_feasible_and_violation_match_naive(c):
    feas = feasible_mask(c)
    viol = violation(c)
    for i, row in enumerate(c):
        assert feas[i] == all((not np.isnan(x)) and x <= 0 for x in row)
        expected = sum(np.inf if np.isnan(x) else max(x, 0.0) for x in row)
        assert viol[i] == pytest.approx(expected)
        assert (viol[i] == 0) == feas[i]


def test_feasible_accepts_one_dimensional_constraints():
    np.testing.assert_array_equal(feasible_mask(np.array([-1.0, 0.0, 0.1])), [True, True, False])


# ----------------------------------------------------------------------------- hypervolume


@settings(max_examples=200, deadline=None)
@given(_int_loss(max_n=7, lo=-3, hi=3))
def test_hypervolume_matches_inclusion_exclusion(loss):
    ref = np.full(loss.shape[1], 2.0)  # some points lie on or beyond it and must be ignored
    assert hypervolume(loss, ref) == pytest.approx(_hv_inclusion_exclusion(loss, ref), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(_int_loss(max_n=40, min_m=2, max_m=4, hi=5))
def test_hypervolume_matches_grid_count(loss):
    ref = np.full(loss.shape[1], 6.0)
    if len(loss) == 0:
        assert hypervolume(loss, ref) == 0.0
        return
    assert hypervolume(loss, ref) == _hv_grid(loss, ref)


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(float, st.tuples(st.integers(1, 40), st.just(2)),
                  elements=st.floats(0, 1, allow_nan=False)))
def test_hypervolume_2d_closed_form(loss):
    # Staircase: on the front sorted by x ascending (y then strictly descending), the region is
    # the disjoint union of rectangles [x_i, x_{i+1}) x [y_i, ref_y).
    ref = np.array([1.5, 1.25])
    front = np.unique(loss[_naive_front(loss)], axis=0)
    front = front[np.argsort(front[:, 0])]
    xs = list(front[:, 0]) + [ref[0]]
    expected = sum((xs[i + 1] - xs[i]) * (ref[1] - front[i, 1]) for i in range(len(front)))
    assert hypervolume(loss, ref) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_hypervolume_single_point_is_a_box():
    p = np.array([[0.1, 0.3, 0.2, 0.5]])
    ref = np.array([1.0, 2.0, 0.5, 0.75])
    assert hypervolume(p, ref) == pytest.approx(np.prod(ref - p[0]))


@pytest.mark.parametrize("m", [2, 3, 4])
def test_hypervolume_against_monte_carlo(m):
    rng = np.random.default_rng(10 + m)
    pts = rng.random((60, m)) ** 0.5  # spread out, many non-dominated in higher m
    ref = np.full(m, 1.1)
    hv = hypervolume(pts, ref)
    n_mc = 200_000
    samples = rng.random((n_mc, m)) * 1.1
    covered = np.zeros(n_mc, dtype=bool)
    for p in pts:
        covered |= (samples >= p).all(axis=1)
    box = 1.1**m
    est = covered.mean() * box
    se = np.sqrt(covered.mean() * (1 - covered.mean()) / n_mc) * box
    assert abs(hv - est) < 5 * se + 1e-12


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(float, st.tuples(st.integers(0, 25), st.integers(1, 4)),
                  elements=st.floats(-1, 1, allow_nan=False)),
       st.randoms(use_true_random=False))
def test_hypervolume_invariances(loss, rnd):
    m = loss.shape[1]
    ref = np.full(m, 0.8)
    hv = hypervolume(loss, ref)
    perm = rnd.sample(range(len(loss)), len(loss))
    assert hypervolume(loss[perm], ref) == pytest.approx(hv, rel=1e-9, abs=1e-12)
    # Dominated points, NaN rows and points beyond the reference add nothing.
    extra = np.vstack([loss + 0.1, np.full((1, m), np.nan), np.full((1, m), 0.9), loss])
    assert hypervolume(np.vstack([loss, extra]), ref) == pytest.approx(hv, rel=1e-9, abs=1e-12)
    # Scaling every coordinate and the reference by c scales the volume by c^m.
    assert hypervolume(2.0 * loss, 2.0 * ref) == pytest.approx(2.0**m * hv, rel=1e-9, abs=1e-12)
    # Monotone: one more point never lowers the volume.
    assert hypervolume(np.vstack([loss, np.full((1, m), 0.5)]), ref) >= hv - 1e-12


def test_hypervolume_ignores_points_not_strictly_better_than_reference():
    ref = np.array([1.0, 1.0])
    assert hypervolume(np.array([[1.0, 0.0], [0.0, 1.0], [2.0, -5.0]]), ref) == 0.0
    assert hypervolume(np.empty((0, 2)), ref) == 0.0


def test_hypervolume_rejects_bad_reference():
    with pytest.raises(ValueError):
        hypervolume(np.zeros((1, 2)), np.array([1.0]))
    with pytest.raises(ValueError):
        hypervolume(np.zeros((1, 2)), np.array([1.0, np.nan]))


def test_hypervolume_4d_two_hundred_points_on_a_sphere():
    """200 points on the unit sphere around the reference (its speed: benchmarks/core_speed.py).

    Every box [point, reference] lies inside the unit 4-ball's orthant at the reference, so the
    volume is positive and below that orthant's, (pi^2 / 2) / 16."""
    rng = np.random.default_rng(0)
    x = rng.random((200, 4))
    x = 1.0 - x / np.linalg.norm(x, axis=1, keepdims=True)  # all on a concave front
    assert pareto_front_mask(x).all()
    hv = hypervolume(x, np.ones(4))
    assert 0.0 < hv < np.pi**2 / 32
