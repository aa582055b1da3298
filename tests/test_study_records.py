"""Trial records and progress numbers (moqwk.study.records) from real Optuna FrozenTrials.

Trials are built with ``optuna.trial.create_trial``; expected values are chosen by hand, so a
"best" that followed list positions instead of each metric's direction would fail here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from moqwk.study.records import (
    TrialRecord,
    is_counted,
    is_interrupted,
    progress,
    records,
    trial_record,
)

DEFAULT = ("worst_prompt_qwk", "mean_qwk", "low_tail_mae", "high_tail_mae")
T0 = dt.datetime(2026, 1, 1, 12, 0, 0)
FEASIBLE = {"low_tail_guardrail": -0.01, "high_tail_guardrail": 0.0}
BREAKS_LOW = {"low_tail_guardrail": 0.02, "high_tail_guardrail": -0.01}


def trial(number: int, state: TrialState = TrialState.COMPLETE, *,
          values: list[float] | None = None, constraints: dict | None = None,
          user_attrs: dict | None = None, system_attrs: dict | None = None,
          seconds: float | None = None) -> FrozenTrial:
    t = optuna.trial.create_trial(state=state, values=values, constraints=constraints,
                                  user_attrs=user_attrs, system_attrs=system_attrs)
    t.number = number
    if seconds is not None:
        t.datetime_start = T0
        t.datetime_complete = T0 + dt.timedelta(seconds=seconds)
    return t


# --------------------------------------------------------------------------- trial_record


def test_values_are_keyed_by_the_studys_metric_names_in_its_order():
    t = trial(3, values=[0.5, 0.6, 0.1, 0.2], constraints=FEASIBLE)
    assert trial_record(t, DEFAULT)["values"] == {
        "worst_prompt_qwk": 0.5, "mean_qwk": 0.6, "low_tail_mae": 0.1, "high_tail_mae": 0.2}
    other = ("mean_qwk", "worst_prompt_qwk", "high_tail_mae", "low_tail_mae")
    assert trial_record(t, other)["values"] == {
        "mean_qwk": 0.5, "worst_prompt_qwk": 0.6, "high_tail_mae": 0.1, "low_tail_mae": 0.2}


def test_names_must_match_the_number_of_values():
    with pytest.raises(ValueError):
        trial_record(trial(0, values=[0.5, 0.6, 0.1, 0.2]), DEFAULT[:3])


@pytest.mark.parametrize("state, constraints, feasible", [
    (TrialState.COMPLETE, FEASIBLE, True),  # a constraint of exactly 0 keeps the guardrail
    (TrialState.COMPLETE, BREAKS_LOW, False),
    (TrialState.COMPLETE, {}, False),  # no guardrails recorded: not known to be feasible
    (TrialState.FAIL, FEASIBLE, False),
])
def test_feasible_needs_a_complete_trial_within_every_guardrail(state, constraints, feasible):
    values = [0.5, 0.6, 0.1, 0.2] if state == TrialState.COMPLETE else None
    rec = trial_record(trial(1, state, values=values, constraints=constraints), DEFAULT)
    assert rec["feasible"] is feasible


def test_record_fields_from_user_and_system_attrs():
    params = {"max_depth": 3, "learning_rate": 0.1, "n_estimators": 60}
    t = trial(7, values=[0.5, 0.6, 0.1, 0.2], constraints=FEASIBLE, seconds=2.5,
              user_attrs={"moqwk_role": "seed", "moqwk_params": params,
                          "per_prompt_qwk": {"P1": 0.5}, "moqwk_retry_of": 4},
              system_attrs={"NSGAIISampler:generation": 2})
    rec = trial_record(t, DEFAULT)
    assert (rec["number"], rec["state"], rec["role"], rec["generation"]) == (7, "complete",
                                                                           "seed", 2)
    assert rec["params"] == params  # the full params (fixed ones too), not only those drawn
    assert rec["per_prompt_qwk"] == {"P1": 0.5} and rec["retry_of"] == 4
    assert rec["duration_s"] == 2.5
    assert rec["datetime_start"] == "2026-01-01T12:00:00"
    assert rec["constraints"] == FEASIBLE and rec["failure_reason"] is None


@pytest.mark.parametrize("state, user_attrs, shown, counted, interrupted", [
    (TrialState.FAIL, {"moqwk_failure": "XGBoostError: bad"}, "fail", True, False),
    (TrialState.FAIL, {}, "interrupted", False, True),  # its worker died: retried, not counted
    (TrialState.PRUNED, {"moqwk_surplus": True}, "surplus", False, False),
    (TrialState.PRUNED, {}, "pruned", False, False),
    (TrialState.RUNNING, {}, "running", False, False),
    (TrialState.WAITING, {}, "waiting", False, False),
])
def test_states_a_record_shows_and_what_uses_the_budget(state, user_attrs, shown, counted,
                                                        interrupted):
    t = trial(2, state, user_attrs=user_attrs)
    rec = trial_record(t, DEFAULT)
    assert rec["state"] == shown and rec["values"] is None and rec["feasible"] is False
    assert rec["failure_reason"] == user_attrs.get("moqwk_failure")
    assert is_counted(t) is counted and is_interrupted(t) is interrupted


def test_records_of_a_study_use_its_metric_names():
    study = optuna.create_study(directions=["minimize", "maximize", "minimize", "maximize"])
    names = ["low_tail_mae", "mean_qwk", "high_tail_mae", "worst_prompt_qwk"]
    study.set_metric_names(names)
    study.add_trial(trial(0, values=[0.1, 0.6, 0.2, 0.5], constraints=FEASIBLE))
    (rec,) = records(study)
    assert rec["values"] == {"low_tail_mae": 0.1, "mean_qwk": 0.6, "high_tail_mae": 0.2,
                             "worst_prompt_qwk": 0.5}


# --------------------------------------------------------------------------- progress

#: Three feasible trials whose best values come from different trials on every metric, one
#: infeasible trial better than all of them everywhere, a failure and an interrupted trial.
TRIALS = [
    trial(0, values=[0.50, 0.70, 0.20, 0.30], constraints=FEASIBLE, seconds=1.0),
    trial(1, values=[0.60, 0.65, 0.25, 0.10], constraints=FEASIBLE, seconds=2.0),
    trial(2, values=[0.40, 0.75, 0.15, 0.20], constraints=FEASIBLE, seconds=3.0),
    trial(3, values=[0.90, 0.90, 0.01, 0.01], constraints=BREAKS_LOW, seconds=6.0),
    trial(4, TrialState.FAIL, user_attrs={"moqwk_failure": "ValueError: x"}),
    trial(5, TrialState.FAIL),
]


def test_best_feasible_values_follow_each_metrics_direction():
    p = progress(TRIALS, target=10, started=None, names=DEFAULT)
    assert p["best_feasible"] == {"worst_prompt_qwk": 0.60, "mean_qwk": 0.75,
                                  "low_tail_mae": 0.15, "high_tail_mae": 0.10}


def test_best_feasible_values_follow_names_in_any_order():
    """The same trials recorded by a study that lists its metrics in another order."""
    order = (2, 0, 3, 1)  # low MAE, worst QWK, high MAE, mean QWK
    names = tuple(DEFAULT[i] for i in order)
    shuffled = [trial(t.number, t.state, values=None if t.values is None else
                      [t.values[i] for i in order], constraints=t.constraints,
                      user_attrs=t.user_attrs) for t in TRIALS]
    p = progress(shuffled, target=10, started=None, names=names)
    assert p["best_feasible"] == {"low_tail_mae": 0.15, "worst_prompt_qwk": 0.60,
                                  "high_tail_mae": 0.10, "mean_qwk": 0.75}


def test_progress_counts():
    p = progress(TRIALS + [trial(6, TrialState.RUNNING), trial(7, TrialState.WAITING)],
                 target=10, started=None, names=DEFAULT)
    assert (p["complete"], p["failed"], p["interrupted"], p["running"], p["waiting"],
            p["feasible"], p["target"]) == (4, 1, 1, 1, 1, 3, 10)


def test_no_feasible_trial_has_no_best():
    p = progress([trial(0, values=[0.5, 0.5, 0.5, 0.5], constraints=BREAKS_LOW)], target=3,
                 started=None, names=DEFAULT)
    assert p["feasible"] == 0
    assert p["best_feasible"] == dict.fromkeys(DEFAULT)


def test_no_eta_before_a_trial_has_finished():
    p = progress([trial(0, TrialState.RUNNING)], target=3, started=None, names=DEFAULT)
    assert p["mean_trial_s"] is None and p["eta_s"] is None


def test_eta_is_remaining_budget_times_recent_weighted_cost_over_running_workers():
    # 4 complete (1, 2, 3, 6 s, finished in that order) + 1 failed use 5 of 9: 4 remain. The
    # cost weighs a trial half as much 5 trials back: weights 2^(-3/5), 2^(-2/5), 2^(-1/5), 1.
    w = [2 ** (-3 / 5), 2 ** (-2 / 5), 2 ** (-1 / 5), 1.0]
    cost = sum(wi * s for wi, s in zip(w, (1.0, 2.0, 3.0, 6.0), strict=True)) / sum(w)
    p = progress(TRIALS, target=9, started=None, names=DEFAULT)
    assert p["mean_trial_s"] == pytest.approx(3.0)
    assert p["trial_cost_s"] == pytest.approx(cost)
    assert p["eta_s"] == pytest.approx(4 * cost)
    two_running = TRIALS + [trial(6, TrialState.RUNNING), trial(7, TrialState.RUNNING)]
    assert progress(two_running, target=9, started=None, names=DEFAULT)["eta_s"] == \
        pytest.approx(4 * cost / 2)
    assert progress(TRIALS, target=3, started=None, names=DEFAULT)["eta_s"] == 0.0  # done


def test_elapsed_adds_time_before_a_resume():
    assert progress(TRIALS, target=9, started=None, elapsed_before=12.5,
                    names=DEFAULT)["elapsed_s"] == 12.5


# --------------------------------------------------------------------------- fold racing, ETA


def _timed(number: int, seconds: float, *, trained: bool, state=TrialState.COMPLETE,
           pruned: bool = False) -> FrozenTrial:
    timings = {"train_s": seconds * 0.9 if trained else 0.0, "inner_train_s": 0.0,
               "cache_hits": 0 if trained else 5}
    ua: dict = {"moqwk_metrics": {"timings": timings}}
    if pruned:
        ua = {"moqwk_pruned": {"folds_run": 2, "folds_total": 5, "reason": "dominated",
                               "timings": timings}}
    t = trial(number, state, values=[0.5, 0.6, 0.1, 0.2] if state == TrialState.COMPLETE
              else None, constraints=FEASIBLE, user_attrs=ua, seconds=seconds)
    t.datetime_start = T0 + dt.timedelta(minutes=number)
    t.datetime_complete = t.datetime_start + dt.timedelta(seconds=seconds)
    return t


def test_racing_pruned_trials_count_toward_the_budget_but_surplus_ones_do_not():
    raced = _timed(1, 10.0, trained=True, state=TrialState.PRUNED, pruned=True)
    surplus = trial(2, TrialState.PRUNED, user_attrs={"moqwk_surplus": True})
    assert is_counted(raced) and not is_counted(surplus)
    prog = progress([_timed(0, 10.0, trained=True), raced, surplus], target=5, started=None)
    assert prog["pruned"] == 1 and prog["complete"] == 1
    rec = trial_record(raced, DEFAULT)
    assert rec["state"] == "pruned" and rec["pruned"]["folds_run"] == 2
    assert rec["values"] is None and not rec["feasible"]
    assert trial_record(surplus, DEFAULT)["state"] == "surplus"


def test_the_eta_ignores_cached_trials():
    """Three 60 s trials that trained, then five served from the cache in 0.1 s: the next
    trials will cost about a minute, not a tenth of a second."""
    trials = [_timed(i, 60.0, trained=True) for i in range(3)]
    trials += [_timed(3 + i, 0.1, trained=False) for i in range(5)]
    prog = progress(trials, target=10, started=None)
    assert prog["trial_cost_s"] == pytest.approx(60.0)
    assert prog["eta_s"] == pytest.approx(2 * 60.0)
    assert progress(trials[3:], target=10, started=None)["eta_s"] is None  # no evidence yet


def test_the_eta_weights_recent_trials_more_and_counts_pruned_ones():
    """Trials got cheaper (racing stops some after 2 folds): the cost follows the recent ones."""
    old = [_timed(i, 100.0, trained=True) for i in range(5)]
    new = [_timed(5 + i, 20.0, trained=True, state=TrialState.PRUNED, pruned=True)
           for i in range(5)]
    cost = progress(old + new, target=20, started=None)["trial_cost_s"]
    assert 20.0 < cost < 60.0  # the plain mean would be 60
    assert progress(old + new, target=20, started=None, workers=2)["eta_s"] == \
        pytest.approx(10 * cost / 2)


# --------------------------------------------------------------------------- TrialRecord

#: The fields of an ``optuna_trials.json`` row, in the order the file has always had them.
ROW_FIELDS = ("number", "state", "role", "generation", "params", "values", "constraints",
              "feasible", "duration_s", "per_prompt_qwk", "metrics", "failure_reason",
              "retry_of", "worker", "pruned", "datetime_start", "datetime_complete")

EVERY_KIND = [
    trial(0, values=[0.5, 0.6, 0.1, 0.2], constraints=FEASIBLE, seconds=1.5,
          user_attrs={"moqwk_role": "baseline", "moqwk_params": {"max_depth": 3},
                      "per_prompt_qwk": {"P1": 0.5}, "moqwk_worker": "h:1",
                      "moqwk_metrics": {"pooled_qwk": 0.7, "timings": {"train_s": 1.0}}},
          system_attrs={"NSGAIISampler:generation": 0}),
    trial(1, TrialState.FAIL, user_attrs={"moqwk_failure": "ValueError: x"}),
    trial(2, TrialState.FAIL),
    trial(3, TrialState.PRUNED, user_attrs={"moqwk_surplus": True}),
    trial(4, TrialState.PRUNED, user_attrs={"moqwk_pruned": {"folds_run": 2, "rung": 1}}),
    trial(5, TrialState.RUNNING, user_attrs={"moqwk_retry_of": 2, "moqwk_role": "seed"}),
    trial(6, TrialState.WAITING),
]


def test_a_row_keeps_its_fields_and_their_order():
    for t in EVERY_KIND:
        assert tuple(trial_record(t, DEFAULT)) == ROW_FIELDS
    assert tuple(f.name for f in dataclasses.fields(TrialRecord)) == ROW_FIELDS


def test_the_reference_page_lists_the_rows_fields_in_order():
    text = (Path(__file__).resolve().parents[1] / "docs/reference/artifacts.md").read_text(
        encoding="utf-8")
    section = text.split("## `artifacts/optuna_trials.json`", 1)[1].split("\n## ", 1)[0]
    documented = [name for line in section.splitlines() if line.startswith("| `")
                  for name in re.findall(r"`(\w+)`", line.split(" | ")[0])]
    assert tuple(documented) == ROW_FIELDS


@pytest.mark.parametrize("t", EVERY_KIND, ids=lambda t: str(t.number))
def test_a_record_reads_back_from_its_json_row(t):
    rec = TrialRecord.from_trial(t, DEFAULT)
    row = json.loads(json.dumps(rec.to_dict()))
    assert TrialRecord.from_dict(row) == rec
    assert TrialRecord.from_dict(row).to_dict() == row == trial_record(t, DEFAULT)


def test_a_row_from_before_a_field_existed_reads_with_its_default():
    row = trial_record(EVERY_KIND[0], DEFAULT)
    del row["worker"], row["pruned"]
    rec = TrialRecord.from_dict(row)
    assert rec.worker is None and rec.pruned is None and rec.number == 0


def test_a_row_with_an_unknown_or_missing_field_is_refused_by_name():
    row = trial_record(EVERY_KIND[0], DEFAULT)
    with pytest.raises(ValueError, match=r"trial record 0: unknown field\(s\) colour"):
        TrialRecord.from_dict({**row, "colour": "red"})
    with pytest.raises(ValueError, match="no state field"):
        TrialRecord.from_dict({k: v for k, v in row.items() if k != "state"})


def test_a_record_is_frozen():
    rec = TrialRecord.from_trial(EVERY_KIND[0], DEFAULT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.state = "fail"  # type: ignore[misc]
