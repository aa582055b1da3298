"""Fit and predict as a library: a fitted model scores a held-out prompt exactly as CV does.

The reference is the CV engine itself: a leave-one-prompt-out split (one fold per prompt) makes
the training set of prompt P's fold exactly "every essay but P's". ``fit_model`` on the corpus
without P, then ``predict`` on P's essays, must reproduce that fold's out-of-fold predictions
bit for bit (same features, same booster params, same seed, same target).
"""

from __future__ import annotations

import json
import pickle
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import moqwk
from moqwk.config import Config, parse_config
from moqwk.core.scale import EssayScale, Scale, ScoreScales
from moqwk.core.splits import Splits
from moqwk.data.corpus import Corpus, load_corpus, validate_frame
from moqwk.engine.cv import CVEngine
from moqwk.errors import ConfigError, DataError, ModelError, RunDirError
from moqwk.model import OUTPUT_COLUMNS, FitSource, apply_score_mapping, fit_model, load_model
from moqwk.model.mapping_record import mapping_record, small_prompts

HELD_OUT = "P03"
PARAMS = {"max_depth": 3, "learning_rate": 0.1, "n_estimators": 40, "subsample": 0.8,
          "colsample_bytree": 0.7}


def source(params: dict) -> FitSource:
    return FitSource(dict(params), None, "a test", {"in_sample": None})


def config_from(text: str, tmp: Path, **changes) -> Config:
    raw = yaml.safe_load(text)
    for section, values in changes.items():
        raw[section] = {**raw.get(section, {}), **values}
    return parse_config(raw, base_dir=tmp)


def lopo(corpus: Corpus, seed: int) -> Splits:
    """One fold per prompt: fold k's training set is every essay but prompt k's."""
    names = list(corpus.prompt_names)
    folds = tuple(names.index(p) for p in corpus.prompts)
    return Splits("prompt_holdout", len(names), seed, tuple(map(str, corpus.ids)), (folds,))


def without(corpus_frame: pd.DataFrame, config: Config, prompt: str) -> Corpus:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return validate_frame(corpus_frame[corpus_frame["prompt"] != prompt], config.data,
                              config.scale, n_folds=1, min_prompt_n=config.cv.min_prompt_n,
                              source="demo without one prompt")


@pytest.fixture(scope="module")
def global_case(tmp_path_factory, demo_config_yaml, _demo_frame_cached):
    """The demo config (global scale): LOPO out-of-fold rows, and a model fitted without P03."""
    tmp = tmp_path_factory.mktemp("fit-global")
    config = config_from(demo_config_yaml, tmp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        corpus = load_corpus(config)
    oof = CVEngine(config, corpus, lopo(corpus, config.cv.seed)).run(PARAMS).oof
    fit_model(config, without(_demo_frame_cached, config, HELD_OUT), source(PARAMS),
              out=tmp / "model")
    return config, oof, tmp / "model"


def test_predicting_the_held_out_prompt_equals_the_cv_engine_bit_for_bit(global_case,
                                                                         demo_frame):
    _config, oof, model_dir = global_case
    essays = demo_frame[demo_frame["prompt"] == HELD_OUT]
    pred = load_model(model_dir).predict(essays)
    assert tuple(pred.columns) == OUTPUT_COLUMNS
    ref = oof[oof["prompt"] == HELD_OUT].set_index("id").loc[pred["id"]]
    assert len(pred) == len(essays) > 20
    np.testing.assert_array_equal(pred["y_pred_raw"].to_numpy(), ref["y_pred_raw"].to_numpy())
    np.testing.assert_array_equal(pred["y_pred"].to_numpy(), ref["y_pred"].to_numpy())
    np.testing.assert_array_equal(pred["y_pred_norm"].to_numpy(),
                                  (ref["y_pred_raw"].to_numpy() - 1.0) / 4.0)
    # the predictions are not constant: the equality above says something
    assert pred["y_pred"].nunique() >= 3


def test_the_held_out_prompt_is_a_new_prompt_to_the_model(global_case, demo_frame):
    _config, _oof, model_dir = global_case
    model = load_model(model_dir)
    assert HELD_OUT not in model.manifest["data"]["prompts"]
    assert len(model.manifest["data"]["prompts"]) == 9
    assert model.manifest["scale"] == {"kind": "global", "min": 1.0, "max": 5.0, "step": 0.5}
    # a prompt name never seen anywhere is scored on the global scale too
    essays = demo_frame[demo_frame["prompt"] == HELD_OUT].assign(prompt="brand-new")
    pred = model.predict(essays)
    assert set(pred["prompt"]) == {"brand-new"}
    assert pred["y_pred"].between(1.0, 5.0).all()
    assert np.allclose((pred["y_pred"] - 1.0) / 0.5, np.rint((pred["y_pred"] - 1.0) / 0.5))


def test_rows_are_scored_one_by_one_and_follow_the_frame(global_case, demo_frame):
    model = load_model(global_case[2])
    frame = demo_frame.sample(40, random_state=1)
    whole = model.predict(frame)
    assert whole["id"].tolist() == frame["essay_id"].tolist()
    parts = pd.concat([model.predict(frame.iloc[:7]), model.predict(frame.iloc[7:])])
    pd.testing.assert_frame_equal(whole, parts.reset_index(drop=True))


def test_column_names_can_be_overridden(global_case, demo_frame):
    model = load_model(global_case[2])
    renamed = demo_frame.head(5).rename(columns={"essay_id": "key", "text": "body"})
    with pytest.raises(DataError, match=r"column 'essay_id' \(id\) not found.*--id-column"):
        model.predict(renamed)
    pred = model.predict(renamed, id_column="key", text_column="body")
    pd.testing.assert_frame_equal(pred, model.predict(demo_frame.head(5)))


def test_fit_is_deterministic(global_case, tmp_path, _demo_frame_cached):
    config, _oof, model_dir = global_case
    fit_model(config, without(_demo_frame_cached, config, HELD_OUT), source(PARAMS),
              out=tmp_path / "again")
    assert (tmp_path / "again" / "model.ubj").read_bytes() == (model_dir / "model.ubj").read_bytes()
    a, b = (json.loads((d / "model.json").read_text()) for d in (model_dir, tmp_path / "again"))
    assert a["features"]["key"] == b["features"]["key"]
    assert a["files"]["model.ubj"] == b["files"]["model.ubj"]


# --------------------------------------------------------------------------- per-prompt scales


@pytest.fixture(scope="module")
def per_prompt_case(tmp_path_factory, demo_config_yaml):
    """The demo corpus with a scale per prompt (inferred): LOPO rows and a model without P03."""
    from moqwk.data.demo_corpus import make_demo_corpus

    tmp = tmp_path_factory.mktemp("fit-per-prompt")
    config = config_from(demo_config_yaml, tmp, data={"demo_per_prompt_scales": True},
                         scale={"kind": "infer"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        corpus = load_corpus(config)
    assert not corpus.scales.is_global
    oof = CVEngine(config, corpus, lopo(corpus, config.cv.seed)).run(PARAMS).oof
    frame = make_demo_corpus(0, per_prompt_scales=True)
    fitted = without(frame, config, HELD_OUT)
    assert not fitted.scales.is_global and HELD_OUT not in fitted.scales.per_prompt
    fit_model(config, fitted, source(PARAMS), out=tmp / "model")
    return corpus, oof, tmp / "model", frame


def test_an_unknown_prompt_under_per_prompt_scales_needs_a_declared_scale(per_prompt_case):
    corpus, oof, model_dir, frame = per_prompt_case
    model = load_model(model_dir)
    essays = frame[frame["prompt"] == HELD_OUT]
    with pytest.raises(DataError, match=rf"prompt\(s\) {HELD_OUT} have no score scale.*"
                                        rf"--scale PROMPT MIN MAX STEP.*scales="):
        model.predict(essays)
    s = corpus.scales.per_prompt[HELD_OUT]
    pred = model.predict(essays, scales={HELD_OUT: (s.min, s.max, s.step)})
    ref = oof[oof["prompt"] == HELD_OUT].set_index("id").loc[pred["id"]]
    np.testing.assert_array_equal(pred["y_pred_raw"].to_numpy(), ref["y_pred_raw"].to_numpy())
    np.testing.assert_array_equal(pred["y_pred"].to_numpy(), ref["y_pred"].to_numpy())
    # a known prompt keeps its own scale; declaring another one for it is refused
    known = frame[frame["prompt"] == "P02"].head(3)
    assert model.predict(known)["y_pred"].max() <= corpus.scales.per_prompt["P02"].max
    with pytest.raises(ConfigError, match="--scale P02: the model already has scale"):
        model.predict(known, scales={"P02": (0, 10, 1)})
    with pytest.raises(ConfigError, match="--scale P03: expected MIN MAX STEP"):
        model.predict(essays, scales={HELD_OUT: (5, 1, 1)})


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.drop(columns="text"), r"column 'text' \(text\) not found.*--text-column"),
    (lambda f: f.iloc[:0], "has no essays"),
    (lambda f: f.assign(text=[*f["text"][:-1], "   "]), r"empty or non-text essays for ids"),
    (lambda f: f.assign(text=[*f["text"][:-1], 42]), r"empty or non-text essays for ids"),
    (lambda f: f.assign(text=[*f["text"][:-1], None]), r"empty or non-text essays for ids"),
    (lambda f: f.assign(essay_id=[f["essay_id"].iloc[0]] * len(f)), r"duplicate ids demo-"),
    (lambda f: f.assign(essay_id=[*f["essay_id"][:-1], ""]), r"empty ids in rows 6"),
    (lambda f: f.assign(prompt=[*f["prompt"][:-1], None]), r"missing prompt for ids"),
])
def test_bad_essays_get_one_clear_error(global_case, demo_frame, change, message):
    model = load_model(global_case[2])
    with pytest.raises(DataError, match=message):
        model.predict(change(demo_frame.head(5).reset_index(drop=True)))


def test_a_frame_is_required(global_case):
    with pytest.raises(DataError, match="must be a pandas DataFrame, got list"):
        load_model(global_case[2]).predict(["an essay"])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- loading safely


def copy_model(model_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(model_dir, out)
    return out


def edit_manifest(model_dir: Path, edit) -> None:
    path = model_dir / "model.json"
    m = json.loads(path.read_text())
    edit(m)
    path.write_text(json.dumps(m))


def test_loading_and_predicting_never_unpickle(global_case, demo_frame, monkeypatch):
    model_dir = global_case[2]
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(
        ["model.json", "model.ubj", "features.json", "features.npz"])
    assert not list(model_dir.rglob("*.pkl")) and not list(model_dir.rglob("*.pickle"))
    with np.load(model_dir / "features.npz", allow_pickle=False) as z:
        assert {z[n].dtype.kind for n in z.files} <= {"u", "f"}

    def tripwire(*args, **kwargs):
        raise AssertionError("something unpickled while loading a model")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, tripwire)
    pred = moqwk.load_model(model_dir).predict(demo_frame.head(3))
    assert len(pred) == 3


def test_a_changed_file_is_refused(global_case, tmp_path):
    d = copy_model(global_case[2], tmp_path)
    data = bytearray((d / "model.ubj").read_bytes())
    data[-10] ^= 0xFF
    (d / "model.ubj").write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"model.ubj does not match the sha256"):
        load_model(d)
    (d / "model.ubj").unlink()
    with pytest.raises(ModelError, match="lacks model.ubj"):
        load_model(d)


def test_version_policy(global_case, tmp_path, demo_frame):
    d = copy_model(global_case[2], tmp_path)
    edit_manifest(d, lambda m: m["versions"].update(moqwk="0.9.0", **{"scikit-learn": "0.1"}))
    with pytest.warns(UserWarning) as seen:
        load_model(d).predict(demo_frame.head(2))
    said = sorted(str(w.message) for w in seen)
    assert len(said) == 2, said
    assert f"was fitted with moqwk 0.9.0, this is {moqwk.__version__}" in said[0]
    assert "was fitted with scikit-learn 0.1, this is" in said[1]
    edit_manifest(d, lambda m: m["versions"].update(moqwk=moqwk.__version__, xgboost="99.1.0"))
    with pytest.raises(ModelError, match=r"saved by XGBoost 99.1.0.*install xgboost>=99.1.0"):
        load_model(d)
    edit_manifest(d, lambda m: m.update(format_version=2))
    with pytest.raises(ModelError, match="model format version 2"):
        load_model(d)
    with pytest.raises(ModelError, match="not a model directory"):
        load_model(tmp_path)
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nowhere")


# --------------------------------------------------------------------------- fit


def test_fit_refuses_to_replace_what_is_not_a_model(global_case, tmp_path, _demo_frame_cached):
    config = global_case[0]
    corpus = without(_demo_frame_cached, config, HELD_OUT)
    keep = tmp_path / "runs"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="exists and is not a model directory"):
        fit_model(config, corpus, source(PARAMS), out=keep)
    assert [p.name for p in keep.iterdir()] == ["notes.txt"]
    # a bad parameter fails in training: nothing is left behind, not even a temporary directory
    with pytest.raises(Exception, match="max_depth"):
        fit_model(config, corpus, source({**PARAMS, "max_depth": "deep"}), out=tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_a_label_free_mapping_is_refitted_and_matches_the_cv_engine(
        global_case, tmp_path, _demo_frame_cached, demo_frame):
    """prompt_standardize (batch = prompt) fitted without P03, then P03 scored as one batch: the
    same scores as the CV engine's fold whose training essays are exactly those (bit for bit)."""
    config = global_case[0]
    params = {**PARAMS, "mapping.method": "prompt_standardize", "mapping.batch": "prompt"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        corpus = load_corpus(config)
    oof = CVEngine(config, corpus, lopo(corpus, config.cv.seed)).run(params).oof
    fit_model(config, without(_demo_frame_cached, config, HELD_OUT), source(params),
              out=tmp_path / "m")
    model = load_model(tmp_path / "m")
    m = model.manifest["mapping"]
    assert m["method"] == "prompt_standardize" and m["transductive"] is True
    assert m["fitted_on"]["essays"] == len(corpus) - int((corpus.prompts == HELD_OUT).sum())
    pred = model.predict(demo_frame[demo_frame["prompt"] == HELD_OUT])
    ref = oof[oof["prompt"] == HELD_OUT].set_index("id").loc[pred["id"]]
    np.testing.assert_array_equal(pred["y_pred"].to_numpy(), ref["y_pred"].to_numpy())
    assert not np.array_equal(pred["y_pred"].to_numpy(),  # the mapping did something
                              ref["y_pred_raw"].pipe(lambda r: np.rint((r - 1) / .5) * .5 + 1))


def test_a_label_based_mapping_is_fitted_on_a_cross_fit_of_the_whole_corpus(
        global_case, tmp_path, _demo_frame_cached, demo_frame):
    """A fitted stretch is refitted on the fit corpus's own cross-fitted predictions (numbers
    fitted on a CV fold are not the whole-corpus model's) and applied to new essays."""
    config = global_case[0]
    params = {**PARAMS, "mapping.method": "stretch"}
    corpus = without(_demo_frame_cached, config, HELD_OUT)
    fit_model(config, corpus, source(params), out=tmp_path / "m")
    model = load_model(tmp_path / "m")
    m = model.manifest["mapping"]
    assert m["method"] == "stretch" and m["transductive"] is False
    assert "cross-fit over the fitted corpus" in m["fitted_on"]["predictions"]
    assert m["fitted_on"]["essays"] == len(corpus)
    n = m["numbers"]
    assert n["slope"] > 1  # out-of-sample predictions shrink: the stretch widens them
    pred = model.predict(demo_frame[demo_frame["prompt"] == HELD_OUT])
    z = n["center_score"] + n["slope"] * (pred["y_pred_norm"].to_numpy() - n["center_pred"])
    np.testing.assert_array_equal(pred["y_pred"].to_numpy(), scale_of(len(z)).to_scale(z))
    assert (pred["y_pred"].to_numpy() != scale_of(len(z)).to_scale(
        pred["y_pred_norm"].to_numpy())).any()


def test_fit_replaces_a_model_only_with_overwrite(global_case, tmp_path, _demo_frame_cached):
    config = global_case[0]
    corpus = without(_demo_frame_cached, config, HELD_OUT)
    out = tmp_path / "m"
    fit_model(config, corpus, source(PARAMS), out=out)
    before = (out / "model.ubj").read_bytes()
    with pytest.raises(RunDirError, match="already holds a model; pass --overwrite"):
        fit_model(config, corpus, source({**PARAMS, "n_estimators": 10}), out=out)
    assert (out / "model.ubj").read_bytes() == before
    fit_model(config, corpus, source({**PARAMS, "n_estimators": 10}), out=out, overwrite=True)
    assert (out / "model.ubj").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no old or temporary copies
    assert json.loads((out / "model.json").read_text())["booster"]["num_boost_round"] == 10


# --------------------------------------------------------------------------- the mapping hook


def scale_of(n: int) -> EssayScale:
    return EssayScale.from_scales(ScoreScales(global_scale=Scale(1.0, 5.0, 0.5)),
                                  np.array(["p"] * n))


def test_round_is_the_cv_engines_rounding():
    raw = np.array([-0.2, 0.0, 0.06, 0.0626, 0.5, 0.93, 1.4])
    es = scale_of(len(raw))
    out = apply_score_mapping(mapping_record(None, source="t"), raw, np.array(["a"] * 7), es)
    np.testing.assert_array_equal(out, es.to_scale(raw))
    np.testing.assert_array_equal(out, [1.0, 1.0, 1.0, 1.5, 3.0, 4.5, 5.0])


def test_unknown_methods_and_damaged_records_are_refused():
    es = scale_of(3)
    with pytest.raises(ModelError, match=r"unknown score mapping 'isotonic'"):
        mapping_record({"method": "isotonic"}, source="t")
    damaged = mapping_record({"method": "stretch", "params": {}, "numbers": {"mean": 0.5},
                              "transductive": False}, source="t")
    with pytest.raises(ModelError, match="damaged"):
        apply_score_mapping(damaged, np.zeros(3), np.array(["a", "b", "c"]), es)
    with pytest.raises(ModelError, match="no method name"):
        mapping_record({"params": {}}, source="t")


def test_a_transductive_mapping_needs_a_batch_per_prompt():
    """A per-prompt mapping is refused below min_batch essays of a prompt, unless allowed."""
    m = mapping_record({"method": "prompt_standardize", "transductive": True,
                        "params": {"min_batch": 3, "fallback": "none"},
                        "numbers": {"min_batch": 3}}, source="t")
    prompts = np.array(["a", "a", "a", "b"])
    with pytest.raises(DataError, match=r"at least 3 essays per prompt.*b \(1\).*fallback "
                                        r"\('none'\)"):
        small_prompts(m, prompts)
    assert small_prompts(m, prompts, small_batch="fallback") == {"b": 1}
    assert small_prompts(m, prompts[:3]) == {}
    # the batch check comes first: a small batch is refused before the method is applied
    with pytest.raises(DataError, match="needs at least 3"):
        apply_score_mapping(m, np.zeros(4), prompts, scale_of(4))
    assert small_prompts(mapping_record(None, source="t"), prompts) == {}
    with pytest.raises(ModelError, match="needs min_batch >= 1"):
        mapping_record({"method": "prompt_center", "transductive": True}, source="t")


def test_a_fitted_stretch_left_out_of_a_cv_fold_reproduces_that_fold(
        global_case, tmp_path, _demo_frame_cached, demo_frame):
    """The default mapping (stretch): fit on exactly the training essays of one of the run's
    prompt-holdout folds, then predict that fold's prompts. fit uses the fold's inner folds and
    seeds, so its fitted stretch equals the fold's and the scores equal the fold's out-of-fold
    rows. Without the run's folds, fit's own inner folds give another stretch."""
    from moqwk.run.splits_file import make_splits

    config = global_case[0]
    params = {**PARAMS, "mapping.method": "stretch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        corpus = load_corpus(config)
    splits = make_splits(corpus, config, "prompt_holdout")
    res = CVEngine(config, corpus, splits).run(params)
    k = 1
    held = sorted(set(corpus.prompts[splits.assignment(0) == k]))
    rec = next(f for f in res.mapping["folds"] if f["fold"] == k)
    frame = _demo_frame_cached
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        train = validate_frame(frame[~frame["prompt"].isin(held)], config.data, config.scale,
                               n_folds=1, min_prompt_n=config.cv.min_prompt_n,
                               source="demo without fold 1")
    fit_model(config, train, source(params), out=tmp_path / "m", cv_splits=splits)
    m = load_model(tmp_path / "m").manifest["mapping"]
    assert m["fitted_on"]["cv_fold"]["fold"] == k and m["fitted_on"]["cv_fold"]["repeat"] == 0
    assert m["numbers"]["slope"] == rec["numbers"]["slope"]  # the same stretch, exactly
    assert m["numbers"]["center_pred"] == rec["numbers"]["center_pred"]
    essays = demo_frame[demo_frame["prompt"].isin(held)]
    pred = load_model(tmp_path / "m").predict(essays)
    ref = res.oof.set_index("id").loc[pred["id"]]
    np.testing.assert_array_equal(pred["y_pred_raw"].to_numpy(), ref["y_pred_raw"].to_numpy())
    np.testing.assert_array_equal(pred["y_pred"].to_numpy(), ref["y_pred"].to_numpy())
    # what differed before: fit's own inner folds and seed give another fitted slope
    fit_model(config, train, source(params), out=tmp_path / "own")
    own = load_model(tmp_path / "own").manifest["mapping"]
    assert "cv_fold" not in own["fitted_on"]
    assert own["numbers"]["slope"] != rec["numbers"]["slope"]


def test_a_runs_recorded_folds_are_read_back_for_fit(global_case, tmp_path):
    """fit_run finds the fold from the run's splits.json: the folds read back have the same
    training essays per fold as the ones CV ran."""
    from moqwk.model.cv_fold import matching_fold, run_splits
    from moqwk.run.splits_file import ensure_splits

    config = global_case[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        corpus = load_corpus(config)
    splits = ensure_splits(tmp_path, corpus, config, "prompt_holdout")
    back = run_splits(tmp_path)
    assert back is not None and back.sha256 == splits.sha256
    for _r, k, tr, _va in splits.iter_folds():
        fold = matching_fold(back, corpus.ids[tr])
        assert fold is not None and (fold.repeat, fold.fold) == (0, k)
    assert matching_fold(back, corpus.ids) is None  # the whole corpus is no fold's
    assert run_splits(tmp_path / "nothing") is None
