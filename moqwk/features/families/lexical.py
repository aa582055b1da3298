"""``features.lexical`` (``lex.*``): frequency bands, rare words, unknown-word (spelling) rate.

The features are :mod:`moqwk.features.lexical`'s. Config::

    features:
      lexical: {enabled: true, reference: package, min_df: 3}

``reference: package`` (default) reads the word list pyspellchecker ships (a dependency of moqwk):
per essay, nothing fitted. ``reference: training`` fits the list on the fold's training essays
(words in at least ``min_df`` of them); its state is saved with a fitted model. On by default
(ADR 0005).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moqwk.base.fields import dump, setting
from moqwk.features import lexical as impl
from moqwk.features.blobs import blob, typed, unblob
from moqwk.features.family import EssayData, Family, parse_family_fields


@dataclass(frozen=True)
class LexicalConfig:
    enabled: bool = setting(True, help="frequency bands, rarity of content words and the "
                                       "unknown-word (spelling) rate (`lex.*`, 12 columns). On "
                                       "by default since the whole-pipeline benchmark "
                                       "([ADR 0005](../decisions/0005-whole-pipeline-defaults.md"
                                       "))")
    reference: str = setting(
        "package", choices=impl.REFERENCES,
        help="where word frequencies come from. `package`: the English list pyspellchecker "
             "ships (a dependency of moqwk), nothing fitted. `training`: each fold's "
             "training essays (words in at least `min_df` of them), fitted per fold and saved "
             "with a model")
    min_df: int = setting(3, lo=1, help="with `reference: training`: the fewest training "
                                        "essays a word must appear in to be known")

    def to_dict(self) -> dict[str, Any]:
        return dump(self)


class LexicalFamily(Family):
    name = "lexical"
    prefix = "lex"
    config_type = LexicalConfig
    searchable = ("enabled", "reference", "min_df")
    help = "the lexical family's fields below; `true` switches it on with their defaults"

    def parse(self, raw: Any, path: str, base_dir: Path | None) -> LexicalConfig:
        cfg: LexicalConfig = parse_family_fields(self, raw, path)
        if cfg.enabled and cfg.reference == "package":
            impl.package_counts()  # a missing pyspellchecker is one ConfigError, at load time
        return cfg

    def feature_names(self, cfg: LexicalConfig) -> tuple[str, ...]:
        return impl.NAMES

    def _package_block(self, data: EssayData) -> np.ndarray:
        return data.per_essay(f"lexical-package-v{self.version}",
                              lambda ids, texts: impl.LexicalFamily().transform(list(texts)))

    def fit(self, cfg: LexicalConfig, data: EssayData, *, seed: int
            ) -> tuple[dict[str, int] | None, np.ndarray]:
        if cfg.reference == "package":
            return None, self._package_block(data)
        fam = impl.LexicalFamily("training", cfg.min_df).fit(list(data.texts))
        return fam.counts, fam.transform(list(data.texts))

    def transform(self, cfg: LexicalConfig, state: dict[str, int] | None,
                  data: EssayData) -> np.ndarray:
        if cfg.reference == "package":
            return self._package_block(data)
        fam = impl.LexicalFamily.from_state({"family": "lexical", "reference": "training",
                                             "min_df": cfg.min_df, "counts": state})
        return fam.transform(list(data.texts))

    def save_state(self, state: dict[str, int] | None
                   ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        if state is None:
            return {"reference": "package"}, {}
        words = sorted(state)
        return ({"reference": "training"},
                {"words": blob(words), "counts": np.array([state[w] for w in words],
                                                          dtype=np.int64)})

    def load_state(self, cfg: LexicalConfig, meta: Mapping[str, Any],
                   arrays: Mapping[str, np.ndarray]) -> dict[str, int] | None:
        if meta.get("reference") == "package":
            return None
        words = unblob(arrays["words"])
        counts = typed(arrays["counts"], np.int64)
        if len(words) != len(counts):
            raise ValueError("lexical state: words and counts differ in length")
        return {w: int(c) for w, c in zip(words, counts, strict=True)}


LEXICAL = LexicalFamily()
