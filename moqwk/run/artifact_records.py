"""Typed, versioned records of the artifacts a user or a later command reads.

- :func:`read_trials`: ``artifacts/optuna_trials.json`` as :class:`~moqwk.study.records.TrialRecord`
  rows (the one reader of that file; its version is ``trial_record_version`` in
  ``optuna_study.json``, because the file is a bare list);
- :class:`SelectionRecord`: ``artifacts/selected_params.json`` (and ``selection_failed.json``,
  the same record with no chosen trial), built by :mod:`moqwk.stages.selector`, written by
  :mod:`moqwk._api.select_outputs`, read by ``fit``, ``compare``, the reports and the API;
- :class:`ProgressRecord`: ``progress.json``, written by the search after each trial;
- :class:`CVMetricsRecord`: ``artifacts/cv_metrics.json``, written by ``cv`` and ``select``,
  read by the HTML report.

Each record is a frozen dataclass with a ``RECORD_VERSION`` (raised when a field is added,
renamed or changes meaning). ``to_dict()`` is the JSON as written, with a ``record_version``
key; ``from_dict()`` reads it back and refuses, with one :class:`~moqwk.errors.RunDirError`
naming the file, the key and the fix, a newer version, a missing required key or a key the
version does not know. A file written before the version key existed reads as version 1. The
nested blocks (``stability_gate``, ``selection_bias``, ``holdout`` ...) stay mappings: their
own fields are documented in ``docs/reference/artifacts.md``.

This module is in the run layer (``moqwk/_layers.py``): every writer and reader (the stages,
the reports, the API) sits above it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from moqwk.base import artifacts
from moqwk.core.objectives import ObjectiveSet, objectives_of
from moqwk.errors import RunDirError
from moqwk.run.layout import CV_METRICS, PROGRESS, SELECTED, STUDY_JSON, TRIALS_JSON

if TYPE_CHECKING:  # the scoring path (fit's module, loaded by predict) must not import optuna
    from moqwk.study.records import TrialRecord

#: The key every versioned record carries (absent: version 1, a file from before the key).
VERSION_KEY = "record_version"


def _load(path: Path, fix: str) -> Any:
    """The JSON of ``path``; :class:`RunDirError` naming it when it is missing or not JSON."""
    if not path.exists():
        raise RunDirError(f"{path} not found; {fix}")
    try:
        return artifacts.read_json(path)
    except ValueError as e:
        raise RunDirError(f"{path} is not valid JSON ({e}); {fix}") from None


def _check_version(data: Mapping[str, Any], *, source: str, what: str, current: int,
                   fix: str, key: str = VERSION_KEY) -> int:
    version = data.get(key, 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RunDirError(f"{source}: `{key}` must be a whole number >= 1, got {version!r}; "
                          f"{fix}")
    if version > current:
        raise RunDirError(f"{source}: `{key}` is {version}, newer than this moqwk reads "
                          f"({what} version {current}); upgrade moqwk, or {fix} with this moqwk")
    return version


class _Record:
    """What the versioned records share: the version check, the key check, ``to_dict``."""

    RECORD_VERSION: ClassVar[int]
    #: The keys a file must hold (the others read with their defaults).
    REQUIRED: ClassVar[tuple[str, ...]]
    #: Required keys whose value must be a JSON object (or null, where the field allows it).
    OBJECTS: ClassVar[tuple[str, ...]] = ()
    WHAT: ClassVar[str]
    FIX: ClassVar[str]

    @classmethod
    def _body(cls, data: Any, source: str, run_dir: Path | None) -> dict[str, Any]:
        fix = cls.FIX.format(run=run_dir if run_dir is not None else "RUN")
        if not isinstance(data, Mapping):
            raise RunDirError(f"{source} does not hold a {cls.WHAT} (a JSON object); {fix}")
        version = _check_version(data, source=source, what=cls.WHAT,
                                 current=cls.RECORD_VERSION, fix=fix)
        body = {k: v for k, v in data.items() if k != VERSION_KEY}
        missing = [k for k in cls.REQUIRED if k not in body]
        if missing:
            keys = ", ".join(f"`{k}`" for k in missing)
            raise RunDirError(f"{source}: no {keys} key{'s' if len(missing) > 1 else ''} (a "
                              f"{cls.WHAT} needs {', '.join(cls.REQUIRED)}); {fix}")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(body) - known)
        if unknown:
            raise RunDirError(f"{source}: unknown key(s) {', '.join(unknown)} (not in "
                              f"{cls.WHAT} version {version}); {fix}")
        for k in cls.OBJECTS:
            if body[k] is not None and not isinstance(body[k], Mapping):
                raise RunDirError(f"{source}: `{k}` must be a JSON object, got "
                                  f"{type(body[k]).__name__}; {fix}")
        return body

    @classmethod
    def from_dict(cls, data: Any, *, source: str | Path | None = None,
                  run_dir: Path | None = None) -> Self:
        """The record of ``data`` (a file's JSON); ``source`` names it in errors (default: the
        record's name), ``run_dir`` in the command that fixes it."""
        return cls(**cls._body(data, str(source or cls.WHAT), run_dir))

    def to_dict(self) -> dict[str, Any]:
        """The JSON of the file: every field, and ``record_version``."""
        return {VERSION_KEY: self.RECORD_VERSION,
                **{f.name: getattr(self, f.name) for f in fields(self)}}  # type: ignore[arg-type]


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True, kw_only=True)
class SelectionRecord(_Record):
    """``artifacts/selected_params.json``: what ``moqwk select`` chose and why.

    A selection whose stability gate failed writes the same record to
    ``selection_failed.json`` with ``trial_number``, ``params``, ``values``, ``constraints``
    and ``feasible`` null (:attr:`chosen` is False). Mappings are the written JSON's, shared,
    not copied: treat them as read-only.
    """

    RECORD_VERSION: ClassVar[int] = 1
    REQUIRED: ClassVar[tuple[str, ...]] = ("trial_number", "params", "values", "baseline",
                                           "stability_gate")
    OBJECTS: ClassVar[tuple[str, ...]] = ("params", "values", "baseline", "stability_gate")
    WHAT: ClassVar[str] = "selection record"
    FIX: ClassVar[str] = "re-run `moqwk select --run-dir {run}` to rewrite it"

    trial_number: int | None
    params: dict[str, Any] | None
    values: dict[str, float] | None
    baseline: dict[str, Any]  # {trial_number, params, values, reproduced_on_prompt_holdout}
    stability_gate: dict[str, Any]  # {scheme, margin, ..., baseline, results: [...]}
    mapping: dict[str, Any] | None = None
    transductive: bool = False
    batch: int | str | None = None
    constraints: dict[str, float] | None = None
    feasible: bool | None = None
    objectives: dict[str, Any] | None = None  # ObjectiveSet.to_dict(); None: the defaults
    rule: dict[str, Any] | None = None
    tie_tolerance: float | None = None
    tie_tolerance_method: Any = None
    allow_tail_regression: bool = False
    tail_regression_reason: str | None = None
    tail_tradeoff: list[dict[str, Any]] | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    guardrails: dict[str, Any] | None = None
    success_criterion: dict[str, Any] | None = None
    selection_bias: dict[str, Any] | None = None
    holdout: dict[str, Any] | None = None
    reproduced_on_prompt_holdout: dict[str, Any] | None = None
    study: dict[str, Any] = field(default_factory=dict)
    hashes: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    reproduce: list[str] = field(default_factory=list)


    @property
    def chosen(self) -> bool:
        """Whether a trial was chosen (False: the record of a failed gate)."""
        return self.trial_number is not None

    @property
    def objective_set(self) -> ObjectiveSet:
        """The objectives the selection was made on (the default set for an older file)."""
        return objectives_of({"objectives": self.objectives})

    @property
    def gate_passed(self) -> bool:
        """Whether the last candidate the gate tried passed it (the chosen one, if any)."""
        results = self.stability_gate.get("results") or []
        return bool(results and results[-1].get("passed"))


def read_selection(run_dir: Path, rel: str = SELECTED) -> SelectionRecord:
    """``run_dir/rel`` (``selected_params.json`` by default) as a :class:`SelectionRecord`.

    :class:`RunDirError` when it is missing (run ``select``), not JSON, from a newer moqwk or
    lacking a key; ``selected_params.json`` must name a chosen trial and its params.
    """
    run_dir = Path(run_dir)
    path = run_dir / rel
    if not path.exists():
        raise RunDirError(f"{run_dir} has no {rel}; run `moqwk select --run-dir {run_dir}` "
                          "first")
    fix = SelectionRecord.FIX.format(run=run_dir)
    record = SelectionRecord.from_dict(_load(path, fix), source=path, run_dir=run_dir)
    if rel == SELECTED and (record.trial_number is None or record.params is None):
        key = "trial_number" if record.trial_number is None else "params"
        raise RunDirError(f"{path}: `{key}` is null (a selected_params.json names the chosen "
                          f"trial); {fix}")
    return record


# --------------------------------------------------------------------------- progress


@dataclass(frozen=True, kw_only=True)
class ProgressRecord(_Record):
    """``progress.json``: the search's counts, best feasible values, time and ETA, rewritten
    after each trial (:func:`moqwk.study.records.progress` computes the numbers)."""

    RECORD_VERSION: ClassVar[int] = 1
    REQUIRED: ClassVar[tuple[str, ...]] = ("complete", "failed", "target")
    WHAT: ClassVar[str] = "progress record"
    FIX: ClassVar[str] = "resume the search (`moqwk search --run-dir {run}`) to rewrite it"

    complete: int
    failed: int
    target: int
    pruned: int = 0
    interrupted: int = 0
    running: int = 0
    waiting: int = 0
    feasible: int = 0
    best_feasible: dict[str, float | None] = field(default_factory=dict)
    elapsed_s: float | None = None
    mean_trial_s: float | None = None
    trial_cost_s: float | None = None
    eta_s: float | None = None
    updated: str | None = None
    running_trials: list[dict[str, Any]] = field(default_factory=list)
    racing: Any = None


def read_progress(run_dir: Path) -> ProgressRecord:
    """``run_dir/progress.json`` as a :class:`ProgressRecord` (:class:`RunDirError` as
    :func:`read_selection`)."""
    run_dir = Path(run_dir)
    path = run_dir / PROGRESS
    return ProgressRecord.from_dict(_load(path, ProgressRecord.FIX.format(run=run_dir)),
                                    source=path, run_dir=run_dir)


# --------------------------------------------------------------------------- CV metrics


@dataclass(frozen=True, kw_only=True)
class CVMetricsRecord(_Record):
    """``artifacts/cv_metrics.json``: one CV run's numbers (those of
    :class:`moqwk.core.metrics.CVMetrics`, at the top level) and what it ran, written by
    ``moqwk cv`` and by ``select`` for its choice."""

    RECORD_VERSION: ClassVar[int] = 1
    REQUIRED: ClassVar[tuple[str, ...]] = ("worst_prompt_qwk", "mean_qwk", "scheme", "params")
    OBJECTS: ClassVar[tuple[str, ...]] = ("params",)
    WHAT: ClassVar[str] = "CV metrics record"
    FIX: ClassVar[str] = ("re-run the command that wrote it (`moqwk cv`, or `moqwk select "
                          "--run-dir {run}`)")

    # the numbers (CVMetrics.to_dict(); NaN written as null)
    worst_prompt_qwk: float | None
    mean_qwk: float | None
    worst_prompt: str | None = None
    pooled_qwk: float | None = None
    low_tail_mae: float | None = None
    high_tail_mae: float | None = None
    low_tail_bias: float | None = None
    high_tail_bias: float | None = None
    low_tail: dict[str, Any] | None = None
    high_tail: dict[str, Any] | None = None
    n_eligible_prompts: int | None = None
    min_prompt_n: int | None = None
    repeats: int | None = None
    per_prompt: list[dict[str, Any]] = field(default_factory=list)
    # what was run
    scheme: str
    splits_sha256: str | None = None
    params: dict[str, Any]
    mapping: dict[str, Any] | None = None
    transductive: bool = False
    features: dict[str, Any] | None = None
    timings: dict[str, Any] = field(default_factory=dict)
    config_hash: str | None = None
    data_hash: str | None = None
    scale: dict[str, Any] | None = None
    n_essays: int | None = None
    n_prompts: int | None = None
    feature_store: dict[str, Any] | None = None
    versions: dict[str, Any] = field(default_factory=dict)


def read_cv_metrics(run_dir: Path) -> CVMetricsRecord:
    """``run_dir/artifacts/cv_metrics.json`` as a :class:`CVMetricsRecord`
    (:class:`RunDirError` as :func:`read_selection`)."""
    run_dir = Path(run_dir)
    path = run_dir / CV_METRICS
    return CVMetricsRecord.from_dict(_load(path, CVMetricsRecord.FIX.format(run=run_dir)),
                                     source=path, run_dir=run_dir)


# --------------------------------------------------------------------------- trials

_TRIALS_FIX = "resume the search (`moqwk search --run-dir {run}`) to rewrite it"


def read_trials(run_dir: Path) -> list[TrialRecord]:
    """``run_dir/artifacts/optuna_trials.json``: one :class:`TrialRecord` per row.

    The rows' version is ``trial_record_version`` in ``optuna_study.json`` (absent: 1); a
    newer one, a row that is not an object or a row :meth:`TrialRecord.from_dict` refuses is
    a :class:`RunDirError` naming the file and the trial.
    """
    from moqwk.study.records import RECORD_VERSION as TRIAL_RECORD_VERSION
    from moqwk.study.records import TrialRecord

    run_dir = Path(run_dir)
    fix = _TRIALS_FIX.format(run=run_dir)
    study = run_dir / STUDY_JSON
    if study.exists():
        meta = _load(study, fix)
        if isinstance(meta, Mapping):
            _check_version(meta, source=str(study), what="trial record",
                           current=TRIAL_RECORD_VERSION, fix=fix, key="trial_record_version")
    path = run_dir / TRIALS_JSON
    rows = _load(path, fix)
    if not isinstance(rows, list):
        raise RunDirError(f"{path} does not hold a list of trial records; {fix}")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise RunDirError(f"{path}: row {i} is not a JSON object; {fix}")
        try:
            out.append(TrialRecord.from_dict(row))
        except (TypeError, ValueError) as e:
            raise RunDirError(f"{path}: {e}; {fix}") from None
    return out
