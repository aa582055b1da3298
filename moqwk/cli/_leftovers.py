"""A failed command creates nothing: the directories it was told to write that did not exist
before it ran are removed again when it fails.

Commands create their run directory (``--run-dir``) or output directory (``--out``) early, to
record the config they run with; a check that fails later (no trials to select, a storage that
cannot be reached) would otherwise leave a directory that the next command refuses as "another
config". Two kinds of failure keep what was made: an interrupt (exit 130: "finished trials are
kept; run the same command again to resume") and a study that already holds trials.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
from pathlib import Path

from moqwk.run.layout import TRIALS_JSON

#: The flags whose value is a directory a command may create.
DIR_FLAGS = ("run_dir", "out")


def _topmost_missing(path: Path) -> Path | None:
    """The highest ancestor of ``path`` (``path`` itself included) that does not exist."""
    path = path.absolute()
    if path.exists():
        return None
    missing = path
    for parent in path.parents:
        if parent.exists():
            return missing
        missing = parent
    return missing


def new_dirs(args: argparse.Namespace) -> list[Path]:
    """The directories named by the command's flags that do not exist yet (their topmost
    missing ancestor: ``runs/nope`` in a checkout without ``runs/`` is ``runs``)."""
    out = []
    for flag in DIR_FLAGS:
        value = getattr(args, flag, None)
        if isinstance(value, str) and value:
            missing = _topmost_missing(Path(value))
            if missing is not None and missing not in out:
                out.append(missing)
    return out


def _holds_trials(path: Path) -> bool:
    """True when a study under ``path`` recorded a trial (its SQLite study or trial table)."""
    if any(path.rglob(Path(TRIALS_JSON).name)):
        return True
    for db in path.rglob("study.db"):
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                (n,) = con.execute("SELECT COUNT(*) FROM trials").fetchone()
        except sqlite3.Error:
            continue
        if n:
            return True
    return False


def remove_leftovers(dirs: list[Path], exit_code: int) -> None:
    """After a failed command (exit code not 0 nor 130), remove the ``dirs`` it created."""
    if exit_code in (0, 130):
        return
    for d in dirs:
        if d.is_dir() and not _holds_trials(d):
            shutil.rmtree(d, ignore_errors=True)
