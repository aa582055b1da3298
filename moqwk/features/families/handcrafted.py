"""Handcrafted features (``hc.*``): per-essay counts and ratios, plus a per-fold spelling proxy.

The ``hc.<name>`` columns of :data:`moqwk.features.text.HANDCRAFTED_NAMES` are pure functions
of each essay (computed once per corpus by the store). ``hc.spell_oov_share`` is fitted: the
share of an essay's word tokens seen in fewer than ``SPELL_MIN_DOCS`` training essays; its
fitted state is the vocabulary of words seen in at least that many.

Config: ``features.handcrafted: true|false`` (or ``{enabled: true|false}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from moqwk.base.fields import setting
from moqwk.features.blobs import blob, typed, unblob
from moqwk.features.family import EssayData, Family
from moqwk.features.ngrams import SPELL_MIN_DOCS, document_frequency, oov_of_known
from moqwk.features.text import HANDCRAFTED_NAMES, handcrafted_features

#: Bump when ``essay_features`` changes (it names the corpus-level cache file).
HANDCRAFTED_VERSION = "1"


@dataclass(frozen=True)
class HandcraftedConfig:
    enabled: bool = setting(True, help="build the handcrafted block")

    def __bool__(self) -> bool:
        return self.enabled

    def to_dict(self) -> bool:  # type: ignore[override]
        return self.enabled  # written as ``handcrafted: true`` (the config's format since 0.1)


@dataclass(frozen=True)
class SpellingState:
    """The words seen in at least ``min_docs`` of the fitted essays."""

    known: tuple[str, ...]
    min_docs: int = SPELL_MIN_DOCS


def _essay_block(ids: np.ndarray, texts: Any) -> np.ndarray:
    return handcrafted_features(list(texts))


class HandcraftedFamily(Family):
    name = "handcrafted"
    prefix = "hc"
    config_type = HandcraftedConfig
    help = ("per-essay length, sentence, paragraph, lexical-diversity and mechanics features "
            "(`hc.*`), plus the per-fold spelling proxy `hc.spell_oov_share`")

    def to_mapping(self, cfg: HandcraftedConfig) -> dict[str, Any]:
        return {"enabled": cfg.enabled}

    def feature_names(self, cfg: HandcraftedConfig) -> tuple[str, ...]:
        return tuple(f"hc.{n}" for n in HANDCRAFTED_NAMES) + ("hc.spell_oov_share",)

    def _hc(self, data: EssayData) -> np.ndarray:
        return data.per_essay(f"handcrafted-v{HANDCRAFTED_VERSION}", _essay_block)

    def fit(self, cfg: HandcraftedConfig, data: EssayData, *, seed: int
            ) -> tuple[SpellingState, np.ndarray]:
        uni = data.counts("word", (1, 1))
        df = document_frequency(uni.counts, np.arange(len(data.texts)))
        state = SpellingState(tuple(t for t, d in zip(uni.terms, df, strict=True)
                                    if d >= SPELL_MIN_DOCS))
        spell = oov_of_known(uni, frozenset(state.known))
        return state, np.hstack([self._hc(data), spell[:, None]])

    def transform(self, cfg: HandcraftedConfig, state: SpellingState, data: EssayData
                  ) -> np.ndarray:
        spell = oov_of_known(data.counts("word", (1, 1)), frozenset(state.known))
        return np.hstack([self._hc(data), spell[:, None]])

    def save_state(self, state: SpellingState) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return ({"min_docs": state.min_docs, "n_known": len(state.known)},
                {"known": blob(state.known)})

    def load_state(self, cfg: HandcraftedConfig, meta: Mapping[str, Any],
                   arrays: Mapping[str, np.ndarray]) -> SpellingState:
        known = unblob(typed(arrays["known"], np.uint8))
        if len(known) != meta["n_known"]:
            raise ValueError(f"spelling: {len(known)} known words, expected {meta['n_known']}")
        return SpellingState(known, int(meta["min_docs"]))


HANDCRAFTED = HandcraftedFamily()
