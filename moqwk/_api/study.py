"""``moqwk.search`` and ``moqwk.select``: run (or resume) a study; choose one of its trials."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from moqwk._api._common import (
    ConfigLike,
    ProgressLike,
    as_config,
    as_progress,
    config_for_run,
    quiet_optuna,
)
from moqwk._api.results import (
    Estimate,
    Holdout,
    HoldoutEstimate,
    SearchResult,
    SelectResult,
    frozen,
)
from moqwk.errors import RunDirError

if TYPE_CHECKING:
    import optuna

    from moqwk.run.artifact_records import SelectionRecord
    from moqwk.run.workspace import Workspace
    from moqwk.stages.search_loop import SearchOptions

#: ``on_update(trials, progress)``: called as trials start and finish, with every trial's record
#: (as in ``optuna_trials.json``) and the numbers of ``progress.json``.
OnUpdate = Callable[[list[dict], dict], None]


def _baseline_from(path: Path) -> tuple[dict, str]:
    """The params selected in a grid run (its selected_params.json) to use as the baseline."""
    from moqwk.run.artifact_records import read_selection
    from moqwk.run.layout import SELECTED

    f = path / SELECTED if path.is_dir() else path
    if not f.exists():
        raise RunDirError(f"--baseline-from: {f} not found; run `moqwk select` on the grid run")
    record = read_selection(path) if path.is_dir() else read_selection(f.parent, f.name)
    if record.params is None:
        raise RunDirError(f"--baseline-from: {f} names no selected trial (its gate failed?); "
                          "give a grid run whose selection passed")
    return dict(record.params), f"selected params of {f}"


def prepare_search(*, config: ConfigLike | None, run_dir: str | Path,
                   n_trials: int | None = None, sampler: str | None = None,
                   seed: int | None = None, timeout: float | None = None,
                   n_jobs: int | None = None, storage: str | None = None,
                   study_name: str = "moqwk", baseline_from: str | Path | None = None
                   ) -> tuple[Workspace, SearchOptions]:
    """Everything :func:`search` checks and opens before its first trial: the run's kind and
    sampler, the config it resumes with, the workspace and the options."""
    from moqwk.run.record import check_run_kind
    from moqwk.run.workspace import Workspace
    from moqwk.stages.search_loop import SearchOptions
    from moqwk.study.storage import canonical_url

    run_dir = Path(run_dir)
    given = as_config(config) if config is not None else None
    # A change of kind or sampler (sampler=, a grid on a search, a config with another
    # sampler) is refused before any config comparison, with the command that resumes the run.
    asked = sampler or (given.search.sampler if given is not None else None)
    check_run_kind(run_dir, kind="grid" if asked == "grid" else "search", sampler=asked)
    cfg = config_for_run(run_dir, given, level="study", sampler=sampler, seed=seed)
    ws = Workspace.open(cfg, run_dir, level="study")
    baseline, source = None, "config"
    if baseline_from is not None:
        baseline, source = _baseline_from(Path(baseline_from))
    opts = SearchOptions(
        n_trials=n_trials,
        timeout=timeout if timeout is not None else cfg.search.timeout,
        n_jobs=n_jobs if n_jobs is not None else cfg.search.n_jobs,
        storage=canonical_url(storage), study_name=study_name, baseline_params=baseline,
        baseline_source=source)
    return ws, opts


def search_result(run_dir: Path, study: optuna.Study) -> SearchResult:
    """The :class:`SearchResult` of ``run_dir``'s study as it stands."""
    from moqwk.run.layout import PROGRESS, STUDY_JSON, TRIALS_JSON
    from moqwk.run.record import read_run_record
    from moqwk.study.attrs import StudyAttr
    from moqwk.study.records import objective_names, progress

    record = read_run_record(run_dir)
    if record is None or not record.is_study:
        raise RunDirError(f"{run_dir} holds no search or grid")
    trials = study.get_trials(deepcopy=False)
    target = int(record.n_trials or len(trials))
    prog = progress(trials, target=target, started=None, names=objective_names(study))
    return SearchResult(
        run_dir=run_dir, kind=record.kind, sampler=record.sampler or "", seed=int(record.seed or 0),
        study_name=study.study_name, storage=record.storage, n_trials=target,
        n_complete=prog["complete"], n_failed=prog["failed"], n_feasible=prog["feasible"],
        finished=prog["complete"] + prog["failed"] >= target,
        best_feasible=frozen(prog["best_feasible"]),
        guardrails=frozen(study.user_attrs.get(StudyAttr.GUARDRAILS)),
        paths=frozen({"trials": run_dir / TRIALS_JSON, "study": run_dir / STUDY_JSON,
                      "progress": run_dir / PROGRESS}))


def search(*, config: ConfigLike | None = None, run_dir: str | Path,
           n_trials: int | None = None, sampler: str | None = None, seed: int | None = None,
           timeout: float | None = None, n_jobs: int | None = None, storage: str | None = None,
           study_name: str = "moqwk", baseline_from: str | Path | None = None,
           on_update: OnUpdate | None = None, progress: ProgressLike = False) -> SearchResult:
    """Run (or resume) a study in ``run_dir`` until its budget is used (``moqwk search``).

    Args:
        config: a YAML path, a mapping or a Config; None resumes with ``run_dir``'s own.
        run_dir: the run directory (created if missing).
        n_trials: the study's whole budget (not "this many more"); None keeps the run's
            recorded budget, else ``search.n_trials``.
        sampler: override ``search.sampler`` (a run keeps its sampler); ``"grid"`` runs the
            fixed grid (``moqwk grid``).
        seed: override ``search.seed``.
        timeout: stop starting trials after this many seconds.
        n_jobs: trials at once in this process (default ``search.n_jobs``).
        storage: an Optuna storage URL shared by workers (``sqlite:///PATH``,
            ``postgresql+psycopg://...``, ``journal:///PATH.log``); None: ``RUN_DIR/study.db``.
        study_name: the study's name in the storage.
        baseline_from: a grid run directory (or its selected_params.json) whose selected
            params are the baseline.
        on_update: called as trials start and finish (see :data:`OnUpdate`).
        progress: False (default), True, or a Progress (the fold features before trial 0).

    Raises:
        ConfigError, DataError, StorageError, RunDirError: see :mod:`moqwk.errors`.
    """
    from moqwk.stages.search_loop import run_search

    ws, opts = prepare_search(config=config, run_dir=run_dir, n_trials=n_trials,
                              sampler=sampler, seed=seed, timeout=timeout, n_jobs=n_jobs,
                              storage=storage, study_name=study_name,
                              baseline_from=baseline_from)
    with quiet_optuna():
        study = run_search(ws, opts, on_update=on_update, progress=as_progress(progress))
    return search_result(ws.run_dir, study)


def select_commands(run_dir: Path, *, storage: str | None, study_name: str,
                    gate_margin: float | None, max_candidates: int | None,
                    tie_tolerance: float | None, allow_tail_regression: bool,
                    reason: str | None) -> list[str]:
    """How to redo this selection (and resume its search), from the run's own record."""
    from moqwk.base import artifacts
    from moqwk.run.record import read_run_record, reproduce_command

    cmd = ["moqwk", "select", "--run-dir", str(run_dir)]
    if storage:
        cmd += ["--storage", artifacts.mask_url(storage) or ""]
    if study_name != "moqwk":
        cmd += ["--study-name", study_name]
    for flag, value in (("--gate-margin", gate_margin), ("--max-candidates", max_candidates),
                        ("--tie-tolerance", tie_tolerance)):
        if value is not None:
            cmd += [flag, str(value)]
    if allow_tail_regression:
        cmd += ["--allow-tail-regression", "--reason", reason or ""]
    out = []
    record = read_run_record(run_dir)
    if record is not None and record.is_study:
        out.append(" ".join(shlex.quote(c) for c in reproduce_command(run_dir, record))
                   + "  # resumes the study; finished trials are kept")
    out.append(" ".join(shlex.quote(c) for c in cmd))
    return out


def _study_storage(run_dir: Path, storage: str | None) -> str | None:
    """``storage``, else the one the run's record names (a journal or a database without a
    password in its URL); None: the run's own study.db."""
    from moqwk.run.record import read_run_record
    from moqwk.stages.status import storage_for

    if storage is not None:
        return storage
    record = read_run_record(run_dir)
    return storage_for(run_dir, None) if record is not None and record.storage else None


def _selected(run_dir: Path, record: SelectionRecord) -> SelectResult:
    from moqwk.run.layout import BASELINE_OOF, FRONT, HTML_REPORT, SELECTED, SUMMARY

    bias = record.selection_bias or {}
    summary = bias.get("summary")
    bbc = (frozen({k: Estimate(**{f: float(v[f]) for f in
                                  ("in_sample", "estimate", "lo", "hi", "optimism")})
                   for k, v in summary.items()}) if summary else None)
    h = record.holdout
    holdout = None if not h else Holdout(
        unit=h["unit"], share=float(h["share"]), n_essays=int(h["n_essays"]),
        n_prompts=int(h["n_prompts"]), assumes=h["assumes"],
        objectives=frozen({n: HoldoutEstimate(value=float(v), se=float(h["se"][n]),
                                              size_corrected=float(h["size_corrected"][n]),
                                              size_shift=float(h["size_shift"][n]))
                           for n, v in h["values"].items()}))
    paths = {"selected": run_dir / SELECTED, "front": run_dir / FRONT,
             "summary": run_dir / SUMMARY, "baseline_oof": run_dir / BASELINE_OOF}
    if (run_dir / HTML_REPORT).exists():
        paths["report"] = run_dir / HTML_REPORT
    assert record.trial_number is not None  # run_selection raises when nothing was chosen
    return SelectResult(
        run_dir=run_dir, trial_number=int(record.trial_number),
        params=frozen(record.params), in_sample=frozen(record.values), bbc_cv=bbc,
        holdout=holdout,
        baseline_trial_number=int(record.baseline["trial_number"]),
        tie_tolerance=float(record.tie_tolerance or 0.0), rule=(record.rule or {})["name"],
        feasible=bool(record.feasible), finished=bool(record.study["finished"]),
        record=frozen(record.to_dict()), paths=frozen(paths))


def select(*, run_dir: str | Path, config: ConfigLike | None = None,
           tie_tolerance: float | None = None, gate_margin: float | None = None,
           max_candidates: int | None = None, allow_tail_regression: bool = False,
           reason: str | None = None, storage: str | None = None,
           study_name: str | None = None, progress: ProgressLike = False) -> SelectResult:
    """Choose one trial of ``run_dir``'s study (``moqwk select``): the feasible Pareto front,
    the config's rule with its tie band, the stability gate, BBC-CV. Writes
    ``selected_params.json``, the front, the residuals of the choice and the reports.

    Args:
        run_dir: a run directory with a search or grid.
        config: None (the run's own ``config.yaml``), or one that agrees with it on scoring.
        tie_tolerance: the worst-prompt QWK tie band (default ``select.tie_tolerance``, else
            estimated by bootstrap; 0 = strict).
        gate_margin: the largest regression the stability gate allows.
        max_candidates: candidates tried in the gate.
        allow_tail_regression: let trials that break a tail guardrail be chosen (needs
            ``reason``, which is recorded).
        reason: why a tail regression is acceptable.
        storage: the study's storage URL (default: the one the run recorded, else its
            study.db).
        study_name: the study's name (default: the one the run recorded, else ``moqwk``).
        progress: False (default), True, or a Progress.

    Raises:
        NoFeasibleTrialError: every complete trial breaks a tail guardrail.
        StabilityGateError: no candidate passed the gate (``selection_failed.json`` is written).
        ConfigError, RunDirError, StorageError: see :mod:`moqwk.errors`.
    """
    from moqwk._api.select_outputs import run_selection
    from moqwk.run.layout import STUDY_DB
    from moqwk.run.record import read_run_record
    from moqwk.run.workspace import Workspace
    from moqwk.stages.selector import options_from

    run_dir = Path(run_dir)
    if study_name is None:
        run = read_run_record(run_dir)
        study_name = run.study_name if run is not None else "moqwk"
    start = (f"select works on a search or grid run: start one with `moqwk search --config "
             f"CONFIG --run-dir {shlex.quote(str(run_dir))}` (or `moqwk grid`), then select")
    if storage is None and read_run_record(run_dir) is None and not (run_dir / STUDY_DB).exists():
        # before the config is recorded there: a failed select writes nothing
        raise RunDirError(f"{run_dir} has no {STUDY_DB}; {start}, or pass the study's --storage")
    cfg = config_for_run(run_dir, config, level="scoring", first=start)
    ws = Workspace.open(cfg, run_dir)
    opts = options_from(cfg.select, tie_tolerance=tie_tolerance, gate_margin=gate_margin,
                        max_gate_candidates=max_candidates,
                        allow_tail_regression=allow_tail_regression, reason=reason,
                        storage=_study_storage(run_dir, storage), study_name=study_name)
    commands = select_commands(run_dir, storage=storage, study_name=study_name,
                               gate_margin=gate_margin, max_candidates=max_candidates,
                               tie_tolerance=tie_tolerance,
                               allow_tail_regression=allow_tail_regression, reason=reason)
    with quiet_optuna():
        record, _sel = run_selection(ws, opts, commands=commands,
                                     progress=as_progress(progress))
    return _selected(run_dir, record)
