"""``features.*`` in a real search on the demo corpus, ``fit`` of a trial's variant, and
``moqwk cv --mapping``.

The search draws ``features.word.svd_components``, ``features.char.enabled`` and
``mapping.method``; its trials record them, each drawn variant's fold blocks are built once
(the cache directory holds one file per family variant and fold, not one per trial), and
``fit --trial N`` fits that trial's variant. ``cv --mapping METHOD`` scores that method, says
so, and its metrics recompute from the residuals CSV.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

SPACE = {
    "features.word.svd_components": {"type": "categorical", "choices": [8, 16]},
    "features.char.enabled": {"type": "categorical", "choices": [True, False]},
    "mapping.method": {"type": "categorical", "choices": ["round", "prompt_standardize"]},
}
#: trial 1: a variant other than the config's (word SVD 8, no char n-grams)
SEED = {"features.word.svd_components": 8, "features.char.enabled": False,
        "mapping.method": "prompt_standardize"}


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory, write_search_config) -> SimpleNamespace:
    from moqwk.cli import main

    d = tmp_path_factory.mktemp("feature-search")
    cfg = write_search_config(d / "config.yaml", space=SPACE,
                              search={"initial_configs": [SEED], "seed_neighbours": 0})
    cache = d / "cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOQWK_CACHE_DIR", str(cache))  # this search's blocks only
        assert main(["search", "--config", str(cfg), "--run-dir", str(d / "run"),
                     "--n-trials", "6"]) == 0
    trials = json.loads((d / "run/artifacts/optuna_trials.json").read_text())
    return SimpleNamespace(dir=d, config=cfg, run_dir=d / "run", cache=cache, trials=trials)


def test_trials_record_their_feature_params(searched):
    done = [t for t in searched.trials if t["state"] == "complete"]
    assert len(done) == 6
    for t in done:
        assert t["params"]["features.word.svd_components"] in (8, 16)
        assert t["params"]["features.char.enabled"] in (True, False)
        assert t["params"]["mapping.method"] in ("round", "prompt_standardize")
    base = next(t for t in done if t["number"] == 0)
    # trial 0 is the baseline with the config's own variant (word SVD 16, char on) and round
    assert base["params"]["features.word.svd_components"] == 16
    assert base["params"]["features.char.enabled"] is True
    assert base["params"]["mapping.method"] == "round"
    one = next(t for t in done if t["number"] == 1)
    assert {k: one["params"][k] for k in SEED} == SEED


def test_each_variant_is_built_once_per_fold(searched):
    """One block file per (family variant, fold): trials that share a variant share it."""
    done = [t["params"] for t in searched.trials if t["state"] == "complete"]
    words = {p["features.word.svd_components"] for p in done}
    chars = any(p["features.char.enabled"] for p in done)
    n_folds = 5  # the label-free and round mappings need no inner folds
    blocks = list((searched.cache / "folds").glob("*.npz"))
    assert len(blocks) == n_folds * (1 + len(words) + int(chars))
    assert len(done) > 1 + len(words) + int(chars)  # so some trials did share blocks


def test_fit_uses_the_trials_feature_variant(searched, tmp_path, demo_frame):
    from moqwk.cli import main
    from moqwk.model.predict import load_model

    out = tmp_path / "model"
    assert main(["fit", "--run-dir", str(searched.run_dir), "--trial", "1",
                 "--out", str(out)]) == 0
    model = json.loads((out / "model.json").read_text())
    assert model["features"]["families"] == ["handcrafted", "word"]
    names = model["features"]["feature_names"]
    assert sum(n.startswith("word.") for n in names) == 8
    assert not any(n.startswith("char.") for n in names)
    assert model["mapping"]["method"] == "prompt_standardize"
    feats = json.loads((out / "features.json").read_text())
    assert feats["config"]["word"]["svd_components"] == 8
    assert feats["config"]["char"]["enabled"] is False
    scored = load_model(out).predict(demo_frame[demo_frame["prompt"] == "P01"])
    assert len(scored) == (demo_frame["prompt"] == "P01").sum()
    assert np.isfinite(scored["y_pred"]).all()


def test_cv_mapping_flag_scores_that_method_and_says_so(tmp_path, demo_config_path, moqwk):
    from moqwk.config import load_config
    from moqwk.data.corpus import load_corpus
    from moqwk.engine.cv import metrics_from_oof

    run_dir = tmp_path / "run"
    rc, out, err = moqwk("cv", "--config", demo_config_path, "--run-dir", run_dir,
                         "--mapping", "prompt_standardize")
    assert rc == 0, err
    m = json.loads((run_dir / "artifacts/cv_metrics.json").read_text())
    assert m["mapping"]["spec"]["method"] == "prompt_standardize"
    assert m["params"]["mapping.method"] == "prompt_standardize"
    assert m["features"] == {"families": ["handcrafted", "word", "char"],
                             "config": load_config(demo_config_path).features.to_dict(),
                             "params": {}}
    assert "scored with mapping prompt_standardize (" in out
    assert "transductive; features handcrafted, word, char" in out
    # the metrics recompute from the residuals CSV
    config = load_config(demo_config_path)
    with pytest.warns(UserWarning, match="fewer than min_prompt_n"):
        corpus = load_corpus(config)
    oof = pd.read_csv(run_dir / "artifacts/residuals_cv_val_oof.csv",
                      dtype={"id": str, "prompt": str})
    again = metrics_from_oof(oof, corpus, config)
    for name in ("worst_prompt_qwk", "mean_qwk", "pooled_qwk", "low_tail_mae",
                 "high_tail_mae"):
        assert getattr(again, name) == pytest.approx(m[name], abs=1e-9), name
    # plain cv scores the config's mapping: (round here), not another one
    rc, out, err = moqwk("cv", "--config", demo_config_path, "--run-dir", tmp_path / "plain")
    assert rc == 0, err
    plain = json.loads((tmp_path / "plain/artifacts/cv_metrics.json").read_text())
    assert plain["mapping"]["spec"]["method"] == "round"
    assert "scored with mapping round; features handcrafted, word, char" in out
    assert plain["mean_qwk"] != m["mean_qwk"]


def test_cv_mapping_flag_refuses_an_unknown_method(tmp_path, demo_config_path, capsys):
    from moqwk.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["cv", "--config", str(demo_config_path), "--run-dir", str(tmp_path / "r"),
              "--mapping", "stretchy"])
    assert exit_.value.code == 2
    assert "invalid choice: 'stretchy' (choose from 'round', 'stretch'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_cv_params_may_choose_a_feature_variant(tmp_path, demo_config_path, moqwk,
                                                assert_one_error_line):
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"max_depth": 2, "n_estimators": 20,
                                  "features.char.enabled": False}))
    rc, out, err = moqwk("cv", "--config", demo_config_path, "--run-dir", tmp_path / "r",
                         "--params", params)
    assert rc == 0, err
    m = json.loads((tmp_path / "r/artifacts/cv_metrics.json").read_text())
    assert m["features"]["families"] == ["handcrafted", "word"]
    assert m["params"]["features.char.enabled"] is False
    assert "features handcrafted, word (features.char.enabled=False)" in out
    params.write_text(json.dumps({"features.word.svd_components": 0}))
    rc, out, err = moqwk("cv", "--config", demo_config_path, "--run-dir", tmp_path / "bad",
                         "--params", params)
    assert rc == 2
    assert_one_error_line(err, "features.word.svd_components")
    assert not (tmp_path / "bad").exists()  # refused before anything was written
