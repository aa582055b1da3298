"""Recovery of interrupted trials: a trial whose worker died is failed and queued once more.

Beside the heartbeat it relies on (set in :func:`moqwk.study.storage.open_storage`), as Optuna
keeps ``fail_stale_trials`` and ``RetryFailedTrialCallback`` with its storages.
"""

from __future__ import annotations

import contextlib
import os
import socket

import optuna
from optuna.trial import TrialState

from moqwk.study.attrs import TrialAttr
from moqwk.study.records import is_interrupted


def worker_id() -> str:
    """``host:pid`` of this process, recorded on every trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_interrupted(study: optuna.Study) -> list[int]:
    """Fail trials whose worker died and enqueue each once more with the same params and role.

    A dead worker on this host is seen at once (its pid is gone); on another host, by Optuna's
    heartbeat once its grace period has passed. Returns the numbers of the trials re-queued.
    """
    # Private: Study._storage and FrozenTrial._trial_id. Optuna has no public API to fail a
    # RUNNING trial of another process (fail_stale_trials waits for the heartbeat's grace period).
    storage = study._storage
    host = socket.gethostname()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get(TrialAttr.WORKER, "")
        h, _, pid = worker.rpartition(":")
        if h == host and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            with contextlib.suppress(Exception):  # another worker may have done it first
                storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    with contextlib.suppress(Exception):  # storages without heartbeat support
        optuna.storages.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get(TrialAttr.RETRY_OF) for t in trials}
    enqueued = []
    for t in trials:
        if not is_interrupted(t) or t.number in retried:
            continue
        # An enqueued trial (baseline, seed, retry) is retried with the params it was given even
        # if it died before drawing them; a sampled one only once all its params were drawn
        # (TrialAttr.PARAMS): a partial set would make the "retry" another config.
        params = t.system_attrs.get("fixed_params") or (
            t.params if TrialAttr.PARAMS in t.user_attrs else None)
        if params:
            study.enqueue_trial(dict(params), user_attrs={
                TrialAttr.ROLE: t.user_attrs.get(TrialAttr.ROLE, "sampled"),
                TrialAttr.RETRY_OF: t.number}, skip_if_exists=False)
            enqueued.append(t.number)
    return enqueued


def fail_own_running(study: optuna.Study, running_before: set[int]) -> list[int]:
    """After a Ctrl-C: fail the trials this process left RUNNING, so the next start retries them.

    Optuna fails a trial interrupted inside its objective; a Ctrl-C between Optuna creating the
    trial and the objective starting left it RUNNING with no worker recorded, counted as running
    forever (its grid point was never run). Ours: recorded with this worker, or with no worker
    and not already running when this process started its trials (``running_before``).

    Private: Study._storage and FrozenTrial._trial_id, as in :func:`recover_interrupted`.
    """
    mine = worker_id()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get(TrialAttr.WORKER)
        if worker == mine or (worker is None and t.number not in running_before):
            with contextlib.suppress(Exception):
                study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
                failed.append(t.number)
    return failed


def assign_generation(study: optuna.Study, trial: optuna.Trial) -> None:
    """Give an NSGA-II trial its generation now, even one whose params were all queued.

    Optuna gives queued trials whose params are all fixed (the baseline, its neighbours,
    retries) no generation, so they would never become parents; moqwk assigns one as for any
    other trial, so the seeded first generation can breed.

    Private: Study._storage and Trial._trial_id, to read the trial as a FrozenTrial. Optuna has
    no public way to get the FrozenTrial of a running ``Trial``.
    """
    if isinstance(study.sampler, optuna.samplers.NSGAIISampler):
        study.sampler.get_trial_generation(study, study._storage.get_trial(trial._trial_id))
