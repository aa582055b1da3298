"""The score mapping inside the CV engine: leak-free, cached, recorded.

The pure methods are tested in tests/core/test_mapping.py; here the whole engine runs (real
features, real XGBoost) on the demo corpus.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from moqwk.config import load_config
from moqwk.core.mapping import METHODS
from moqwk.core.splits import SCHEMES
from moqwk.data.corpus import Corpus, load_corpus
from moqwk.engine.cv import CVEngine
from moqwk.run.splits_file import make_splits

#: Few trees: a run of every method on both schemes stays a few seconds.
PARAMS = {"max_depth": 3, "learning_rate": 0.1, "n_estimators": 40}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, demo_config_yaml: str):
    path = tmp_path_factory.mktemp("mapping") / "config.yaml"
    path.write_text(demo_config_yaml)
    with pytest.warns(UserWarning):
        config = load_config(path)
        corpus = load_corpus(config)
    return config, corpus


def _top_of_scale(corpus: Corpus, rows: np.ndarray) -> Corpus:
    """The same essays with every score of ``rows`` set to the top of its scale."""
    scores = corpus.scores.copy()
    scores[rows] = corpus.essay_scale.hi[rows]
    return Corpus(ids=corpus.ids, prompts=corpus.prompts, texts=corpus.texts, scores=scores,
                  scales=corpus.scales, source=corpus.source + " (labels changed)")


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("method", sorted(METHODS))
def test_held_out_labels_never_change_held_out_predictions(setup, method: str,
                                                           scheme: str) -> None:
    """Every score of one held-out fold set to the top of the scale: no prediction for that
    fold may change, for every method and both schemes. Other folds' predictions must change
    (their models and mappings trained on those labels), so the test can fail."""
    config, corpus = setup
    splits = make_splits(corpus, config, scheme)  # one fold definition for both corpora
    held = np.flatnonzero(splits.assignment(0) == 0)
    changed = _top_of_scale(corpus, held)
    params = {**PARAMS, "mapping.method": method}
    if METHODS[method].transductive:
        params["mapping.min_batch"] = 5  # per-fold batches under stratified_text are small
    a = CVEngine(config, corpus, splits, nthread=1).run(params).oof
    b = CVEngine(config, changed, splits, nthread=1).run(params).oof
    in_fold = a["fold"].to_numpy() == 0
    assert (b["fold"].to_numpy() == a["fold"].to_numpy()).all()
    np.testing.assert_array_equal(a.loc[in_fold, "y_pred"].to_numpy(),
                                  b.loc[in_fold, "y_pred"].to_numpy())
    np.testing.assert_array_equal(a.loc[in_fold, "y_pred_mapped"].to_numpy(),
                                  b.loc[in_fold, "y_pred_mapped"].to_numpy())
    assert (a.loc[~in_fold, "y_pred_raw"].to_numpy()
            != b.loc[~in_fold, "y_pred_raw"].to_numpy()).any()


def test_round_is_todays_rounding_bit_for_bit(setup) -> None:
    config, corpus = setup
    splits = make_splits(corpus, config, "prompt_holdout")
    res = CVEngine(config, corpus, splits, nthread=1).run({**PARAMS, "mapping.method": "round"})
    es = corpus.essay_scale
    z = (res.oof["y_pred_raw"].to_numpy() - es.lo) / (es.hi - es.lo)
    np.testing.assert_array_equal(res.oof["y_pred"].to_numpy(), es.to_scale(z))
    assert res.mapping["spec"] == {"method": "round", "params": {}}
    assert not res.transductive


def test_a_mapping_change_trains_no_model(setup) -> None:
    """Raw predictions are cached by what they depend on: the second run, another mapping on
    the same XGBoost params, trains nothing; other XGBoost params train again."""
    config, corpus = setup
    splits = make_splits(corpus, config, "prompt_holdout")
    engine = CVEngine(config, corpus, splits, nthread=1)
    first = engine.run({**PARAMS, "max_depth": 2, "mapping.method": "round"})
    again = engine.run({**PARAMS, "max_depth": 2, "mapping.method": "prompt_standardize"})
    other = engine.run({**PARAMS, "max_depth": 4, "mapping.method": "round"})
    assert first.timings["train_s"] > 0
    assert again.timings["train_s"] == 0 and again.timings["cache_hits"] >= 1
    assert other.timings["train_s"] > 0
    np.testing.assert_array_equal(first.oof["y_pred_raw"], again.oof["y_pred_raw"])
    assert not (first.oof["y_pred"] == again.oof["y_pred"]).all()
    # and a fresh engine (another process, say) reads them from disk
    fresh = CVEngine(config, corpus, splits, nthread=1).run(
        {**PARAMS, "max_depth": 2, "mapping.method": "stretch", "mapping.slope": 1.5})
    assert fresh.timings["train_s"] == 0


def test_label_based_mapping_is_fitted_on_inner_cross_fits(setup) -> None:
    config, corpus = setup
    splits = make_splits(corpus, config, "prompt_holdout")
    # params no other test uses: the raw-prediction cache is shared by the whole session
    res = CVEngine(config, corpus, splits, nthread=1).run(
        {**PARAMS, "n_estimators": 41, "mapping.method": "stretch"})
    assert res.timings["inner_train_s"] > 0
    folds = res.mapping["folds"]
    assert [f["fold"] for f in folds] == list(range(config.cv.n_folds))
    for f in folds:
        assert f["method"] == "stretch"
        assert "inner cross-fit" in f["fitted_on"]["predictions"]
        held = int((res.oof["fold"] == f["fold"]).sum())
        assert f["fitted_on"]["essays"] == len(corpus) - held  # training essays only
        assert f["numbers"]["slope"] > 1  # predictions shrink: the stretch widens them


def test_a_small_prompt_batch_takes_the_fallback(setup) -> None:
    """The demo's P10 has fewer essays than a min_batch of 50: its essays fall back (to the raw
    prediction), the others are standardised."""
    config, corpus = setup
    splits = make_splits(corpus, config, "prompt_holdout")
    res = CVEngine(config, corpus, splits, nthread=1).run(
        {**PARAMS, "mapping.method": "prompt_standardize", "mapping.min_batch": 50,
             "mapping.batch": "prompt"})
    oof = res.oof
    sizes = oof.groupby("prompt")["id"].size()
    small = set(sizes[sizes < 50].index)
    assert small, "the demo corpus should have a prompt under 50 essays"
    fell = oof["mapping_fallback"].to_numpy()
    assert set(oof.loc[fell, "prompt"]) == small
    np.testing.assert_array_equal(oof.loc[fell, "y_pred_mapped"], oof.loc[fell, "y_pred_raw"])
    assert res.transductive
    assert res.mapping["fallback_share"] == pytest.approx(fell.mean())


def test_cv_metrics_record_the_mapping(tmp_path: Path, demo_config_yaml: str) -> None:
    """`moqwk cv` with a mapping: cv_metrics.json holds each fold's fitted numbers and the
    transductive flag, and the residuals CSV's metrics recompute."""
    from moqwk.cli import main

    raw = yaml.safe_load(demo_config_yaml)
    raw["mapping"] = {"method": "prompt_standardize"}
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    params = tmp_path / "params.json"
    params.write_text(json.dumps({**PARAMS, "mapping.method": "stretch"}))
    assert main(["cv", "--config", str(cfg), "--run-dir", str(tmp_path / "a")]) == 0
    m = json.loads((tmp_path / "a/artifacts/cv_metrics.json").read_text())
    # `moqwk cv` scores baseline.params with the config's mapping: (not baseline.mapping)
    assert m["mapping"]["spec"]["method"] == "prompt_standardize" and m["transductive"] is True
    assert m["features"]["families"] == ["handcrafted", "word", "char"]
    assert main(["cv", "--config", str(cfg), "--run-dir", str(tmp_path / "b"),
                 "--params", str(params)]) == 0
    m = json.loads((tmp_path / "b/artifacts/cv_metrics.json").read_text())
    assert m["mapping"]["spec"]["method"] == "stretch" and m["transductive"] is False
    assert len(m["mapping"]["folds"]) == 5
    assert all(f["numbers"]["slope"] > 0 for f in m["mapping"]["folds"])
    assert main(["cv", "--config", str(cfg), "--run-dir", str(tmp_path / "c"),
                 "--params", str(_write(tmp_path / "p2.json", PARAMS))]) == 0
    m = json.loads((tmp_path / "c/artifacts/cv_metrics.json").read_text())
    assert m["mapping"]["spec"]["method"] == "prompt_standardize"  # the config's mapping
    assert m["transductive"] is True and m["params"]["mapping.method"] == "prompt_standardize"
    # every number of a transductive pipeline says which batch it assumes: the default, 10
    assert m["mapping"]["batch"] == 10 and m["params"]["mapping.batch"] == 10
    assert all(isinstance(f["batch_seed"], int) for f in m["mapping"]["folds"])


def test_cv_scores_held_out_essays_in_the_declared_batches(setup) -> None:
    """A transductive mapping is scored in batches of its declared size (each fold's held-out
    essays of a prompt in a seeded random order); batch = prompt is today's whole-prompt
    scoring; the same config gives the same scores."""
    from moqwk.core.batching import batch_plan, batch_seed

    config, corpus = setup
    splits = make_splits(corpus, config, "prompt_holdout")
    engine = CVEngine(config, corpus, splits, nthread=1)
    run = {**PARAMS, "mapping.method": "prompt_standardize"}
    whole = engine.run({**run, "mapping.batch": "prompt"})
    tens = engine.run({**run, "mapping.batch": 10})
    again = engine.run({**run, "mapping.batch": 10})
    assert whole.batch == "prompt" and tens.batch == 10
    np.testing.assert_array_equal(tens.oof["y_pred"], again.oof["y_pred"])
    assert (whole.oof["y_pred"] != tens.oof["y_pred"]).any()
    # one fold's first batch, re-mapped alone with that fold's fitted numbers: the same scores
    from moqwk.core.mapping import FittedMapping, apply_mapping

    rec = tens.mapping["folds"][0]
    f = engine.prepare()[0]
    assert rec["batch_seed"] == batch_seed(splits.seed, f.repeat, f.fold)
    va = f.val
    codes = corpus.prompt_codes[va]
    scored, members = batch_plan(codes, 10, rec["batch_seed"])[0]
    fitted = FittedMapping.from_dict(rec)
    zr, _ = engine.raw_predictions(run, inner=False, timings=dict.fromkeys(
        ("train_s", "predict_s", "inner_train_s", "cache_hits"), 0.0))
    es = corpus.essay_scale
    rows = va[members]
    alone = apply_mapping(fitted, pred=zr[0, rows], prompt_codes=codes[members], lo=es.lo[rows],
                          hi=es.hi[rows], step=es.step[rows])
    np.testing.assert_array_equal(tens.oof["y_pred"].to_numpy()[rows], alone.y_pred)


def _write(path: Path, obj: dict) -> Path:
    path.write_text(json.dumps(obj))
    return path


def test_results_are_recorded_with_their_mapping_spec(setup) -> None:
    config, corpus = setup
    cfg = dataclasses.replace(config)
    splits = make_splits(corpus, cfg, "prompt_holdout")
    res = CVEngine(cfg, corpus, splits, nthread=1).run(
        {**PARAMS, "mapping.method": "stretch", "mapping.slope": 1.4, "mapping.shift": 0.01})
    assert res.params["mapping.method"] == "stretch"
    assert res.params["mapping.slope"] == 1.4 and res.params["mapping.shift"] == 0.01
    assert all(f["fitted_on"]["predictions"] == "not used" for f in res.mapping["folds"])
    assert res.timings["inner_train_s"] == 0  # a searched stretch fits nothing from predictions


def test_a_search_over_the_mapping_records_it_and_selects_with_it(
        tmp_path: Path, write_search_config) -> None:
    """`mapping.method` in the search space: every trial records its mapping; trials that share
    XGBoost params train once; the selection records the mapping, and a transductive choice is
    said to be transductive in selected_params.json and optuna_summary.md."""
    from moqwk.cli import main

    cfg = write_search_config(tmp_path / "config.yaml", space={
        "mapping.method": {"type": "categorical", "choices": ["round", "prompt_standardize"]}},
        search={"population_size": 4})
    raw = yaml.safe_load(cfg.read_text())
    raw["search"]["space"] = {  # two XGBoost values only, so mapping-only twins are likely
        "max_depth": {"type": "categorical", "choices": [2, 3]},
        "mapping.method": {"type": "categorical", "choices": ["round", "prompt_standardize"]}}
    raw["baseline"]["params"]["max_depth"] = 3
    raw["baseline"]["params"]["learning_rate"] = 0.137  # no other test trains these configs
    cfg.write_text(yaml.safe_dump(raw))
    run_dir = tmp_path / "run"
    assert main(["search", "--config", str(cfg), "--run-dir", str(run_dir), "--n-trials", "8"]) == 0
    trials = json.loads((run_dir / "artifacts/optuna_trials.json").read_text())
    done = [t for t in trials if t["state"] == "complete"]
    assert all("mapping.method" in t["params"] for t in done)
    assert done[0]["role"] == "baseline" and done[0]["params"]["mapping.method"] == "round"
    seen: set = set()
    for t in done:  # the first trial of each XGBoost config trains; its twins reuse it
        key = t["params"]["max_depth"]
        trained = t["metrics"]["timings"]["train_s"] > 0
        assert trained == (key not in seen), t["number"]
        seen.add(key)
    assert main(["select", "--run-dir", str(run_dir), "--gate-margin", "1"]) == 0
    sel = json.loads((run_dir / "artifacts/selected_params.json").read_text())
    method = sel["params"]["mapping.method"]
    assert sel["mapping"]["spec"]["method"] == method
    assert sel["transductive"] is (method == "prompt_standardize")
    summary = (run_dir / "reports/optuna_summary.md").read_text()
    assert "## Score mapping" in summary and f"Method `{method}`" in summary
    assert ("transductive" in summary) is (method == "prompt_standardize")
