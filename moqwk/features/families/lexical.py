"""``features.lexical`` (``lex.*``): frequency bands, rare words, unknown-word (spelling) rate.

The features are :mod:`moqwk.features.lexical`'s. Config::

    features:
      lexical: {enabled: true, reference: package, min_df: 3}

``reference: package`` (default) reads the word list pyspellchecker ships (``moqwk[lexicon]``):
per essay, nothing fitted. ``reference: training`` fits the list on the fold's training essays
(words in at least ``min_df`` of them); its state is saved with a fitted model. Off by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moqwk.errors import ConfigError
from moqwk.features import lexical as impl
from moqwk.features.blobs import blob, typed, unblob
from moqwk.features.family import EssayData, Family
from moqwk.features.validate import boolean, mapping_of, whole


@dataclass(frozen=True)
class LexicalConfig:
    enabled: bool = False
    reference: str = "package"
    min_df: int = 3

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "reference": self.reference, "min_df": self.min_df}


class LexicalFamily(Family):
    name = "lexical"
    prefix = "lex"
    config_type = LexicalConfig
    searchable = ("enabled", "reference", "min_df")

    def default(self) -> LexicalConfig:
        return LexicalConfig()

    def parse(self, raw: Any, path: str, base_dir: Path | None) -> LexicalConfig:
        if not isinstance(raw, Mapping):
            return LexicalConfig(enabled=boolean(raw, path))
        m = mapping_of(raw, path, ("enabled", "reference", "min_df"))
        reference = m.get("reference", "package")
        if reference not in impl.REFERENCES:
            raise ConfigError(f"{path}.reference must be one of {', '.join(impl.REFERENCES)}, "
                              f"got {reference!r}")
        cfg = LexicalConfig(enabled=boolean(m.get("enabled", False), f"{path}.enabled"),
                            reference=reference,
                            min_df=whole(m.get("min_df", 3), f"{path}.min_df", lo=1))
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
