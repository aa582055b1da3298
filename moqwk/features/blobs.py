"""Strings as numeric arrays for ``.npz`` files read with ``allow_pickle=False``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def blob(terms: Sequence[str]) -> np.ndarray:
    """Terms as one newline-joined UTF-8 byte array (no term contains a newline)."""
    return np.frombuffer("\n".join(terms).encode("utf-8", "surrogatepass"), dtype=np.uint8)


def unblob(arr: np.ndarray) -> tuple[str, ...]:
    if arr.size == 0:
        return ()
    return tuple(arr.tobytes().decode("utf-8", "surrogatepass").split("\n"))


def typed(arr: np.ndarray, dtype: type) -> np.ndarray:
    """``arr`` if it has ``dtype``; ValueError otherwise (a saved file is checked, not cast)."""
    if arr.dtype != np.dtype(dtype):
        raise ValueError(f"expected a {np.dtype(dtype)} array, got {arr.dtype}")
    return arr
