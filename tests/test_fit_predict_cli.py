"""``moqwk fit`` and ``moqwk predict`` on a selected demo search, as a user runs them.

A short search and a selection give a run directory. ``fit`` writes its model; ``fit --data``
fits the same trial on the corpus without one prompt, and ``predict`` scores that prompt: the
scores must equal the CV engine's for a fold trained on exactly those essays, in this process
and in another one. Bad inputs exit non-zero with one ``Error:`` line and write nothing.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from moqwk.cli import main
from moqwk.core.splits import Splits
from moqwk.data.corpus import load_corpus
from moqwk.engine.cv import CVEngine
from moqwk.model import load_model
from moqwk.run.record import run_config

pytestmark = pytest.mark.slow

HELD_OUT = "P05"


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def read_scores(path_or_text) -> pd.DataFrame:
    """A scores CSV with its floats parsed exactly (Python's float(), whatever pandas does)."""
    frame = pd.read_csv(path_or_text, dtype=str)
    for c in ("y_pred", "y_pred_raw", "y_pred_norm"):
        frame[c] = frame[c].map(float)
    return frame


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def selected(tmp_path_factory, write_search_config, _demo_frame_cached) -> SimpleNamespace:
    tmp = tmp_path_factory.mktemp("fit-cli")
    config = write_search_config(tmp / "config.yaml")
    run_dir = tmp / "run"
    for argv in (["search", "--config", str(config), "--run-dir", str(run_dir), "--n-trials",
                  "3"], ["select", "--run-dir", str(run_dir)]):
        assert main(argv) == 0
    frame = _demo_frame_cached
    frame[frame["prompt"] != HELD_OUT].to_csv(tmp / "without.csv", index=False)
    held = frame[frame["prompt"] == HELD_OUT].drop(columns="score")
    held.to_csv(tmp / "held_out.csv", index=False)
    return SimpleNamespace(tmp=tmp, run_dir=run_dir, frame=frame, held=held,
                           selected=read_json(run_dir / "artifacts/selected_params.json"))


@pytest.fixture(scope="module")
def fitted(selected) -> Path:
    assert main(["fit", "--run-dir", str(selected.run_dir)]) == 0
    return selected.run_dir / "model"


@pytest.fixture(scope="module")
def fitted_without(selected) -> Path:
    out = selected.tmp / "model-without"
    assert main(["fit", "--run-dir", str(selected.run_dir), "--data",
                 str(selected.tmp / "without.csv"), "--out", str(out)]) == 0
    return out


def test_fit_writes_the_model_directory_and_its_manifest(selected, fitted):
    m = read_json(fitted / "model.json")
    sel = selected.selected
    assert sorted(p.name for p in fitted.iterdir()) == sorted(
        ["model.json", "model.ubj", "features.json", "features.npz"])
    assert m["trial"]["number"] == sel["trial_number"]
    assert m["trial"]["params"] == sel["params"]
    assert m["config"] == run_config(selected.run_dir).to_dict()
    assert m["data"]["data_hash"] == sel["hashes"]["data"] and m["data"]["same_as_run"] is True
    assert m["data"]["n_essays"] == 720 and m["data"]["n_prompts"] == 10
    assert m["scale"] == {"kind": "global", "min": 1.0, "max": 5.0, "step": 0.5}
    assert m["columns"] == {"id": "essay_id", "text": "text", "prompt": "prompt"}
    est = m["cv_estimates"]
    assert est["in_sample"] == sel["values"]
    assert est["stability_gate"]["passed"] is True
    assert est["stability_gate"]["metrics"] == sel["stability_gate"]["results"][-1]["metrics"]
    assert est["reproduced_on_prompt_holdout"]["matches"] is True
    assert est["fresh"] is None  # compare writes fresh numbers elsewhere
    corrected = est["selection_corrected"]
    assert corrected["summary"] == sel["selection_bias"]["summary"]  # select's BBC-CV estimate
    assert corrected["resampling"] == sel["selection_bias"]["resampling"]
    assert m["mapping"]["method"] == "round" and m["mapping"]["transductive"] is False
    assert {"moqwk", "xgboost", "numpy", "scikit-learn"} <= set(m["versions"])
    assert m["booster"]["num_boost_round"] == sel["params"]["n_estimators"]
    assert m["booster"]["params"]["seed"] == 42  # cv.seed, as the CV engine trains
    assert set(m["files"]) == {"model.ubj", "features.json", "features.npz"}


def test_fit_without_a_prompt_then_predict_it_equals_the_cv_engine(selected, fitted_without,
                                                                    capsys):
    out = selected.tmp / "scores.csv"
    rc, _o, err = run(capsys, "predict", "--model", str(fitted_without), "--data",
                      str(selected.tmp / "held_out.csv"), "-o", str(out))
    assert rc == 0, err
    scores = read_scores(out)
    # the input's own column names, not id and prompt
    assert list(scores.columns) == ["essay_id", "prompt", "y_pred", "y_pred_raw", "y_pred_norm"]
    assert scores["essay_id"].tolist() == selected.held["essay_id"].tolist()
    # the CV engine, with the fold for HELD_OUT trained on exactly the other prompts' essays
    config = run_config(selected.run_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        corpus = load_corpus(config)
    names = list(corpus.prompt_names)
    splits = Splits("prompt_holdout", len(names), config.cv.seed,
                    tuple(map(str, corpus.ids)), (tuple(names.index(p) for p in corpus.prompts),))
    oof = CVEngine(config, corpus, splits).run(selected.selected["params"]).oof
    ref = oof[oof["prompt"] == HELD_OUT].set_index("id").loc[scores["essay_id"]]
    np.testing.assert_array_equal(scores["y_pred_raw"].to_numpy(), ref["y_pred_raw"].to_numpy())
    np.testing.assert_array_equal(scores["y_pred"].to_numpy(), ref["y_pred"].to_numpy())
    m = read_json(fitted_without / "model.json")
    assert m["data"]["same_as_run"] is False and HELD_OUT not in m["data"]["prompts"]


def test_a_model_directory_round_trips_across_processes(selected, fitted, capsys):
    """predict in a fresh process (console script) equals predict in this one, to the bit
    (the command keeps the input's id and prompt column names; the library names them id and
    prompt)."""
    model = load_model(fitted)
    inproc = model.predict(selected.held).rename(
        columns={"id": model.columns["id"], "prompt": model.columns["prompt"]})
    script = Path(sys.executable).parent / "moqwk"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "moqwk.cli"]
    out = selected.tmp / "sub.csv"
    proc = subprocess.run([*cmd, "predict", "--model", str(fitted), "--data",
                           str(selected.tmp / "held_out.csv"), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    pd.testing.assert_frame_equal(read_scores(out), inproc, check_dtype=False)
    # without -o the scores go to stdout as the same CSV
    proc = subprocess.run([*cmd, "predict", "--model", str(fitted), "--data",
                           str(selected.tmp / "held_out.csv")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    pd.testing.assert_frame_equal(read_scores(io.StringIO(proc.stdout)), inproc,
                                  check_dtype=False)


def test_fit_another_trial(selected, capsys):
    trials = read_json(selected.run_dir / "artifacts/optuna_trials.json")
    other = next(t for t in trials if t["state"] == "complete"
                 and t["number"] != selected.selected["trial_number"])
    out = selected.tmp / f"trial-{other['number']}"
    rc, stdout, err = run(capsys, "fit", "--run-dir", str(selected.run_dir), "--trial",
                          str(other["number"]), "--out", str(out))
    assert rc == 0, err
    m = read_json(out / "model.json")
    assert m["trial"]["number"] == other["number"] and m["trial"]["params"] == other["params"]
    assert m["cv_estimates"]["in_sample"] == other["values"]
    assert m["cv_estimates"]["reproduced_on_prompt_holdout"] is None
    assert m["cv_estimates"]["selection_corrected"] is None  # BBC-CV is for the selected trial
    assert f"Fitted trial {other['number']} on 720 essays" in stdout


# --------------------------------------------------------------------------- errors


def assert_one_error(rc: int, err: str, code: int, *parts: str) -> None:
    assert rc == code, err
    lines = error_lines(err)
    assert len(lines) == 1, err
    for p in parts:
        assert p in lines[0], lines[0]


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("change", "code", "parts"), [
    (lambda f: f.drop(columns="text"), 3, ["column 'text' (text) not found", "--text-column"]),
    (lambda f: f.iloc[:0], 3, ["has no essays"]),
    (lambda f: f.assign(text=[*f["text"][:-1], ""]), 3, ["empty or non-text essays for ids"]),
    (lambda f: f.assign(essay_id=["a", "a", "b", "c", "d"]), 3, ["duplicate ids a"]),
    (lambda f: f.assign(prompt=[*f["prompt"][:-1], ""]), 3, ["missing prompt for ids"]),
])
def test_bad_essays_exit_non_zero_and_leave_the_output_alone(selected, fitted, capsys, change,
                                                            code, parts):
    bad = write_csv(selected.tmp / "bad.csv", change(selected.held.head(5)))
    out = selected.tmp / "kept.csv"
    out.write_text("earlier scores\n")
    rc, stdout, err = run(capsys, "predict", "--model", str(fitted), "--data", str(bad),
                          "-o", str(out))
    assert_one_error(rc, err, code, *parts)
    assert out.read_text() == "earlier scores\n" and stdout == ""
    assert sorted(p.name for p in selected.tmp.glob(".kept.csv*")) == []


def test_predict_usage_errors(selected, fitted, capsys, tmp_path):
    held = str(selected.tmp / "held_out.csv")
    rc, _o, err = run(capsys, "predict", "--model", str(fitted), "--data",
                      str(tmp_path / "none.csv"), "-o", str(tmp_path / "s.csv"))
    assert_one_error(rc, err, 3, "--data", "not found")
    rc, _o, err = run(capsys, "predict", "--model", str(selected.run_dir), "--data", held)
    assert_one_error(rc, err, 7, "is not a model directory", "moqwk fit")
    rc, _o, err = run(capsys, "predict", "--model", str(fitted), "--data", held, "-o", held)
    assert_one_error(rc, err, 2, "is the --data file")
    rc, _o, err = run(capsys, "predict", "--model", str(fitted), "--data", held,
                      "--id-column", "nope", "-o", str(tmp_path / "s.csv"))
    assert_one_error(rc, err, 3, "column 'nope' (id) not found", "--id-column")
    assert not list(tmp_path.iterdir())


def test_fit_errors(selected, fitted, capsys, tmp_path):
    rc, _o, err = run(capsys, "fit", "--run-dir", str(selected.run_dir))
    assert_one_error(rc, err, 7, "already holds a model", "--overwrite")
    rc, _o, err = run(capsys, "fit", "--run-dir", str(selected.run_dir), "--trial", "99",
                      "--out", str(tmp_path / "m"))
    assert_one_error(rc, err, 7, "--trial 99: no such trial")
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(selected.run_dir / "config.yaml", bare / "config.yaml")
    rc, _o, err = run(capsys, "fit", "--run-dir", str(bare))
    assert_one_error(rc, err, 7, "has no artifacts/selected_params.json", "moqwk select")
    rc, _o, err = run(capsys, "fit", "--run-dir", str(tmp_path / "nothing"))
    assert_one_error(rc, err, 7, "has no config.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare"]
    assert sorted(p.name for p in bare.iterdir()) == ["config.yaml"]


def test_a_transductive_mapping_refuses_a_small_batch(selected, fitted, capsys, tmp_path):
    """The manifest's mapping drives predict: a prompt batch below min_batch is refused before
    anything is written; allowed, the small prompt takes the method's fallback (here: the
    raw prediction, rounded)."""
    model = tmp_path / "model"
    shutil.copytree(fitted, model)
    m = read_json(model / "model.json")
    m["mapping"].update(method="prompt_standardize", transductive=True,
                        params={"min_batch": 500, "fallback": "none", "spread": "within",
                                "max_slope": 5.0},
                        numbers={"min_batch": 500, "fallback": "none", "mean_score": 0.5,
                                 "sd_score": 0.2, "spread": "within"})
    (model / "model.json").write_text(json.dumps(m))
    held = str(selected.tmp / "held_out.csv")
    out = tmp_path / "s.csv"
    rc, _o, err = run(capsys, "predict", "--model", str(model), "--data", held, "-o", str(out))
    assert_one_error(rc, err, 3, "'prompt_standardize'", "at least 500 essays per prompt",
                     f"{HELD_OUT} ({len(selected.held)})", "--small-batch fallback")
    assert not out.exists()
    rc, _o, err = run(capsys, "predict", "--model", str(model), "--data", held, "-o", str(out),
                      "--small-batch", "fallback")
    assert rc == 0, err
    scores = pd.read_csv(out)
    es = (scores["y_pred_norm"] * 4 + 1)  # the raw prediction in score units, as round maps it
    np.testing.assert_array_equal(scores["y_pred"], np.clip(np.rint((es - 1) / 0.5) * 0.5 + 1,
                                                            1, 5))


def test_a_batch_smaller_than_declared_is_refused_or_falls_back(selected, fitted, capsys,
                                                                  tmp_path):
    """A model whose mapping declares batch = N (at least min_batch): predict refuses a prompt
    with fewer than N essays in the call, naming the declared batch and the fix; with
    --small-batch fallback those essays take the fallback, as CV mapped such a batch."""
    n = len(selected.held)
    model = tmp_path / "model"
    shutil.copytree(fitted, model)
    m = read_json(model / "model.json")
    numbers = {"min_batch": 2, "batch": n + 1, "fallback": "none", "mean_score": 0.5,
               "sd_score": 0.2, "spread": "within"}
    m["mapping"].update(method="prompt_standardize", transductive=True,
                        params={"min_batch": 2, "batch": n + 1, "fallback": "none",
                                "spread": "within", "max_slope": 5.0}, numbers=numbers)
    (model / "model.json").write_text(json.dumps(m))
    held = str(selected.tmp / "held_out.csv")
    out = tmp_path / "s.csv"
    rc, _o, err = run(capsys, "predict", "--model", str(model), "--data", held, "-o", str(out))
    assert_one_error(rc, err, 3, f"assume batches of {n + 1} essays per prompt",
                     "mapping.params.batch", f"{HELD_OUT} ({n})", "--small-batch fallback")
    assert not out.exists()
    rc, _o, err = run(capsys, "predict", "--model", str(model), "--data", held, "-o", str(out),
                      "--small-batch", "fallback")
    assert rc == 0, err
    scores = pd.read_csv(out)
    es = (scores["y_pred_norm"] * 4 + 1)  # fallback none: the raw prediction, rounded
    np.testing.assert_array_equal(scores["y_pred"], np.clip(np.rint((es - 1) / 0.5) * 0.5 + 1,
                                                            1, 5))
    # declared as the call's size, the same essays are standardised: not the fallback
    m["mapping"]["params"]["batch"] = m["mapping"]["numbers"]["batch"] = n
    (model / "model.json").write_text(json.dumps(m))
    rc, _o, err = run(capsys, "predict", "--model", str(model), "--data", held, "-o", str(out))
    assert rc == 0, err
    assert "batch = " + str(n) in err
    assert (pd.read_csv(out)["y_pred"].to_numpy() != scores["y_pred"].to_numpy()).any()


def test_predict_keeps_the_inputs_column_names_and_passes_columns_through(
        selected, fitted_without, capsys, assert_one_error_line):
    held = selected.held.rename(columns={"essay_id": "Essay ID", "prompt": "Topic"})
    held["student"] = [f"s{i}" for i in range(len(held))]
    held["cohort"] = 2026
    data = selected.tmp / "renamed.csv"
    held.to_csv(data, index=False)
    out = selected.tmp / "renamed_scores.csv"
    argv = ["predict", "--model", str(fitted_without), "--data", str(data), "-o", str(out),
            "--id-column", "Essay ID", "--prompt-column", "Topic"]
    rc, _o, err = run(capsys, *argv, "--keep-columns", "student,cohort")
    assert rc == 0, err
    scores = read_scores(out)
    assert list(scores.columns) == ["Essay ID", "Topic", "y_pred", "y_pred_raw", "y_pred_norm",
                                    "student", "cohort"]
    assert scores["Essay ID"].tolist() == held["Essay ID"].astype(str).tolist()
    assert scores["student"].tolist() == held["student"].tolist()
    assert set(scores["cohort"]) == {"2026"}
    out.unlink()
    rc, _o, err = run(capsys, *argv, "--keep-columns", "studnet")
    assert rc == 2
    assert_one_error_line(err, "--keep-columns", "'studnet'", "student")
    assert not out.exists()

