"""The feature-family registry: one interface for the store, ``fit`` and ``predict``.

Every registered family round-trips its fitted state through save/load bit for bit; a family
registered by a test alone (no other change) works in the config, the store, the search space,
``fit`` and ``predict``; held-out essays shape no fitted state of a fold; and two configs that
share a family variant share its cached blocks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from moqwk.base.fields import setting
from moqwk.errors import ConfigError, ModelError
from moqwk.features import FeatureConfig, FeatureStore
from moqwk.features.family import EssayData, Essays, Family, PerEssayFamily
from moqwk.features.fitted import META_FILE, FittedFeatures
from moqwk.features.registry import FAMILIES

SMALL = {"word": {"svd_components": 8}, "char": {"ngram_range": [2, 3], "svd_components": 8}}


@pytest.fixture(scope="module")
def demo(_demo_frame_cached: pd.DataFrame) -> pd.DataFrame:
    return _demo_frame_cached


def enabled_config(name: str, demo: pd.DataFrame, tmp_path: Path) -> FeatureConfig:
    """A small config with family ``name`` switched on (a table file is written for it)."""
    fam = FAMILIES[name]
    if name == "table":
        pd.DataFrame({"essay_id": demo["essay_id"].astype(str),
                      "x": np.arange(len(demo)) / 3.0}).to_csv(tmp_path / "t.csv", index=False)
        raw: Any = {"path": "t.csv"}
    else:
        raw = {**fam.to_mapping(fam.default()), "enabled": True}
        raw.update(SMALL.get(name, {}))
    return FeatureConfig.from_mapping({**SMALL, name: raw}, base_dir=tmp_path)


def split(frame: pd.DataFrame, prompt: str) -> tuple[np.ndarray, np.ndarray]:
    p = frame["prompt"].to_numpy()
    return np.flatnonzero(p != prompt), np.flatnonzero(p == prompt)


# ------------------------------------------------------------------ every registered family


@pytest.mark.parametrize("name", list(FAMILIES))
def test_each_family_round_trips_its_state_bit_for_bit(name, demo, tmp_path):
    """fit on the training essays, save, load, transform: equal to the store's fold, bit for
    bit, and the state's arrays come back identical."""
    cfg = enabled_config(name, demo, tmp_path)
    fam, fcfg = FAMILIES[name], cfg.family(name)
    ids = demo["essay_id"].astype(str).to_numpy()
    texts = demo["text"].tolist()
    tr, va = split(demo, "P04")
    order = np.argsort(ids[tr], kind="stable")
    train = Essays(ids[tr][order], [texts[i] for i in tr[order]])
    state, block = fam.fit(fcfg, train, seed=cfg.seed)
    assert np.asarray(block).shape == (len(tr), len(fam.feature_names(fcfg)))
    meta, arrays = fam.save_state(state)
    json.dumps(meta)  # JSON-able
    np.savez(tmp_path / "s.npz", **arrays)
    with np.load(tmp_path / "s.npz", allow_pickle=False) as z:
        loaded = {k: z[k] for k in z.files}
    again = fam.load_state(fcfg, json.loads(json.dumps(meta)), loaded)
    meta2, arrays2 = fam.save_state(again)
    assert meta2 == meta and sorted(arrays2) == sorted(arrays)
    for k, a in arrays.items():
        assert a.dtype == arrays2[k].dtype and np.array_equal(a, arrays2[k]), k
    val = Essays(ids[va], [texts[i] for i in va])
    np.testing.assert_array_equal(fam.transform(fcfg, again, val),
                                  fam.transform(fcfg, state, val))
    # the whole pipeline: the store's fold = fitted on the training essays, saved, loaded
    fold = FeatureStore(ids, texts, cfg, tmp_path / "cache").fold(tr, va)
    fitted, X_train = FittedFeatures.fit(ids[tr], [texts[i] for i in tr], cfg)
    fitted.save(tmp_path / "model")
    back = FittedFeatures.load(tmp_path / "model")
    assert back.feature_names == fold.feature_names
    assert any(n.startswith(f"{fam.prefix}.") for n in back.feature_names)
    np.testing.assert_array_equal(X_train, fold.X_train)
    np.testing.assert_array_equal(back.transform([texts[i] for i in va], ids=ids[va]), fold.X_val)


def test_config_round_trips_and_names_every_family():
    cfg = FeatureConfig()
    assert [n for n, _ in cfg.families] == list(FAMILIES)
    assert FeatureConfig.from_mapping(cfg.to_dict()) == cfg
    # the default config's form is what configs have always recorded (hashes stay put)
    assert {k: cfg.to_dict()[k] for k in ("handcrafted", "word", "char", "table", "seed")} == {
        "handcrafted": True,
        "word": {"enabled": True, "ngram_range": [1, 2], "min_df": 2, "max_df": 0.95,
                 "sublinear_tf": True, "svd_components": 64},
        "char": {"enabled": True, "ngram_range": [2, 4], "min_df": 3, "max_df": 0.95,
                 "sublinear_tf": True, "svd_components": 64},
        "table": None, "seed": 0}
    assert FeatureConfig.from_mapping({"handcrafted": {"enabled": False}}).handcrafted.enabled \
        is False


def test_an_old_fitted_features_format_is_refused_with_the_way_out(demo, tmp_path):
    fitted, _ = FittedFeatures.fit(demo["essay_id"], demo["text"].tolist(),
                                   FeatureConfig.from_mapping(SMALL))
    fitted.save(tmp_path)
    meta = json.loads((tmp_path / META_FILE).read_text())
    meta["format_version"] = 1
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="format version 1; this moqwk reads version 2: fit "
                                         "the model again"):
        FittedFeatures.load(tmp_path)


# ------------------------------------------------------------------ a family added by a test


@dataclass(frozen=True)
class ShoutConfig:
    enabled: bool = setting(False, help="build this block")
    scale: int = setting(1, lo=1, help="multiplies the share of capitals")

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "scale": self.scale}


class ShoutFamily(PerEssayFamily):
    """Share of capital letters times ``scale``: a pure per-essay family."""

    name = prefix = "shout"
    config_type = ShoutConfig
    searchable = ("enabled", "scale")

    def feature_names(self, cfg: ShoutConfig) -> tuple[str, ...]:
        return ("shout.caps_share",)

    def compute(self, cfg: ShoutConfig, ids: np.ndarray, texts: Any) -> np.ndarray:
        return np.array([[cfg.scale * sum(c.isupper() for c in t) / max(1, len(t))]
                         for t in texts]).reshape(len(texts), 1)


@dataclass(frozen=True)
class CentredConfig:
    enabled: bool = setting(False, help="build this block")

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled}


class CentredLengthFamily(Family):
    """Essay length minus the training essays' mean length: a fitted family (its state: one
    number)."""

    name = prefix = "centred"
    config_type = CentredConfig

    def feature_names(self, cfg: CentredConfig) -> tuple[str, ...]:
        return ("centred.length",)

    def fit(self, cfg: CentredConfig, data: EssayData, *, seed: int) -> tuple[Any, np.ndarray]:
        mean = float(np.mean([len(t) for t in data.texts]))
        return mean, self.transform(cfg, mean, data)

    def transform(self, cfg: CentredConfig, state: Any, data: EssayData) -> np.ndarray:
        return np.array([[len(t) - state] for t in data.texts]).reshape(len(data.texts), 1)

    def save_state(self, state: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {"mean": np.array([state])}

    def load_state(self, cfg: Any, meta: Any, arrays: Any) -> Any:
        return float(arrays["mean"][0])


@pytest.fixture
def extra_families(monkeypatch):
    """Two families registered the way a new module would be: one registry entry each."""
    monkeypatch.setitem(FAMILIES, "shout", ShoutFamily())
    monkeypatch.setitem(FAMILIES, "centred", CentredLengthFamily())


def test_a_registered_family_needs_no_other_change(extra_families, demo, tmp_path):
    off = FeatureConfig.from_mapping(SMALL)
    assert not any(n.startswith(("shout.", "centred.")) for n in
                   FeatureStore(demo["essay_id"], demo["text"], off, tmp_path).feature_names)
    cfg = FeatureConfig.from_mapping({**SMALL, "shout": {"enabled": True, "scale": 2},
                                      "centred": {"enabled": True}})
    assert cfg.to_dict()["shout"] == {"enabled": True, "scale": 2}
    ids = demo["essay_id"].astype(str).to_numpy()
    texts = demo["text"].tolist()
    tr, va = split(demo, "P02")
    store = FeatureStore(ids, texts, cfg, tmp_path / "cache")
    fold = store.fold(tr, va)
    assert fold.feature_names[-2:] == ("shout.caps_share", "centred.length")
    train_mean = np.mean([len(texts[i]) for i in tr])
    np.testing.assert_allclose(fold.X_val[:, -1], [len(texts[i]) - train_mean for i in va],
                               rtol=1e-6)
    fitted, X = FittedFeatures.fit(ids[tr], [texts[i] for i in tr], cfg)
    fitted.save(tmp_path / "model")
    back = FittedFeatures.load(tmp_path / "model")
    np.testing.assert_array_equal(X, fold.X_train)
    np.testing.assert_array_equal(back.transform([texts[i] for i in va]), fold.X_val)
    # its fields in the search space, checked like the built-in families'
    variant = cfg.with_params({"features.shout.scale": 3, "features.centred.enabled": False})
    assert variant.family("shout").scale == 3 and not variant.family("centred").enabled
    with pytest.raises(ConfigError, match=r"features\.shout\.scale: must be >= 1"):
        cfg.with_params({"features.shout.scale": 0})
    with pytest.raises(ConfigError, match="features.shout.loud: unknown field"):
        FeatureConfig.from_mapping({"shout": {"loud": True}})


def test_feature_space_entries_are_checked_against_the_registry(tmp_path):
    from moqwk.config.load import parse_config

    def load(space: dict) -> Any:
        raw = {"data": {"demo": True}, "search": {"space": space}}
        return parse_config(raw, base_dir=tmp_path)

    good = load({"features.word.svd_components": {"type": "int", "low": 8, "high": 64},
                 "features.char.enabled": {"type": "categorical", "choices": [True, False]}})
    assert [p.name for p in good.search.space][0] == "features.word.svd_components"
    bad = [
        ({"features.wrod.enabled": {"type": "categorical", "choices": [True]}},
         r"search\.space\.features\.wrod\.enabled: expected features\.<family>\.<field>"),
        ({"features.word.analyzer": {"type": "categorical", "choices": ["x"]}},
         r"search\.space\.features\.word\.analyzer: 'analyzer' of features\.word cannot be "),
        ({"features.word.svd_components": {"type": "int", "low": 0, "high": 8}},
         r"search\.space\.features\.word\.svd_components: the value 0 is not valid"),
        ({"features.word.enabled": {"type": "int", "low": 0, "high": 1}},
         r"search\.space\.features\.word\.enabled: the value 0 is not valid"),
    ]
    for space, message in bad:
        with pytest.raises(ConfigError, match=message):
            load(space)
    with pytest.raises(ConfigError, match=r"search\.grid\.features\.word\.min_df"):
        parse_config({"data": {"demo": True},
                      "search": {"grid": {"features.word.min_df": [0]}}}, base_dir=tmp_path)


# ------------------------------------------------------------------ leak-freedom


@pytest.mark.parametrize("name", list(FAMILIES))
def test_held_out_essays_shape_no_fitted_state(name, demo, tmp_path):
    """Edit the held-out essays' texts: the fold's training block is the same, and so is every
    unedited held-out essay's row (transform depends on the fitted state and the essay)."""
    cfg = enabled_config(name, demo, tmp_path)
    ids = demo["essay_id"].astype(str).to_numpy()
    texts = demo["text"].tolist()
    tr, va = split(demo, "P06")
    edited = list(texts)
    changed = va[::2]
    for i in changed:
        edited[i] = "ZQX unseen words ZQX. " + edited[i][::-1] + " Zzyzx!"
    a = FeatureStore(ids, texts, cfg, tmp_path / "a").fold(tr, va)
    b = FeatureStore(ids, edited, cfg, tmp_path / "b").fold(tr, va)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    same = ~np.isin(va, changed)
    np.testing.assert_array_equal(a.X_val[same], b.X_val[same])
    cols = [j for j, n in enumerate(a.feature_names) if n.startswith(f"{FAMILIES[name].prefix}.")]
    if name != "table":  # the table's rows come from the file, not the text
        assert not np.array_equal(a.X_val[~same][:, cols], b.X_val[~same][:, cols])


def test_held_out_labels_and_texts_change_no_training_features_in_the_engine(
        demo, demo_config_path):
    """The CV engine's folds: a prompt's labels and texts changed, every fold that holds it out
    trains on the same features (the store never sees a label), as the engine builds them."""
    from moqwk.config import load_config
    from moqwk.config.sections import DataConfig
    from moqwk.data.corpus import validate_frame
    from moqwk.engine.cv import CVEngine
    from moqwk.run.splits_file import make_splits

    config = load_config(demo_config_path)
    dc = DataConfig(path=None, id_column="essay_id", text_column="text", prompt_column="prompt",
                    score_column="score", demo=True)
    other = demo.copy()
    held = other["prompt"] == "P03"
    other.loc[held, "text"] = other.loc[held, "text"].str.upper() + " extra words here"
    other.loc[held, "score"] = 5.0
    engines = []
    for i, frame in enumerate((demo, other)):
        with pytest.warns(UserWarning, match="fewer than min_prompt_n"):
            corpus = validate_frame(frame, dc, config.scale, n_folds=5, min_prompt_n=20,
                                    source="demo")
        splits = make_splits(corpus, config, "prompt_holdout")
        engines.append(CVEngine(config, corpus, splits, nthread=1,
                                cache_dir=demo_config_path.parent / f"c{i}"))
    a, b = engines
    assert a.splits.sha256 == b.splits.sha256
    checked = 0
    for fa, fb in zip(a.prepare(), b.prepare(), strict=True):
        if "P03" in set(a.corpus.prompts[fa.train]):
            continue
        np.testing.assert_array_equal(fa.dtrain.get_data().toarray(),
                                      fb.dtrain.get_data().toarray())
        checked += 1
    assert checked == 1


# ------------------------------------------------------------------ variants share blocks


def test_trials_that_share_a_variant_share_its_blocks(demo_config_path):
    """Three runs through one store: a new feature variant builds only the family it changes;
    another engine (a second worker) on a known variant reads every block from the memo."""
    from moqwk.config import load_config
    from moqwk.data.corpus import load_corpus
    from moqwk.engine.cv import CVEngine
    from moqwk.run.splits_file import make_splits

    config = load_config(demo_config_path)
    with pytest.warns(UserWarning, match="fewer than min_prompt_n"):
        corpus = load_corpus(config)
    splits = make_splits(corpus, config, "prompt_holdout")
    eng = CVEngine(config, corpus, splits, nthread=1, cache_dir=demo_config_path.parent / "c")
    base = {"max_depth": 2, "n_estimators": 20, "mapping.method": "round"}
    a = eng.run({**base, "features.word.svd_components": 8})
    s1 = eng.store.stats
    assert s1["blocks_built"] == 3 * 5 and s1["misses"] == 5  # three families, five folds
    b = eng.run({**base, "max_depth": 3, "features.word.svd_components": 8})
    assert eng.store.stats["blocks_built"] == 15  # same variant: nothing built again
    assert b.features == a.features and b.params["features.word.svd_components"] == 8
    c = eng.run({**base, "features.word.svd_components": 4})
    s3 = eng.store.stats
    assert s3["blocks_built"] == 15 + 5  # only word's blocks are new
    assert s3["blocks_memo"] - s1["blocks_memo"] == 2 * 5  # handcrafted and char reused
    assert c.features["config"]["word"]["svd_components"] == 4
    fold = eng.prepare(eng.features_for(c.params))[0]
    names = eng._variant(eng.features_for(c.params)).store.fold(fold.train, fold.val
                                                                ).feature_names
    assert sum(n.startswith("word.") for n in names) == 4
    assert fold.dtrain.num_col() == len(names)
    s3 = eng.store.stats  # after that lookup (one memo hit per fold read)
    # a second engine sharing the store (another worker thread): all memo hits, no build
    other = CVEngine(config, corpus, splits, nthread=1, store=eng.store,
                     predictions=eng.predictions)
    other.prepare(other.features_for({"features.word.svd_components": 8}))
    s4 = eng.store.stats
    assert s4["memo_hits"] - s3["memo_hits"] == 5 and s4["blocks_built"] == s3["blocks_built"]
    # the raw-prediction cache tells the variants apart
    assert eng._key({}, 1, "outer:0", eng.features_for(a.params)) != \
        eng._key({}, 1, "outer:0", eng.features_for(c.params))
    assert not np.array_equal(a.oof["y_pred_raw"], c.oof["y_pred_raw"])


def test_the_feature_search_example_loads_and_holds_its_baseline():
    from moqwk.config import load_config
    from moqwk.core.mapping import spec_to_params
    from moqwk.study.space import contains, distributions

    path = Path(__file__).resolve().parents[1] / "examples" / "feature-search.yaml"
    config = load_config(path)
    names = [p.name for p in config.search.space]
    assert {"mapping.method", "features.word.svd_components", "features.char.enabled"} <= \
        set(names)
    space = distributions(config.search.space)
    full = {**config.baseline_params, **spec_to_params(config.baseline_mapping),
            **config.features.params(space)}
    assert contains(space, full) == []
