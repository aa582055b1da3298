"""``moqwk status``: a study's trials and progress, read from its storage.

Read from the study itself, not from ``progress.json`` (which only the worker of this run
directory rewrites), so a run directory of one worker shows every worker's trials.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moqwk.core.objectives import ObjectiveSet
from moqwk.errors import RunDirError
from moqwk.run.record import read_run_record
from moqwk.run.study_url import storage_for as storage_for  # moved down a layer
from moqwk.study.attrs import StudyAttr
from moqwk.study.records import objective_names, progress, records
from moqwk.study.storage import load_study, open_storage


@dataclass(frozen=True)
class Status:
    records: list[dict]
    progress: dict
    objectives: ObjectiveSet
    study_name: str
    finished: bool



def read_status(run_dir: Path, *, storage: str | None = None,
                study_name: str | None = None) -> Status:
    run_dir = Path(run_dir)
    record = read_run_record(run_dir)
    name = study_name or (record.study_name if record is not None else "moqwk")
    study = load_study(open_storage(storage_for(run_dir, storage)), study_name=name)
    if study is None:
        raise RunDirError(f"no study {name!r} in the storage of {run_dir}; check --study-name")
    trials = study.get_trials(deepcopy=False)
    target = (record.n_trials if record is not None and record.n_trials
              else int(study.user_attrs.get(StudyAttr.TARGET) or len(trials)))
    starts = [t.datetime_start.timestamp() for t in trials if t.datetime_start is not None]
    names = objective_names(study)
    prog = progress(trials, target=target, started=min(starts) if starts else None, names=names)
    done = prog["complete"] + prog["failed"] + prog["pruned"]
    return Status(records(study), prog, ObjectiveSet.from_names(names), name,
                  finished=done >= target and prog["running"] == 0)
