"""Params mappings are checked against the names XGBoost uses: a typo is one ``Error:`` line
naming the field path and the closest name (exit 2), wherever the mapping comes from."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from moqwk.config.xgb_params import XGB_PARAMS

#: A value XGBoost accepts for each name, and the booster/objective under which it is used.
SAMPLE = {
    "booster": "gbtree", "device": "cpu", "verbosity": 1, "validate_parameters": True,
    "nthread": 1, "disable_default_eval_metric": 1,
    "eta": 0.3, "learning_rate": 0.3, "gamma": 0.0, "min_split_loss": 0.0, "max_depth": 3,
    "min_child_weight": 1.0, "max_delta_step": 0.0, "subsample": 1.0,
    "sampling_method": "uniform", "colsample_bytree": 1.0, "colsample_bylevel": 1.0,
    "colsample_bynode": 1.0, "lambda": 1.0, "reg_lambda": 1.0, "alpha": 0.0, "reg_alpha": 0.0,
    "tree_method": "hist", "scale_pos_weight": 1.0, "updater": "grow_quantile_histmaker",
    "refresh_leaf": 1, "process_type": "default", "grow_policy": "depthwise", "max_leaves": 0,
    "max_bin": 256, "num_parallel_tree": 1, "monotone_constraints": "(0,0,0)",
    "interaction_constraints": "[[0, 1], [2]]", "multi_strategy": "one_output_per_tree",
    "max_cached_hist_node": 65536, "max_cat_to_onehot": 4, "max_cat_threshold": 64,
    "sample_type": "uniform", "normalize_type": "tree", "rate_drop": 0.1, "one_drop": 0,
    "skip_drop": 0.0, "feature_selector": "greedy", "top_k": 2,
    "objective": "reg:squarederror", "eval_metric": "rmse", "base_score": 0.5, "seed": 0,
    "seed_per_iteration": False, "huber_slope": 1.0, "quantile_alpha": 0.5,
    "tweedie_variance_power": 1.5,
}
CONTEXT = {
    **{n: {"booster": "dart"} for n in ("sample_type", "normalize_type", "rate_drop", "one_drop",
                                         "skip_drop")},
    "feature_selector": {"booster": "gblinear", "updater": "coord_descent"},
    "top_k": {"booster": "gblinear", "updater": "coord_descent", "feature_selector": "greedy"},
    "huber_slope": {"objective": "reg:pseudohubererror"},
    "quantile_alpha": {"objective": "reg:quantileerror"},
    "tweedie_variance_power": {"objective": "reg:tweedie"},
}


def _unused(params: dict) -> set[str]:
    """The names XGBoost reports as not used when training with ``params``."""
    import xgboost as xgb

    rng = np.random.default_rng(0)
    x = rng.random((60, 3))
    d = xgb.DMatrix(x, label=x[:, 0] + 0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        xgb.train({"verbosity": 1, "validate_parameters": True, **params}, d, num_boost_round=2)
    found = set()
    for w in caught:
        m = re.search(r"Parameters: \{(.*)\} are not used", str(w.message), re.S)
        if m:
            found |= {s.strip().strip('"') for s in m.group(1).split(",")}
    return found


def test_every_accepted_name_is_one_xgboost_uses():
    assert set(SAMPLE) == set(XGB_PARAMS)
    assert _unused({"max_dept": 4}) == {"max_dept"}  # the check below can see a typo
    unused = {n for n in sorted(XGB_PARAMS)
              if n in _unused({**CONTEXT.get(n, {}), n: SAMPLE[n]})}
    assert unused == set()


def _cfg(write_search_config, tmp_path: Path, **kw) -> Path:
    return write_search_config(tmp_path / "cfg.yaml", **kw)


@pytest.mark.parametrize("edit, field, hint", [
    (dict(baseline={"max_dept": 4}), "baseline.params.max_dept", "max_depth"),
    (dict(space={"colsample_bytre": {"type": "float", "low": 0.5, "high": 1.0}}),
     "search.space.colsample_bytre", "colsample_bytree"),
    (dict(search={"grid": {"max_depth": [3, 4], "learning_rat": [0.1]}}),
     "search.grid.learning_rat", "learning_rate"),
    (dict(search={"initial_configs": [{"max_depth": 3}, {"min_child_wieght": 2.0}]}),
     "search.initial_configs[1].min_child_wieght", "min_child_weight"),
])
def test_a_typo_in_a_config_params_mapping_is_refused(moqwk, write_search_config, tmp_path,
                                                      assert_one_error_line, edit, field, hint):
    cfg = _cfg(write_search_config, tmp_path, **edit)
    for command in ("cv", "search", "grid"):
        rc, _out, err = moqwk(command, "--config", cfg, "--run-dir", "runs/a")
        assert rc == 2, (command, err)
        assert_one_error_line(err, f"{field}: not an XGBoost parameter", f"did you mean {hint}?")
        assert not Path("runs").exists()


def test_a_typo_in_a_params_file_is_refused(moqwk, demo_config_path, tmp_path,
                                            assert_one_error_line):
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"max_depth": 3, "n_estimator": 50}), encoding="utf-8")
    rc, _out, err = moqwk("cv", "--config", demo_config_path, "--run-dir", "runs/a",
                          "--params", params)
    assert rc == 2
    assert_one_error_line(err, f"--params {params}: n_estimator: not an XGBoost parameter",
                          "did you mean n_estimators?")


def test_known_names_and_moqwk_namespaces_pass():
    from moqwk.config.xgb_params import check_param_names

    check_param_names(["max_depth", "n_estimators", "num_boost_round", "reg_lambda",
                       "mapping.method", "mapping.lo"], "baseline.params")
