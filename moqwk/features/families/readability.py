"""``features.readability`` (``read.*``): readability indices and clause-marker complexity.

The features are :mod:`moqwk.features.readability`'s (why and how: its docstring and
docs/research/cross-prompt-features.md). Per essay, nothing fitted; off by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from moqwk.features import readability as impl
from moqwk.features.families.switch import SwitchConfig, parse_switch
from moqwk.features.family import PerEssayFamily


class ReadabilityFamily(PerEssayFamily):
    name = "readability"
    prefix = "read"
    config_type = SwitchConfig

    def default(self) -> SwitchConfig:
        return SwitchConfig()

    def parse(self, raw: Any, path: str, base_dir: Path | None) -> SwitchConfig:
        return parse_switch(raw, path)

    def feature_names(self, cfg: SwitchConfig) -> tuple[str, ...]:
        return impl.NAMES

    def compute(self, cfg: SwitchConfig, ids: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        return impl.ReadabilityFamily().transform(list(texts))


READABILITY = ReadabilityFamily()
