"""compare's verdict counts consistent small losses: ties alone are not "met" when every
objective leans the same way (the joint rule), and a real near-tie still is."""

from __future__ import annotations

import pytest

from moqwk.core.objectives import DEFAULT_OBJECTIVES
from moqwk.stages.compare import JOINT_LOSS_LIMIT, RunSummary, verdict

NAMES = DEFAULT_OBJECTIVES.names  # worst_prompt_qwk, mean_qwk, low_tail_mae, high_tail_mae
SE = {"worst_prompt_qwk": 0.05, "mean_qwk": 0.01, "low_tail_mae": 0.004, "high_tail_mae": 0.004}
SECOND = {"worst_prompt_qwk": 0.40, "mean_qwk": 0.60, "low_tail_mae": 0.12, "high_tail_mae": 0.11}
WORSE_SIGN = {"worst_prompt_qwk": -1, "mean_qwk": -1, "low_tail_mae": 1, "high_tail_mae": 1}


def run(name: str, *, allow: bool = False) -> RunSummary:
    return RunSummary(run_dir=name, trial_number=1, params={}, in_sample={}, gate_passed=True,
                      allow_tail_regression=allow, sampler="nsga2", n_trials=10, wall_s=None,
                      data_hash="h", objectives=DEFAULT_OBJECTIVES)


def shifted(ses: dict[str, float]) -> tuple[dict, dict]:
    """First run's numbers: each objective moved by ``ses[name]`` SEs in the worse direction."""
    first = {n: SECOND[n] + WORSE_SIGN[n] * ses[n] * SE[n] for n in NAMES}
    paired = {n: {"difference": first[n] - SECOND[n], "se": SE[n],
                  "tie": abs(first[n] - SECOND[n]) <= SE[n]} for n in NAMES}
    return first, paired


def test_worse_on_all_four_by_0_9_se_is_not_met():
    first, paired = shifted(dict.fromkeys(NAMES, 0.9))
    v = verdict(run("a"), run("b"), first, SECOND, paired)
    assert all(c["tie"] and c["ok"] for c in v["checks"].values())  # each one alone: a tie
    assert v["joint"]["all_worse"] is True
    assert v["joint"]["mean_standardised_loss"] == pytest.approx(0.9)
    assert v["joint"]["ok"] is False and v["met"] is False


def test_one_small_loss_among_gains_is_met():
    first, paired = shifted({"worst_prompt_qwk": 0.9, "mean_qwk": -0.5, "low_tail_mae": 0.0,
                             "high_tail_mae": -0.2})
    v = verdict(run("a"), run("b"), first, SECOND, paired)
    assert v["joint"]["mean_standardised_loss"] == pytest.approx(0.05)
    assert v["joint"]["ok"] is True and v["met"] is True


def test_the_limit_is_where_the_verdict_turns():
    just_over, paired = shifted(dict.fromkeys(NAMES, JOINT_LOSS_LIMIT + 0.01))
    assert verdict(run("a"), run("b"), just_over, SECOND, paired)["met"] is False
    just_under, paired = shifted(dict.fromkeys(NAMES, JOINT_LOSS_LIMIT - 0.01))
    assert verdict(run("a"), run("b"), just_under, SECOND, paired)["met"] is True


def test_allowed_tail_regressions_do_not_count_in_the_joint_rule():
    first, paired = shifted({"worst_prompt_qwk": 0.1, "mean_qwk": 0.1, "low_tail_mae": 3.0,
                             "high_tail_mae": 3.0})
    v = verdict(run("a", allow=True), run("b"), first, SECOND, paired)
    assert v["joint"]["mean_standardised_loss"] == pytest.approx(0.1) and v["met"] is True
    assert verdict(run("a"), run("b"), first, SECOND, paired)["met"] is False
