"""Trials as records (:class:`TrialRecord`): what ``optuna_trials.json`` and ``progress.json``
hold.

Everything downstream (status, select, compare, reports) reads these records, not Optuna
objects. Values are keyed by the study's metric names, and "best" follows each metric's
direction in the registry (:mod:`moqwk.core.objectives`), never a position in a list.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from moqwk.core.objectives import DEFAULT_OBJECTIVES, metric
from moqwk.study.attrs import TrialAttr

CONSTRAINTS = ("low_tail_guardrail", "high_tail_guardrail")


def is_raced(t: FrozenTrial) -> bool:
    """Trials stopped by fold racing after some of their folds (PRUNED, with a reason)."""
    return t.state == TrialState.PRUNED and TrialAttr.PRUNED in t.user_attrs


def is_counted(t: FrozenTrial) -> bool:
    """Trials that use up the budget: finished, failed for a reason of their own, or stopped by
    fold racing (it trained some folds). Not the surplus ones other workers' trials made
    unnecessary (pruned before training anything)."""
    return t.state == TrialState.COMPLETE or is_raced(t) or (
        t.state == TrialState.FAIL and TrialAttr.FAILURE in t.user_attrs)


def feasible_front(trials: Sequence[FrozenTrial], names: Sequence[str]
                   ) -> tuple[np.ndarray, list[int]]:
    """The losses (one row per trial, ``names`` order) and numbers of the complete feasible
    trials: what fold racing compares a running trial with. Every feasible trial, not only the
    non-dominated ones: a trial dominated by one of them is dominated by the front too."""
    rows, numbers = [], []
    for t in trials:
        if t.state != TrialState.COMPLETE or t.values is None or not t.constraints:
            continue
        if any(v > 0 for v in t.constraints.values()):
            continue
        rows.append([metric(n).loss(float(v)) for n, v in zip(names, t.values, strict=True)])
        numbers.append(t.number)
    return np.array(rows, dtype=float).reshape(-1, len(names)), numbers


def is_interrupted(t: FrozenTrial) -> bool:
    """Trials that died with their worker (killed, machine lost): retried, not counted."""
    return t.state == TrialState.FAIL and TrialAttr.FAILURE not in t.user_attrs


def objective_names(study: optuna.Study) -> tuple[str, ...]:
    """The metric names the study records (moqwk sets them when it creates a study)."""
    names = study.metric_names
    return tuple(names) if names else DEFAULT_OBJECTIVES.names


#: The version of :class:`TrialRecord`'s fields: raised when a field is added, renamed or changes
#: meaning. ``optuna_trials.json`` is a bare list (its format is kept), so the version is written
#: in ``optuna_study.json`` (``trial_record_version``).
RECORD_VERSION = 1


@dataclass(frozen=True)
class TrialRecord:
    """One trial of the study as ``optuna_trials.json`` holds it (one row of that list).

    :meth:`to_dict` is that row, fields in this order; :meth:`from_dict` reads one back (a row
    written before a field existed reads with that field's default). ``state`` is Optuna's
    state in lower case, or ``interrupted`` (failed with no reason: its worker died) or
    ``surplus`` (pruned before training: the budget was used). Mappings are shared with the
    trial they came from, not copied: treat them as read-only.
    """

    number: int
    state: str
    role: str = "sampled"
    generation: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    values: dict[str, float] | None = None
    constraints: dict[str, float] = field(default_factory=dict)
    feasible: bool = False
    duration_s: float | None = None
    per_prompt_qwk: dict[str, float] | None = None
    metrics: dict[str, Any] | None = None
    failure_reason: str | None = None
    retry_of: int | None = None
    worker: str | None = None  # host:pid of the process that ran it
    pruned: dict[str, Any] | None = None
    datetime_start: str | None = None
    datetime_complete: str | None = None

    @classmethod
    def from_trial(cls, t: FrozenTrial, names: Sequence[str] = DEFAULT_OBJECTIVES.names
                   ) -> TrialRecord:
        """The record of Optuna trial ``t``; ``names`` are the study's objective names."""
        values = None
        if t.values is not None:
            values = {name: float(v) for name, v in zip(names, t.values, strict=True)}
        constraints = {k: float(v) for k, v in t.constraints.items()}
        feasible = bool(constraints) and all(v <= 0 for v in constraints.values()) and \
            t.state == TrialState.COMPLETE
        ua = t.user_attrs
        state = t.state.name.lower()
        if t.state == TrialState.FAIL and TrialAttr.FAILURE not in ua:
            state = "interrupted"
        if t.state == TrialState.PRUNED and ua.get(TrialAttr.SURPLUS):
            state = "surplus"
        return cls(
            number=t.number, state=state, role=ua.get(TrialAttr.ROLE, "sampled"),
            generation=t.system_attrs.get("NSGAIISampler:generation"),
            params=ua.get(TrialAttr.PARAMS, dict(t.params)), values=values,
            constraints=constraints, feasible=feasible,
            duration_s=t.duration.total_seconds() if t.duration is not None else None,
            per_prompt_qwk=ua.get(TrialAttr.PER_PROMPT_QWK), metrics=ua.get(TrialAttr.METRICS),
            failure_reason=ua.get(TrialAttr.FAILURE), retry_of=ua.get(TrialAttr.RETRY_OF),
            worker=ua.get(TrialAttr.WORKER), pruned=ua.get(TrialAttr.PRUNED),
            datetime_start=t.datetime_start.isoformat() if t.datetime_start else None,
            datetime_complete=(t.datetime_complete.isoformat() if t.datetime_complete
                               else None))

    def to_dict(self) -> dict[str, Any]:
        """The row of ``optuna_trials.json`` (a new dict; the mappings in it are shared)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> TrialRecord:
        """A row of ``optuna_trials.json`` read back. ``ValueError`` naming the field for a row
        without ``number`` or ``state`` or with a field this version does not know."""
        known = {f.name for f in fields(cls)}
        where = f"trial record {row.get('number', '?')}"
        missing = [k for k in ("number", "state") if k not in row]
        if missing:
            raise ValueError(f"{where}: no {', '.join(missing)} field")
        unknown = sorted(set(row) - known)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)} (written by a "
                             f"newer moqwk? this one reads trial records version "
                             f"{RECORD_VERSION})")
        return cls(**dict(row))


def trial_record(t: FrozenTrial, names: Sequence[str] = DEFAULT_OBJECTIVES.names
                 ) -> dict[str, Any]:
    """One trial as a plain dict (:meth:`TrialRecord.to_dict`); ``names`` are the study's
    objective names, in order."""
    return TrialRecord.from_trial(t, names).to_dict()


def trial_records(study: optuna.Study, trials: Sequence[FrozenTrial] | None = None
                  ) -> list[TrialRecord]:
    """Every trial's :class:`TrialRecord` (``trials``: a snapshot already read, else the
    study's now)."""
    names = objective_names(study)
    return [TrialRecord.from_trial(t, names)
            for t in (trials if trials is not None else study.get_trials(deepcopy=False))]


def records(study: optuna.Study, trials: Sequence[FrozenTrial] | None = None
            ) -> list[dict[str, Any]]:
    """Every trial's record (``trials``: a snapshot already read, else the study's now)."""
    return [r.to_dict() for r in trial_records(study, trials)]


#: How fast older trials' costs fade in the ETA: a trial ``HALF_LIFE`` trials back weighs half.
HALF_LIFE = 5.0


def trained(t: FrozenTrial) -> bool:
    """A finished trial that trained models (not one served from the raw-prediction cache):
    the only kind whose duration says what the next trials will cost. A trial that recorded
    no timings (made by an older moqwk) is taken to have trained."""
    timings = ((t.user_attrs.get(TrialAttr.METRICS) or {}).get("timings")
               or (t.user_attrs.get(TrialAttr.PRUNED) or {}).get("timings"))
    if not timings:
        return True
    return float(timings.get("train_s", 0.0)) + float(timings.get("inner_train_s", 0.0)) > 0


def trial_cost(trials: Sequence[FrozenTrial]) -> float | None:
    """Seconds a trial costs, from trials that trained (complete or stopped by racing), the
    recent ones weighted more (:data:`HALF_LIFE`); None before any trained."""
    done = [t for t in trials if (t.state == TrialState.COMPLETE or is_raced(t))
            and t.duration is not None and trained(t)]
    done.sort(key=lambda t: t.datetime_complete or t.datetime_start)  # type: ignore[arg-type,return-value]
    if not done:
        return None
    secs = np.array([t.duration.total_seconds() for t in done])  # type: ignore[union-attr]
    w = 0.5 ** (np.arange(len(secs))[::-1] / HALF_LIFE)
    return float((w * secs).sum() / w.sum())


def progress(trials: Sequence[FrozenTrial], *, target: int, started: float | None,
             elapsed_before: float = 0.0,
             names: Sequence[str] = DEFAULT_OBJECTIVES.names,
             workers: int | None = None) -> dict[str, Any]:
    """The numbers ``progress.json`` holds: counts, best feasible values, time and ETA.

    The ETA is the trials still to run times :func:`trial_cost` (trials that trained, recent
    ones weighted more: a trial served from the cache says nothing about the next one's cost),
    shared among ``workers`` (this process's trials at once), or the trials running now.
    """
    counted = [t for t in trials if is_counted(t)]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    durations = [t.duration.total_seconds() for t in complete if t.duration is not None]
    best: dict[str, float | None] = {}
    feasible = [r for r in (TrialRecord.from_trial(t, names) for t in complete) if r.feasible]
    for name in names:
        vals = [r.values[name] for r in feasible if r.values is not None]
        best[name] = min(vals, key=metric(name).loss) if vals else None
    running = sum(t.state == TrialState.RUNNING for t in trials)
    remaining = max(0, target - len(counted))
    mean = sum(durations) / len(durations) if durations else None
    cost = trial_cost(trials)
    workers = max(1, running, min(workers or 0, remaining))
    elapsed = (time.time() - started if started else 0.0) + elapsed_before
    return {
        "complete": len(complete),
        "failed": sum(t.state == TrialState.FAIL and TrialAttr.FAILURE in t.user_attrs
                      for t in trials),
        "pruned": sum(is_raced(t) for t in trials),
        "interrupted": sum(is_interrupted(t) for t in trials),
        "running": running,
        "waiting": sum(t.state == TrialState.WAITING for t in trials),
        "target": target,
        "feasible": len(feasible),
        "best_feasible": best,
        "elapsed_s": elapsed,
        "mean_trial_s": mean,
        "trial_cost_s": cost,
        "eta_s": None if cost is None else remaining * cost / workers,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
