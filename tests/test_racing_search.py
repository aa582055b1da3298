"""Fold racing in real searches on the demo corpus.

- A search with racing off, replayed: the racing rule applied to its trials' per-fold
  predictions in trial order never stops a trial that reached the final feasible front, and
  every trial it does stop is dominated (or certainly infeasible) once finished.
- A search with racing on: stopped trials are PRUNED with the folds they ran and the reason,
  count against the budget (unlike the surplus ones), show in progress.json and the trial
  records, and are absent from the front, the selection and BBC-CV.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from moqwk.cli import main

pytestmark = pytest.mark.slow

N_TRIALS = 10
#: Racing made as eager as is still safe, so that the demo's few trials get stopped: a tail
#: guardrail at the baseline's own error (tolerance 0), a check after 4 of the 5 folds, no margin.
EAGER = {"racing": True, "racing_rungs": [4], "racing_margin": 0.0}


def _read(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _study(run_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="moqwk", storage=f"sqlite:///{run_dir / 'study.db'}")


@pytest.fixture(scope="module")
def racing_off(tmp_path_factory, write_search_config):
    cfg = write_search_config(tmp_path_factory.mktemp("race-off") / "config.yaml",
                              tolerance=0.0, search={**EAGER, "racing": False})
    run_dir = cfg.parent / "run"
    assert main(["search", "--config", str(cfg), "--run-dir", str(run_dir), "--n-trials",
                 str(N_TRIALS), "--n-jobs", "1"]) == 0
    return cfg, run_dir


@pytest.fixture(scope="module")
def racing_on(tmp_path_factory, write_search_config, monkeypatch_module):
    # a cache of its own: with the off run's cached predictions no trial would train (a trial
    # whose predictions are all cached costs nothing, so it is never raced)
    monkeypatch_module.setenv("MOQWK_CACHE_DIR", str(tmp_path_factory.mktemp("race-cache")))
    cfg = write_search_config(tmp_path_factory.mktemp("race-on") / "config.yaml",
                              tolerance=0.0, search=EAGER)
    run_dir = cfg.parent / "run"
    assert main(["search", "--config", str(cfg), "--run-dir", str(run_dir), "--n-trials",
                 str(N_TRIALS), "--n-jobs", "1"]) == 0
    assert main(["select", "--run-dir", str(run_dir)]) == 0
    return cfg, run_dir


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def replayable(racing_off):
    """The racing-off search, ready to replay: its config, workspace, trials, fold rows, the
    complete trials with their loss matrix, and its final feasible front."""
    from moqwk.config import load_config
    from moqwk.core.pareto import feasible_mask, loss_matrix, pareto_front_mask
    from moqwk.run.workspace import Workspace
    from moqwk.stages.selector import load_trials

    cfg, run_dir = racing_off
    config = load_config(cfg)
    ws = Workspace.open(config, run_dir)
    run = load_trials(run_dir)
    eng = ws.engine("prompt_holdout")
    folds = [(f.repeat, f.val) for f in eng.prepare()]
    names = run.objectives.names
    done = [r for r in run.trials if r["state"] == "complete"]
    cons = np.array([[r["constraints"][c] for c in sorted(r["constraints"])] for r in done])
    feas = np.flatnonzero(feasible_mask(cons))
    loss = loss_matrix(np.array([[r["values"][n] for n in names] for r in done]),
                       list(run.objectives.directions))
    front = {done[i]["number"] for i, on in zip(feas, pareto_front_mask(loss[feas]),
                                                strict=True) if on}
    return SimpleNamespace(config=config, ws=ws, run=run, n_fits=eng.n_fits, folds=folds,
                           names=names, done=done, loss=loss, front=front)


def _replay(r, plan):
    from moqwk.engine import racing

    return racing.replay(r.run.trials, r.run.oof_levels, corpus=r.ws.corpus, config=r.config,
                         fold_rows=r.folds, p=plan, guardrails=r.run.guardrails)


def test_replaying_racing_over_a_finished_search_never_stops_a_front_trial(replayable):
    from moqwk.engine import racing

    r = replayable
    plan = racing.plan(r.config.with_search(racing=True), r.n_fits, r.names)
    assert plan is not None and plan.rungs == (4,) and plan.margins == (0.0,) * 4
    out = _replay(r, plan)
    assert len(out) == len(r.done) == N_TRIALS
    stopped = {o.number: o for o in out if o.rung is not None}
    assert r.front and not r.front & set(stopped)
    by_number = {t["number"]: t for t in r.done}
    numbers = [t["number"] for t in r.done]
    for num, o in stopped.items():  # each stop was right about the finished trial
        assert o.verdict is not None
        if o.verdict.dominated_by is None:
            assert not by_number[num]["feasible"]
        else:
            f = r.loss[numbers.index(o.verdict.dominated_by)]
            t = r.loss[numbers.index(num)]
            assert (f <= t).all() and (f < t).any()
    assert stopped, "the eager plan stops none of the demo's trials: the test checks nothing"


def test_the_statistical_bound_stops_what_the_worst_case_stops_and_no_front_trial(replayable):
    from dataclasses import replace

    from moqwk.engine import racing

    r = replayable
    stat_config = r.config.with_search(racing=True, racing_bound="statistical", racing_z=1.0)
    plan = racing.plan(stat_config, r.n_fits, r.names)
    assert plan is not None and (plan.bound, plan.z) == ("statistical", 1.0)
    assert plan.to_dict()["bound"] == "statistical"
    worst = _replay(r, replace(plan, bound="worst_case"))
    stat = _replay(r, plan)
    stopped_w = {o.number for o in worst if o.rung is not None}
    stopped_s = {o.number: o for o in stat if o.rung is not None}
    assert stopped_w <= set(stopped_s)  # a tighter bound stops at least as much
    # the front of the finished search (every trial ran all its folds): none of it stopped
    assert r.front and not r.front & set(stopped_s)
    for o in stopped_s.values():
        assert "standard errors" in o.verdict.reason or "whatever the unrun" in o.verdict.reason


def test_racing_trials_are_pruned_counted_and_recorded(racing_on):
    _, run_dir = racing_on
    trials = _study(run_dir).trials
    raced = [t for t in trials if t.state == TrialState.PRUNED and "moqwk_pruned" in t.user_attrs]
    assert raced, "no trial was stopped: the test checks nothing"
    for t in raced:
        p = t.user_attrs["moqwk_pruned"]
        assert p["folds_run"] == 4 and p["folds_total"] == 5 and p["rung"] == 1
        assert p["reason"] and "oof_level" not in t.user_attrs and t.values is None
    counted = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.FAIL)
               or t in raced]
    assert len(counted) == N_TRIALS
    prog = _read(run_dir / "progress.json")
    assert prog["pruned"] == len(raced)
    assert prog["complete"] + prog["failed"] + prog["pruned"] == N_TRIALS
    recs = {r["number"]: r for r in _read(run_dir / "artifacts/optuna_trials.json")}
    for t in raced:
        assert recs[t.number]["state"] == "pruned"
        assert recs[t.number]["pruned"]["folds_run"] == 4


def test_pruned_trials_are_not_in_the_front_the_selection_or_bbc(racing_on):
    _, run_dir = racing_on
    trials = _study(run_dir).trials
    raced = {t.number for t in trials if t.state == TrialState.PRUNED}
    front = {r["number"] for r in _read(run_dir / "artifacts/pareto_front.json")["trials"]}
    assert front and not front & raced
    sel = _read(run_dir / "artifacts/selected_params.json")
    assert sel["trial_number"] not in raced
    complete = {t.number for t in trials if t.state == TrialState.COMPLETE}
    bias = sel["selection_bias"]
    assert set(bias["trials"]) == complete
    assert not {int(k) for k in bias["chosen_counts"]} & raced


def test_the_reports_show_the_pruned_trials(racing_on):
    _, run_dir = racing_on
    n = _read(run_dir / "progress.json")["pruned"]
    html = (run_dir / "reports/optuna_summary.html").read_text(encoding="utf-8")
    assert f"({n} stopped early by fold racing, left out of the front)" in html
    md = (run_dir / "reports/optuna_summary.md").read_text(encoding="utf-8")
    assert md.count("| pruned |") == n


def test_status_counts_the_pruned_trials(racing_on, capsys):
    _, run_dir = racing_on
    assert main(["status", "--run-dir", str(run_dir), "--all"]) == 0
    out = capsys.readouterr().out
    assert "pruned" in out


def test_the_per_prompt_tail_clusters_add_up_to_the_tail_totals(replayable):
    from moqwk.engine import racing

    config, ws, run = replayable.config, replayable.ws, replayable.run
    es = ws.corpus.essay_scale
    number = min(run.oof_levels)
    y = es.lo[None, :] + np.asarray(run.oof_levels[number], dtype=float) * es.step[None, :]
    full = racing.partial_of(y, ws.corpus, config)
    assert full.n_unseen == 0
    for by, total, rows in ((full.low_by_prompt, full.low_abs_sum, full.low_rows),
                            (full.high_by_prompt, full.high_abs_sum, full.high_rows)):
        assert by is not None and by[0].sum() == pytest.approx(total)
        assert by[1].sum() == rows
    # with half the prompts' essays unpredicted, only the fully seen prompts are clusters
    half = y.copy()
    half[:, np.isin(ws.corpus.prompt_codes, np.arange(0, len(ws.corpus.prompt_names), 2))] = np.nan
    part = racing.partial_of(half, ws.corpus, config)
    assert part.low_by_prompt is not None
    assert len(part.low_by_prompt[0]) == len(ws.corpus.prompt_names) // 2
    assert part.low_prompts == full.low_prompts
