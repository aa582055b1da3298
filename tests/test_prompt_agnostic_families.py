"""The readability, connectives and lexical families through the family registry's code paths.

The fixture registers the three families at the end of ``FAMILIES``, exactly as their registry
entry does. Then each family goes through the same calls cv, search, fit and predict make: the
per-fold store, ``FittedFeatures`` fit/save/load/transform (bit for bit equal to the fold's
block), config parsing, and a trial's ``features.*`` variant.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from moqwk.data.demo_corpus import make_demo_corpus
from moqwk.errors import ConfigError
from moqwk.features import FeatureConfig, FeatureStore
from moqwk.features.families.connectives import CONNECTIVES
from moqwk.features.families.lexical import LEXICAL
from moqwk.features.families.readability import READABILITY
from moqwk.features.fitted import FittedFeatures
from moqwk.features.registry import FAMILIES

NEW = {"readability": READABILITY, "connectives": CONNECTIVES, "lexical": LEXICAL}
PREFIX = {"readability": "read.", "connectives": "conn.", "lexical": "lex."}
SMALL = {"word": {"svd_components": 8}, "char": {"enabled": False}}


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch):
    for name, fam in NEW.items():
        monkeypatch.setitem(FAMILIES, name, fam)
    yield


@pytest.fixture(scope="module")
def demo():
    df = make_demo_corpus(5, n_essays=120)
    return df["essay_id"].to_numpy(), df["text"].tolist(), df["prompt"].to_numpy()


def _config(**families) -> FeatureConfig:
    return FeatureConfig.from_mapping({**SMALL, **families})


def test_only_lexical_of_the_new_families_is_on_by_default():
    """ADR 0005: the benchmark's family rule put lexical into the default features;
    readability and connectives stay opt-in."""
    cfg = FeatureConfig.from_mapping(None)
    assert [n for n in NEW if n in cfg.enabled_names()] == ["lexical"]
    assert cfg.lexical.reference == "package"
    assert cfg.to_dict()["readability"] == {"enabled": False}


@pytest.mark.parametrize("spec", [
    {"readability": True}, {"connectives": {"enabled": True}},
    {"lexical": {"enabled": True}}, {"lexical": {"enabled": True, "reference": "training"}},
])
def test_each_family_joins_the_fold_matrix_leak_free(spec, demo, tmp_path: Path):
    ids, texts, prompts = demo
    name = next(iter(spec))
    cfg = _config(**spec)
    train = np.flatnonzero(~np.isin(prompts, ["P02", "P03"]))
    val = np.flatnonzero(prompts == "P02")
    ff = FeatureStore(ids, texts, cfg, cache_dir=tmp_path / "a").fold(train, val)
    cols = [i for i, n in enumerate(ff.feature_names) if n.startswith(PREFIX[name])]
    assert len(cols) == len(NEW[name].feature_names(cfg.family(name)))
    assert np.isfinite(ff.X_val[:, cols]).all() and ff.X_val[:, cols].any()
    # leak-free: a validation essay's row does not depend on the other validation essays
    more = np.concatenate([val, np.flatnonzero(prompts == "P03")])
    ff2 = FeatureStore(ids, texts, cfg, cache_dir=tmp_path / "b").fold(train, more)
    np.testing.assert_array_equal(ff2.X_val[: len(val)][:, cols], ff.X_val[:, cols])
    # ... nor do the training rows: the held-out essays' texts never reach the fitted state
    garbled = list(texts)
    for i in more:
        garbled[i] = "zebra " * 50
    ff3 = FeatureStore(ids, garbled, cfg, cache_dir=tmp_path / "c").fold(train, val)
    np.testing.assert_array_equal(ff3.X_train[:, cols], ff.X_train[:, cols])


@pytest.mark.parametrize("spec", [
    {"readability": True, "connectives": True},
    {"lexical": {"enabled": True, "reference": "training", "min_df": 2}},
])
def test_fit_save_load_predict_equals_the_folds_block(spec, demo, tmp_path: Path):
    ids, texts, prompts = demo
    cfg = _config(**spec)
    train = np.flatnonzero(prompts != "P04")
    val = np.flatnonzero(prompts == "P04")
    ff = FeatureStore(ids, texts, cfg, cache_dir=tmp_path / "cache").fold(train, val)
    fitted, X_train = FittedFeatures.fit(ids[train], [texts[i] for i in train], cfg)
    np.testing.assert_array_equal(X_train, ff.X_train)
    fitted.save(tmp_path / "model")
    loaded = FittedFeatures.load(tmp_path / "model")
    X_val = loaded.transform([texts[i] for i in val], ids=ids[val])
    np.testing.assert_array_equal(X_val, ff.X_val)
    assert loaded.feature_names == ff.feature_names


def test_training_reference_state_is_the_training_vocabulary(demo):
    ids, texts, prompts = demo
    cfg = _config(lexical={"enabled": True, "reference": "training", "min_df": 2})
    train = np.flatnonzero(prompts != "P01")
    fitted, _ = FittedFeatures.fit(ids[train], [texts[i] for i in train], cfg)
    state = dict(fitted.states)["lexical"]
    from moqwk.features.lexical import words_of

    train_words = {w for i in train for w in words_of(texts[i])}
    held_only = {w for i in np.flatnonzero(prompts == "P01") for w in words_of(texts[i])}
    held_only -= train_words  # P01's topic words, which no training essay uses
    assert held_only and held_only.isdisjoint(state)
    assert all(c >= 2 for c in state.values())


def test_a_trial_can_switch_a_family_on(demo, tmp_path: Path):
    ids, texts, _ = demo
    base = _config()
    variant = base.with_params({"features.readability.enabled": True,
                                "features.lexical.reference": "training"})
    assert "readability" in variant.enabled_names()
    assert variant.lexical.reference == "training" and variant.lexical.enabled
    with pytest.raises(ConfigError, match="features.lexical.reference"):
        base.with_params({"features.lexical.reference": "brown"})


def test_bad_fields_name_their_path():
    with pytest.raises(ConfigError, match="features.readability.enabled"):
        FeatureConfig.from_mapping({"readability": {"enabled": "yes"}})
    with pytest.raises(ConfigError, match="features.connectives.lists: unknown field"):
        FeatureConfig.from_mapping({"connectives": {"enabled": True, "lists": []}})
    with pytest.raises(ConfigError, match="features.lexical.min_df"):
        FeatureConfig.from_mapping({"lexical": {"enabled": True, "min_df": 0}})


# --------------------------------------------------------------------------- through the CLI


def _scaled_config(tmp_path: Path, **extra) -> Path:
    import yaml

    from moqwk.data.scaled_corpus import (
        SYNTHETIC_SPECS,
        synthetic_scaled_frame,
        write_scaled_corpus,
    )

    feats = {**SMALL, "readability": True, "connectives": True,
             "lexical": {"enabled": True, "reference": "training"}}
    path = write_scaled_corpus(tmp_path / "corpus", synthetic_scaled_frame(0, 240),
                               SYNTHETIC_SPECS, extra={"features": feats, **extra})
    raw = yaml.safe_load(path.read_text())
    raw["baseline"] = {"params": {"n_estimators": 30, "max_depth": 3}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_cv_scores_with_the_new_families_and_names_them(tmp_path: Path, capsys):
    from moqwk.base import artifacts
    from moqwk.cli import main

    cfg = _scaled_config(tmp_path)
    run = tmp_path / "run"
    assert main(["cv", "-q", "--config", str(cfg), "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    for name in NEW:
        assert name in out  # cv names the families it scored with
    metrics = artifacts.read_json(run / "artifacts" / "cv_metrics.json")
    assert set(NEW) <= set(metrics["features"]["families"])
    oof = pd.read_csv(run / "artifacts" / "residuals_cv_val_oof.csv")
    assert len(oof) == 240 and oof["prompt"].nunique() == 10  # one held-out row per essay


def test_a_search_over_features_records_the_drawn_family_switches(tmp_path: Path):
    from moqwk.base import artifacts
    from moqwk.cli import main

    space = {"max_depth": {"type": "int", "low": 2, "high": 3},
             "features.readability.enabled": {"type": "categorical", "choices": [False, True]},
             "features.lexical.enabled": {"type": "categorical", "choices": [False, True]}}
    cfg = _scaled_config(tmp_path, search={"n_trials": 3, "seed": 3, "space": space,
                                           "population_size": 2})
    run = tmp_path / "run"
    assert main(["search", "-q", "--config", str(cfg), "--run-dir", str(run)]) == 0
    trials = artifacts.read_json(run / "artifacts" / "optuna_trials.json")
    drawn = [t["params"] for t in trials if t["state"] == "complete" and t["number"] > 0]
    assert drawn and all("features.readability.enabled" in p and "features.lexical.enabled" in p
                         for p in drawn)


def test_fit_and_predict_a_trial_that_switched_the_families_on(tmp_path: Path):
    from moqwk.base import artifacts
    from moqwk.cli import main

    space = {"max_depth": {"type": "int", "low": 2, "high": 3},
             "features.readability.enabled": {"type": "categorical", "choices": [True]},
             "features.lexical.reference": {"type": "categorical", "choices": ["training"]}}
    cfg = _scaled_config(tmp_path, search={"n_trials": 2, "seed": 5, "space": space,
                                           "population_size": 2})
    run = tmp_path / "run"
    assert main(["search", "-q", "--config", str(cfg), "--run-dir", str(run)]) == 0
    trials = artifacts.read_json(run / "artifacts" / "optuna_trials.json")
    drawn = next(t for t in trials if t["state"] == "complete" and t["number"] > 0)
    model = tmp_path / "model"
    assert main(["fit", "-q", "--run-dir", str(run), "--trial", str(drawn["number"]),
                 "--out", str(model)]) == 0
    out = tmp_path / "scores.csv"
    corpus = cfg.parent / "corpus.csv"
    assert main(["predict", "-q", "--model", str(model), "--data", str(corpus), "-o",
                 str(out), "--id-column", "essay_id", "--text-column", "text",
                 "--prompt-column", "prompt"]) == 0
    scores = pd.read_csv(out)
    assert len(scores) == 240
    saved = " ".join(p.read_text() for p in model.rglob("*.json"))
    assert "read.flesch_reading_ease" in saved and "lex.oov_rate" in saved
