"""Where a run's study lives: the storage URL given, else the one its run record names.

Here, in the run directory's package, so both ``moqwk status`` and the HTML report (which sits
above the stages and must not import them) read it from one place.
"""

from __future__ import annotations

from pathlib import Path

from moqwk.errors import RunDirError
from moqwk.run.layout import STUDY_DB, default_storage_url
from moqwk.run.record import read_run_record


def storage_for(run_dir: Path, storage: str | None) -> str:
    """The URL of a run's study: ``storage`` if given, else the one its run record names."""
    if storage:
        return storage
    record = read_run_record(run_dir)
    if record is not None and record.storage:
        if "***" in record.storage:
            raise RunDirError(f"{run_dir}'s study lives in {record.storage}; give --storage with "
                              "the full URL (its password is not recorded)")
        return record.storage
    if not (Path(run_dir) / STUDY_DB).exists():
        raise RunDirError(f"{run_dir} has no search yet ({STUDY_DB} missing); start one with "
                          "`moqwk search`, or pass --storage")
    return default_storage_url(run_dir)
