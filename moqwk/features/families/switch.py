"""An opt-in per-essay family with no knobs but ``enabled`` (``readability``, ``connectives``):
``features.<name>: true|false`` or ``{enabled: true|false}``, off by default. Such a family
names its columns and computes them; :class:`SwitchFamily` does the rest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from moqwk.base.fields import dump, setting
from moqwk.features.family import PerEssayFamily


@dataclass(frozen=True)
class SwitchConfig:
    enabled: bool = setting(False, help="build this block")

    def to_dict(self) -> dict[str, Any]:
        return dump(self)


class SwitchFamily(PerEssayFamily):
    """A per-essay family configured by :class:`SwitchConfig`: a subclass sets ``name`` and
    ``prefix`` and gives :meth:`names` and :meth:`columns`."""

    config_type = SwitchConfig

    def feature_names(self, cfg: SwitchConfig) -> tuple[str, ...]:
        return self.names()

    def compute(self, cfg: SwitchConfig, ids: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        return self.columns(list(texts))

    def names(self) -> tuple[str, ...]:
        raise NotImplementedError

    def columns(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError
