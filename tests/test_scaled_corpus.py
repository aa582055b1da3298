"""The per-prompt-scale corpus (issue 19, item 4): how it is built, and what the default does on it.

The builder is checked on its promises (declared ranges, order kept within a prompt, the 0-60
prompt bunched high); then the whole engine runs leave-one-prompt-out on the synthetic variant
and the default pipeline's worst-prompt QWK is compared with ``round``'s.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from moqwk.config import load_config
from moqwk.data.corpus import load_corpus
from moqwk.data.scaled_corpus import (
    ELLIPSE_SPECS,
    SYNTHETIC_SPECS,
    PromptSpec,
    ellipse_path,
    ellipse_scaled_frame,
    rescale,
    synthetic_scaled_frame,
    write_scaled_corpus,
)
from moqwk.engine.cv import CVEngine
from moqwk.run.splits_file import make_splits

PARAMS = {"max_depth": 3, "learning_rate": 0.1, "n_estimators": 40}
#: Small features: the property is about the mapping, and ten folds stay a few seconds.
FEATURES = {"char": {"enabled": False}, "word": {"svd_components": 16}}


def test_the_default_ellipse_path_is_the_shared_folder_beside_the_repository(monkeypatch):
    monkeypatch.delenv("MOQWK_ELLIPSE_CSV", raising=False)
    repo = Path(__file__).resolve().parents[1]
    assert ellipse_path() == (repo.parent / "shared" / "data" / "ellipse"
                              / "ELLIPSE_Final_github_test.csv")
    monkeypatch.setenv("MOQWK_ELLIPSE_CSV", "/elsewhere/e.csv")
    assert ellipse_path() == Path("/elsewhere/e.csv")


def test_rescale_is_monotone_onto_the_declared_scale():
    src = np.arange(1.0, 5.01, 0.5)
    for spec in [*SYNTHETIC_SPECS.values(), *ELLIPSE_SPECS.values()]:
        out = rescale(src, spec, (1.0, 5.0))
        assert (np.diff(out) >= 0).all()
        assert out.min() >= spec.min + spec.lo * (spec.max - spec.min) - spec.step
        assert out.max() <= spec.min + spec.hi * (spec.max - spec.min) + spec.step
        assert np.allclose((out - spec.min) / spec.step, np.rint((out - spec.min) / spec.step))
    bunched = rescale(src, PromptSpec(0, 60, 1, lo=0.5, gamma=0.6), (1.0, 5.0))
    assert bunched[0] == 30.0 and bunched[-1] == 60.0
    assert np.median(bunched) > 45  # gamma < 1 bunches the scores towards the top


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="bad prompt spec"):
        PromptSpec(0, 3, 1, lo=0.8, hi=0.2)


def test_synthetic_scaled_frame_keeps_each_prompts_order(tmp_path: Path):
    df = synthetic_scaled_frame(0, 300)
    assert df.equals(synthetic_scaled_frame(0, 300))  # deterministic
    assert set(df["prompt"]) == set(SYNTHETIC_SPECS)
    for p, g in df.groupby("prompt"):
        spec = SYNTHETIC_SPECS[str(p)]
        assert g["score"].between(spec.min, spec.max).all()
        order = g.sort_values("source_score")["score"].to_numpy()
        assert (np.diff(order) >= 0).all(), p  # a better source score is never scored lower
    config_path = write_scaled_corpus(tmp_path, df, SYNTHETIC_SPECS)
    cfg = yaml.safe_load(config_path.read_text())
    assert cfg["cv"]["n_folds"] == len(SYNTHETIC_SPECS)  # leave one prompt out
    assert cfg["scale"]["kind"] == "per_prompt" and "mapping" not in cfg
    config = load_config(config_path)
    corpus = load_corpus(config)
    assert not corpus.scales.is_global and len(corpus) == len(df)


def test_a_prompt_missing_from_the_source_is_named():
    df = synthetic_scaled_frame(0, 100)
    with pytest.raises(ValueError, match="P99"):
        from moqwk.data.scaled_corpus import scaled_frame

        scaled_frame(df, {"P99": PromptSpec(0, 3, 1)}, source=(0, 60))


def test_ellipse_scaled_frame_has_the_eight_prompts(ellipse_csv: Path):
    df = ellipse_scaled_frame(ellipse_csv)
    assert set(df["prompt"]) == set(ELLIPSE_SPECS) and len(df) == 1084
    dl = df[df["prompt"] == "Distance learning"]["score"]
    assert dl.min() >= 30 and dl.median() >= 45  # the 0-60 prompt, bunched high


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> CVEngine:
    out = tmp_path_factory.mktemp("scaled")
    frame = synthetic_scaled_frame(0, 400)
    path = write_scaled_corpus(out, frame, SYNTHETIC_SPECS, extra={"features": FEATURES})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = load_config(path)
        corpus = load_corpus(config)
    splits = make_splits(corpus, config, "prompt_holdout")
    return CVEngine(config, corpus, splits, nthread=1)


def test_default_pipeline_worst_prompt_is_not_worse_than_round(engine: CVEngine):
    """Issue 19's property: on prompts whose scales and distributions differ, the default
    pipeline must not make the worst prompt worse than plain rounding. The default mapping is
    what the config holds when it names none (``stretch`` today)."""
    default_method = engine.config.mapping.spec.method
    default = engine.run({**PARAMS, "mapping.method": default_method}).metrics
    round_ = engine.run({**PARAMS, "mapping.method": "round"}).metrics
    assert default.worst_prompt_qwk >= round_.worst_prompt_qwk, (
        f"{default_method}: worst {default.worst_prompt_qwk:.3f} ({default.worst_prompt}) < "
        f"round's {round_.worst_prompt_qwk:.3f} ({round_.worst_prompt})"
    )


def test_metrics_are_recomputed_from_the_oof_rows(engine: CVEngine):
    """The per-prompt QWKs the property reads are those of the out-of-fold rows."""
    from moqwk.core.metrics import qwk

    res = engine.run({**PARAMS, "mapping.method": "round"})
    oof: pd.DataFrame = res.oof
    worst = oof[oof["prompt"] == res.metrics.worst_prompt]
    corpus = engine.corpus
    scale = corpus.scales.for_prompt(res.metrics.worst_prompt)
    lv = lambda s: np.rint((s.to_numpy(float) - scale.min) / scale.step).astype(int)  # noqa: E731
    assert qwk(lv(worst["y_true"]), lv(worst["y_pred"]), scale.n_levels) == pytest.approx(
        res.metrics.worst_prompt_qwk
    )
