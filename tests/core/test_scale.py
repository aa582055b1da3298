"""Score scales: normalising, mapping back, rounding and clipping."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from moqwk.core.scale import EssayScale, Scale, ScoreScales


def test_scale_levels_and_validation():
    assert Scale(1.0, 5.0, 0.5).n_levels == 9
    assert Scale(0, 60, 1).n_levels == 61
    with pytest.raises(ValueError):
        Scale(1.0, 5.0, 0.3)
    with pytest.raises(ValueError):
        Scale(5.0, 1.0, 0.5)


@given(st.lists(st.floats(-0.5, 1.5), min_size=1, max_size=40))
def test_predictions_map_back_rounded_to_step_and_clipped(zs):
    scales = ScoreScales(per_prompt={"a": Scale(0, 3, 1), "b": Scale(1, 5, 0.5)})
    prompts = np.array(["a", "b"] * len(zs))
    es = EssayScale.from_scales(scales, prompts)
    z = np.repeat(zs, 2)
    y = es.to_scale(z)
    assert ((y >= es.lo) & (y <= es.hi)).all()
    steps = (y - es.lo) / es.step
    assert np.allclose(steps, np.rint(steps))
    inside = (z >= 0) & (z <= 1)
    raw = es.raw_to_scale(z)
    assert (np.abs(y - raw)[inside] <= es.step[inside] / 2 + 1e-9).all()


def test_normalise_then_map_back_is_identity_on_the_scale():
    scales = ScoreScales(global_scale=Scale(1.0, 5.0, 0.5))
    y = np.arange(1.0, 5.01, 0.5)
    es = EssayScale.from_scales(scales, np.array(["p"] * len(y)))
    assert np.allclose(es.to_scale(es.normalise(y)), y)
    assert es.level(y).tolist() == list(range(9))
