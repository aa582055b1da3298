"""Fitted features: fitted on a fold's training essays, they reproduce the feature store's fold.

The store fits a fold with the validation essays present (it counts the whole corpus once);
:class:`FittedFeatures` sees only the training essays, then transforms the validation texts on
their own. Both must give the same matrices, bit for bit, and so must a saved and re-loaded copy.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from moqwk.base.artifacts import sha256_file
from moqwk.errors import DataError, ModelError
from moqwk.features import FeatureConfig, FeatureStore
from moqwk.features.fitted import ARRAYS_FILE, META_FILE, FittedFeatures

SMALL = {"word": {"ngram_range": [1, 2], "min_df": 2, "svd_components": 16},
         "char": {"ngram_range": [2, 4], "min_df": 3, "svd_components": 16}}
#: Word n-grams that do not start at 1 (the spelling proxy counts unigrams on its own), no char
#: n-grams, share-valued min_df/max_df and more components than some folds can fill.
VARIANT = {"word": {"ngram_range": [2, 3], "min_df": 0.01, "max_df": 0.5,
                    "sublinear_tf": False, "svd_components": 8},
           "char": {"enabled": False}, "seed": 5}
#: No word n-grams (the spelling proxy counts unigrams itself); no handcrafted features.
CHAR_ONLY = {"word": {"enabled": False},
             "char": {"ngram_range": [1, 3], "min_df": 2, "svd_components": 8}}
NO_HANDCRAFTED = {"handcrafted": False, "word": {"svd_components": 8}, "char": {"enabled": False}}


@pytest.fixture(scope="module")
def demo(_demo_frame_cached: pd.DataFrame) -> pd.DataFrame:
    return _demo_frame_cached


def split(frame: pd.DataFrame, prompt: str) -> tuple[np.ndarray, np.ndarray]:
    p = frame["prompt"].to_numpy()
    return np.flatnonzero(p != prompt), np.flatnonzero(p == prompt)


def fit_and_fold(frame: pd.DataFrame, cfg: FeatureConfig, prompt: str, cache: Path):
    ids = frame["essay_id"].astype(str).to_numpy()
    texts = frame["text"].tolist()
    tr, va = split(frame, prompt)
    fold = FeatureStore(ids, texts, cfg, cache).fold(tr, va)
    fitted, X_train = FittedFeatures.fit(ids[tr], [texts[i] for i in tr], cfg)
    return fold, fitted, X_train, [texts[i] for i in va], ids[va]


@pytest.mark.parametrize(("features", "prompt"), [(SMALL, "P03"), (SMALL, "P10"),
                                                  (VARIANT, "P02"), (CHAR_ONLY, "P07"),
                                                  (NO_HANDCRAFTED, "P01")])
def test_fit_on_train_transform_val_equals_the_store_fold(demo, tmp_path, features, prompt):
    cfg = FeatureConfig.from_mapping(features)
    fold, fitted, X_train, val_texts, _ = fit_and_fold(demo, cfg, prompt, tmp_path / "cache")
    assert fitted.feature_names == fold.feature_names
    assert X_train.dtype == np.float32 and fold.X_train.dtype == np.float32
    np.testing.assert_array_equal(X_train, fold.X_train)  # bit for bit (NaN-free)
    X_val = fitted.transform(val_texts)
    np.testing.assert_array_equal(X_val, fold.X_val)
    # the same after a round trip through the files
    fitted.save(tmp_path / "m")
    again = FittedFeatures.load(tmp_path / "m")
    np.testing.assert_array_equal(again.transform(val_texts), fold.X_val)
    assert again.key == fitted.key and again.feature_names == fitted.feature_names


def test_rows_follow_the_callers_order_and_fit_does_not_depend_on_it(demo):
    cfg = FeatureConfig.from_mapping(VARIANT)
    sub = demo.iloc[:200]
    ids, texts = sub["essay_id"].astype(str).to_numpy(), sub["text"].tolist()
    perm = np.random.default_rng(0).permutation(len(ids))
    a, Xa = FittedFeatures.fit(ids, texts, cfg)
    b, Xb = FittedFeatures.fit(ids[perm], [texts[i] for i in perm], cfg)
    np.testing.assert_array_equal(Xa[perm], Xb)
    assert a.key == b.key
    np.testing.assert_array_equal(a.transform(texts[:5]), b.transform(texts[:5]))


def test_transform_is_per_essay(demo):
    """An essay's row does not depend on the other essays transformed with it."""
    cfg = FeatureConfig.from_mapping(VARIANT)
    fitted, _ = FittedFeatures.fit(demo["essay_id"][:300], demo["text"][:300].tolist(), cfg)
    texts = demo["text"][300:320].tolist()
    both = fitted.transform(texts)
    np.testing.assert_array_equal(both[3:4], fitted.transform(texts[3:4]))
    # an essay with no known word gets zero n-gram features and an out-of-vocabulary share of 1
    odd = fitted.transform(["Zzyzx qwfp"])
    spell = fitted.feature_names.index("hc.spell_oov_share")
    assert odd[0, spell] == 1.0
    assert not odd[0, [n.startswith("word.") for n in fitted.feature_names]].any()


def test_table_rows_are_read_for_the_ids_transformed(demo, tmp_path):
    table = pd.DataFrame({"essay_id": demo["essay_id"].astype(str),
                          "rating": np.arange(len(demo), dtype=float) / 7.0})
    table.to_csv(tmp_path / "t.csv", index=False)
    cfg = FeatureConfig.from_mapping({**VARIANT, "table": {"path": "t.csv"}}, base_dir=tmp_path)
    fold, fitted, X_train, val_texts, val_ids = fit_and_fold(demo, cfg, "P05", tmp_path / "c")
    np.testing.assert_array_equal(X_train, fold.X_train)
    np.testing.assert_array_equal(fitted.transform(val_texts, ids=val_ids), fold.X_val)
    with pytest.raises(DataError, match="pass the essays' ids"):
        fitted.transform(val_texts)
    table[~table["essay_id"].isin(val_ids[:2])].to_csv(tmp_path / "t2.csv", index=False)
    with pytest.raises(DataError, match=r"no row for 2 essay id.*--feature-table"):
        fitted.transform(val_texts, ids=val_ids, table_path=tmp_path / "t2.csv")


@pytest.fixture(scope="module")
def saved(demo, tmp_path_factory) -> tuple[Path, FittedFeatures]:
    d = tmp_path_factory.mktemp("fitted")
    fitted, _ = FittedFeatures.fit(demo["essay_id"], demo["text"].tolist(),
                                   FeatureConfig.from_mapping(SMALL))
    fitted.save(d)
    return d, fitted


def test_saved_arrays_hold_no_objects(saved):
    d, _ = saved
    assert sorted(p.name for p in d.iterdir()) == sorted([ARRAYS_FILE, META_FILE])
    with np.load(d / ARRAYS_FILE, allow_pickle=False) as z:
        kinds = {z[n].dtype.kind for n in z.files}
    assert kinds <= {"u", "f"}, kinds  # unsigned bytes (term blobs) and floats only


def copy_of(d: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    out.mkdir(parents=True)
    for p in d.iterdir():
        (out / p.name).write_bytes(p.read_bytes())
    return out


def test_a_pickled_array_is_refused_even_with_a_matching_hash(saved, tmp_path):
    d = copy_of(saved[0], tmp_path)
    with np.load(d / ARRAYS_FILE, allow_pickle=False) as z:
        arrays = {n: z[n] for n in z.files}
    arrays["word.idf"] = np.array([{"not": "numbers"}], dtype=object)
    with open(d / ARRAYS_FILE, "wb") as fh:
        np.savez(fh, **arrays)
    meta = json.loads((d / META_FILE).read_text())
    meta["arrays_sha256"] = sha256_file(d / ARRAYS_FILE)
    (d / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="without executing code"):
        FittedFeatures.load(d)


def test_damaged_or_foreign_files_are_refused(saved, tmp_path):
    d = copy_of(saved[0], tmp_path)
    with zipfile.ZipFile(d / ARRAYS_FILE, "a") as z:
        z.writestr("extra.npy", b"")
    with pytest.raises(ModelError, match="does not match the sha256"):
        FittedFeatures.load(d)
    d2 = copy_of(saved[0], tmp_path / "b")
    meta = json.loads((d2 / META_FILE).read_text())
    meta["feature_code_version"] = "0"
    (d2 / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="feature code version 0.*fit the model again"):
        FittedFeatures.load(d2)
    with pytest.raises(ModelError, match="not found"):
        FittedFeatures.load(tmp_path / "nothing")
