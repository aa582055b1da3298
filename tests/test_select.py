"""``moqwk select`` on a finished demo search: front, rule, gate, guardrails and exit codes.

The search uses ``tails.tolerance: 0`` and a middling baseline, so some trials keep both tail
guardrails and others (among them the best ones) break one. The front and the choice are
recomputed here from ``optuna_trials.json`` by brute force, without moqwk's own functions.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from moqwk.cli import main

OBJECTIVES = ("worst_prompt_qwk", "mean_qwk", "low_tail_mae", "high_tail_mae")
MAXIMISED = {"worst_prompt_qwk", "mean_qwk"}
CONSTRAINTS = ("low_tail_guardrail", "high_tail_guardrail")
GENEROUS = "0.5"  # the gate margin conftest's selected_run was selected with
REASON = "a slightly worse low tail is acceptable for this placement test"

pytestmark = pytest.mark.slow


def select(config: Path, run_dir: Path, *extra: str) -> int:
    return main(["select", "--config", str(config), "--run-dir", str(run_dir), *extra])


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def outputs(run_dir: Path) -> dict[str, bytes]:
    return {p: (run_dir / p).read_bytes() for p in (
        "artifacts/selected_params.json", "artifacts/pareto_front.json",
        "reports/optuna_summary.md")}


# --------------------------------------------------------------------------- independent rule


def dominates(a: dict, b: dict) -> bool:
    better_or_equal = all((a[o] >= b[o]) if o in MAXIMISED else (a[o] <= b[o]) for o in OBJECTIVES)
    strictly = any((a[o] > b[o]) if o in MAXIMISED else (a[o] < b[o]) for o in OBJECTIVES)
    return better_or_equal and strictly


def front_of(pool: list[dict]) -> list[int]:
    return sorted(r["number"] for r in pool
                  if not any(dominates(q["values"], r["values"]) for q in pool if q is not r))


def keeps_guardrails(r: dict) -> bool:
    return (r["state"] == "complete" and sorted(r["constraints"]) == sorted(CONSTRAINTS)
            and all(v <= 0 for v in r["constraints"].values()))


def lexicographic(recs: list[dict], tol: float) -> list[int]:
    """Bands of worst-prompt QWK within ``tol`` of the best left; in a band, mean QWK first."""
    left = list(recs)
    order: list[int] = []
    while left:
        best = max(r["values"]["worst_prompt_qwk"] for r in left)
        band = [r for r in left if r["values"]["worst_prompt_qwk"] >= best - tol]
        band.sort(key=lambda r: (-r["values"]["mean_qwk"], -r["values"]["worst_prompt_qwk"],
                                 r["values"]["low_tail_mae"] + r["values"]["high_tail_mae"],
                                 r["number"]))
        order += [r["number"] for r in band]
        left = [r for r in left if r not in band]
    return order


def by_number(recs: list[dict]) -> dict[int, dict]:
    return {r["number"]: r for r in recs}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def searched(searched_run, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """This module's copy of the shared search (conftest ``searched_run``: ``SELECT_SEED``,
    tolerance 0, a middling baseline, 8 trials). With these settings the best trial breaks a
    tail guardrail and others beat the baseline within both (asserted where a test relies on
    it)."""
    root = tmp_path_factory.mktemp("select")
    run_dir = root / "run"
    shutil.copytree(searched_run.run_dir, run_dir)
    return SimpleNamespace(root=root, config=searched_run.config, run_dir=run_dir,
                           records=searched_run.records)


def _same_place(files: dict[str, bytes], run_dir: Path) -> dict[str, bytes]:
    """Files with their run directory's path replaced, so two directories can be compared."""
    return {k: v.replace(str(run_dir).encode(), b"RUN_DIR") for k, v in files.items()}


@pytest.fixture(scope="module")
def selected(searched, selected_run) -> SimpleNamespace:
    """``moqwk select`` on this module's copy, as the shared ``selected_run`` was selected (gate
    margin 0.5): the files of both, and what select printed here (stdout, a log)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert select(searched.config, searched.run_dir, "--gate-margin", GENEROUS) == 0
    first = _same_place(outputs(selected_run.run_dir), selected_run.run_dir)
    second = _same_place(outputs(searched.run_dir), searched.run_dir)
    return SimpleNamespace(first=first, second=second, stdout=out.getvalue(),
                           record=json.loads(outputs(searched.run_dir)[
                               "artifacts/selected_params.json"]),
                           front=json.loads(second["artifacts/pareto_front.json"]))


def copy_run(searched, name: str) -> Path:
    dest = searched.root / name
    shutil.copytree(searched.run_dir, dest)
    return dest


# --------------------------------------------------------------------------- the choice


def test_front_matches_brute_force_dominance_on_feasible_trials(searched, selected):
    recs = searched.records
    feasible = [r for r in recs if keeps_guardrails(r)]
    assert all(r["feasible"] == keeps_guardrails(r) for r in recs)
    assert 1 < len(feasible) < len([r for r in recs if r["state"] == "complete"])  # both kinds
    assert selected.front["pool"] == "feasible trials"
    assert [t["number"] for t in selected.front["trials"]] == front_of(feasible)
    for t in selected.front["trials"]:
        r = by_number(recs)[t["number"]]
        assert t["values"] == r["values"] and t["params"] == r["params"]
        assert t["feasible"] is True


def test_choice_follows_the_lexicographic_rule_and_the_gate(searched, selected):
    rec = selected.record
    feasible = [r for r in searched.records if keeps_guardrails(r)]
    front = [by_number(searched.records)[n] for n in front_of(feasible)]
    tol = rec["tie_tolerance"]
    # The tie band is the noise of a worst-prompt QWK difference between the front's best trial
    # and the next ones (up to five) whose predictions differ from it: it names them, in order.
    method = rec["tie_tolerance_method"]
    best_first = sorted(front, key=lambda r: (-r["values"]["worst_prompt_qwk"], r["number"]))
    assert method["trials"] == [r["number"] for r in best_first][:6]
    assert method["top"] == best_first[0]["number"]
    assert method["value"] == tol and 0 < tol < 0.2
    ranking = lexicographic(front, tol)
    assert [c["trial_number"] for c in rec["candidates"]] == ranking
    assert [c["rank"] for c in rec["candidates"]] == list(range(1, len(ranking) + 1))
    gate = rec["stability_gate"]["results"]
    assert [g["trial_number"] for g in gate] == ranking[:len(gate)]  # tried in rank order
    passed = [g["trial_number"] for g in gate if g["passed"]]
    assert passed == [gate[-1]["trial_number"]]  # stops at the first pass
    assert rec["trial_number"] == passed[0]
    chosen = by_number(searched.records)[rec["trial_number"]]
    assert rec["params"] == chosen["params"] and rec["values"] == chosen["values"]
    assert rec["feasible"] is True and rec["tail_tradeoff"] is None
    assert rec["baseline"]["trial_number"] == 0


def test_selection_records_a_bbc_estimate_that_replays_the_rule(searched, selected):
    """selected_params.json holds BBC-CV's estimate of the chosen config on new folds, and the
    same estimate comes out of core.bbc run by hand on the study's out-of-fold levels."""
    import numpy as np

    from moqwk.config import load_config
    from moqwk.core.bbc import bbc, lexicographic_selector
    from moqwk.run.workspace import Workspace
    from moqwk.stages.selector import load_trials

    rec = selected.record
    crit = rec["success_criterion"]  # in-sample, and the record itself says so
    assert crit["measured_on"].startswith("in-sample")
    assert crit["met"] == all(c["ok"] for c in crit["checks"].values())
    sb = rec["selection_bias"]
    assert sb["n_boot"] == 500 and sb["reported"] == "corrected"
    assert sb["resampling"] == "prompts+essays"  # the default, chosen by the research note
    assert sum(sb["chosen_counts"].values()) == sb["n_used"] > 0
    for name in ("worst_prompt_qwk", "mean_qwk"):
        e = sb["summary"][name]
        assert e["lo"] <= e["estimate"] <= e["hi"]
        assert e["in_sample"] == rec["values"][name]
        assert e["optimism"] == pytest.approx(e["in_sample"] - e["estimate"])
    run = load_trials(searched.run_dir)
    numbers = [r["number"] for r in run.trials if r["state"] == "complete"]
    with pytest.warns(UserWarning):
        ws = Workspace.open(load_config(searched.config), searched.run_dir)
    again = bbc(ws.pool([np.asarray(run.oof_levels[n]) for n in numbers]),
                selector=lexicographic_selector(tie_tolerance=rec["tie_tolerance"],
                                                trial_numbers=numbers),
                baseline=numbers.index(0), tolerance=run.guardrails["tolerance"],
                scheme="prompts+essays", n_boot=500, seed=42)
    assert sb["summary"]["mean_qwk"]["estimate"] == pytest.approx(
        again.corrected["mean_qwk"].point)
    assert sb["estimates"]["worst_prompt_qwk"]["point"] == pytest.approx(
        again.estimates["worst_prompt_qwk"].point)
    assert "Expected on new folds" in (searched.run_dir / "reports/optuna_summary.md").read_text()


def test_chosen_config_is_rerun_for_its_residuals(searched, selected):
    rec = selected.record
    assert rec["reproduced_on_prompt_holdout"]["matches"] is True
    metrics = read_json(searched.run_dir / "artifacts/cv_metrics.json")
    assert metrics["params"] == rec["params"]
    assert metrics["scheme"] == "prompt_holdout"
    assert metrics["worst_prompt_qwk"] == pytest.approx(rec["values"]["worst_prompt_qwk"])
    assert (searched.run_dir / "artifacts/residuals_cv_val_oof.csv").stat().st_size > 0


def test_selecting_twice_writes_identical_files(selected):
    """The same search selected in two run directories: the same files but for the path."""
    for name in selected.first:
        assert selected.first[name] == selected.second[name], name


def test_cli_select_prints_the_choice(selected):
    assert f"Selected trial {selected.record['trial_number']}" in selected.stdout


# --------------------------------------------------------------------------- reports and residuals


def test_select_writes_the_baseline_residuals_and_they_reproduce_trial_0(searched, selected):
    import pandas as pd

    run_dir = searched.run_dir
    base = pd.read_csv(run_dir / "artifacts/residuals_baseline_oof.csv")
    chosen = pd.read_csv(run_dir / "artifacts/residuals_cv_val_oof.csv")
    assert list(base.columns) == list(chosen.columns)
    assert base[["id", "prompt", "fold", "repeat", "y_true"]].equals(
        chosen[["id", "prompt", "fold", "repeat", "y_true"]])
    assert not base["y_pred"].equals(chosen["y_pred"])  # another config (the precondition)
    # Trial 0's objectives recomputed from the CSV with pandas (scale 1-5: normalise by 4).
    trial0 = by_number(searched.records)[0]
    assert trial0["role"] == "baseline"
    err = (base["y_pred"] - base["y_true"]).abs() / 4.0
    assert err[base["in_low_tail"]].mean() == pytest.approx(
        trial0["values"]["low_tail_mae"], abs=1e-9)
    assert err[base["in_high_tail"]].mean() == pytest.approx(
        trial0["values"]["high_tail_mae"], abs=1e-9)
    assert selected.record["baseline"]["reproduced_on_prompt_holdout"]["matches"] is True


def test_select_writes_the_html_report_and_links_its_figures(searched, selected):
    import re

    reports = searched.run_dir / "reports"
    html = (reports / "optuna_summary.html").read_text(encoding="utf-8")
    assert f"Selected trial {selected.record['trial_number']}" in html
    # select's BBC-CV estimate draws selection_bias; in_sample_vs_fresh waits for compare.
    names = {"pareto_front", "per_prompt_qwk", "calibration", "search_history", "selection_bias"}
    assert {p.stem for p in (reports / "figures").glob("*.svg")} == names
    assert {p.stem for p in (reports / "figures").glob("*.png")} == names
    summary = (reports / "optuna_summary.md").read_text(encoding="utf-8")
    links = set(re.findall(r"\]\(([^)#]+)\)", summary))
    assert {f"figures/{n}.{ext}" for n in names for ext in ("svg", "png")} <= links
    assert "optuna_summary.html" in links
    for link in links:
        assert (reports / link).is_file(), link


def test_select_in_a_log_prints_one_line_per_stage(selected):
    """stdout is not a terminal here: each stage is one plain line, started and finished, after
    the time of day."""
    stamped = selected.stdout.splitlines()
    assert all(re.match(r"\d\d:\d\d:\d\d ", ln) for ln in stamped if " folds ... " in ln)
    lines = [re.sub(r"^\d\d:\d\d:\d\d ", "", ln) for ln in stamped]
    trial = selected.record["trial_number"]
    gate = [ln for ln in lines if ln.startswith("stability gate (stratified_text)")]
    assert len(gate) == 1
    n_tried = len(selected.record["stability_gate"]["results"])
    assert f"done after {5 * (1 + n_tried)} folds (of up to " in gate[0]
    rerun = [ln for ln in lines if ln.startswith("residuals on prompt_holdout")]
    assert rerun == [ln for ln in rerun if f"baseline and trial {trial}: 10 folds ..." in ln]
    assert len(rerun) == 1 and "done, 10 folds in" in rerun[0]
    features = [ln for ln in lines if ln.startswith("fold features (")]
    assert [ln.split(":")[0] for ln in features] == ["fold features (stratified_text)",
                                                     "fold features (prompt_holdout)"]
    assert all("5 folds ... done, 5 folds in" in ln for ln in features)


# --------------------------------------------------------------------------- tail guardrails


def test_best_trial_breaking_a_guardrail_is_chosen_only_with_the_flag(searched, selected):
    recs = searched.records
    complete = [r for r in recs if r["state"] == "complete"]
    chosen = selected.record["trial_number"]
    assert by_number(recs)[chosen]["feasible"] is True

    run_dir = copy_run(searched, "tail-regression")
    assert select(searched.config, run_dir, "--gate-margin", GENEROUS,
                  "--allow-tail-regression", "--reason", REASON) == 0
    rec = read_json(run_dir / "artifacts/selected_params.json")
    front = [by_number(recs)[n] for n in front_of(complete)]
    best_overall = lexicographic(front, rec["tie_tolerance"])[0]
    # Precondition: the overall best (and the highest worst-prompt QWK) break a guardrail.
    assert not by_number(recs)[best_overall]["feasible"]
    top_worst = max(complete, key=lambda r: r["values"]["worst_prompt_qwk"])
    assert not top_worst["feasible"]
    assert chosen not in (best_overall, top_worst["number"])

    assert read_json(run_dir / "artifacts/pareto_front.json")["pool"].startswith("all complete")
    assert rec["trial_number"] == best_overall
    assert rec["feasible"] is False
    assert rec["allow_tail_regression"] is True
    assert rec["tail_regression_reason"] == REASON
    trade = {t["metric"]: t for t in rec["tail_tradeoff"]}
    cand, base = by_number(recs)[best_overall], by_number(recs)[0]
    broken = [c for c in CONSTRAINTS if cand["constraints"][c] > 0]
    assert broken
    for metric in ("low_tail_mae", "high_tail_mae"):
        t = trade[metric]
        assert t["candidate"] == cand["values"][metric]
        assert t["baseline"] == base["values"][metric]
        assert t["exceeds"] == (metric.replace("_mae", "_guardrail") in broken)
        excess = cand["values"][metric] - (base["values"][metric] + rec["guardrails"]["tolerance"])
        assert t["excess"] == pytest.approx(max(excess, 0.0), abs=1e-12)
    summary = (run_dir / "reports/optuna_summary.md").read_text(encoding="utf-8")
    assert REASON in summary


def test_allow_tail_regression_needs_a_reason(searched, capsys, assert_one_error_line):
    run_dir = copy_run(searched, "no-reason")
    before = outputs(run_dir)
    rc = select(searched.config, run_dir, "--allow-tail-regression")
    err = capsys.readouterr().err
    assert rc == 2
    assert_one_error_line(err, "--reason")
    assert outputs(run_dir) == before  # nothing rewritten


# --------------------------------------------------------------------------- stability gate


def test_gate_failure_exits_6_and_keeps_the_earlier_selection(searched, selected, capsys,
                                                             assert_one_error_line):
    run_dir = copy_run(searched, "gate-fail")
    before = (run_dir / "artifacts/selected_params.json").read_bytes()
    top = selected.record["candidates"][0]["trial_number"]
    # Preconditions: the top candidate is not the baseline and, in the generous run, it was
    # worse than the baseline on some gate metric, so a zero margin must reject it.
    assert top != selected.record["baseline"]["trial_number"]
    first_gate = selected.record["stability_gate"]["results"][0]
    assert first_gate["trial_number"] == top
    assert any((c["delta"] < 0) if c["direction"] == "maximize" else (c["delta"] > 0)
               for c in first_gate["checks"])

    for rel in ("artifacts/residuals_baseline_oof.csv", "reports/optuna_summary.html"):
        (run_dir / rel).unlink()  # written again below, by the failing selection
    rc = select(searched.config, run_dir, "--gate-margin", "0", "--max-candidates", "1")
    err = capsys.readouterr().err
    assert rc == 6, err
    assert_one_error_line(err, "stability gate", "margin 0", "--trial 0")
    failed = read_json(run_dir / "artifacts/selection_failed.json")
    assert failed["trial_number"] is None
    results = failed["stability_gate"]["results"]
    assert [r["trial_number"] for r in results] == [top]
    assert results[0]["passed"] is False
    assert any(c["regressed"] for c in results[0]["checks"])
    assert failed["stability_gate"]["margin"] == 0
    assert (run_dir / "artifacts/selected_params.json").read_bytes() == before
    # The reports still say what happened: the failure, not the earlier selection.
    summary = (run_dir / "reports/optuna_summary.md").read_text(encoding="utf-8")
    html = (run_dir / "reports/optuna_summary.html").read_text(encoding="utf-8")
    for text in (summary, html):
        assert "No trial was selected" in text
    assert "no trial selected" in html and "figures/pareto_front.svg" in summary
    assert (run_dir / "artifacts/residuals_baseline_oof.csv").is_file()


def test_after_a_gate_failure_the_baseline_can_be_fitted_as_the_error_says(
        searched_run, tmp_path, capsys):
    """Nothing passed the gate, so nothing is selected; the error names the way to keep the
    baseline (trial 0), and that command fits it."""
    run_dir = tmp_path / "no-selection"
    shutil.copytree(searched_run.run_dir, run_dir)
    assert not (run_dir / "artifacts/selected_params.json").exists()
    rc = select(searched_run.config, run_dir, "--gate-margin", "0", "--max-candidates", "1")
    err = capsys.readouterr().err
    assert rc == 6, err
    command = re.search(r"`(moqwk fit [^`]+)`", err).group(1).split()
    assert command[1:] == ["fit", "--run-dir", str(run_dir), "--trial", "0"]
    assert main(command[1:]) == 0, capsys.readouterr().err
    model = read_json(run_dir / "model" / "model.json")
    assert model["trial"]["number"] == 0
    assert model["trial"]["params"] == read_json(
        run_dir / "artifacts/optuna_trials.json")[0]["params"]


# --------------------------------------------------------------------------- no feasible trial


def test_no_feasible_trial_exits_5(demo_config_path, tmp_path, capsys, assert_one_error_line):
    """A study made with Optuna by hand: every complete trial, the baseline too, is infeasible."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    study = optuna.create_study(
        study_name="moqwk", storage=f"sqlite:///{run_dir / 'study.db'}",
        directions=["maximize", "maximize", "minimize", "minimize"])
    study.set_metric_names(list(OBJECTIVES))
    dist = {"max_depth": optuna.distributions.IntDistribution(2, 5)}
    for i, depth in enumerate((3, 4, 5)):
        params = {"max_depth": depth, "learning_rate": 0.1, "n_estimators": 60}
        study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE, params={"max_depth": depth},
            distributions=dist, values=[0.5 + i / 100, 0.6, 0.2, 0.2],
            constraints={"low_tail_guardrail": 0.01 * (i + 1), "high_tail_guardrail": -0.01},
            user_attrs={"moqwk_role": "baseline" if i == 0 else "sampled",
                        "moqwk_params": params}))
    study.set_user_attr("moqwk_guardrails", {
        "baseline_trial": 0, "low_tail_mae": 0.19, "high_tail_mae": 0.21, "tolerance": 0.0,
        "low_tail_limit": 0.19, "high_tail_limit": 0.21})

    rc = select(demo_config_path, run_dir)
    err = capsys.readouterr().err
    assert rc == 5, err
    assert_one_error_line(err, "no feasible trial", "--allow-tail-regression")
    assert not (run_dir / "artifacts/selected_params.json").exists()


# --------------------------------------------------------------------------- moqwk demo


def test_demo_ends_with_a_selection(tmp_path):
    run_dir = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "moqwk.cli", "demo", "--run-dir", str(run_dir),
                           "--n-trials", "6"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "Selected trial" in proc.stdout
    rec = read_json(run_dir / "artifacts/selected_params.json")
    trials = by_number(read_json(run_dir / "artifacts/optuna_trials.json"))
    assert sum(r["state"] == "complete" for r in trials.values()) == 6
    assert rec["trial_number"] in trials and trials[rec["trial_number"]]["feasible"]
    assert f"Selected trial {rec['trial_number']}" in proc.stdout


# --------------------------------------------------------------------------- repeats


def test_tie_tolerance_uses_every_fold_assignment(tmp_path: Path, write_search_config) -> None:
    """With ``cv.repeats: 2`` the tie band is estimated on both assignments' predictions
    (per-prompt QWK averaged over them, as in the objective), not the first alone."""
    import numpy as np
    import yaml

    from moqwk.config import load_config
    from moqwk.core.noise import tie_band
    from moqwk.run.workspace import Workspace

    cfg = write_search_config(tmp_path / "config.yaml", tolerance=0.5,
                              search={"population_size": 4, "seed_neighbours": 0, "seed": 4})
    raw = yaml.safe_load(cfg.read_text())
    raw["cv"]["repeats"] = 2
    cfg.write_text(yaml.safe_dump(raw, sort_keys=False))
    run_dir = tmp_path / "run"
    assert main(["search", "--config", str(cfg), "--run-dir", str(run_dir), "--n-trials", "5"]) == 0
    assert select(cfg, run_dir, "--gate-margin", GENEROUS) == 0
    rec = read_json(run_dir / "artifacts/selected_params.json")
    method = rec["tie_tolerance_method"]
    assert method["method"] == "paired_median" and rec["tie_tolerance"] > 0
    study = optuna.load_study(study_name="moqwk", storage=f"sqlite:///{run_dir / 'study.db'}",
                              sampler=optuna.samplers.NSGAIISampler())
    levels = {t.number: np.asarray(t.user_attrs["oof_level"]) for t in study.trials}
    trials = method["trials"]  # the top trial, then its distinct competitors
    assert levels[trials[0]].shape[0] == 2
    with pytest.warns(UserWarning):
        ws = Workspace.open(load_config(cfg), run_dir)
    order = np.arange(len(trials))
    both = tie_band(ws.pool([levels[n] for n in trials]), order=order, n_boot=method["n_boot"],
                    seed=method["seed"])
    first_only = tie_band(ws.pool([levels[n][:1] for n in trials]), order=order,
                          n_boot=method["n_boot"], seed=method["seed"])
    assert rec["tie_tolerance"] == pytest.approx(both.value)
    assert both.value != pytest.approx(first_only.value)


def test_a_duplicate_of_the_top_trial_never_collapses_the_tie_band(
        tmp_path: Path, write_search_config) -> None:
    """The audit's defect: the band was the SE of the top two trials' difference, exactly 0 when
    the second is a copy of the first (NSGA-II duplicates, the grid's baseline run twice). Now
    the copy is skipped and the band is the noise against distinct trials."""
    import numpy as np
    import pandas as pd

    from moqwk.config import load_config
    from moqwk.core.selection import bootstrap_worst_qwk_diff_se
    from moqwk.run.workspace import Workspace
    from moqwk.stages.selector import estimate_tie_tolerance, load_trials

    from_conftest = {"max_depth": 3, "learning_rate": 0.1, "n_estimators": 60,
                     "min_child_weight": 4.0, "subsample": 0.8}
    cfg = write_search_config(tmp_path / "config.yaml", tolerance=0.5, search={
        "population_size": 4, "seed_neighbours": 0, "seed": 4,
        "initial_configs": [from_conftest]})  # trial 1: the baseline's own params again
    run_dir = tmp_path / "run"
    assert main(["search", "--config", str(cfg), "--run-dir", str(run_dir), "--n-trials", "5"]) == 0
    run = load_trials(run_dir)
    lv = {n: np.asarray(v) for n, v in run.oof_levels.items()}
    assert np.array_equal(lv[0], lv[1])  # a true duplicate
    with pytest.warns(UserWarning):
        ws = Workspace.open(load_config(cfg), run_dir)
    # rank the duplicate pair first and second, the others after them
    frame = pd.DataFrame([{"trial_number": n, "worst_prompt_qwk": 1.0 - 0.01 * n,
                           "mean_qwk": 0.5, "low_tail_mae": 0.1, "high_tail_mae": 0.1}
                          for n in sorted(lv)])
    es = ws.corpus.essay_scale
    by_prompt = np.ones(len(ws.corpus.prompt_names), dtype=np.int64)
    by_prompt[ws.corpus.prompt_codes] = es.n_levels
    old = bootstrap_worst_qwk_diff_se(  # the defective estimator: top two only
        prompt_codes=ws.corpus.prompt_codes, true_level=es.level(ws.corpus.scores),
        pred_a=lv[0], pred_b=lv[1], n_levels_by_prompt=by_prompt,
        eligible=np.bincount(ws.corpus.prompt_codes) >= 20, n_boot=50, seed=0)
    assert old == 0.0
    value, how = estimate_tie_tolerance(ws, frame, run.oof_levels, n_boot=50, seed=0)
    assert how["top"] == 0 and 1 not in how["pairs"] and how["pairs"]
    assert value > 0.01
