"""The metric registry and ObjectiveSet: directions, comparisons, and reading a real CV run.

Expected directions and values are written out by hand here (and QWKs recomputed with
scikit-learn), never read back from the registry being tested.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from moqwk.core.metrics import CVMetrics, compute_metrics
from moqwk.core.objectives import (
    DEFAULT_OBJECTIVES,
    METRICS,
    Metric,
    ObjectiveSet,
    fmt,
    metric,
)

#: Every registered metric and its direction, by hand. A new metric fails here until its
#: direction (and, below, how it is read from a CV run) is written down.
DIRECTIONS = {
    "worst_prompt_qwk": "maximize", "mean_qwk": "maximize", "pooled_qwk": "maximize",
    "cvar10_prompt_qwk": "maximize", "eb_worst_prompt_qwk": "maximize",
    "low_tail_mae": "minimize", "high_tail_mae": "minimize",
    "low_tail_bias": None, "high_tail_bias": None,
}

# --------------------------------------------------------------------------- a tiny CV run
# Scale 1..5 step 1; prompt "a" has 4 essays, "b" 3; min_prompt_n 3 makes both eligible.
PROMPTS = np.array([0, 0, 0, 0, 1, 1, 1])
Y_TRUE = np.array([1.0, 2.0, 4.0, 5.0, 1.0, 3.0, 5.0])
Y_PRED = np.array([1.0, 3.0, 4.0, 4.0, 2.0, 3.0, 5.0])


def cv_run(*, min_prompt_n: int = 3, global_scale: bool = True) -> CVMetrics:
    n = len(Y_TRUE)
    return compute_metrics(prompt_codes=PROMPTS, prompt_names=["a", "b"],
                           repeat=np.zeros(n, int), y_true=Y_TRUE, y_pred=Y_PRED,
                           lo=np.full(n, 1.0), hi=np.full(n, 5.0), step=np.full(n, 1.0),
                           min_prompt_n=min_prompt_n, low_band=0.25, high_band=0.75,
                           global_scale=global_scale)


def by_hand() -> dict[str, float]:
    """The same numbers from scikit-learn and numpy, on levels 0..4 (the full scale)."""
    labels = list(range(5))
    t, p = (Y_TRUE - 1).astype(int), (Y_PRED - 1).astype(int)
    q = [cohen_kappa_score(t[PROMPTS == k], p[PROMPTS == k], weights="quadratic", labels=labels)
         for k in (0, 1)]
    err = (Y_PRED - Y_TRUE) / 4.0  # normalised units
    low, high = Y_TRUE <= 2.0, Y_TRUE >= 4.0  # z <= 0.25 and z >= 0.75
    # EB shrinkage (the estimator of moqwk.core.worst_prompt) with each prompt's QWK variance
    # from Lin's delta method on that prompt's level moments, summed here with numpy
    from moqwk.core.pooled import lin_variance
    from moqwk.core.worst_prompt import eb_worst

    var = []
    for k in (0, 1):
        a, b = t[PROMPTS == k].astype(float), p[PROMPTS == k].astype(float)
        moments = (len(a), a.sum(), (a * a).sum(), b.sum(), (b * b).sum(), (a * b).sum())
        var.append(float(lin_variance(*(np.array(float(v)) for v in moments))))
    return {
        "worst_prompt_qwk": min(q), "mean_qwk": float(np.mean(q)),
        "cvar10_prompt_qwk": min(q),  # 10% of 2 prompts: the one worst prompt
        "eb_worst_prompt_qwk": float(eb_worst(np.array(q), sampling_var=np.array(var))),
        "pooled_qwk": cohen_kappa_score(t, p, weights="quadratic", labels=labels),
        "low_tail_mae": float(np.abs(err[low]).mean()),
        "high_tail_mae": float(np.abs(err[high]).mean()),
        "low_tail_bias": float(err[low].mean()), "high_tail_bias": float(err[high].mean()),
    }


# --------------------------------------------------------------------------- the registry


def test_every_metric_has_the_direction_written_here():
    assert {n: m.direction for n, m in METRICS.items()} == DIRECTIONS


def test_every_registered_metric_is_read_from_a_real_cv_run():
    m = cv_run()
    expected = by_hand()
    assert set(METRICS) == set(expected)
    assert expected["low_tail_bias"] != expected["high_tail_bias"]  # the reads are told apart
    for name, spec in METRICS.items():
        assert spec.value(m) == pytest.approx(expected[name], abs=1e-12), name


def test_pooled_qwk_is_none_on_per_prompt_scales():
    assert metric("pooled_qwk").value(cv_run(global_scale=False)) is None
    assert metric("pooled_qwk").format(None) == "n/a"


def test_maximised_metric_loss_better_and_regressed():
    q = metric("worst_prompt_qwk")
    assert q.loss(0.7) == -0.7
    assert q.better(0.7, 0.6) and not q.better(0.6, 0.7) and not q.better(0.6, 0.6)
    assert q.regressed(0.55, 0.6, margin=0.04)  # 0.05 worse, more than the margin
    assert not q.regressed(0.57, 0.6, margin=0.04)  # 0.03 worse, within it
    assert not q.regressed(0.9, 0.6, margin=0.0)


def test_minimised_metric_loss_better_and_regressed():
    mae = metric("low_tail_mae")
    assert mae.loss(0.2) == 0.2
    assert mae.better(0.1, 0.2) and not mae.better(0.2, 0.1)
    assert mae.regressed(0.25, 0.2, margin=0.04)
    assert not mae.regressed(0.23, 0.2, margin=0.04)
    assert not mae.regressed(0.1, 0.2, margin=0.0)


def test_a_metric_without_direction_has_no_loss():
    with pytest.raises(ValueError, match="low_tail_bias has no direction"):
        metric("low_tail_bias").loss(0.1)
    with pytest.raises(ValueError, match="no direction"):
        metric("high_tail_bias").better(0.1, 0.2)


def test_a_misspelt_direction_is_refused():
    with pytest.raises(ValueError, match="'max'"):
        Metric(name="x", direction="max", label="x", short="x",  # type: ignore[arg-type]
               value=lambda m: 0.0)


def test_unknown_metric_lists_the_known_ones():
    with pytest.raises(ValueError) as ei:
        metric("accuracy")
    assert "'accuracy'" in str(ei.value) and "worst_prompt_qwk" in str(ei.value)


@pytest.mark.parametrize("x, digits, text", [
    (None, 3, "n/a"), (math.nan, 3, "n/a"), (0.12345, 3, "0.123"), (0.98765, 2, "0.99"),
    (1, 2, "1.00"), (-0.5, 1, "-0.5"),
])
def test_fmt(x, digits, text):
    assert fmt(x, digits) == text


# --------------------------------------------------------------------------- ObjectiveSet


def test_default_objectives_in_optuna_order():
    assert DEFAULT_OBJECTIVES.names == ("worst_prompt_qwk", "mean_qwk", "low_tail_mae",
                                        "high_tail_mae")
    assert DEFAULT_OBJECTIVES.directions == ["maximize", "maximize", "minimize", "minimize"]


def test_directions_follow_the_names_not_their_position():
    o = ObjectiveSet(primary="mean_qwk", secondary="low_tail_mae",
                     tails=("high_tail_mae", "pooled_qwk"))
    assert o.directions == ["maximize", "minimize", "minimize", "maximize"]


def test_values_of_a_cv_run_and_nan_when_undefined():
    expected = by_hand()
    vals = DEFAULT_OBJECTIVES.values(cv_run())
    assert list(vals) == list(DEFAULT_OBJECTIVES.names)
    assert vals == pytest.approx({k: expected[k] for k in DEFAULT_OBJECTIVES.names}, abs=1e-12)
    none_eligible = DEFAULT_OBJECTIVES.values(cv_run(min_prompt_n=10))  # no prompt has 10
    assert math.isnan(none_eligible["worst_prompt_qwk"]) and math.isnan(none_eligible["mean_qwk"])
    assert none_eligible["low_tail_mae"] == pytest.approx(expected["low_tail_mae"])


def test_to_dict_and_from_names_round_trip():
    o = ObjectiveSet(primary="mean_qwk", secondary="worst_prompt_qwk",
                     tails=("high_tail_mae", "low_tail_mae"))
    d = o.to_dict()
    assert d == {
        "primary": "mean_qwk", "secondary": "worst_prompt_qwk",
        "tails": ["high_tail_mae", "low_tail_mae"],
        "directions": {"mean_qwk": "maximize", "worst_prompt_qwk": "maximize",
                       "high_tail_mae": "minimize", "low_tail_mae": "minimize"},
        "labels": {"mean_qwk": "mean per-prompt QWK", "worst_prompt_qwk": "worst-prompt QWK",
                   "high_tail_mae": "high-tail MAE", "low_tail_mae": "low-tail MAE"},
    }
    assert ObjectiveSet.from_names(o.names) == o
    assert ObjectiveSet.from_names(DEFAULT_OBJECTIVES.names) == DEFAULT_OBJECTIVES


@pytest.mark.parametrize("kwargs, needle", [
    ({"primary": "low_tail_bias"}, "no direction"),
    ({"secondary": "worst_prompt_qwk"}, "repeat"),
    ({"primary": "qwk"}, "unknown metric"),
])
def test_bad_objective_sets_are_refused(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        ObjectiveSet(**kwargs)


def test_from_names_needs_four():
    with pytest.raises(ValueError, match="4 metrics"):
        ObjectiveSet.from_names(["worst_prompt_qwk", "mean_qwk", "low_tail_mae"])


# --------------------------------------------------------------------------- the one table


def test_the_gate_and_the_config_choices_are_read_from_the_table():
    from moqwk.core.objectives import candidates, gate_metrics, worst_prompt_choices
    from moqwk.core.selection import GATE_METRICS

    assert gate_metrics() == GATE_METRICS == ("mean_qwk", "pooled_qwk", "worst_prompt_qwk",
                                              "low_tail_mae", "high_tail_mae")
    assert worst_prompt_choices() == {"min": "worst_prompt_qwk", "cvar10": "cvar10_prompt_qwk",
                                      "eb_min": "eb_worst_prompt_qwk"}
    assert candidates("secondary") == ("mean_qwk",)
    assert candidates("tail") == ("low_tail_mae", "high_tail_mae")
    with pytest.raises(ValueError, match="unknown role 'guard'"):
        candidates("guard")


def test_every_objective_role_has_a_resampled_function_and_a_direction():
    from moqwk.core.objectives import METRICS, Metric

    for m in METRICS.values():
        if m.roles:
            assert m.direction is not None and m.resampled is not None, m.name
    with pytest.raises(ValueError, match="unknown role 'guard'"):
        Metric(name="x", direction="maximize", label="x", short="x", value=lambda m: None,
               resampled=lambda s: s.qwk[..., 0], roles={"guard"})
    with pytest.raises(ValueError, match="needs a direction and a resampled function"):
        Metric(name="x", direction="maximize", label="x", short="x", value=lambda m: None,
               roles={"secondary"})


def test_register_adds_a_metric_once(monkeypatch):
    import numpy as np

    from moqwk.core.objectives import METRICS, prompt_metric, register

    monkeypatch.setattr("moqwk.core.objectives.METRICS", dict(METRICS))
    from moqwk.core import objectives

    best = prompt_metric(name="best_prompt_qwk", direction="maximize", label="best QWK",
                         short="best", roles={"secondary"},
                         summary=lambda q, *, weights, sampling_var: np.nanmax(
                             np.where((np.ones_like(q) if weights is None else weights) > 0,
                                      q, np.nan), axis=-1))
    assert register(best) is best and objectives.metric("best_prompt_qwk") is best
    assert "best_prompt_qwk" in objectives.candidates("secondary")
    with pytest.raises(ValueError, match="registered already"):
        register(best)
    assert "best_prompt_qwk" not in METRICS  # the module's own table was a copy here
