"""The XGBoost parameter names a params mapping may hold, and the check that refuses a typo.

A trial's params reach ``xgboost.train`` through :func:`moqwk.engine.cv.booster_params`: every
key but the ones moqwk sets itself is passed on, and XGBoost ignores a name it does not know (its
"Parameters ... are not used" warning is silenced with ``verbosity=0``). So ``max_dept: 4`` would
train with the default depth. Every params mapping a user writes (``baseline.params``, the names
of ``search.space``, ``search.grid`` and ``search.initial_configs``, a ``--params`` file) is
checked here against the names XGBoost's tree boosters use; a name with a dot
(``mapping.method``) belongs to moqwk and is checked where its namespace is parsed.

The set is XGBoost 3's documented parameters for the tree boosters (``gbtree``, ``dart``) and
``gblinear``, the learning-task parameters of its regression objectives, and the general ones,
with their aliases. ``tests/test_xgb_params.py`` trains a booster with each name and fails if
XGBoost reports it unused, so the set cannot hold a name XGBoost ignores.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from moqwk.errors import ConfigError

#: Names moqwk reads itself (the number of boosting rounds) or sets itself (threads, seed,
#: objective, verbosity; see ``moqwk.engine.cv._RESERVED``): accepted, never passed on as given.
MOQWK_PARAMS = frozenset({"n_estimators", "num_boost_round", "n_jobs", "random_state"})

GENERAL = frozenset({"booster", "device", "verbosity", "validate_parameters", "nthread",
                     "disable_default_eval_metric"})
TREE = frozenset({
    "eta", "learning_rate", "gamma", "min_split_loss", "max_depth", "min_child_weight",
    "max_delta_step", "subsample", "sampling_method", "colsample_bytree", "colsample_bylevel",
    "colsample_bynode", "lambda", "reg_lambda", "alpha", "reg_alpha", "tree_method",
    "scale_pos_weight", "updater", "refresh_leaf", "process_type", "grow_policy", "max_leaves",
    "max_bin", "num_parallel_tree", "monotone_constraints", "interaction_constraints",
    "multi_strategy", "max_cached_hist_node", "max_cat_to_onehot", "max_cat_threshold"})
DART = frozenset({"sample_type", "normalize_type", "rate_drop", "one_drop", "skip_drop"})
LINEAR = frozenset({"feature_selector", "top_k"})
TASK = frozenset({"objective", "eval_metric", "base_score", "seed", "seed_per_iteration",
                  "huber_slope", "quantile_alpha", "tweedie_variance_power"})

XGB_PARAMS = GENERAL | TREE | DART | LINEAR | TASK
VALID = XGB_PARAMS | MOQWK_PARAMS


def check_param_names(names: Iterable[object], where: str, *, sep: str = ".") -> None:
    """Refuse the first name that is neither an XGBoost parameter nor moqwk's, naming its field
    path (``where`` + ``sep`` + the name) and the closest valid name."""
    for name in names:
        key = str(name)
        if "." in key or key in VALID:
            continue
        close = difflib.get_close_matches(key, sorted(VALID), n=1, cutoff=0.6)
        hint = (f"did you mean {close[0]}?" if close else
                "see https://xgboost.readthedocs.io/en/stable/parameter.html")
        raise ConfigError(f"{where}{sep}{key}: not an XGBoost parameter; {hint}")
