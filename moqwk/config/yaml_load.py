"""YAML and JSON as moqwk reads the files a user writes: a duplicated key is an error.

PyYAML's ``safe_load`` and ``json.loads`` keep the last of two equal keys without a word, so a
second ``mapping:`` section appended to a config silently replaces the first. Here the same key
twice in one mapping, at any depth, is one :class:`~moqwk.errors.ConfigError` naming the key's
path and both lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from moqwk.errors import ConfigError


class UniqueKeyLoader(yaml.SafeLoader):
    """A ``SafeLoader`` that refuses a mapping holding the same key twice."""

    source = "YAML"

    def construct_document(self, node: yaml.Node) -> Any:
        for path, key, first in _duplicates(node, ()):
            where = ".".join(path + (key.value,))
            raise ConfigError(f"{self.source} line {key.start_mark.line + 1}: {where}: duplicate "
                              f"key (first at line {first + 1}); keep one of them")
        return super().construct_document(node)


def _duplicates(node: yaml.Node, path: tuple[str, ...]
                ) -> Iterator[tuple[tuple[str, ...], yaml.ScalarNode, int]]:
    """``(path, repeated key node, line of its first occurrence)`` for each repeated key."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` merges, not repeats
                    continue
                if key.value in seen:
                    yield path, key, seen[key.value]
                seen.setdefault(key.value, key.start_mark.line)
                yield from _duplicates(value, path + (str(key.value),))
            else:
                yield from _duplicates(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicates(item, path[:-1] + (f"{path[-1]}[{i}]",) if path else (f"[{i}]",))


def load_yaml(text: str, *, source: str | Path = "YAML") -> Any:
    """``yaml.safe_load(text)``, refusing duplicated keys (``source`` names the file)."""

    class Loader(UniqueKeyLoader):
        pass

    Loader.source = str(source)
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def load_json(text: str, *, source: str | Path = "JSON") -> Any:
    """``json.loads(text)``, refusing an object that holds the same key twice."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise ConfigError(f"{source}: {k!r}: duplicate key; keep one of them")
            out[k] = v
        return out

    return json.loads(text, object_pairs_hook=pairs)
