"""Declared deployment batches: every held-out essay is scored once, in a batch of exactly the
declared size; the order is seeded; a smaller batch than declared takes the fallback."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moqwk.core.batching import apply_in_batches, batch_plan, batch_seed
from moqwk.core.mapping import MappingSpec, apply_mapping, fit_mapping


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 60), min_size=1, max_size=5), b=st.integers(1, 25),
       seed=st.integers(0, 2**31 - 1))
def test_every_essay_is_scored_once_in_a_batch_of_exactly_the_declared_size(sizes, b, seed):
    codes = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(sizes)), sizes))
    plan = batch_plan(codes, b, seed)
    scored = np.concatenate([s for s, _ in plan])
    assert sorted(scored.tolist()) == list(range(len(codes)))
    for s, members in plan:
        assert set(s) <= set(members)
        prompt = codes[members]
        assert len(set(prompt.tolist())) == 1  # a batch holds one prompt's essays
        n_prompt = int((codes == prompt[0]).sum())
        assert len(members) == min(b, n_prompt)


def test_the_batch_order_is_seeded_and_whole_prompts_are_one_batch():
    codes = np.repeat([0, 1], [37, 23])
    assert [m.tolist() for _, m in batch_plan(codes, 10, 5)] == \
        [m.tolist() for _, m in batch_plan(codes, 10, 5)]
    assert [m.tolist() for _, m in batch_plan(codes, 10, 5)] != \
        [m.tolist() for _, m in batch_plan(codes, 10, 6)]
    assert [len(m) for _, m in batch_plan(codes, "prompt", 5)] == [37, 23]
    assert batch_seed(1, 0, 2) == batch_seed(1, 0, 2) != batch_seed(1, 0, 3)


def _case(n=60, seed=0):
    rng = np.random.default_rng(seed)
    prompt = np.repeat([0, 1, 2], n // 3)
    y = np.clip(0.5 + rng.normal(0, 0.2, n), 0, 1)
    pred = 0.4 + 0.3 * y + rng.normal(0, 0.05, n)
    return prompt, y, pred


@pytest.mark.parametrize("method", ["prompt_center", "prompt_standardize"])
def test_batched_scores_use_each_batchs_statistics_not_the_whole_prompts(method):
    prompt, y, pred = _case()
    kw = dict(train_y_norm=y, train_prompt_codes=prompt, train_lo=1.0, train_hi=5.0,
              train_step=0.5)
    whole = fit_mapping(MappingSpec(method, {"batch": "prompt"}), **kw)
    tens = fit_mapping(MappingSpec(method, {"batch": 10}), **kw)
    a = apply_in_batches(whole, pred=pred, prompt_codes=prompt, lo=1.0, hi=5.0, step=0.5, seed=3)
    b = apply_in_batches(tens, pred=pred, prompt_codes=prompt, lo=1.0, hi=5.0, step=0.5, seed=3)
    # batch = prompt is one apply_mapping call over the whole held-out set, as before
    np.testing.assert_array_equal(a.z, apply_mapping(whole, pred=pred, prompt_codes=prompt,
                                                     lo=1.0, hi=5.0, step=0.5).z)
    assert not np.allclose(a.z, b.z)
    # each batch of 10 is mapped with its own statistics: re-map one batch alone, same z
    scored, members = batch_plan(prompt, 10, 3)[0]
    alone = apply_mapping(tens, pred=pred[members], prompt_codes=prompt[members], lo=1.0,
                          hi=5.0, step=0.5)
    np.testing.assert_allclose(b.z[members], alone.z)
    assert not b.fallback.any()
    assert b.batches is not None and set(b.batches["n"]) == {10}


def test_a_batch_below_the_declared_size_takes_the_fallback():
    prompt, y, pred = _case()
    fitted = fit_mapping(MappingSpec("prompt_standardize", {"batch": 15}), train_y_norm=y,
                         train_prompt_codes=prompt, train_lo=1.0, train_hi=5.0, train_step=0.5)
    m = apply_mapping(fitted, pred=pred[:12], prompt_codes=prompt[:12], lo=1.0, hi=5.0, step=0.5)
    assert m.fallback.all()  # 12 >= min_batch 10, but below the declared 15
    np.testing.assert_array_equal(m.z, pred[:12])  # fallback none: the raw prediction


@pytest.mark.parametrize("params, match", [
    ({"batch": 0}, "integer >= 1"), ({"batch": "all"}, "'prompt'"),
    ({"batch": 5}, "below min_batch 10"), ({"batch": True}, "integer >= 1")])
def test_a_bad_batch_names_the_field_and_the_fix(params, match):
    with pytest.raises(ValueError, match=f"mapping.params.batch: .*{match}"):
        MappingSpec("prompt_standardize", params)


def test_a_record_from_before_batches_were_declared_reads_as_whole_prompts():
    from moqwk.core.mapping import FittedMapping

    prompt, y, pred = _case()
    fitted = fit_mapping(MappingSpec("prompt_center"), train_y_norm=y, train_prompt_codes=prompt,
                         train_lo=1.0, train_hi=5.0, train_step=0.5)
    d = fitted.to_dict()
    assert d["params"]["batch"] == 10 and d["numbers"]["batch"] == 10
    for part in ("params", "numbers"):
        d[part].pop("batch")
    old = FittedMapping.from_dict(d)
    assert old.spec.params["batch"] == "prompt"
    m = apply_mapping(old, pred=pred[:12], prompt_codes=prompt[:12], lo=1.0, hi=5.0, step=0.5)
    assert not m.fallback.any()  # 12 >= min_batch: whole-prompt semantics, no declared size
