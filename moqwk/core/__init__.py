"""The pure core: metrics, splits, Pareto fronts and selection on arrays and frames.

Nothing under ``moqwk.core`` imports Optuna, XGBoost, the file system or the CLI; a test
enforces it.
"""
