"""Run artifacts: JSON, CSV and text written atomically, file hashes, versions, masked URLs.

Every file is written through :func:`moqwk.base.atomic.atomic_write`, so a reader (or a killed
process) never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import re
from pathlib import Path
from typing import Any

import numpy as np

from moqwk.base.atomic import atomic_write, atomic_write_bytes, atomic_write_text


def write_text(path: Path, text: str) -> Path:
    return atomic_write_text(path, text)


def write_bytes(path: Path, data: bytes) -> Path:
    return atomic_write_bytes(path, data)


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/inf to None, numpy scalars to Python, paths to strings."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(_clean(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json(path: Path, obj: Any) -> Path:
    return write_text(path, dumps(obj))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_csv(path: Path, frame: Any) -> Path:
    return atomic_write(path, lambda p: frame.to_csv(p, index=False, float_format="%.6g"))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def versions() -> dict[str, str]:
    """Versions of Python, the platform and every library that shapes the numbers.

    Optuna's is read from its installed metadata, not by importing it: loading a model checks
    these versions, and the scoring runtime has no Optuna (``requirements/runtime.txt``).
    """
    import pandas
    import sklearn
    import xgboost

    from moqwk._version import __version__

    return {
        "moqwk": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "scikit-learn": sklearn.__version__,
        "xgboost": xgboost.__version__,
        "optuna": _installed("optuna"),
    }


def _installed(name: str) -> str:
    """The installed version of distribution ``name`` (``not installed`` when it is not)."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?=@)")


def mask_url(url: str | None) -> str | None:
    """A storage URL with any password replaced by ``***`` (safe for logs and artifacts)."""
    if url is None:
        return None
    return _URL_PASSWORD.sub(lambda m: m.group("head") + "***", url)


def mask_secrets(text: str) -> str:
    """Every URL password in free text masked (for error messages that quote a URL)."""
    return _URL_PASSWORD.sub(lambda m: m.group("head") + "***", text)
