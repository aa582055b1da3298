"""The CV engine: one pipeline scored over a split's folds, its predictions, fold racing."""
