"""The config of an opt-in family with no knobs but ``enabled`` (``readability``,
``connectives``): ``features.<name>: true|false`` or ``{enabled: true|false}``, off by default."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
