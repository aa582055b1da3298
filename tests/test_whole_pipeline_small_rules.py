"""The small whole-pipeline benchmark's registered rules
(docs/research/whole-pipeline-small-design.md), applied by
``benchmarks/whole_pipeline_small.py`` to hand-made rows whose verdicts are known."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPORA = ("overall", "cohesion", "scaled")


@pytest.fixture(scope="module")
def wps():
    spec = importlib.util.spec_from_file_location(
        "whole_pipeline_small", REPO / "benchmarks" / "whole_pipeline_small.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def m(mean: float, worst: float, low: float = 0.2, high: float = 0.2) -> dict:
    return {"mean_qwk": mean, "worst_prompt_qwk": worst, "low_tail_mae": low,
            "high_tail_mae": high}


def rows(small: dict[str, tuple[float, float]], *, seeds=(7, 8, 9),
         today: tuple[float, float] = (0.55, 0.30)) -> tuple[list[dict], list[dict]]:
    """B0 at (0.50, 0.25) with tail MAEs 0.21 everywhere; B2 at ``today``; B3 at
    ``small[corpus]``; the searches' tail MAEs 0.2."""
    fixed = [{"arm": "round", "corpus": c, "fresh": m(0.50, 0.25, 0.21, 0.21)} for c in CORPORA]
    fixed += [{"arm": "fixed", "corpus": c, "fresh": m(0.56, 0.31)} for c in CORPORA]
    searches = []
    for c in CORPORA:
        for i, s in enumerate(seeds):
            wiggle = (i - 1) * 0.01  # the seeds spread; their mean is the arm's value
            searches.append({"arm": "today", "corpus": c, "seed": s,
                             "fresh": m(today[0] + wiggle, today[1] + wiggle)})
            searches.append({"arm": "small", "corpus": c, "seed": s,
                             "fresh": m(small[c][0] + wiggle, small[c][1] + wiggle)})
    return fixed, searches


def test_a_small_space_that_gains_enough_everywhere_becomes_the_default(wps):
    fixed, searches = rows({c: (0.56, 0.30) for c in CORPORA})
    ev = wps.evaluate(fixed, searches)
    dec = ev["decision"]
    assert dec["decided"] and dec["default_space"] == "small" and dec["failed"] == []
    assert dec["mean_gain"] == pytest.approx(0.01)
    assert ev["arms"]["overall"]["today"]["sd"]["mean_qwk"] == pytest.approx(0.01)


def test_a_gain_under_0005_keeps_todays_space(wps):
    fixed, searches = rows({c: (0.554, 0.30) for c in CORPORA})
    dec = wps.evaluate(fixed, searches)["decision"]
    assert dec["default_space"] == "today" and dec["failed"] == ["mean_gain_at_least_0.005"]


def test_one_corpus_losing_over_002_on_the_worst_prompt_keeps_todays_space(wps):
    small = {"overall": (0.58, 0.33), "cohesion": (0.58, 0.31), "scaled": (0.58, 0.275)}
    fixed, searches = rows(small)
    dec = wps.evaluate(fixed, searches)["decision"]
    assert dec["worst_prompt_diff"]["scaled"] == pytest.approx(-0.025)
    assert dec["default_space"] == "today"
    assert dec["failed"] == ["no_worst_prompt_drop_over_0.02"]


def test_t2_on_the_scaled_corpus_is_measured_against_round(wps):
    small = {"overall": (0.58, 0.30), "cohesion": (0.58, 0.30), "scaled": (0.58, 0.24)}
    fixed, searches = rows(small, today=(0.55, 0.25))
    ev = wps.evaluate(fixed, searches)
    t2 = ev["targets"]["scaled"]["small"]["T2"]
    assert not t2["met"] and t2["worst_margin"] == pytest.approx(-0.01)
    assert ev["decision"]["failed"] == ["T2_and_T3_hold"]


def test_t1_margins_for_the_fixed_pipeline_and_no_decision_while_units_are_missing(wps):
    fixed, searches = rows({c: (0.63, 0.39) for c in CORPORA})
    searches = [s for s in searches if not (s["arm"] == "small" and s["seed"] == 9)]
    ev = wps.evaluate(fixed, searches)
    t1 = ev["targets"]["overall"]["fixed"]["T1"]
    assert not t1["met"] and t1["mean_margin"] == pytest.approx(-0.06)
    assert ev["targets"]["overall"]["small"]["T1"]["met"]
    dec = ev["decision"]
    assert not dec["decided"]
    assert dec["missing"] == ["small-overall", "small-cohesion", "small-scaled"]


def test_the_small_space_adds_four_dimensions_to_todays(wps):
    from moqwk.config import DEFAULT_SPACE

    space = wps.small_space()
    assert set(space) - set(DEFAULT_SPACE) == {
        "mapping.method", "features.word.svd_components", "features.connectives.enabled",
        "features.lexical.enabled"}
    assert space["mapping.method"]["choices"] == ["round", "stretch", "thresholds"]


def test_t3_fails_when_a_search_arm_has_a_worse_tail_than_round(wps):
    fixed, searches = rows({c: (0.58, 0.30) for c in CORPORA})
    searches = [{**s, "fresh": {**s["fresh"], "high_tail_mae": 0.23}}
                if s["arm"] == "small" and s["corpus"] == "cohesion" else s for s in searches]
    ev = wps.evaluate(fixed, searches)
    t3 = ev["targets"]["cohesion"]["small"]["T3"]
    assert not t3["met"] and t3["high_margin"] == pytest.approx(0.02)
    assert ev["decision"]["failed"] == ["T2_and_T3_hold"]


def test_the_baseline_of_every_corpus_lies_in_the_small_space(wps):
    """Trial 0 of a search is the baseline, which must lie in the space (B3 was refused when
    the SVD sizes left out the corpora's own 64)."""
    import yaml

    raw = yaml.safe_load((REPO / "examples" / "ellipse.yaml").read_text(encoding="utf-8"))
    space = wps.small_space()
    baseline = {"features.word.svd_components": raw["features"]["word"]["svd_components"],
                "features.connectives.enabled": False, "features.lexical.enabled": True,
                "mapping.method": "round"}  # connectives off, lexical on: today's defaults
    for name, value in baseline.items():
        assert value in space[name]["choices"], name


def test_a_failed_selection_keeps_trial_0_which_is_the_round_arm(wps, ellipse_csv, tmp_path):
    """The 2026-12-08 amendment: a unit whose selection fails the gate keeps the baseline,
    trial 0. That is B0's pipeline (baseline params, `round`, today's features) in both search
    arms, so the unit's fresh numbers are B0's."""
    import argparse

    trials = [{"number": 1, "state": "complete", "params": {"max_depth": 6}, "values": {}},
              {"number": 0, "state": "complete", "params": {"max_depth": 4,
                                                            "mapping.method": "round"},
               "values": {"mean_qwk": 0.3}}]
    assert wps.kept_baseline(trials) == (0, {"max_depth": 4, "mapping.method": "round"},
                                         {"mean_qwk": 0.3})
    with pytest.raises(RuntimeError, match="trial 0"):
        wps.kept_baseline([{**trials[1], "state": "fail"}])

    args = argparse.Namespace(ellipse=ellipse_csv, budget=50)
    b0 = wps.make_config("overall", tmp_path, args)
    for space in (None, wps.small_space()):
        config = wps.make_config("overall", tmp_path, args, seed=7, space=space)
        assert config.baseline_trial_params == {**b0.baseline_params, "mapping.method": "round"}
        assert config.features == b0.features


def test_gate_verdicts_name_the_metric_that_regressed(wps):
    gate = {"results": [
        {"trial_number": 39, "passed": False, "fallback": {"share": 0.0},
         "checks": [{"metric": "mean_qwk", "regressed": False},
                    {"metric": "high_tail_mae", "regressed": True}]},
        {"trial_number": 25, "passed": True, "fallback": None, "checks": []}]}
    assert wps.gate_verdicts(gate) == [
        {"trial": 39, "passed": False, "regressed": ["high_tail_mae"], "fallback_share": 0.0},
        {"trial": 25, "passed": True, "regressed": [], "fallback_share": None}]


def test_the_summary_counts_the_units_that_kept_the_baseline(wps):
    fixed, searches = rows({c: (0.56, 0.30) for c in CORPORA})
    searches = [{**s, "selection_failed": s["arm"] == "today" and s["corpus"] == "scaled"
                 and s["seed"] != 9} for s in searches]
    arms = wps.evaluate(fixed, searches)["arms"]
    assert arms["scaled"]["today"]["selection_failed"] == 2
    assert arms["scaled"]["small"]["selection_failed"] == 0
