"""Essay features: families fitted leak-free per fold, cached by content hash, saved for a model.

>>> cfg = FeatureConfig.from_mapping(raw.get("features"), path="features", base_dir=config_dir)
>>> store = FeatureStore(ids, texts, cfg, cache_dir=run_dir / "cache" / "features")
>>> ff = store.fold(train_idx, val_idx)   # ff.X_train, ff.X_val (float32), ff.feature_names, ff.key

The families and their column order are :data:`moqwk.features.registry.FAMILIES`: handcrafted
(``hc.*``, including the per-fold spelling proxy ``hc.spell_oov_share``), word n-gram SVD
(``word.svd_*``), char n-gram SVD (``char.svd_*``), then the researcher's table
(``table.<column>``). :mod:`moqwk.features.family` says how a family plugs in.
"""

from moqwk.features.config import FeatureConfig, NgramConfig, TableConfig
from moqwk.features.store import FEATURE_CODE_VERSION, FeatureStore, FoldFeatures

__all__ = [
    "FEATURE_CODE_VERSION",
    "FeatureConfig",
    "FeatureStore",
    "FoldFeatures",
    "NgramConfig",
    "TableConfig",
]
