"""``mapping.inner_features: reuse``: the inner cross-fit on the outer fold's features.

A label-based mapping (a fitted ``stretch``) is fitted in each outer fold on inner cross-fitted
predictions. Under ``refit`` (the default) every inner training part gets its own features;
under ``reuse`` the inner models train on the outer fold's features, sliced. These tests check
what ``reuse`` promises: no inner feature build, another (valid) mapping, the same result twice,
no outer held-out label anywhere, no cache entry shared with ``refit``, and a ``fit`` that
reproduces a CV fold as it does under ``refit``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from moqwk.config import Config, parse_config
from moqwk.data.corpus import Corpus, load_corpus, validate_frame
from moqwk.engine.cv import CVEngine
from moqwk.errors import ConfigError
from moqwk.model import FitSource, fit_model, load_model
from moqwk.run.splits_file import make_splits

PARAMS = {"max_depth": 3, "learning_rate": 0.1, "n_estimators": 40, "subsample": 0.8,
          "colsample_bytree": 0.7, "mapping.method": "stretch"}


def config_for(text: str, tmp: Path, inner_features: str | None) -> Config:
    raw = yaml.safe_load(text)
    raw["mapping"] = {"method": "stretch"}
    if inner_features is not None:
        raw["mapping"]["inner_features"] = inner_features
    return parse_config(raw, base_dir=tmp)


@pytest.fixture(scope="module")
def case(tmp_path_factory, demo_config_yaml):
    tmp = tmp_path_factory.mktemp("icf")
    configs = {m: config_for(demo_config_yaml, tmp, m) for m in ("refit", "reuse")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        corpus = load_corpus(configs["refit"])
    splits = make_splits(corpus, configs["refit"], "prompt_holdout")
    return configs, corpus, splits, tmp


def engine(case, mode: str, cache: Path, corpus: Corpus | None = None, **kw) -> CVEngine:
    configs, base, splits, _ = case
    return CVEngine(configs[mode], corpus or base, splits, cache_dir=cache, **kw)


@pytest.fixture(scope="module")
def runs(case):
    """Both modes from one fresh cache each: the results, the engines and the feature blocks
    built by the outer folds alone and by the whole stretch run."""
    tmp = case[3]
    out = {}
    for mode in ("refit", "reuse"):
        e = engine(case, mode, tmp / f"cache-{mode}")
        e.prepare()
        outer = int(e.store.stats["blocks_built"])
        res = e.run(PARAMS)
        out[mode] = {"result": res, "engine": e, "outer_blocks": outer,
                     "blocks": int(e.store.stats["blocks_built"])}
    return out


def test_the_default_is_refit_and_a_bad_value_names_the_field(case, demo_config_yaml, tmp_path):
    assert config_for(demo_config_yaml, tmp_path, None).mapping.inner_features == "refit"
    with pytest.raises(ConfigError) as ei:
        config_for(demo_config_yaml, tmp_path, "sometimes")
    assert str(ei.value) == ("mapping.inner_features: must be one of refit, reuse, "
                             "got 'sometimes'")
    with pytest.raises(ConfigError, match=r"^mapping\.inner_features: expected"):
        config_for(demo_config_yaml, tmp_path, 3)  # type: ignore[arg-type]


def test_reuse_is_in_the_scoring_hash_and_refit_hashes_as_before(case, demo_config_yaml,
                                                                 tmp_path):
    """A run made before the field existed (refit, implicitly) keeps its hashes; reuse changes
    what a trial computes, so a study made with one cannot be resumed with the other."""
    configs = case[0]
    before = config_for(demo_config_yaml, tmp_path, None)
    assert configs["refit"].scoring_hash() == before.scoring_hash()
    assert configs["refit"].study_hash() == before.study_hash()
    assert configs["reuse"].scoring_hash() != before.scoring_hash()
    assert configs["reuse"].study_hash() != before.study_hash()
    assert configs["reuse"].to_dict()["mapping"]["inner_features"] == "reuse"


def test_reuse_builds_no_inner_feature_set(runs):
    """Under reuse the stretch run builds nothing beyond the outer folds' features; refit
    builds a feature set per inner fold on top (3 inner folds per outer fold)."""
    reuse, refit = runs["reuse"], runs["refit"]
    assert reuse["outer_blocks"] > 0 and reuse["blocks"] == reuse["outer_blocks"]
    assert refit["outer_blocks"] == reuse["outer_blocks"]
    assert refit["blocks"] == 4 * refit["outer_blocks"]  # 5 outer + 15 inner fold builds
    assert reuse["result"].timings["inner_train_s"] > 0  # the inner models did train


def test_reuse_fits_another_valid_mapping_and_records_it(runs, case):
    corpus = case[1]
    a, b = runs["refit"]["result"], runs["reuse"]["result"]
    np.testing.assert_array_equal(a.oof["y_pred_raw"], b.oof["y_pred_raw"])  # same outer models
    slopes = {m: [f["numbers"]["slope"] for f in r.mapping["folds"]]
              for m, r in (("refit", a), ("reuse", b))}
    assert all(np.isfinite(s) and s > 0 for s in slopes["reuse"])
    assert slopes["reuse"] != slopes["refit"]
    assert a.mapping["inner_features"] == "refit" and b.mapping["inner_features"] == "reuse"
    assert "reused" in b.mapping["folds"][0]["fitted_on"]["predictions"]
    assert "refitted" in a.mapping["folds"][0]["fitted_on"]["predictions"]
    y = b.oof["y_pred"].to_numpy()
    es = corpus.essay_scale
    assert np.isfinite(y).all() and (y >= es.lo).all() and (y <= es.hi).all()
    assert np.allclose((y - es.lo) / es.step, np.round((y - es.lo) / es.step))
    assert not np.array_equal(y, a.oof["y_pred"].to_numpy())  # the mapping changed scores


def test_reuse_is_deterministic(case, runs, tmp_path):
    again = engine(case, "reuse", tmp_path / "cache").run(PARAMS)
    first = runs["reuse"]["result"]
    np.testing.assert_array_equal(again.oof["y_pred"], first.oof["y_pred"])
    assert again.mapping["folds"] == first.mapping["folds"]


def test_reuse_shares_no_cache_entry_with_refit(case, runs, tmp_path):
    """On one prediction cache, refit's inner predictions are not reuse's: a reuse run after a
    refit run hits only the outer models' entry, trains its own inner models, and adds its own
    entry (and the other way round)."""
    cache = tmp_path / "cache"
    refit = engine(case, "refit", cache).run(PARAMS)
    files = set((cache / "predictions").iterdir())
    assert refit.timings["cache_hits"] == 0 and len(files) == 2  # outer + inner
    reuse = engine(case, "reuse", cache).run(PARAMS)
    assert reuse.timings["cache_hits"] == 1 and reuse.timings["inner_train_s"] > 0
    assert len(set((cache / "predictions").iterdir()) - files) == 1  # its own inner entry
    assert reuse.mapping["folds"] == runs["reuse"]["result"].mapping["folds"]
    again = engine(case, "refit", cache).run(PARAMS)
    assert again.timings["cache_hits"] == 2 and again.timings["inner_train_s"] == 0
    assert again.mapping["folds"] == refit.mapping["folds"]


def test_changing_outer_held_out_labels_changes_no_held_out_prediction(
        case, runs, tmp_path, _demo_frame_cached):
    """Fold k's held-out essays get other scores: fold k's predictions (raw, mapped, and its
    fitted stretch) stay the same bit for bit; folds that train on those essays change."""
    configs, corpus, splits, _ = case
    k = 2
    held = splits.assignment(0) == k
    frame = _demo_frame_cached.copy()
    pos = {str(i): n for n, i in enumerate(corpus.ids)}
    rows = np.array([held[pos[str(i)]] for i in frame["essay_id"]])
    frame.loc[rows, "score"] = 5.0 - frame.loc[rows, "score"] + 1.0  # flip the scale
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        changed = validate_frame(frame, configs["reuse"].data, configs["reuse"].scale,
                                 n_folds=5, min_prompt_n=20, source="relabelled demo")
    assert list(map(str, changed.ids)) == list(map(str, corpus.ids))
    assert (changed.scores[held] != corpus.scores[held]).any()
    res = engine(case, "reuse", tmp_path / "cache", corpus=changed).run(PARAMS)
    ref = runs["reuse"]["result"]
    mine = res.oof[res.oof["fold"] == k]
    theirs = ref.oof[ref.oof["fold"] == k]
    for col in ("y_pred_raw", "y_pred_mapped", "y_pred"):
        np.testing.assert_array_equal(mine[col].to_numpy(), theirs[col].to_numpy())
    fold = {r["fold"]: r for r in res.mapping["folds"]}
    fold_ref = {r["fold"]: r for r in ref.mapping["folds"]}
    assert fold[k]["numbers"] == fold_ref[k]["numbers"]
    assert any(fold[j]["numbers"] != fold_ref[j]["numbers"] for j in fold if j != k)


def test_fit_with_reuse_reproduces_a_cv_fold(case, runs, tmp_path, _demo_frame_cached,
                                             demo_frame):
    """fit on exactly one fold's training essays, under reuse: its cross-fit trains on the
    features fitted on that corpus (the fold's features), on that fold's inner folds and seed,
    so its stretch equals the fold's and it scores the fold's prompts as CV did."""
    configs, corpus, splits, _ = case
    config = configs["reuse"]
    res = runs["reuse"]["result"]
    k = 1
    held = sorted(set(corpus.prompts[splits.assignment(0) == k]))
    rec = next(f for f in res.mapping["folds"] if f["fold"] == k)
    frame = _demo_frame_cached
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        train = validate_frame(frame[~frame["prompt"].isin(held)], config.data, config.scale,
                               n_folds=1, min_prompt_n=config.cv.min_prompt_n,
                               source="demo without fold 1")
    source = FitSource(dict(PARAMS), None, "a test", {"in_sample": None})
    fit_model(config, train, source, out=tmp_path / "m", cv_splits=splits)
    model = load_model(tmp_path / "m")
    m = model.manifest["mapping"]
    assert m["fitted_on"]["inner_features"] == "reuse"
    assert m["fitted_on"]["cv_fold"]["fold"] == k
    assert "reused" in m["fitted_on"]["predictions"]
    assert m["numbers"] == rec["numbers"]  # the same stretch, exactly
    essays = demo_frame[demo_frame["prompt"].isin(held)]
    pred = model.predict(essays)
    ref = res.oof.set_index("id").loc[pred["id"]]
    np.testing.assert_array_equal(pred["y_pred_raw"].to_numpy(), ref["y_pred_raw"].to_numpy())
    np.testing.assert_array_equal(pred["y_pred"].to_numpy(), ref["y_pred"].to_numpy())
    # refit's fold has another stretch: the reuse model is not the refit one
    refit_rec = next(f for f in runs["refit"]["result"].mapping["folds"] if f["fold"] == k)
    assert m["numbers"] != refit_rec["numbers"]


def test_other_inner_folds_share_no_inner_cache_entry(case, tmp_path, demo_config_yaml):
    """The inner predictions' key names mapping.inner_folds (it once compared the part name
    "inner:<repeat>" with "inner" and left it out): 2 inner folds do not read 3's entry."""
    cache = tmp_path / "cache"
    three = engine(case, "refit", cache).run(PARAMS)
    raw = yaml.safe_load(demo_config_yaml)
    raw["mapping"] = {"method": "stretch", "inner_folds": 2}
    two_cfg = parse_config(raw, base_dir=tmp_path)
    two = CVEngine(two_cfg, case[1], case[2], cache_dir=cache).run(PARAMS)
    assert two.timings["cache_hits"] == 1 and two.timings["inner_train_s"] > 0
    assert two.mapping["folds"] != three.mapping["folds"]
