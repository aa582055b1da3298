"""A read-only view of a study's storage for optuna-dashboard, with constraints it can show.

optuna-dashboard (0.21) shows a trial's constraints, and greys out infeasible trials, from the
trial system attribute ``constraints``: a list of floats (``_serializer.serialize_frozen_trial``
reads ``trial.system_attrs.get("constraints", [])``). Optuna 5's ``Trial.set_constraint(name,
value)`` stores each constraint under its own key, ``constraints:<name>``, so the dashboard saw
no constraint on any moqwk trial.

The fix lives here, on the way to the dashboard, not in the study: :class:`DashboardStorage`
wraps the run's storage and hands the dashboard each trial with the old-style list added, built
from Optuna's public ``FrozenTrial.constraints``. Writing that list into the study instead was
rejected: Optuna 5 reads both formats and merges them, so every trial's ``constraints`` would then
hold each value twice (``{"0": .., "1": .., "low_tail_guardrail": .., ...}``) for Optuna, the
samplers and moqwk's own artifacts; and finished trials cannot be updated, so existing runs would
stay blank. Only public interfaces are used (``BaseStorage``, ``FrozenTrial``). See
docs/decisions/0003.

The view also shows each constraint by name as a user attribute (``constraint:<name>``, and
``constraint:feasible``), since the dashboard's trial page lists no constraint value itself.
The view is read-only: the dashboard's buttons that write (notes, rename, delete study, tell)
are refused, so looking at a run cannot change it.

Serving it (optuna-dashboard's WSGI app, the URL printed with its password masked) is the
command's job: :mod:`moqwk.cli.dashboard`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from moqwk.base.artifacts import mask_secrets, mask_url
from moqwk.errors import RunDirError, StorageError
from moqwk.study.records import CONSTRAINTS

#: The trial system attribute optuna-dashboard reads constraints from (a list of floats).
DASHBOARD_CONSTRAINTS_KEY = "constraints"
#: Prefix of the user attributes the view adds: one per constraint, and ``constraint:feasible``.
USER_ATTR_PREFIX = "constraint:"


def constraint_list(constraints: Mapping[str, float],
                    order: Sequence[str] = CONSTRAINTS) -> list[float]:
    """Named constraint values as the list optuna-dashboard reads: names in ``order`` first,
    then any others by name (so index i means the same constraint on every trial)."""
    return [float(constraints[n]) for n in constraint_names(constraints, order)]


def constraint_names(constraints: Iterable[str], order: Sequence[str] = CONSTRAINTS) -> list[str]:
    """The names behind :func:`constraint_list`'s indices, in the same order."""
    present = set(constraints)
    return [n for n in order if n in present] + sorted(n for n in present if n not in order)


class ReadOnlyError(PermissionError):
    """A write the dashboard asked for; optuna-dashboard answers it with an error response."""


def _refuse(name: str) -> Callable[..., Any]:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise self.refusal(f"moqwk dashboard is read-only: {name} refused (the study is a "
                           "run's record; use optuna-dashboard directly to edit it)")
    method.__name__ = name
    return method


class DashboardStorage(optuna.storages.BaseStorage):
    """A read-only view of ``inner`` whose trials carry the dashboard's constraint list.

    ``refusal`` builds the error a write raises; the server sets one its web framework answers
    as HTTP 403 (optuna-dashboard answers any other error with a 500 and logs a traceback).
    """

    refusal: Callable[[str], Exception] = ReadOnlyError

    def __init__(self, inner: optuna.storages.BaseStorage,
                 order: Sequence[str] = CONSTRAINTS) -> None:
        self.inner = inner
        self.order = tuple(order)

    def with_list(self, t: FrozenTrial) -> FrozenTrial:
        named = t.constraints
        if not named:
            return t
        out = copy.copy(t)
        if DASHBOARD_CONSTRAINTS_KEY not in t.system_attrs:
            out.system_attrs = {**t.system_attrs,
                                DASHBOARD_CONSTRAINTS_KEY: constraint_list(named, self.order)}
        # 0.21 uses the list for feasibility (infeasible trials grey in its plots) but shows no
        # constraint value on a trial's page; as user attributes, by name, the values appear
        # there and as sortable columns of its trial table.
        out.user_attrs = {**t.user_attrs,
                          **{f"{USER_ATTR_PREFIX}{n}": float(v) for n, v in named.items()},
                          f"{USER_ATTR_PREFIX}feasible": all(v <= 0 for v in named.values())}
        return out

    # Reads: trials get the list; everything else is passed through.
    def get_trial(self, trial_id: int) -> FrozenTrial:
        return self.with_list(self.inner.get_trial(trial_id))

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        return [self.with_list(t) for t in
                self.inner.get_all_trials(study_id, deepcopy=deepcopy, states=states)]

    def get_all_studies(self) -> list[Any]:
        return self.inner.get_all_studies()

    def get_study_directions(self, study_id: int) -> list[Any]:
        return self.inner.get_study_directions(study_id)

    def get_study_id_from_name(self, study_name: str) -> int:
        return self.inner.get_study_id_from_name(study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        return self.inner.get_study_name_from_id(study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return self.inner.get_study_system_attrs(study_id)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self.inner.get_study_user_attrs(study_id)

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        return self.inner.get_trial_id_from_study_id_trial_number(study_id, trial_number)

    def get_n_trials(self, study_id: int, state: Any = None) -> int:
        return self.inner.get_n_trials(study_id, state)

    # Writes: refused.
    create_new_study = _refuse("create_new_study")
    delete_study = _refuse("delete_study")
    create_new_trial = _refuse("create_new_trial")
    set_study_system_attr = _refuse("set_study_system_attr")
    set_study_user_attr = _refuse("set_study_user_attr")
    set_trial_param = _refuse("set_trial_param")
    set_trial_state_values = _refuse("set_trial_state_values")
    set_trial_intermediate_value = _refuse("set_trial_intermediate_value")
    set_trial_user_attr = _refuse("set_trial_user_attr")
    set_trial_system_attr = _refuse("set_trial_system_attr")


def open_readonly(url: str) -> DashboardStorage:
    """The study storage at ``url`` as the dashboard should see it: read-only, constraint lists
    added. No table is created; a storage without a study is refused."""
    from moqwk.study.storage import backend_for

    masked = mask_url(url)
    backend = backend_for(url)  # not a URL: one StorageError with the forms
    try:
        inner = backend.open_readonly(url)
        studies = inner.get_all_studies()
    except StorageError:
        raise
    except Exception as e:  # noqa: BLE001 - SQLAlchemy and driver errors vary widely
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StorageError(f"cannot read storage {masked}: {mask_secrets(reason)}; check the "
                           "URL, that the server is up and the credentials") from None
    if not studies:
        raise RunDirError(f"no study in {masked}; run `moqwk search` first")
    return DashboardStorage(inner)
