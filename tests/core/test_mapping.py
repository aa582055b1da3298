"""Score mapping: round kept bit for bit, every method on the scale grid, no held-out label can
reach a mapped prediction, the per-prompt fallback, per-prompt scales, monotonicity."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moqwk.core.mapping import (
    METHODS,
    FittedMapping,
    MappingSpec,
    apply_mapping,
    fit_mapping,
    needs_train_pred,
)
from moqwk.core.metrics import qwk
from moqwk.core.scale import EssayScale, Scale, ScoreScales

LABEL_BASED = ("stretch", "thresholds")
PER_PROMPT = ("prompt_center", "prompt_standardize")
#: one spec per method (per-prompt ones also with the stretch fallback, which needs predictions)
SPECS = [MappingSpec(m) for m in METHODS] + [
    MappingSpec(m, {"fallback": "stretch"}) for m in PER_PROMPT] + [
    MappingSpec("stretch", {"spread": "within"}),
    MappingSpec("stretch", {"slope": 1.6, "shift": 0.05}),
    MappingSpec("thresholds", {"objective": "pooled"})]


def corpus(seed: int = 0, n_prompts: int = 8, per_prompt: int = 60, scales=None):
    """Synthetic essays: prompt levels differ, predictions shrunk toward the middle + noise."""
    rng = np.random.default_rng(seed)
    prompt = np.repeat(np.arange(n_prompts), per_prompt)
    names = np.array([f"p{i}" for i in prompt])
    scales = scales or ScoreScales(global_scale=Scale(1.0, 5.0, 0.5))
    es = EssayScale.from_scales(scales, names)
    level = rng.normal(0, 0.08, n_prompts)[prompt]
    latent = np.clip(0.5 + level + rng.normal(0, 0.2, len(prompt)), 0, 1)
    y = es.normalise(es.to_scale(latent))
    pred = 0.5 + 0.45 * (latent - 0.5) + rng.normal(0, 0.06, len(prompt)) - 0.5 * level
    return {"y": y, "prompt": prompt, "es": es, "pred": pred}


def fit(spec, c, idx=None, **kw):
    idx = np.arange(len(c["y"])) if idx is None else idx
    es = c["es"]
    return fit_mapping(spec, train_y_norm=c["y"][idx], train_prompt_codes=c["prompt"][idx],
                       train_lo=es.lo[idx], train_hi=es.hi[idx], train_step=es.step[idx],
                       train_pred=kw.get("train_pred", c["pred"][idx]), source="test")


def apply(fitted, c, idx=None, pred=None):
    idx = np.arange(len(c["y"])) if idx is None else idx
    es = c["es"]
    return apply_mapping(fitted, pred=c["pred"][idx] if pred is None else pred,
                         prompt_codes=c["prompt"][idx], lo=es.lo[idx], hi=es.hi[idx],
                         step=es.step[idx])


def cv_predictions(spec, c, folds):
    """A prompt-holdout CV in miniature: fit on the other folds, apply to the held-out one."""
    out = np.full(len(c["y"]), np.nan)
    for k in np.unique(folds):
        tr, va = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        out[va] = apply(fit(spec, c, tr), c, va).y_pred
    return out


# --------------------------------------------------------------------------- round


@given(st.lists(st.floats(-0.5, 1.5, allow_nan=False), min_size=2, max_size=50))
def test_round_is_essay_scale_to_scale_bit_for_bit(zs):
    scales = ScoreScales(per_prompt={"a": Scale(0, 3, 1), "b": Scale(1, 5, 0.5)})
    names = np.array(["a", "b"] * len(zs))
    es = EssayScale.from_scales(scales, names)
    z = np.repeat(zs, 2)
    codes = np.array([0, 1] * len(zs))
    f = fit_mapping(MappingSpec("round"), train_y_norm=np.clip(z, 0, 1), train_prompt_codes=codes,
                    train_lo=es.lo, train_hi=es.hi, train_step=es.step)
    out = apply_mapping(f, pred=z, prompt_codes=codes, lo=es.lo, hi=es.hi, step=es.step)
    expected = es.to_scale(z)
    assert out.y_pred.tobytes() == expected.tobytes()
    assert out.z.tobytes() == z.tobytes()
    assert not out.fallback.any() and out.batches is None


# --------------------------------------------------------------------------- grid and range


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.method}{dict(s.params)}")
def test_every_method_scores_on_the_grid_within_range_on_per_prompt_scales(spec):
    scales = ScoreScales(per_prompt={f"p{i}": (Scale(0, 3, 1) if i % 2 else Scale(1, 5, 0.5))
                                     for i in range(8)})
    c = corpus(1, scales=scales)
    folds = c["prompt"] % 4
    tr, va = np.flatnonzero(folds != 0), np.flatnonzero(folds == 0)
    pred = c["pred"][va] * 3 - 1  # far outside [0, 1] too
    out = apply(fit(spec, c, tr), c, va, pred=pred)
    es = c["es"].take(va)
    assert ((out.y_pred >= es.lo) & (out.y_pred <= es.hi)).all()
    steps = (out.y_pred - es.lo) / es.step
    assert np.allclose(steps, np.rint(steps), atol=1e-9)
    assert np.array_equal(out.y_pred, es.to_scale(out.z))  # z is what was rounded
    assert out.fallback.dtype == bool and len(out.fallback) == len(va)


# --------------------------------------------------------------------------- no held-out labels


def test_apply_takes_no_labels():
    params = set(inspect.signature(apply_mapping).parameters)
    assert params == {"fitted", "pred", "prompt_codes", "lo", "hi", "step"}


@pytest.mark.parametrize("scheme", ["prompt_holdout", "stratified"])
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.method}{dict(s.params)}")
def test_changing_a_held_out_folds_scores_changes_none_of_its_predictions(spec, scheme):
    c = corpus(2)
    # prompt_holdout: whole prompts per fold; stratified: every prompt split over the 4 folds
    folds = c["prompt"] % 4 if scheme == "prompt_holdout" else np.arange(len(c["y"])) % 4
    before = cv_predictions(spec, c, folds)
    for k in range(4):
        changed = {**c, "y": np.where(folds == k, 1.0, c["y"])}  # every score to the top
        after = cv_predictions(spec, changed, folds)
        assert np.array_equal(after[folds == k], before[folds == k])
        if spec.method != "round":
            # the same scores are training data for the other folds: there they must matter,
            # or this test could not fail
            assert not np.array_equal(after[folds != k], before[folds != k])


@pytest.mark.parametrize("method", LABEL_BASED)
def test_label_based_fits_depend_on_training_predictions_and_scores(method):
    c = corpus(3)
    spec = MappingSpec(method)
    base = fit(spec, c).to_dict()["numbers"]
    other_pred = fit(spec, c, train_pred=c["pred"] * 0.7 + 0.1).to_dict()["numbers"]
    other_y = fit(spec, {**c, "y": c["y"] ** 1.5}).to_dict()["numbers"]
    assert base != other_pred and base != other_y
    assert fit(spec, c).to_dict()["numbers"] == base  # deterministic


def test_per_prompt_methods_use_training_scores_not_training_predictions():
    c = corpus(4)
    for method in PER_PROMPT:
        spec = MappingSpec(method)
        assert not needs_train_pred(spec)
        f = fit_mapping(spec, train_y_norm=c["y"], train_prompt_codes=c["prompt"],
                        train_lo=c["es"].lo, train_hi=c["es"].hi, train_step=c["es"].step)
        shifted = fit_mapping(spec, train_y_norm=c["y"] * 0.5, train_prompt_codes=c["prompt"],
                              train_lo=c["es"].lo, train_hi=c["es"].hi, train_step=c["es"].step)
        assert f.numbers["mean_score"] != shifted.numbers["mean_score"]
        assert f.transductive and f.to_dict()["fitted_on"]["predictions"] == "not used"


# --------------------------------------------------------------------------- what methods do


def test_stretch_matches_the_training_scores_mean_and_sd():
    c = corpus(5)
    out = apply(fit(MappingSpec("stretch"), c), c)
    assert out.z.mean() == pytest.approx(c["y"].mean())
    assert out.z.std(ddof=1) == pytest.approx(c["y"].std(ddof=1))
    f = fit(MappingSpec("stretch"), c)
    assert f.numbers["slope"] > 1.5  # the predictions were shrunk to 0.45 of the scores' spread


def test_stretch_with_searched_slope_and_shift_fits_nothing_from_predictions():
    c = corpus(5)
    spec = MappingSpec("stretch", {"slope": 2.0, "shift": 0.05})
    assert not needs_train_pred(spec)
    f = fit_mapping(spec, train_y_norm=c["y"], train_prompt_codes=c["prompt"],
                    train_lo=c["es"].lo, train_hi=c["es"].hi, train_step=c["es"].step)
    m = c["y"].mean()
    out = apply(f, c, pred=np.array([m, m + 0.1] * (len(c["y"]) // 2)))
    assert out.z[:2] == pytest.approx([m + 0.05, m + 0.25])
    assert f.to_dict()["fitted_on"]["predictions"] == "not used"


def test_thresholds_recover_a_monotone_distortion_exactly():
    c = corpus(6)
    distorted = 0.2 + 0.5 * c["y"] ** 3  # strictly increasing in the score: perfect cuts exist
    f = fit(MappingSpec("thresholds"), c, train_pred=distorted)
    out = apply(f, c, pred=distorted)
    levels = c["es"].level
    assert qwk(levels(c["es"].to_scale(c["y"])), levels(out.y_pred), 9) == pytest.approx(1.0)
    (scale,) = f.numbers["scales"]
    assert scale["objective_end"] >= scale["objective_start"]
    rounded = apply(fit(MappingSpec("stretch"), c, train_pred=distorted), c, pred=distorted)
    assert qwk(levels(c["es"].to_scale(c["y"])), levels(rounded.y_pred), 9) < 0.99


def test_prompt_standardize_gives_each_batch_the_training_mean_and_sd():
    c = corpus(7)
    for spread in ("pooled", "within"):
        f = fit(MappingSpec("prompt_standardize", {"spread": spread}), c)
        out = apply(f, c)
        for p in np.unique(c["prompt"]):
            z = out.z[c["prompt"] == p]
            assert z.mean() == pytest.approx(f.numbers["mean_score"])
            assert z.std(ddof=1) == pytest.approx(f.numbers["sd_score"])
    within = fit(MappingSpec("prompt_standardize", {"spread": "within"}), c).numbers["sd_score"]
    pooled = fit(MappingSpec("prompt_standardize", {"spread": "pooled"}), c).numbers["sd_score"]
    assert within < pooled  # the prompts' levels differ, so pooled includes that spread


def test_prompt_center_shifts_each_batch_to_the_training_mean_keeping_its_spread():
    c = corpus(8)
    f = fit(MappingSpec("prompt_center"), c)
    out = apply(f, c)
    for p in np.unique(c["prompt"]):
        m = c["prompt"] == p
        assert out.z[m].mean() == pytest.approx(c["y"].mean())
        assert np.allclose(out.z[m] - c["pred"][m], (out.z[m] - c["pred"][m])[0])


# --------------------------------------------------------------------------- fallback


@pytest.mark.parametrize("method", PER_PROMPT)
@pytest.mark.parametrize("fallback", ["none", "stretch"])
def test_a_prompt_below_the_minimum_batch_takes_the_fallback(method, fallback):
    c = corpus(9)
    spec = MappingSpec(method, {"min_batch": 10, "fallback": fallback})
    f = fit(spec, c)
    small = c["prompt"] == 3
    idx = np.flatnonzero(~small | (np.cumsum(small) <= 9))  # prompt 3 keeps 9 essays
    out = apply(f, c, idx)
    took = c["prompt"][idx] == 3
    assert out.fallback.tolist() == took.tolist()
    raw = c["pred"][idx][took]
    expected = raw if fallback == "none" else (
        f.numbers["stretch"]["center_score"]
        + f.numbers["stretch"]["slope"] * (raw - f.numbers["stretch"]["center_pred"]))
    assert np.allclose(out.z[took], expected)
    row = out.batches.set_index("prompt_code").loc[3]
    assert row["n"] == 9 and bool(row["fallback"])
    assert not out.batches.set_index("prompt_code").drop(index=3)["fallback"].any()
    # with all ten essays the prompt is standardised/centred like the others
    assert not apply(f, c).fallback.any()


def test_a_batch_with_no_spread_cannot_be_standardised_and_falls_back():
    c = corpus(10)
    f = fit(MappingSpec("prompt_standardize"), c)
    pred = np.where(c["prompt"] == 2, 0.4, c["pred"])
    out = apply(f, c, pred=pred)
    assert out.fallback.tolist() == (c["prompt"] == 2).tolist()


def test_thresholds_fit_cuts_per_scale_and_an_unseen_scale_takes_the_stretch():
    scales = ScoreScales(per_prompt={"p0": Scale(0, 3, 1), "p1": Scale(0, 3, 1),
                                     "p2": Scale(1, 5, 0.5), "p3": Scale(1, 5, 0.5),
                                     "p4": Scale(0, 10, 1), "p5": Scale(0, 3, 1)})
    c = corpus(11, n_prompts=6, per_prompt=120, scales=scales)
    tr = np.flatnonzero(c["prompt"] != 4)
    f = fit(MappingSpec("thresholds", {"min_scale_n": 300}), c, tr)
    by = {(s["lo"], s["hi"], s["step"]): s for s in f.numbers["scales"]}
    assert len(by[(0.0, 3.0, 1.0)]["cuts"]) == 3  # 360 training essays, 4 levels
    assert by[(1.0, 5.0, 0.5)]["cuts"] is None  # 240 training essays: below min_scale_n
    assert (0.0, 10.0, 1.0) not in by  # no training essay on p4's scale
    out = apply(f, c)
    assert out.fallback.tolist() == np.isin(c["prompt"], [2, 3, 4]).tolist()


# --------------------------------------------------------------------------- monotonicity


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), method=st.sampled_from(LABEL_BASED + PER_PROMPT))
def test_scores_never_decrease_with_the_raw_prediction_within_a_prompt(seed, method):
    c = corpus(seed % 50, n_prompts=4, per_prompt=40)
    f = fit(MappingSpec(method), c)
    rng = np.random.default_rng(seed)
    pred = np.sort(rng.uniform(-0.2, 1.2, len(c["y"])))
    prompt = np.sort(c["prompt"])  # each prompt's essays ordered by prediction
    es = c["es"]
    out = apply_mapping(f, pred=pred, prompt_codes=prompt, lo=es.lo, hi=es.hi, step=es.step)
    for p in np.unique(prompt):
        m = prompt == p
        assert (np.diff(out.z[m]) >= -1e-12).all()
        assert (np.diff(out.y_pred[m]) >= 0).all()


# --------------------------------------------------------------------------- records and errors


def test_fitted_numbers_record_their_source_and_are_json():
    c = corpus(12)
    for spec in SPECS:
        d = fit(spec, c).to_dict()
        json.dumps(d)
        assert d["method"] == spec.method
        assert d["transductive"] == (spec.method in PER_PROMPT)
        assert d["fitted_on"]["essays"] == len(c["y"])
        assert d["fitted_on"]["predictions"] == ("test" if needs_train_pred(spec) else "not used")


def test_a_recorded_mapping_applies_again_identically():
    c = corpus(14)
    folds = c["prompt"] % 4
    tr, va = np.flatnonzero(folds != 0), np.flatnonzero(folds == 0)
    for spec in SPECS:
        f = fit(spec, c, tr)
        again = FittedMapping.from_dict(json.loads(json.dumps(f.to_dict())))
        assert again.spec == spec and hash(again.spec) == hash(spec)
        a, b = apply(f, c, va), apply(again, c, va)
        assert np.array_equal(a.y_pred, b.y_pred) and np.array_equal(a.fallback, b.fallback)
    with pytest.raises(ValueError, match="mapping.transductive: True disagrees"):
        FittedMapping.from_dict({**fit(MappingSpec("stretch"), c).to_dict(), "transductive": True})


def test_an_empty_batch_maps_to_nothing():
    c = corpus(15)
    for spec in SPECS:
        out = apply_mapping(fit(spec, c), pred=np.empty(0), prompt_codes=np.empty(0, np.int64),
                            lo=np.empty(0), hi=np.empty(0), step=np.empty(0))
        assert out.y_pred.shape == (0,) and out.fallback.shape == (0,)


@pytest.mark.parametrize("make, match", [
    (lambda: MappingSpec("platt"), r"mapping\.method: unknown method 'platt'"),
    (lambda: MappingSpec("stretch", {"slop": 1.0}), r"mapping\.params\.slop: unknown"),
    (lambda: MappingSpec("prompt_standardize", {"min_batch": 1}),
     r"mapping\.params\.min_batch: must be an integer >= 2, got 1"),
    (lambda: MappingSpec("prompt_center", {"fallback": "drop"}),
     r"mapping\.params\.fallback: must be one of none, stretch, got 'drop'"),
    (lambda: MappingSpec("stretch", {"slope": -1}), r"mapping\.params\.slope: must be a number"),
    (lambda: MappingSpec("stretch", {"shift": 0.1}),
     r"mapping\.params\.shift: only with params\.slope set"),
    (lambda: MappingSpec("isotonic"), r"mapping\.method: unknown method 'isotonic'"),
    (lambda: MappingSpec.from_dict({"method": "stretch", "parms": {}}),
     r"mapping\.parms: unknown field"),
])
def test_bad_specs_name_the_field(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_inputs_name_the_argument():
    c = corpus(13)
    with pytest.raises(ValueError, match="train_pred: method 'stretch'"):
        fit(MappingSpec("stretch"), c, train_pred=None)
    with pytest.raises(ValueError, match=r"train_pred: expected 480 values"):
        fit(MappingSpec("stretch"), c, train_pred=c["pred"][:10])
    f = fit(MappingSpec("stretch"), c)
    bad = c["pred"].copy()
    bad[7] = np.nan
    with pytest.raises(ValueError, match="pred: values must be finite, found nan at position 7"):
        apply(f, c, pred=bad)
    with pytest.raises(ValueError, match="train_y_norm: normalised scores must lie in"):
        fit(MappingSpec("round"), {**c, "y": c["y"] * 4})
