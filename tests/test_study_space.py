"""The search space at the Optuna edge (moqwk.study.space): distributions, containment,
neighbours of the baseline, suggesting, and the grid's space."""

from __future__ import annotations

import json
import math

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    json_to_distribution,
)

from moqwk.config.search import SpaceParam, parse_space
from moqwk.study.space import (
    contains,
    distributions,
    distributions_to_json,
    grid_size,
    grid_space,
    neighbours,
    suggest,
)

#: One parameter of every kind the config allows.
SPACE = parse_space({
    "n_estimators": {"type": "int", "low": 30, "high": 120, "step": 30},
    "max_depth": {"type": "int", "low": 2, "high": 8},
    "max_leaves": {"type": "int", "low": 4, "high": 256, "log": True},
    "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
    "subsample": {"type": "float", "low": 0.5, "high": 1.0},
    "colsample_bytree": {"type": "float", "low": 0.3, "high": 1.0, "step": 0.1},
    "tree_method": {"type": "categorical", "choices": ["hist", "approx", "exact"]},
})
CENTRE = {"n_estimators": 60, "max_depth": 4, "max_leaves": 32, "learning_rate": 0.1,
          "subsample": 0.8, "colsample_bytree": 0.6, "tree_method": "hist"}


def test_distributions_from_the_config_space():
    assert distributions(SPACE) == {
        "n_estimators": IntDistribution(30, 120, step=30),
        "max_depth": IntDistribution(2, 8),
        "max_leaves": IntDistribution(4, 256, log=True),
        "learning_rate": FloatDistribution(0.01, 0.3, log=True),
        "subsample": FloatDistribution(0.5, 1.0),
        "colsample_bytree": FloatDistribution(0.3, 1.0, step=0.1),
        "tree_method": CategoricalDistribution(["hist", "approx", "exact"]),
    }


def test_a_hand_built_space_param_becomes_its_distribution():
    assert distributions([SpaceParam("gamma", "float", low=0.0, high=5.0)]) == {
        "gamma": FloatDistribution(0.0, 5.0)}


def test_json_form_round_trips_through_optuna():
    space = distributions(SPACE)
    as_json = distributions_to_json(space)
    assert list(as_json) == list(space)
    for name, d in as_json.items():
        assert json_to_distribution(json.dumps(d)) == space[name], name


# --------------------------------------------------------------------------- contains


def test_the_centre_lies_in_the_space():
    assert contains(distributions(SPACE), CENTRE) == []


@pytest.mark.parametrize("name, value", [
    ("n_estimators", 45),  # between two steps
    ("n_estimators", 150),  # above high
    ("max_depth", 1),
    ("max_leaves", 300),
    ("learning_rate", 0.001),  # below a log range
    ("subsample", 1.01),
    ("colsample_bytree", 0.65),  # off the 0.1 grid
    ("tree_method", "gpu_hist"),
    ("subsample", "high"),  # not a number at all
])
def test_values_outside_the_space_are_named(name, value):
    assert contains(distributions(SPACE), {**CENTRE, name: value}) == [name]


def test_a_missing_parameter_is_outside():
    params = {k: v for k, v in CENTRE.items() if k != "max_depth"}
    assert contains(distributions(SPACE), params) == ["max_depth"]


@pytest.mark.parametrize("name, value", [("n_estimators", 30), ("n_estimators", 120),
                                         ("learning_rate", 0.3), ("colsample_bytree", 0.3)])
def test_bounds_are_inside(name, value):
    assert contains(distributions(SPACE), {**CENTRE, name: value}) == []


# --------------------------------------------------------------------------- neighbours


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1),
       depth=st.integers(-5, 20), rate=st.floats(1e-4, 5.0), sub=st.floats(-1.0, 3.0))
def test_neighbours_stay_in_the_space_even_around_a_centre_outside_it(seed, depth, rate, sub):
    space = distributions(SPACE)
    centre = {**CENTRE, "max_depth": depth, "learning_rate": rate, "subsample": sub}
    out = neighbours(space, centre, k=5, seed=seed)
    assert len(out) == 5
    for p in out:
        assert set(p) == set(space)
        assert contains(space, p) == [], p
        assert isinstance(p["n_estimators"], int) and isinstance(p["subsample"], float)


def test_neighbours_are_deterministic_by_seed():
    space = distributions(SPACE)
    a = neighbours(space, CENTRE, k=6, seed=3)
    assert a == neighbours(space, CENTRE, k=6, seed=3)
    assert a != neighbours(space, CENTRE, k=6, seed=4)


def test_the_order_of_the_space_keys_changes_no_draw():
    """The same space written in another key order (``yaml.safe_dump`` sorts keys, a hand-written
    config does not) gives the same neighbours and, for one seed, the same sampled trials."""
    reordered = list(reversed(SPACE))
    assert [p.name for p in reordered] != [p.name for p in SPACE]
    a, b = distributions(SPACE), distributions(reordered)
    assert list(a) == list(b) == sorted(a)
    as_given = {p.name: distributions([p])[p.name] for p in reordered}  # a mapping in any order
    assert neighbours(as_given, CENTRE, k=4, seed=3) == neighbours(a, CENTRE, k=4, seed=3)

    def draws(space):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
        out = []
        for _ in range(5):
            t = study.ask()
            out.append(suggest(t, space, {}))
            study.tell(t, 0.0)
        return out

    assert draws(a) == draws(b)


def test_neighbours_stay_near_the_centre():
    """Each number moves by about 15% of its range (log ranges: of the log range); most
    categorical values keep the centre's choice."""
    space = distributions(SPACE)
    out = neighbours(space, CENTRE, k=300, seed=0)
    sub = np.array([p["subsample"] for p in out])
    rel = np.abs(sub - CENTRE["subsample"]) / (1.0 - 0.5)
    assert 0.03 < np.median(rel) < 0.2  # spread out, yet close (a normal of sd 0.15: 0.1)
    lr = np.log([p["learning_rate"] for p in out])
    rel_log = np.abs(lr - math.log(0.1)) / (math.log(0.3) - math.log(0.01))
    assert 0.03 < np.median(rel_log) < 0.2
    kept = np.mean([p["tree_method"] == "hist" for p in out])
    assert 0.75 < kept < 0.97


def test_no_neighbours_when_none_are_asked_for():
    assert neighbours(distributions(SPACE), CENTRE, k=0, seed=1) == []


# --------------------------------------------------------------------------- suggest


def test_suggest_draws_every_space_parameter_and_keeps_the_fixed_ones():
    space = distributions(SPACE)
    fixed = {"reg_lambda": 1.0, "max_depth": 99}  # max_depth is searched: the draw wins
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = []
    for _ in range(20):
        t = study.ask()
        drawn.append(suggest(t, space, fixed))
        study.tell(t, 0.0)
    for p in drawn:
        assert p["reg_lambda"] == 1.0
        assert contains(space, p) == []
    assert len({p["learning_rate"] for p in drawn}) == 20


def test_suggest_returns_an_enqueued_config_unchanged():
    space = distributions(SPACE)
    study = optuna.create_study()
    study.enqueue_trial(CENTRE)
    t = study.ask()
    assert suggest(t, space, {"reg_lambda": 2.0}) == {**CENTRE, "reg_lambda": 2.0}


# --------------------------------------------------------------------------- grid


def test_grid_space_adds_the_baseline_value_only_where_it_is_missing():
    grid = {"max_depth": [3, 4, 6], "learning_rate": [0.05, 0.1]}
    space = grid_space(grid, {"max_depth": 5, "learning_rate": 0.1, "subsample": 0.8})
    assert space == {"max_depth": CategoricalDistribution([3, 4, 6, 5]),
                     "learning_rate": CategoricalDistribution([0.05, 0.1])}
    assert grid == {"max_depth": [3, 4, 6], "learning_rate": [0.05, 0.1]}  # not modified
    assert grid_space(grid, {}) == {"max_depth": CategoricalDistribution([3, 4, 6]),
                                    "learning_rate": CategoricalDistribution([0.05, 0.1])}


def test_grid_size_is_the_number_of_points():
    assert grid_size({"a": [1, 2, 3], "b": [0.1, 0.2], "c": ["x"]}) == 6
    assert grid_size({"max_depth": [3, 4, 6], "learning_rate": [0.05, 0.1],
                      "min_child_weight": [1.0, 4.0], "subsample": [0.8, 1.0]}) == 24


def test_a_grid_resumed_in_another_process_runs_every_point_once():
    """A grid study continued by a new sampler (a resume: trials already stored) runs the points
    the first part did not, each once. GridSampler shuffles its points from its seed and gives
    trial i point i of that order, so the resumed sampler must shuffle alike; seeded from the
    number of stored trials (as the other samplers are), it repeated points (found in CI)."""
    from moqwk.study.samplers import SamplerSpec, make_sampler

    grid = {"max_depth": [2, 4, 6], "learning_rate": [0.1, 0.2]}
    spec = SamplerSpec(name="grid", seed=3)
    storage = optuna.storages.InMemoryStorage()

    def objective(trial: optuna.Trial) -> float:
        return float(trial.suggest_int("max_depth", 2, 6) + trial.suggest_float(
            "learning_rate", 0.1, 0.2))

    n_existing = 0
    for n_trials in (2, 4):  # an interrupted first part, then the resume
        study = optuna.create_study(study_name="g", storage=storage, load_if_exists=True,
                                    sampler=make_sampler(spec, n_existing=n_existing, grid=grid))
        study.optimize(objective, n_trials=n_trials)
        n_existing = len(study.trials)
    points = [(t.params["max_depth"], t.params["learning_rate"]) for t in study.trials]
    assert len(points) == 6 and len(set(points)) == 6, points
