"""What a run directory knows about itself: its resolved config and its run record.

A run directory is the user's record of days of compute, so it guards itself:

- ``config.yaml`` is the resolved config (every default filled in, paths absolute). Commands
  given only ``--run-dir`` read it; a ``--config`` given with ``--run-dir`` must agree with it
  on everything the command depends on, or the command refuses and names the fields.
- ``run.json`` says what kind of run it is (``cv``, a ``search`` with its sampler, or a
  ``grid``), its budget, where its study lives and the hashes of its config and data. A command
  that would change the kind or the sampler refuses with one line and the command that works.
  The "Reproduce" commands of a run are generated from this record.

It also words what a selection record says about its study: :func:`unfinished_sentence`.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from moqwk.base import artifacts
from moqwk.config import Config, diff_paths, load_config, parse_config
from moqwk.errors import ConfigError, RunDirError
from moqwk.run.layout import CONFIG_COPY, RUN_RECORD

Level = Literal["scoring", "study"]
RUN_KINDS = ("cv", "search", "grid")


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """``run.json``: the kind of run, its sampler and budget, and the hashes it was made with."""

    kind: str
    scoring_hash: str
    data_hash: str
    study_hash: str | None = None
    sampler: str | None = None
    n_trials: int | None = None
    seed: int | None = None
    study_name: str = "moqwk"
    storage: str | None = None  # masked; None: the run's own study.db
    baseline_source: str = "config"
    baseline_params: dict[str, Any] | None = None
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunRecord:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    @property
    def is_study(self) -> bool:
        return self.kind in ("search", "grid")


def read_run_record(run_dir: Path) -> RunRecord | None:
    path = Path(run_dir) / RUN_RECORD
    if not path.exists():
        return None
    return RunRecord.from_dict(artifacts.read_json(path))


def write_run_record(run_dir: Path, record: RunRecord) -> None:
    artifacts.write_json(Path(run_dir) / RUN_RECORD, record.to_dict())


def run_config(run_dir: Path) -> Config | None:
    """The run's resolved config (``RUN_DIR/config.yaml``), or None when it has none yet."""
    path = Path(run_dir) / CONFIG_COPY
    return load_config(path) if path.exists() else None


def _dict_at(config: Config, level: Level) -> dict[str, Any]:
    return config.scoring_dict() if level == "scoring" else config.study_dict()


def check_same_config(given: Config, recorded: Config, *, level: Level, run_dir: Path,
                      what: str = "--config") -> None:
    """Refuse a config that differs from the run's on what ``level`` covers."""
    diff = diff_paths(_dict_at(given, level), _dict_at(recorded, level))
    if diff:
        shown = ", ".join(diff[:4]) + (f" and {len(diff) - 4} more" if len(diff) > 4 else "")
        raise ConfigError(
            f"{what} differs from the config of {run_dir} ({run_dir / CONFIG_COPY}) in "
            f"{shown}; drop {what} to use the run's config, or start a new --run-dir")


def resolve_config(run_dir: Path, given: Config | None, *, level: Level,
                   first: str | None = None) -> Config:
    """The config a command on ``run_dir`` uses: the run's own, or ``given`` if it agrees.

    ``level`` is what the command depends on: ``scoring`` (cv, select, compare, splits) or
    ``study`` (search and grid also depend on the baseline and the search settings).
    ``first``: for a command that can never start a run (``select``), what starts one.
    """
    recorded = run_config(run_dir)
    if recorded is None:
        if given is None and first is not None:
            raise ConfigError(f"{run_dir} has no {CONFIG_COPY}: it holds no run yet; {first}")
        if given is None:
            raise ConfigError(f"{run_dir} has no {CONFIG_COPY} yet; pass --config for its "
                              "first command")
        return given
    if given is None:
        return recorded
    check_same_config(given, recorded, level=level, run_dir=run_dir)
    record = read_run_record(run_dir)
    if level == "scoring" and record is not None and record.is_study and \
            given.study_dict() != recorded.study_dict():
        # The baseline and search settings that made the run's study are part of its record
        # (`grid` records sampler grid, `--baseline-from` another baseline): keep them, so the
        # study's config hash still matches; the rest (data.path, threads, select) is given's.
        raw, own = given.to_dict(), recorded.to_dict()
        raw["baseline"], raw["search"] = own["baseline"], own["search"]
        base = given.source.parent if given.source is not None else Path.cwd()
        return parse_config(raw, base_dir=base, source=given.source)
    return given


def record_config(run_dir: Path, config: Config, *, replace_scoring_only: bool = False) -> None:
    """Keep ``config`` as the run's ``config.yaml`` if it has none yet.

    ``replace_scoring_only``: a run that so far only ran ``cv`` takes a search's config (which
    agrees with it on scoring) as its own.
    """
    path = Path(run_dir) / CONFIG_COPY
    if path.exists() and not replace_scoring_only:
        return
    artifacts.write_text(path, config.to_yaml())


def check_run_kind(run_dir: Path, *, kind: str, sampler: str | None) -> None:
    """Refuse a ``search`` or ``grid`` that would change the kind or the sampler (None: any) of
    the study already in ``run_dir``: one line (exit 7) with the command that resumes it."""
    old = read_run_record(run_dir)
    if old is None or not old.is_study:
        return
    if old.kind != kind or (sampler is not None and old.sampler != sampler):
        again = " ".join(shlex.quote(c) for c in reproduce_command(run_dir, old))
        now = "a grid" if old.kind == "grid" else f"a {old.sampler} search"
        asked = ("a grid" if kind == "grid" else f"a {sampler} search" if sampler
                 else "a search")
        raise RunDirError(f"{run_dir} holds {now}, not {asked}; resume it with `{again}`, "
                          "or start a new --run-dir")


def plan_study_run(run_dir: Path, config: Config, *, kind: str, n_trials: int | None,
                   storage: str | None, study_name: str, data_hash: str,
                   baseline_source: str = "config",
                   baseline_params: dict[str, Any] | None = None) -> RunRecord:
    """The run record a ``search`` or ``grid`` continues, or starts; refuses a change of kind.

    ``config`` already carries any ``--sampler`` and ``--seed`` override. ``n_trials`` None
    keeps the recorded budget (resuming), or takes ``search.n_trials`` for a new run.
    """
    sampler = "grid" if kind == "grid" else config.search.sampler
    old = read_run_record(run_dir)
    masked = artifacts.mask_url(storage)
    check_run_kind(run_dir, kind=kind, sampler=sampler)
    if old is not None and old.is_study:
        again = " ".join(shlex.quote(c) for c in reproduce_command(run_dir, old))
        if old.study_name != study_name or (storage is not None and old.storage != masked):
            raise RunDirError(f"{run_dir}'s study is {old.study_name!r} in "
                              f"{old.storage or 'its study.db'}; resume it with `{again}`")
        if baseline_params is not None and dict(baseline_params) != old.baseline_params:
            raise RunDirError(f"{run_dir} was started with another baseline "
                              f"({old.baseline_source}); resume it with `{again}`")
        budget = old.n_trials if n_trials is None else n_trials
        return replace(old, n_trials=budget)
    return RunRecord(
        kind=kind, sampler=sampler,
        n_trials=n_trials if n_trials is not None else config.search.n_trials,
        seed=config.search_seed, study_name=study_name, storage=masked,
        baseline_source=baseline_source,
        baseline_params=dict(baseline_params) if baseline_params is not None else None,
        scoring_hash=config.scoring_hash(), study_hash=config.study_hash(),
        data_hash=data_hash)


def reproduce_command(run_dir: Path, record: RunRecord) -> list[str]:
    """The command that resumes (or, on a finished run, re-checks) a search or grid run.

    Everything else (config, sampler, seed, budget, baseline) comes from the run directory.
    A storage whose URL held a password is shown masked: give it again in full.
    """
    cmd = ["moqwk", "grid" if record.kind == "grid" else "search", "--run-dir", str(run_dir)]
    if record.storage:
        cmd += ["--storage", record.storage]
    if record.study_name != "moqwk":
        cmd += ["--study-name", record.study_name]
    return cmd


def unfinished_sentence(record: Mapping) -> str | None:
    """One sentence when the study had not used its budget when it was selected."""
    study = record.get("study") or {}
    target, counted = study.get("target"), study.get("n_counted")
    if target is None or counted is None or counted >= target:
        return None
    what = "grid points" if study.get("kind") == "grid" else "trials"
    return (f"The study is unfinished: {counted} of {target} {what}; the choice is among those "
            f"only. Resume it with `{study.get('resume') or 'the search command'}`, then select "
            "again.")
