"""``fit`` then ``predict`` on the real ELLIPSE corpus: a prompt left out of ``fit`` is scored
exactly as the CV engine scores it when that prompt is held out.

The reference is a two-fold prompt-holdout split whose fold 1 is one prompt: fold 1's training
set is then "every essay but that prompt's", which is the corpus ``fit`` sees. Same features,
same booster params, same seed, same target: the predictions must agree bit for bit. The model
directory is loaded by ``moqwk predict`` in a fresh process, from the CSV a user would give it.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from moqwk.config import parse_config
from moqwk.core.splits import Splits
from moqwk.data.corpus import load_corpus, validate_frame
from moqwk.engine.cv import CVEngine
from moqwk.model import FitSource, fit_model

pytestmark = [pytest.mark.ellipse, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def case(ellipse_csv: Path, tmp_path_factory: pytest.TempPathFactory):
    from threadpoolctl import threadpool_limits

    tmp = tmp_path_factory.mktemp("ellipse-fit")
    raw = yaml.safe_load((REPO / "examples" / "ellipse.yaml").read_text(encoding="utf-8"))
    raw["data"]["path"] = str(ellipse_csv)
    raw["model"] = {**(raw.get("model") or {}), "nthread": 1}
    # round: the raw prediction and its rounding agree bit for bit. A fitted stretch is refitted
    # on fit's own cross-fit of the whole corpus (tests/test_fit_predict.py), so its numbers
    # differ from a CV fold's; and fold 0 here trains on one prompt, too few for inner folds.
    raw["mapping"] = {"method": "round"}
    config = parse_config(raw, base_dir=tmp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        corpus = load_corpus(config)
    counts = pd.Series(corpus.prompts).value_counts()
    # the smallest prompt that counts for worst-prompt QWK: the kind that decides it
    eligible = counts[counts >= config.cv.min_prompt_n]
    held = sorted(eligible.index, key=lambda p: (eligible[p], p))[0]
    folds = tuple(int(p == held) for p in corpus.prompts)
    splits = Splits("prompt_holdout", 2, config.cv.seed, tuple(map(str, corpus.ids)), (folds,))
    params = dict(config.baseline_params)
    with threadpool_limits(1):
        oof = CVEngine(config, corpus, splits).run(params).oof
        frame = pd.read_csv(ellipse_csv, dtype={"text_id_kaggle": str, "prompt": str})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            train = validate_frame(frame[frame["prompt"] != held], config.data, config.scale,
                                   n_folds=1, min_prompt_n=config.cv.min_prompt_n,
                                   source="ELLIPSE without one prompt")
        fit_model(config, train, FitSource(params, None, "a test", {"in_sample": None}),
                  out=tmp / "model")
    essays = frame[frame["prompt"] == held].drop(columns=["Overall"])
    essays.to_csv(tmp / "held.csv", index=False)
    return tmp, held, oof, essays


def test_a_prompt_left_out_of_fit_is_scored_as_cv_scores_it(case):
    tmp, held, oof, essays = case
    out = tmp / "scores.csv"
    proc = subprocess.run([sys.executable, "-m", "moqwk", "predict", "--model",
                           str(tmp / "model"), "--data", str(tmp / "held.csv"), "-o", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    pred = pd.read_csv(out, dtype=str)
    # the command keeps the input's id column name: the first column, whatever it is called
    pred = pred.rename(columns={pred.columns[0]: "id"}).astype(
        {"y_pred_raw": float, "y_pred": float})
    assert len(pred) == len(essays) >= 20 and set(pred["prompt"]) == {held}
    ref = oof[oof["prompt"] == held].set_index("id").loc[pred["id"]]
    np.testing.assert_array_equal(pred["y_pred_raw"].to_numpy(), ref["y_pred_raw"].to_numpy())
    np.testing.assert_array_equal(pred["y_pred"].to_numpy(), ref["y_pred"].to_numpy())
    assert pred["y_pred"].nunique() >= 3  # not a constant: the equality says something


def test_the_model_never_saw_the_prompt_and_refuses_malformed_input(case):
    import json

    tmp, held, _oof, essays = case
    manifest = json.loads((tmp / "model" / "model.json").read_text(encoding="utf-8"))
    assert held not in manifest["data"]["prompts"]
    assert len(manifest["data"]["prompts"]) == 43
    bad = essays.copy()
    bad.loc[bad.index[3], "full_text"] = "   "
    bad.to_csv(tmp / "bad.csv", index=False)
    out = tmp / "bad-scores.csv"
    proc = subprocess.run([sys.executable, "-m", "moqwk", "predict", "--model",
                           str(tmp / "model"), "--data", str(tmp / "bad.csv"), "-o", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "full_text" in lines[0], proc.stderr
    assert not out.exists()  # nothing written on failure


@pytest.fixture(scope="module")
def stretch_case(ellipse_csv: Path, tmp_path_factory: pytest.TempPathFactory):
    """The default mapping (a fitted stretch) on the config's own 5 prompt-holdout folds: the
    fold holding the smallest eligible prompt is left out of fit, with the run's folds given,
    so fit uses that fold's inner folds and seeds."""
    from threadpoolctl import threadpool_limits

    from moqwk.run.splits_file import make_splits

    tmp = tmp_path_factory.mktemp("ellipse-fit-stretch")
    raw = yaml.safe_load((REPO / "examples" / "ellipse.yaml").read_text(encoding="utf-8"))
    raw["data"]["path"] = str(ellipse_csv)
    raw["model"] = {**(raw.get("model") or {}), "nthread": 1}
    config = parse_config(raw, base_dir=tmp)
    assert config.mapping.spec.method == "stretch"  # the default, written out in the example
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        corpus = load_corpus(config)
    splits = make_splits(corpus, config, "prompt_holdout")
    counts = pd.Series(corpus.prompts).value_counts()
    eligible = counts[counts >= config.cv.min_prompt_n]
    smallest = sorted(eligible.index, key=lambda p: (eligible[p], p))[0]
    k = int(splits.assignment(0)[list(corpus.prompts).index(smallest)])
    held = sorted(set(corpus.prompts[splits.assignment(0) == k]))
    params = dict(config.baseline_params)
    params = {**params, "mapping.method": "stretch"}
    with threadpool_limits(1):
        res = CVEngine(config, corpus, splits).run(params)
        frame = pd.read_csv(ellipse_csv, dtype={"text_id_kaggle": str, "prompt": str})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            train = validate_frame(frame[~frame["prompt"].isin(held)], config.data,
                                   config.scale, n_folds=1, min_prompt_n=config.cv.min_prompt_n,
                                   source="ELLIPSE without one fold's prompts")
        fit_model(config, train, FitSource(params, None, "a test", {"in_sample": None}),
                  out=tmp / "model", cv_splits=splits)
    essays = frame[frame["prompt"].isin(held)].drop(columns=["Overall"])
    essays.to_csv(tmp / "held.csv", index=False)
    fold = next(f for f in res.mapping["folds"] if f["fold"] == k)
    return tmp, held, res.oof, essays, fold


def test_a_fold_left_out_of_fit_is_scored_as_cv_scores_it_with_a_fitted_stretch(stretch_case):
    import json

    tmp, held, oof, essays, fold = stretch_case
    manifest = json.loads((tmp / "model" / "model.json").read_text(encoding="utf-8"))
    m = manifest["mapping"]
    assert m["method"] == "stretch" and m["fitted_on"]["cv_fold"]["fold"] == fold["fold"]
    assert m["numbers"]["slope"] == fold["numbers"]["slope"]  # the fold's stretch, exactly
    out = tmp / "scores.csv"
    proc = subprocess.run([sys.executable, "-m", "moqwk", "predict", "--model",
                           str(tmp / "model"), "--data", str(tmp / "held.csv"), "-o", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    pred = pd.read_csv(out, dtype=str)
    # the command keeps the input's id column name: the first column, whatever it is called
    pred = pred.rename(columns={pred.columns[0]: "id"}).astype(
        {"y_pred_raw": float, "y_pred": float})
    assert len(pred) == len(essays) and set(pred["prompt"]) == set(held)
    ref = oof.set_index("id").loc[pred["id"]]
    np.testing.assert_array_equal(pred["y_pred_raw"].to_numpy(), ref["y_pred_raw"].to_numpy())
    np.testing.assert_array_equal(pred["y_pred"].to_numpy(), ref["y_pred"].to_numpy())
    # the stretch did something: not the raw prediction rounded
    assert (pred["y_pred"].to_numpy() != np.clip(
        np.rint((pred["y_pred_raw"].to_numpy() - 1) / 0.5) * 0.5 + 1, 1, 5)).any()
