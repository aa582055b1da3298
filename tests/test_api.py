"""The Python API end to end on the demo corpus with the config given as a dict: cv, search,
select, fit and predict return frozen results that agree with the artifacts on disk; a bad dict
is a ConfigError naming the field; the API and the CLI select the same trial."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

import moqwk

pytestmark = pytest.mark.slow

N_TRIALS = 6


@pytest.fixture(scope="module")
def config_dict(tmp_path_factory, write_search_config) -> dict:
    path = write_search_config(tmp_path_factory.mktemp("api-config") / "config.yaml",
                               tolerance=0.05, search={"population_size": 4, "seed": 5})
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def api_run(tmp_path_factory, config_dict):
    root = tmp_path_factory.mktemp("api")
    cv = moqwk.cv(config=config_dict, run_dir=root / "cv")
    search = moqwk.search(config=config_dict, run_dir=root / "run", n_trials=N_TRIALS)
    select = moqwk.select(run_dir=root / "run", gate_margin=0.5)
    fit = moqwk.fit(run_dir=root / "run")
    return root, cv, search, select, fit


def read(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def test_results_are_frozen(api_run):
    _root, cv, search, select, fit = api_run
    for result in (cv, search, select, fit):
        with pytest.raises(dataclasses.FrozenInstanceError):
            result.run_dir = Path("elsewhere")  # type: ignore[misc]
    with pytest.raises(TypeError):
        cv.objectives["mean_qwk"] = 1.0  # type: ignore[index]


def test_cv_result_matches_its_artifacts(api_run):
    _root, cv, *_ = api_run
    disk = read(cv.paths["metrics"])
    for name, value in cv.objectives.items():
        assert disk[name] == pytest.approx(value)
    assert {r["prompt"]: r["qwk"] for r in disk["per_prompt"]} == pytest.approx(
        dict(cv.per_prompt_qwk))
    assert disk["worst_prompt"] == cv.worst_prompt
    assert cv.paths["oof"].is_file() and cv.paths["report"].is_file()


def test_search_result_matches_its_artifacts(api_run):
    _root, _cv, search, *_ = api_run
    assert search.n_trials == N_TRIALS and search.finished
    prog = read(search.paths["progress"])
    assert (search.n_complete, search.n_failed, search.n_feasible) == (
        prog["complete"], prog["failed"], prog["feasible"])
    assert dict(search.best_feasible) == pytest.approx(prog["best_feasible"])
    trials = read(search.paths["trials"])
    assert sum(t["state"] == "complete" for t in trials) == search.n_complete
    assert read(search.paths["study"])["guardrails"] == dict(search.guardrails)


def test_select_result_names_the_selected_trial_as_written(api_run):
    _root, _cv, _search, select, _fit = api_run
    disk = read(select.paths["selected"])
    assert disk["trial_number"] == select.trial_number
    assert disk["values"] == pytest.approx(dict(select.in_sample))
    assert disk["params"] == dict(select.params)
    assert select.bbc_cv is not None
    for name, est in select.bbc_cv.items():
        summary = disk["selection_bias"]["summary"][name]
        assert (est.estimate, est.lo, est.hi) == pytest.approx(
            (summary["estimate"], summary["lo"], summary["hi"]))
        assert est.in_sample == pytest.approx(select.in_sample[name])
    assert select.holdout is None and disk["holdout"] is None  # no cv.holdout here


def test_fit_and_predict_score_essays_with_the_selected_trial(api_run, demo_frame):
    _root, _cv, _search, select, fit = api_run
    manifest = read(fit.path / "model.json")
    assert fit.trial_number == select.trial_number == manifest["trial"]["number"]
    assert fit.n_essays == manifest["data"]["n_essays"] == len(demo_frame)
    essays = demo_frame.drop(columns=["score"]).head(30)
    scores = moqwk.predict(model=fit.path, essays=essays)
    assert list(scores.columns) == ["id", "prompt", "y_pred", "y_pred_raw", "y_pred_norm"]
    assert scores["id"].tolist() == essays["essay_id"].tolist()
    assert scores.equals(moqwk.load_model(fit.path).predict(essays))


def test_a_bad_dict_config_is_a_config_error_naming_the_field(tmp_path, config_dict):
    bad = {**config_dict, "cv": {**config_dict["cv"], "n_folds": "five"}}
    with pytest.raises(moqwk.ConfigError, match=r"cv\.n_folds"):
        moqwk.cv(config=bad, run_dir=tmp_path / "run")
    with pytest.raises(moqwk.ConfigError, match="config: expected"):
        moqwk.cv(config=42, run_dir=tmp_path / "run")  # type: ignore[arg-type]


def test_the_api_and_the_cli_select_the_same_trial(api_run, config_dict, tmp_path):
    from moqwk.cli import main

    _root, _cv, _search, select, _fit = api_run
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config_dict), encoding="utf-8")
    run_dir = tmp_path / "run"
    assert main(["-q", "search", "--config", str(cfg), "--run-dir", str(run_dir),
                 "--n-trials", str(N_TRIALS)]) == 0
    assert main(["-q", "select", "--run-dir", str(run_dir), "--gate-margin", "0.5"]) == 0
    cli = read(run_dir / "artifacts/selected_params.json")
    assert cli["trial_number"] == select.trial_number
    assert cli["params"] == dict(select.params)
    assert cli["values"] == pytest.approx(dict(select.in_sample))


def test_the_example_script_runs_cv_to_predict_through_the_public_api(tmp_path):
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    script = repo / "examples" / "api_demo.py"
    assert "from moqwk." not in script.read_text(encoding="utf-8")  # the public API alone
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "runs")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "search: 8/8 complete" in out.stdout and "selected trial" in out.stdout
    scored = [line.split() for line in out.stdout.splitlines() if line.startswith("demo-")]
    assert len(scored) == 10 and all(1.0 <= float(row[2]) <= 5.0 for row in scored)
    assert (tmp_path / "runs" / "search" / "model" / "model.json").exists()
