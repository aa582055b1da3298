"""Counts in words: ``1 trial``, ``2 trials``."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, pluralised (``s`` unless ``plural`` is given) unless ``n`` is 1."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"
