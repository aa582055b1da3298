"""``moqwk compare``'s outputs: ``compare.json`` and the ``compare.md`` report.

:mod:`moqwk.stages.compare` computes the record; this module, above it, writes it. The API
(:func:`moqwk.compare`) and so the CLI call :func:`run_compare`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from moqwk.base import artifacts
from moqwk.base.progress import NO_PROGRESS, Progress
from moqwk.config import Config
from moqwk.reports.markdown import compare_markdown
from moqwk.stages.compare import compare_runs

COMPARE_JSON = "compare.json"
COMPARE_MD = "compare.md"


def write_compare(out_dir: Path, record: dict) -> dict[str, Path]:
    """``compare.json`` and ``compare.md`` in ``out_dir``, each written atomically."""
    return {"json": artifacts.write_json(Path(out_dir) / COMPARE_JSON, record),
            "markdown": artifacts.write_text(Path(out_dir) / COMPARE_MD,
                                             compare_markdown(record))}


def run_compare(config: Config, run_dirs: Sequence[Path], out_dir: Path, *, seed: int,
                repeats: int, progress: Progress = NO_PROGRESS) -> dict:
    """``moqwk compare``: :func:`moqwk.stages.compare.compare_runs`, then its files written."""
    record = compare_runs(config, run_dirs, out_dir, seed=seed, repeats=repeats,
                          progress=progress)
    write_compare(out_dir, record)
    return record
