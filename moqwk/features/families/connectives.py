"""``features.connectives`` (``conn.*``): discourse connectives per sentence, by category.

The features are :mod:`moqwk.features.connectives`'s (the fixed lists and their sources are
there). Per essay, nothing fitted; off by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from moqwk.features import connectives as impl
from moqwk.features.families.switch import SwitchConfig, parse_switch
from moqwk.features.family import PerEssayFamily


class ConnectivesFamily(PerEssayFamily):
    name = "connectives"
    prefix = "conn"
    config_type = SwitchConfig

    def default(self) -> SwitchConfig:
        return SwitchConfig()

    def parse(self, raw: Any, path: str, base_dir: Path | None) -> SwitchConfig:
        return parse_switch(raw, path)

    def feature_names(self, cfg: SwitchConfig) -> tuple[str, ...]:
        return impl.NAMES

    def compute(self, cfg: SwitchConfig, ids: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        return impl.ConnectivesFamily().transform(list(texts))


CONNECTIVES = ConnectivesFamily()
