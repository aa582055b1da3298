"""The feature store: sklearn equivalence, leak-freedom, the fold cache, the table join, config."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from moqwk.errors import ConfigError, DataError
from moqwk.features import FeatureConfig, FeatureStore, FoldFeatures
from moqwk.features.config import NgramConfig
from moqwk.features.ngrams import count_corpus, fold_tfidf, oov_share
from moqwk.features.text import HANDCRAFTED_NAMES, essay_features, handcrafted_features, mtld

COMMON = "the a of and to in is it that for was on are with as his they be at one have this".split()


def make_corpus(n: int = 120, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Synthetic essays: common words plus a Zipf-ish tail of made-up words, 2-5 paragraphs."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    rare = ["".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(400)]
    vocab = COMMON + rare
    p = 1.0 / np.arange(1, len(vocab) + 1)
    p /= p.sum()
    texts = []
    for _ in range(n):
        paras = []
        for _ in range(rng.integers(2, 6)):
            sents = []
            for _ in range(rng.integers(2, 6)):
                words = list(rng.choice(vocab, rng.integers(4, 16), p=p))
                sep = ", " if rng.random() < 0.3 else " "
                sent = sep.join(words)
                sents.append((sent[0].upper() if rng.random() < 0.8 else sent[0]) + sent[1:] + ".")
            paras.append(" ".join(sents))
        texts.append(("\n\n" if rng.random() < 0.7 else "\n").join(paras))
    ids = np.array([f"e{i:04d}" for i in range(n)])
    return ids, texts


@pytest.fixture(scope="module")
def corpus() -> tuple[np.ndarray, list[str]]:
    return make_corpus()


def split(n: int, seed: int = 1, n_val: int = 30) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


#: The three n-gram and handcrafted families only (lexical, on by default, has its own tests):
#: the store's mechanics are counted per family below.
SMALL = FeatureConfig.from_mapping(
    {"word": {"svd_components": 8}, "char": {"svd_components": 8, "ngram_range": [2, 3]},
     "lexical": {"enabled": False}}
)


# ------------------------------------------------------------------ sklearn equivalence


@pytest.mark.parametrize(
    ("analyzer", "settings"),
    [
        ("word", dict(ngram_range=(1, 2), min_df=2, max_df=0.95, sublinear_tf=True)),
        ("word", dict(ngram_range=(1, 1), min_df=0.05, max_df=40, sublinear_tf=False)),
        ("char_wb", dict(ngram_range=(2, 4), min_df=3, max_df=0.95, sublinear_tf=True)),
        ("char_wb", dict(ngram_range=(1, 3), min_df=1, max_df=1.0, sublinear_tf=False)),
    ],
)
def test_tfidf_equals_sklearn_fitted_on_train_only(corpus, analyzer, settings):
    ids, texts = corpus
    train, val = split(len(texts))
    counts = count_corpus(texts, analyzer, settings["ngram_range"])
    cfg = NgramConfig(
        ngram_range=settings["ngram_range"],
        min_df=settings["min_df"],
        max_df=settings["max_df"],
        sublinear_tf=settings["sublinear_tf"],
    )
    ours = fold_tfidf(counts, train, val, cfg)

    vec = TfidfVectorizer(analyzer=analyzer, **settings)
    ref_train = vec.fit_transform([texts[i] for i in train])
    ref_val = vec.transform([texts[i] for i in val])

    assert ours.vocabulary == tuple(vec.get_feature_names_out())
    np.testing.assert_allclose(ours.X_train.toarray(), ref_train.toarray(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.X_val.toarray(), ref_val.toarray(), rtol=0, atol=1e-12)
    gram = (ours.X_train @ ours.X_val.T).toarray()
    np.testing.assert_allclose(gram, (ref_train @ ref_val.T).toarray(), atol=1e-12)


def test_char_wb_fast_counts_equal_countvectorizer():
    texts = ["Hello  world!\tTabs\nand\n\nnewlines", "a b  c", "   ", "Ünïcödé\u00a0spaces x", "ab"]
    ours = count_corpus(texts, "char_wb", (1, 4))
    cv = CountVectorizer(analyzer="char_wb", ngram_range=(1, 4))
    ref = cv.fit_transform(texts)
    assert ours.terms == tuple(cv.get_feature_names_out())
    assert (ours.counts != ref).nnz == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("aAbB\u00e9\u0130 \t\n\u00a0\u2028.,"),
                        max_size=30), min_size=1, max_size=6))  # fmt: skip
def test_char_wb_fast_counts_property(texts):
    cv = CountVectorizer(analyzer="char_wb", ngram_range=(1, 3))
    try:
        ref = cv.fit_transform(texts)
    except ValueError:  # empty vocabulary
        with pytest.raises(DataError):
            count_corpus(texts, "char_wb", (1, 3))
        return
    ours = count_corpus(texts, "char_wb", (1, 3))
    assert ours.terms == tuple(cv.get_feature_names_out())
    assert (ours.counts != ref).nnz == 0


def test_store_svd_equals_naive_pipeline(corpus, tmp_path):
    ids, texts = corpus
    train, val = split(len(texts))  # sorted positions = id order, the order the store fits in
    ff = FeatureStore(ids, texts, SMALL, tmp_path).fold(train, val)
    x_train, x_val, names = ff.X_train, ff.X_val, ff.feature_names
    for kind, analyzer, cfg in (("word", "word", SMALL.word), ("char", "char_wb", SMALL.char)):
        cols = [i for i, n in enumerate(names) if n.startswith(f"{kind}.svd_")]
        vec = TfidfVectorizer(
            analyzer=analyzer,
            ngram_range=cfg.ngram_range,
            min_df=cfg.min_df,
            max_df=cfg.max_df,
            sublinear_tf=cfg.sublinear_tf,
        )
        svd = TruncatedSVD(cfg.svd_components, algorithm="randomized", random_state=SMALL.seed)
        ref_train = svd.fit_transform(vec.fit_transform([texts[i] for i in train]))
        ref_val = svd.transform(vec.transform([texts[i] for i in val]))
        np.testing.assert_allclose(x_train[:, cols], ref_train, atol=1e-5)
        np.testing.assert_allclose(x_val[:, cols], ref_val, atol=1e-5)


# ------------------------------------------------------------------ leak-freedom


def test_validation_text_does_not_shape_training_features(corpus, tmp_path):
    ids, texts = corpus
    train, val = split(len(texts))
    base = FeatureStore(ids, texts, SMALL, tmp_path / "a").fold(train, val)
    changed = list(texts)
    changed[val[0]] = "Zqxvalonly zqxvalonly words appear here only. " * 5 + texts[val[1]]
    changed[val[2]] = ""
    store = FeatureStore(ids, changed, SMALL, tmp_path / "b")
    other = store.fold(train, val)
    assert other.key != base.key
    assert np.array_equal(base.X_train, other.X_train)  # bit for bit
    assert not np.array_equal(base.X_val, other.X_val)
    vocab = fold_tfidf(store.corpus_counts("word"), train, val, SMALL.word).vocabulary
    assert not any("zqxvalonly" in term for term in vocab)
    assert "zqxvalonly" in store.corpus_counts("word").terms  # counted, yet not a feature


def test_spelling_proxy_uses_training_vocabulary_only():
    texts = ["cat dog bird", "cat dog fish", "cat dog fish", "cat zzunseen bird"]
    counts = count_corpus(texts, "word", (1, 1))
    share = oov_share(counts, np.array([0, 1, 2]))
    # training df: cat 3, dog 3, fish 2, bird 1 -> bird is unknown; zzunseen is unknown
    np.testing.assert_allclose(share, [1 / 3, 0, 0, 2 / 3])


# ------------------------------------------------------------------ the cache


def test_cache_memo_then_disk_hits(corpus, tmp_path):
    ids, texts = corpus
    train, val = split(len(texts))
    store = FeatureStore(ids, texts, SMALL, tmp_path)
    first = store.fold(train, val)
    assert store.stats["misses"] == 1 and store.stats["hits"] == 0
    again = store.fold(train, val)
    assert store.stats["hits"] == 1 and store.stats["memo_hits"] == 1
    fresh = FeatureStore(ids, texts, SMALL, tmp_path)
    from_disk = fresh.fold(train, val)
    assert fresh.stats == {**fresh.stats, "hits": 1, "disk_hits": 1, "misses": 0}
    for ff in (again, from_disk):
        assert ff.key == first.key and ff.feature_names == first.feature_names
        assert np.array_equal(ff.X_train, first.X_train) and np.array_equal(ff.X_val, first.X_val)
    assert first.X_train.dtype == np.float32 and first.X_val.dtype == np.float32
    assert first.X_train.shape == (len(train), len(first.feature_names))
    assert first.X_val.shape == (len(val), len(first.feature_names))
    assert first.feature_names == store.feature_names
    assert not list(tmp_path.rglob("*.tmp"))
    first.X_train[:] = 0  # callers get their own copy
    assert not np.array_equal(store.fold(train, val).X_train, first.X_train)


def test_key_depends_on_fold_config_and_text_not_on_order(corpus, tmp_path):
    ids, texts = corpus
    train, val = split(len(texts))
    store = FeatureStore(ids, texts, SMALL, tmp_path)
    key = store.key(train, val)
    assert store.key(train[::-1], val[::-1]) == key
    train2, val2 = split(len(texts), seed=2)
    assert store.key(train2, val2) != key
    assert store.key(np.concatenate([train, val[:1]]), val[1:]) != key
    for mapping in ({"seed": 1}, {"word": {"min_df": 3}}, {"handcrafted": False}):
        cfg = FeatureConfig.from_mapping({**SMALL.to_dict(), **mapping})
        assert FeatureStore(ids, texts, cfg, tmp_path).key(train, val) != key
    edited = list(texts)
    edited[0] += " more"
    assert FeatureStore(ids, edited, SMALL, tmp_path).key(train, val) != key
    perm = np.random.default_rng(3).permutation(len(ids))  # same corpus, rows shuffled
    shuffled = FeatureStore(ids[perm], [texts[i] for i in perm], SMALL, tmp_path)
    inv = np.argsort(perm)
    assert shuffled.key(inv[train], inv[val]) == key


def test_rows_follow_caller_order(corpus, tmp_path):
    ids, texts = corpus
    train, val = split(len(texts))
    store = FeatureStore(ids, texts, SMALL, tmp_path)
    a = store.fold(train, val)
    order = np.random.default_rng(4).permutation(len(train))
    b = FeatureStore(ids, texts, SMALL, tmp_path / "other").fold(train[order], val[::-1])
    assert np.array_equal(b.X_train, a.X_train[order])
    assert np.array_equal(b.X_val, a.X_val[::-1])


def test_corpus_counts_round_trip_through_disk(corpus, tmp_path):
    ids, texts = corpus
    built = FeatureStore(ids, texts, SMALL, tmp_path)
    for kind in ("word", "char", "unigram"):
        a = built.corpus_counts(kind)
        b = FeatureStore(ids, texts, SMALL, tmp_path).corpus_counts(kind)
        assert a.terms == b.terms and (a.counts != b.counts).nnz == 0
    assert len(list((tmp_path / "corpus").glob("*.npz"))) == 2  # unigrams come from word counts


def test_corrupt_cache_file_is_rebuilt(corpus, tmp_path):
    ids, texts = corpus
    train, val = split(len(texts))
    built = FeatureStore(ids, texts, SMALL, tmp_path)
    ff = built.fold(train, val)
    word_key = built.block_keys(train, val)["word"]  # each family's block is its own file
    (tmp_path / "folds" / f"{word_key}.npz").write_bytes(b"PK\x03\x04 truncated")
    store = FeatureStore(ids, texts, SMALL, tmp_path)
    again = store.fold(train, val)
    assert store.stats["misses"] == 1
    assert store.stats["blocks_built"] == 1 and store.stats["blocks_loaded"] == 2
    assert np.array_equal(again.X_train, ff.X_train)


def test_concurrent_builders_of_one_fold(corpus, tmp_path):
    ids, texts = corpus
    train, val = split(len(texts))
    results: list[FoldFeatures] = []

    def build() -> None:
        results.append(FeatureStore(ids, texts, SMALL, tmp_path).fold(train, val))

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    assert all(np.array_equal(r.X_train, results[0].X_train) for r in results)
    assert len(list((tmp_path / "folds").iterdir())) == 3  # one block per family
    assert not list(tmp_path.rglob("*.tmp"))


def test_empty_validation_and_bad_indices(corpus, tmp_path):
    ids, texts = corpus
    store = FeatureStore(ids, texts, SMALL, tmp_path)
    ff = store.fold(np.arange(len(ids)), np.array([], dtype=int))
    assert ff.X_val.shape == (0, len(ff.feature_names))
    with pytest.raises(ValueError, match="overlap"):
        store.fold(np.arange(10), np.arange(5, 15))
    with pytest.raises(ValueError, match="outside"):
        store.fold(np.arange(10), np.array([len(ids)]))
    with pytest.raises(DataError, match="duplicate"):
        FeatureStore(np.array(["a", "a"]), ["x y", "y z"], SMALL, tmp_path)


# ------------------------------------------------------------------ the table kind


def write_table(tmp_path: Path, ids: np.ndarray, fmt: str = "csv", **extra) -> Path:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "essay_id": list(ids) + ["not-in-corpus"],
            "f1": rng.normal(size=len(ids) + 1),
            "f2": rng.integers(0, 9, size=len(ids) + 1),
            **extra,
        }
    )
    frame = frame.sample(frac=1.0, random_state=0)
    path = tmp_path / f"feats.{fmt}"
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_columns_are_joined_and_appended(corpus, tmp_path, fmt):
    ids, texts = corpus
    path = write_table(tmp_path, ids, fmt)
    frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    frame = frame.set_index("essay_id")
    train, val = split(len(texts))
    cfg = FeatureConfig.from_mapping(
        {**SMALL.to_dict(), "table": {"path": path.name}}, base_dir=tmp_path
    )
    ff = FeatureStore(ids, texts, cfg, tmp_path / "cache").fold(train, val)
    assert ff.feature_names[-2:] == ("table.f1", "table.f2")
    assert ff.feature_names[:-2] == FeatureStore(ids, texts, SMALL, tmp_path).feature_names
    expected = frame.loc[ids[val], ["f1", "f2"]].to_numpy(np.float32)
    np.testing.assert_array_equal(ff.X_val[:, -2:], expected)

    only = FeatureConfig.from_mapping(
        {
            "handcrafted": False,
            "word": {"enabled": False},
            "char": {"enabled": False},
            "lexical": {"enabled": False},
            "table": {"path": str(path), "columns": ["f2"]},
        }
    )
    ff2 = FeatureStore(ids, texts, only, tmp_path / "cache").fold(train, val)
    assert ff2.feature_names == ("table.f2",)
    np.testing.assert_array_equal(ff2.X_train[:, 0], frame.loc[ids[train], "f2"].to_numpy())


def test_table_errors(corpus, tmp_path):
    ids, texts = corpus
    train, val = split(len(texts))
    path = write_table(tmp_path, ids[3:])  # ids e0000..e0002 missing
    cfg = FeatureConfig.from_mapping({"table": {"path": str(path)}})
    with pytest.raises(DataError) as err:
        FeatureStore(ids, texts, cfg, tmp_path / "c").fold(train, val)
    assert "e0000, e0001, e0002" in str(err.value) and "feats.csv" in str(err.value)

    bad = write_table(tmp_path, ids, words=["x"] * (len(ids) + 1))
    cfg = FeatureConfig.from_mapping({"table": {"path": str(bad)}})
    with pytest.raises(DataError, match="'words' is not numeric"):
        FeatureStore(ids, texts, cfg, tmp_path / "c").fold(train, val)

    cfg = FeatureConfig.from_mapping({"table": {"path": "nope.csv"}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"features\.table\.path"):
        FeatureStore(ids, texts, cfg, tmp_path / "c").fold(train, val)


def test_table_edit_changes_key(corpus, tmp_path):
    ids, texts = corpus
    path = write_table(tmp_path, ids)
    cfg = FeatureConfig.from_mapping({"table": {"path": str(path)}})
    train, val = split(len(texts))
    key = FeatureStore(ids, texts, cfg, tmp_path).key(train, val)
    path.write_text(path.read_text().replace("essay_id,f1,f2", "essay_id,f1,f3"))
    assert FeatureStore(ids, texts, cfg, tmp_path).key(train, val) != key


# ------------------------------------------------------------------ config


def test_config_defaults_and_round_trip():
    cfg = FeatureConfig.from_mapping(None)
    assert cfg == FeatureConfig()
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["word"] == {
        "enabled": True,
        "ngram_range": [1, 2],
        "min_df": 2,
        "max_df": 0.95,
        "sublinear_tf": True,
        "svd_components": 64,
    }
    assert d["char"]["ngram_range"] == [2, 4] and d["char"]["min_df"] == 3
    assert d["table"] is None and d["seed"] == 0 and d["handcrafted"] is True
    assert FeatureConfig.from_mapping(d) == cfg
    assert FeatureConfig.from_mapping({}) == cfg


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        ({"colour": 1}, "features.colour: unknown field; allowed: char, connectives, handcrafted"),
        ({"handcrafted": "yes"}, "features.handcrafted"),
        ({"word": {"min_df": -1}}, "features.word.min_df"),
        ({"word": {"min_df": 1.5}}, "features.word.min_df"),
        ({"word": {"min_df": True}}, "features.word.min_df"),
        ({"word": {"min_df": 5, "max_df": 3}}, "features.word.max_df"),
        ({"word": {"ngram_range": [2, 1]}}, "features.word.ngram_range"),
        ({"word": {"ngram": [1, 2]}}, "features.word.ngram: unknown field"),
        ({"char": {"svd_components": 0}}, "features.char.svd_components"),
        ({"char": True}, "features.char"),
        ({"char": {"max_df": "0.9"}}, "features.char.max_df"),
        ({"table": {"id_column": "x"}}, "features.table.path"),
        ({"table": {"path": "f.xlsx"}}, "features.table.path"),
        ({"table": {"path": "f.csv", "columns": "a"}}, "features.table.columns"),
        ({"table": {"path": "f.csv", "colums": ["a"]}},
         "features.table.colums: unknown field; allowed: columns, id_column, path; did you mean "
         "columns?"),
        ({"seed": -1}, "features.seed"),
        (
            {"handcrafted": False, "word": {"enabled": False}, "char": {"enabled": False},
             "lexical": {"enabled": False}},
            "every feature kind is disabled",
        ),
        ([1, 2], "features: expected a mapping"),
    ],
)
def test_config_errors_name_the_field(mapping, field):
    with pytest.raises(ConfigError) as err:
        FeatureConfig.from_mapping(mapping)
    assert field in str(err.value)


def test_config_error_uses_given_path():
    with pytest.raises(ConfigError, match=r"search\.features\.word\.max_df"):
        FeatureConfig.from_mapping({"word": {"max_df": 2.0}}, path="search.features")


def test_min_df_above_max_df_in_a_fold_is_a_config_error(corpus, tmp_path):
    ids, texts = corpus
    cfg = FeatureConfig.from_mapping({"word": {"min_df": 50, "max_df": 0.2}})
    with pytest.raises(ConfigError, match=r"features\.word\.max_df"):
        FeatureStore(ids, texts, cfg, tmp_path).fold(*split(len(texts)))


# ------------------------------------------------------------------ handcrafted


def feature(text: str, name: str) -> float:
    return essay_features(text)[HANDCRAFTED_NAMES.index(name)]


def test_handcrafted_features_are_sane():
    short = "The cat sat on the mat. It was warm."
    long = short + "\n\nThen a dog came by, and the cat ran away! Nobody knew why."
    for name in ("n_chars", "n_words", "log_n_words", "n_sentences", "n_paragraphs"):
        assert feature(long, name) > feature(short, name)
    assert feature(short, "n_words") == 9 and feature(short, "n_sentences") == 2
    assert feature(long, "n_paragraphs") == 2 and feature(long, "comma_rate") > 0
    assert mtld(["word"] * 200) < 3
    varied = " ".join(f"w{i}" for i in range(150)) + " " + " ".join(COMMON * 5)
    assert feature(varied, "mtld") > 20 * feature("word " * 200, "mtld")
    sloppy = "i think so. then i left. it rained"
    assert feature(sloppy, "lower_sentence_start_share") == 1.0
    assert feature(sloppy, "lowercase_i_rate") > 0 and feature(short, "lowercase_i_rate") == 0
    assert feature("the the cat", "repeated_word_rate") == pytest.approx(1 / 3)
    assert feature("", "n_words") == 0 and not any(essay_features(""))
    H = handcrafted_features(make_corpus(20)[1])
    assert H.shape == (20, len(HANDCRAFTED_NAMES)) and np.isfinite(H).all()
