"""An opt-in per-essay family with no knobs but ``enabled`` (``readability``, ``connectives``):
``features.<name>: true|false`` or ``{enabled: true|false}``, off by default. Such a family
names its columns and computes them; :class:`SwitchFamily` does the rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moqwk.features.family import PerEssayFamily
from moqwk.features.validate import boolean, mapping_of


@dataclass(frozen=True)
class SwitchConfig:
    enabled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled}


def parse_switch(raw: Any, path: str) -> SwitchConfig:
    if isinstance(raw, Mapping):
        m = mapping_of(raw, path, ("enabled",))
        return SwitchConfig(boolean(m.get("enabled", False), f"{path}.enabled"))
    return SwitchConfig(boolean(raw, path))


class SwitchFamily(PerEssayFamily):
    """A per-essay family configured by :class:`SwitchConfig`: a subclass sets ``name`` and
    ``prefix`` and gives :meth:`names` and :meth:`columns`."""

    config_type = SwitchConfig

    def default(self) -> SwitchConfig:
        return SwitchConfig()

    def parse(self, raw: Any, path: str, base_dir: Path | None) -> SwitchConfig:
        return parse_switch(raw, path)

    def feature_names(self, cfg: SwitchConfig) -> tuple[str, ...]:
        return self.names()

    def compute(self, cfg: SwitchConfig, ids: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        return self.columns(list(texts))

    def names(self) -> tuple[str, ...]:
        raise NotImplementedError

    def columns(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError
