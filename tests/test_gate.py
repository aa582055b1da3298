"""The stability gate can fail: its worst-prompt margin comes from the noise (k x the paired SE
of the candidate - baseline difference under stratified_text), and a candidate whose gate run
leans on its mapping's fallback fails whatever its numbers. Real CV on the demo corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moqwk.config import load_config
from moqwk.core.noise import gate_noise
from moqwk.run.workspace import Workspace
from moqwk.stages.selector import SelectOptions, _gate_metrics, gate_check

PARAMS = {"max_depth": 3, "learning_rate": 0.1, "n_estimators": 40}


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory, demo_config_yaml: str):
    root = tmp_path_factory.mktemp("gate")
    (root / "config.yaml").write_text(demo_config_yaml)
    with pytest.warns(UserWarning):
        ws = Workspace.open(load_config(root / "config.yaml"), root / "run")
    engine = ws.engine("stratified_text")
    base = engine.run({**PARAMS, "mapping.method": "round"})
    return ws, engine, base


def _check(gate, params, **opts):
    ws, engine, base = gate
    res = engine.run(params)
    return gate_check(ws, _gate_metrics(res.metrics), _gate_metrics(base.metrics),
                      candidate_result=res, baseline_result=base, opts=SelectOptions(**opts))


def test_a_candidate_that_leans_on_its_fallback_fails(gate):
    """prompt_standardize declared for batches of 40: most of the demo's prompts have fewer
    held-out essays per stratified fold, so most essays take the fallback (here the raw
    prediction, i.e. the baseline's own scores) and the gate's numbers say nothing about the
    mapping that was chosen. It fails, though no metric regressed."""
    v = _check(gate, {**PARAMS, "mapping.method": "prompt_standardize", "mapping.batch": 40},
               gate_margin=0.5)
    assert v["fallback"]["share"] > 0.10 and v["fallback"]["leans_on_fallback"] is True
    assert v["fallback"]["batch"] == 40
    assert not any(c["regressed"] for c in v["checks"])
    assert v["passed"] is False
    # stated share: raised above what it leaned on, the same candidate passes
    v = _check(gate, {**PARAMS, "mapping.method": "prompt_standardize", "mapping.batch": 40},
               gate_margin=0.5, gate_max_fallback_share=1.0)
    assert v["passed"] is True


def test_a_clearly_stable_candidate_passes_with_a_margin_from_the_noise(gate):
    """The baseline's own model with a fitted stretch: no fallback, and the margin on
    worst-prompt QWK is k x the paired SE (recorded), not a fixed 0.10."""
    v = _check(gate, {**PARAMS, "mapping.method": "stretch"}, gate_margin=0.5)
    noise = v["worst_prompt_noise"]
    assert noise["method"] == "k x paired SE" and noise["k"] == 1.0
    assert 0 < noise["se"] < 0.5 and v["worst_prompt_margin"] == noise["margin"] == noise["se"]
    worst = next(c for c in v["checks"] if c["metric"] == "worst_prompt_qwk")
    assert worst["margin"] == noise["margin"]
    assert v["fallback"]["share"] == 0 and v["passed"] is True


def test_a_worse_worst_prompt_beyond_k_se_fails(gate):
    """The same comparison with k chosen just below |delta| / SE fails, just above passes: the
    margin is exactly k x SE."""
    params = {**PARAMS, "max_depth": 1, "n_estimators": 5, "mapping.method": "round"}
    v = _check(gate, params, gate_margin=10.0)
    worst = next(c for c in v["checks"] if c["metric"] == "worst_prompt_qwk")
    se = v["worst_prompt_noise"]["se"]
    assert worst["delta"] < 0 < se  # a weak model: worse on the worst prompt
    ratio = -worst["delta"] / se
    assert _check(gate, params, gate_margin=10.0, gate_worst_se_k=ratio * 0.99)["passed"] is False
    assert _check(gate, params, gate_margin=10.0, gate_worst_se_k=ratio * 1.01)["passed"] is True


def test_identical_predictions_give_a_zero_se(gate):
    ws, engine, base = gate
    n = len(ws.corpus)
    lv = ws.corpus.essay_scale.level(base.oof["y_pred"].to_numpy(float).reshape(-1, n))
    g = gate_noise(ws.pool([lv, lv]), k=2.0)
    assert g.se == 0.0 and g.margin == 0.0
    with pytest.raises(ValueError, match="k must be"):
        gate_noise(ws.pool([lv, lv]), k=-1.0)
    assert np.isfinite(g.se)


def test_the_gate_settings_are_config_fields(tmp_path: Path, demo_config_yaml: str):
    import yaml

    from moqwk.config import parse_config
    from moqwk.errors import ConfigError

    raw = yaml.safe_load(demo_config_yaml)
    cfg = parse_config(raw, base_dir=tmp_path)
    assert cfg.select.gate_worst_margin is None and cfg.select.gate_worst_se_k == 1.0
    assert cfg.select.gate_max_fallback_share == 0.10
    raw["select"] = {"gate_max_fallback_share": 1.5}
    with pytest.raises(ConfigError, match=r"select\.gate_max_fallback_share: must be <= 1"):
        parse_config(raw, base_dir=tmp_path)
    raw["select"] = {"gate_worst_margin": "wide"}
    with pytest.raises(ConfigError, match=r"select\.gate_worst_margin: 'auto'"):
        parse_config(raw, base_dir=tmp_path)
