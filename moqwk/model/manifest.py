"""A model directory: its files, its ``model.json`` manifest, and the version policy.

```text
MODEL_DIR/
  model.json      the manifest: config, trial, params, data, scale(s), mapping, CV estimates,
                  versions, and the sha256 of every other file
  model.ubj       the XGBoost booster in XGBoost's own UBJSON format
  features.json   the fitted features' record (config, names, versions, key)
  features.npz    the fitted features' arrays (numbers and UTF-8 byte blobs; no pickle)
```

Version policy, checked by :func:`check_versions` when a model is loaded:

- refused: another model-directory format version or fitted-features format, another feature
  code version (the features would differ from the ones the model learned), a file whose sha256
  differs from the manifest's, an XGBoost older (major.minor) than the one that saved the model;
- warned about: another moqwk, scikit-learn or newer XGBoost major.minor version (the formats
  are the same and the features are versioned separately, but say so).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from moqwk.errors import ModelError

MODEL_JSON = "model.json"
BOOSTER_FILE = "model.ubj"
FORMAT = "moqwk-model"
#: Version of the model directory's layout and manifest; bump when either changes.
FORMAT_VERSION = 1


def major_minor(version: str) -> tuple[int, ...]:
    """``"3.2.0"`` -> ``(3, 2)``; non-numeric parts are ignored (``"2.1.0rc1"`` -> ``(2, 1)``)."""
    out = []
    for part in str(version).split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit()) if not part.isdigit() else part
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def read_manifest(model_dir: Path) -> dict[str, Any]:
    """``model.json`` of ``model_dir``; refuses what is not a model directory of this format."""
    path = Path(model_dir) / MODEL_JSON
    if not Path(model_dir).is_dir():
        raise ModelError(f"model directory {model_dir} not found; write one with "
                         "`moqwk fit --run-dir RUN_DIR`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{model_dir} is not a model directory (no {MODEL_JSON}); write one "
                         "with `moqwk fit --run-dir RUN_DIR`") from None
    except (OSError, ValueError) as e:
        raise ModelError(f"{path} is not readable JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError(f"{path} is not a moqwk model manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{path} has model format version {manifest.get('format_version')}; "
                         f"this moqwk reads version {FORMAT_VERSION}: fit the model again with "
                         "this moqwk (or use the moqwk that fitted it)")
    return manifest


def check_versions(manifest: dict[str, Any], current: dict[str, str], *, where: Path) -> None:
    """Refuse an XGBoost older than the model's; warn about other version differences."""
    saved = manifest.get("versions") or {}
    xgb_saved, xgb_now = saved.get("xgboost"), current.get("xgboost")
    if xgb_saved and xgb_now and major_minor(xgb_now) < major_minor(xgb_saved):
        raise ModelError(f"{where} was saved by XGBoost {xgb_saved}; this XGBoost ({xgb_now}) is "
                         f"older and may not read it: install xgboost>={xgb_saved}")
    for lib, why in (("moqwk", "predictions are computed by this version"),
                     ("xgboost", "XGBoost reads older models, but its prediction code may differ"),
                     ("scikit-learn", "the n-gram tokenisers come from scikit-learn")):
        a, b = saved.get(lib), current.get(lib)
        if a and b and major_minor(a) != major_minor(b):
            warnings.warn(f"{where} was fitted with {lib} {a}, this is {b}: {why}; fit the model "
                          "again to be sure its scores match", UserWarning, stacklevel=3)
