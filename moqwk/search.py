"""``moqwk search``: NSGA-II over the four objectives, tail guardrails as constraints.

The baseline config runs first (trial 0); its tail errors set the guardrails. Every trial runs
the CV engine and records four values, two constraints (feasible when <= 0) and what selection
needs later (per-prompt QWK, out-of-fold prediction levels). The budget counts finished trials
and trials that failed for a reason of their own; a trial whose worker died is retried.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from moqwk import artifacts
from moqwk import study as study_mod
from moqwk.core.metrics import OBJECTIVES
from moqwk.cv import CVEngine, xgb_threads
from moqwk.errors import ConfigError, StorageError
from moqwk.runs import Workspace
from moqwk.space import contains, grid_size, neighbours, parse_grid, parse_space, suggest
from moqwk.trials_io import CONSTRAINTS, is_counted, is_interrupted, progress, records

PROGRESS = "progress.json"
TRIALS_JSON = "artifacts/optuna_trials.json"
STUDY_JSON = "artifacts/optuna_study.json"
DEFAULT_N_TRIALS = 40
#: Constraint value recorded for a trial with no usable tail error (a failure): clearly infeasible.
INFEASIBLE = 1.0


@dataclass(frozen=True)
class SearchOptions:
    n_trials: int = DEFAULT_N_TRIALS
    timeout: float | None = None
    n_jobs: int = 1
    storage: str | None = None
    study_name: str = "moqwk"
    sampler: str | None = None
    baseline_params: Mapping[str, Any] | None = None
    baseline_source: str = "config"
    extra_configs: tuple[Mapping[str, Any], ...] = ()


@dataclass
class SearchState:
    """What the live display and the progress file read after each trial."""

    run_dir: Path
    target: int
    started: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)
    last: list[dict] = field(default_factory=list)


def _worker_id() -> str:
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
    heartbeat once its grace period has passed.
    """
    storage = study._storage
    host = socket.gethostname()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("moqwk_worker", "")
        h, _, pid = worker.rpartition(":")
        if h == host and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            try:
                storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            except Exception:  # noqa: BLE001 - another worker may have done it first
                pass
    try:
        optuna.storages.fail_stale_trials(study)
    except Exception:  # noqa: BLE001 - storages without heartbeat support
        pass
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("moqwk_retry_of") for t in trials}
    enqueued = []
    for t in trials:
        if not is_interrupted(t) or t.number in retried:
            continue
        # An enqueued trial (baseline, seed, retry) is retried with the params it was given even
        # if it died before drawing them; a sampled one only once all its params were drawn
        # (moqwk_params): a partial set would make the "retry" another config.
        params = t.system_attrs.get("fixed_params") or (
            t.params if "moqwk_params" in t.user_attrs else None)
        if params:
            study.enqueue_trial(dict(params), user_attrs={
                "moqwk_role": t.user_attrs.get("moqwk_role", "sampled"),
                "moqwk_retry_of": t.number}, skip_if_exists=False)
            enqueued.append(t.number)
    return enqueued


def _budget(trials: list[FrozenTrial]) -> tuple[int, int]:
    """Trials that used the budget, and trials running now (queued ones are not yet spent)."""
    counted = sum(is_counted(t) for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    return counted, running


class Objective:
    """One trial: params from the space, CV on the cached folds, values and constraints."""

    def __init__(self, ws: Workspace, *, space: dict, fixed: Mapping[str, Any], n_jobs: int,
                 tolerance: float) -> None:
        self.ws = ws
        self.space = space
        self.fixed = dict(fixed)
        self.tolerance = tolerance
        self.nthread = xgb_threads(n_jobs, ws.config.model.nthread)
        self._local = threading.local()
        self._store: Any = None
        self._guard: dict[str, Any] | None = None
        self._guard_lock = threading.Lock()
        self.target = 0
        self.on_start: Callable[[optuna.Study], None] | None = None
        self.sampler_seed: int | None = None  # set: reseed the sampler for each trial

    def engine(self) -> CVEngine:
        eng = getattr(self._local, "engine", None)
        if eng is None:
            eng = self.ws.engine("prompt_holdout", nthread=self.nthread, store=self._store)
            self._store = eng.store  # threads share one feature store (and its memo)
            eng.prepare()
            self._local.engine = eng
        return eng

    def guardrails(self, study: optuna.Study) -> dict[str, Any]:
        """The baseline's tail errors plus tolerance.

        Normally read from the study (the baseline trial records them). While another worker is
        still running the baseline, this worker computes the same numbers itself: the baseline's
        CV is deterministic, so waiting could only ever save time, and it could deadlock.
        """
        g = study.user_attrs.get("moqwk_guardrails")
        if g:
            return g
        failed = [t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
                  if t.user_attrs.get("moqwk_role") == "baseline"
                  and "moqwk_failure" in t.user_attrs]
        if failed:
            raise ConfigError(f"the baseline trial {failed[0].number} failed "
                              f"({failed[0].user_attrs['moqwk_failure']}); fix baseline.params")
        with self._guard_lock:
            if self._guard is None:
                m = self.engine().run(self.fixed).metrics
                self._guard = {"baseline_trial": None, "low_tail_mae": m.low_tail_mae,
                               "high_tail_mae": m.high_tail_mae, "tolerance": self.tolerance,
                               "low_tail_limit": m.low_tail_mae + self.tolerance,
                               "high_tail_limit": m.high_tail_mae + self.tolerance}
            return self._guard

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        study = trial.study
        trial.set_user_attr("moqwk_worker", _worker_id())
        if self.sampler_seed is not None:  # before anything is drawn for this trial
            study_mod.seed_sampler_for_trial(study.sampler, self.sampler_seed, trial.number)
        if isinstance(study.sampler, optuna.samplers.NSGAIISampler):
            # Optuna gives queued trials whose params are all fixed (the baseline, its
            # neighbours, retries) no generation, so they would never become parents. Assign
            # one as for any other trial, so the seeded first generation can breed.
            study.sampler.get_trial_generation(study, study._storage.get_trial(trial._trial_id))
        role = trial.user_attrs.get("moqwk_role", "sampled")
        ahead = [t for t in study.get_trials(deepcopy=False)
                 if t.number < trial.number and (is_counted(t) or t.state in
                                                 (TrialState.RUNNING, TrialState.WAITING))]
        if len(ahead) >= self.target:
            trial.set_user_attr("moqwk_surplus", True)
            raise optuna.TrialPruned("budget already used by other workers")
        try:
            params = suggest(trial, self.space, self.fixed)
            trial.set_user_attr("moqwk_params", params)
            if self.on_start is not None:
                self.on_start(study)  # progress.json and the live table show it running
            result = self.engine().run(params)
            m = result.metrics
            values = tuple(float(getattr(m, name)) for name in OBJECTIVES)
            if not all(math.isfinite(v) for v in values):
                bad = [n for n, v in zip(OBJECTIVES, values, strict=True) if not math.isfinite(v)]
                raise ValueError(f"undefined metric(s) {', '.join(bad)} (no eligible prompt or "
                                 "no essay in a tail?)")
        except Exception as e:
            reason = f"{type(e).__name__}: {e}".strip()[:500]
            trial.set_user_attr("moqwk_failure", reason)
            for name in CONSTRAINTS:
                trial.set_constraint(name, INFEASIBLE)
            raise
        if role == "baseline":
            guard = {"baseline_trial": trial.number,
                     "low_tail_mae": m.low_tail_mae, "high_tail_mae": m.high_tail_mae,
                     "tolerance": self.tolerance,
                     "low_tail_limit": m.low_tail_mae + self.tolerance,
                     "high_tail_limit": m.high_tail_mae + self.tolerance}
        else:
            guard = self.guardrails(study)
        trial.set_constraint("low_tail_guardrail", m.low_tail_mae - guard["low_tail_limit"])
        trial.set_constraint("high_tail_guardrail", m.high_tail_mae - guard["high_tail_limit"])
        trial.set_user_attr("per_prompt_qwk", m.per_prompt_qwk())
        trial.set_user_attr("moqwk_metrics", {
            "pooled_qwk": m.pooled_qwk, "low_tail_bias": m.low_tail_bias,
            "high_tail_bias": m.high_tail_bias, "worst_prompt": m.worst_prompt,
            "n_eligible_prompts": m.n_eligible_prompts, "timings": result.timings})
        es = self.ws.corpus.essay_scale
        n = len(self.ws.corpus)
        pred = result.oof["y_pred"].to_numpy(float).reshape(-1, n)
        trial.set_user_attr("oof_level", [es.level(row).tolist() for row in pred])
        if role == "baseline":
            study.set_user_attr("moqwk_guardrails", guard)
        return values


def _ensure_enqueued(study: optuna.Study, created: bool, baseline: Mapping[str, Any],
                     space: dict, ws: Workspace, opts: SearchOptions) -> None:
    """The first generation: the baseline, user configs, and neighbours of the baseline."""
    if not created:
        return
    study.enqueue_trial({k: baseline[k] for k in space if k in baseline},
                        user_attrs={"moqwk_role": "baseline"})
    search = ws.config.search
    extra = list(opts.extra_configs) + list(search.get("initial_configs") or [])
    for cfg in extra:
        study.enqueue_trial({k: cfg[k] for k in space if k in cfg},
                            user_attrs={"moqwk_role": "seed"})
    pop = int(search.get("population_size", 10))
    n_neigh = int(search.get("seed_neighbours", max(0, pop // 2 - 1 - len(extra))))
    if n_neigh < 0:
        raise ConfigError(f"search.seed_neighbours: must be >= 0, got {n_neigh}")
    n_neigh = min(n_neigh, max(0, opts.n_trials - 1 - len(extra)))  # never queue past the budget
    if (opts.sampler or search.get("sampler", "nsga2")) == "nsga2" and n_neigh > 0:
        seed = int(search.get("seed", ws.config.cv.seed))
        for cfg in neighbours(space, baseline, k=n_neigh, seed=seed):
            study.enqueue_trial(cfg, user_attrs={"moqwk_role": "seed"})


def study_record(ws: Workspace, study: optuna.Study, *, url: str, spec: Any, space: dict,
                 opts: SearchOptions, baseline: Mapping[str, Any], engine_keys: list[str]) -> dict:
    from moqwk.splits_io import splits_hash

    return {
        "study_name": study.study_name,
        "storage": artifacts.mask_url(url),
        "directions": {n: d.name.lower() for n, d in zip(OBJECTIVES, study.directions,
                                                          strict=True)},
        "constraints": list(CONSTRAINTS),
        "guardrails": study.user_attrs.get("moqwk_guardrails"),
        "sampler": spec.to_dict(),
        "seeds": {"search": spec.seed, "cv": ws.config.cv.seed,
                  "features": ws.config.features.seed},
        "n_trials_target": opts.n_trials,
        "space": {k: json.loads(v) for k, v in study_mod.distributions_of(space).items()},
        "baseline": {"params": dict(baseline), "source": opts.baseline_source},
        "config_hash": ws.config.study_hash(),
        "data_hash": ws.corpus.data_hash,
        "splits_hash": splits_hash(ws.run_dir),
        "feature_store_keys": engine_keys,
        "versions": artifacts.versions(),
    }


def write_outputs(ws: Workspace, study: optuna.Study, state: SearchState) -> dict:
    """``progress.json`` and ``optuna_trials.json``, rewritten atomically."""
    with state.lock:
        trials = study.get_trials(deepcopy=False)
        prog = progress(trials, target=state.target, started=state.started)
        artifacts.write_json(ws.run_dir / PROGRESS, prog)
        recs = records(study)
        artifacts.write_json(ws.run_dir / TRIALS_JSON, recs)
        state.last = recs
        return prog


def run_search(ws: Workspace, opts: SearchOptions, *,
               on_update: Callable[[list[dict], dict], None] | None = None) -> optuna.Study:
    """Create or resume the study and run trials until the budget is used."""
    if opts.n_trials < 1:
        raise ConfigError(f"--n-trials must be >= 1, got {opts.n_trials}")
    if opts.n_jobs < 1:
        raise ConfigError(f"--n-jobs must be >= 1, got {opts.n_jobs}")
    cfg = ws.config
    baseline = dict(opts.baseline_params or cfg.baseline_params)
    sampler_name = opts.sampler or cfg.search.get("sampler", "nsga2")
    grid = None
    if sampler_name == "grid":
        grid, space = parse_grid(cfg.search.get("grid"), baseline)
        opts = replace(opts, n_trials=1 + grid_size(grid))  # the baseline, then every point
    else:
        space = parse_space(cfg.search.get("space"))
    outside = contains(space, baseline)
    if outside and grid is None:
        name = outside[0]
        raise ConfigError(
            f"baseline.params.{name}={baseline.get(name)!r} lies outside search.space.{name} "
            f"({space[name]}); widen the space or change the baseline, since the baseline is "
            "trial 0 of the search")
    url = opts.storage or study_mod.default_storage_url(ws.run_dir)
    storage = study_mod.open_storage(url)
    spec = study_mod.sampler_spec(cfg.search, seed=cfg.cv.seed, name=opts.sampler)
    try:
        existing = optuna.load_study(study_name=opts.study_name, storage=storage,
                                     sampler=optuna.samplers.RandomSampler())
        n_existing = len(existing.trials)
    except KeyError:
        n_existing = 0
    sampler = study_mod.make_sampler(spec, n_existing=n_existing, grid=grid)
    study, created = study_mod.create_or_load(storage, study_name=opts.study_name,
                                              sampler=sampler, url=url)
    _check_same_run(study, ws)
    if created:
        study.set_user_attr("moqwk_config_hash", ws.config.study_hash())
        study.set_user_attr("moqwk_data_hash", ws.corpus.data_hash)
        study.set_user_attr("moqwk_target", opts.n_trials)
    _ensure_enqueued(study, created, baseline, space, ws, opts)
    recover_interrupted(study)

    state = SearchState(run_dir=ws.run_dir, target=opts.n_trials)
    objective = Objective(ws, space=space, fixed=baseline, n_jobs=opts.n_jobs,
                          tolerance=cfg.tails.tolerance)
    objective.target = opts.n_trials
    objective.sampler_seed = spec.seed
    engine = objective.engine()  # build or load the fold features before any trial
    artifacts.write_json(ws.run_dir / STUDY_JSON, study_record(
        ws, study, url=url, spec=spec, space=space, opts=opts, baseline=baseline,
        engine_keys=engine.feature_keys))

    def started(st: optuna.Study) -> None:
        prog = write_outputs(ws, st, state)
        if on_update is not None:
            on_update(state.last, prog)

    objective.on_start = started

    def callback(st: optuna.Study, _t: FrozenTrial) -> None:
        trials = st.get_trials(deepcopy=False)
        counted, running = _budget(trials)
        if counted + running >= opts.n_trials:
            st.stop()
        prog = write_outputs(ws, st, state)
        if on_update is not None:
            on_update(state.last, prog)

    counted, _ = _budget(study.get_trials(deepcopy=False))
    prog = write_outputs(ws, study, state)
    if on_update is not None:
        on_update(state.last, prog)
    if counted < opts.n_trials:
        study.optimize(objective, n_trials=None, timeout=opts.timeout, n_jobs=opts.n_jobs,
                       callbacks=[callback], catch=(Exception,), gc_after_trial=False,
                       show_progress_bar=False)
    write_outputs(ws, study, state)
    artifacts.write_json(ws.run_dir / STUDY_JSON, study_record(
        ws, study, url=url, spec=spec, space=space, opts=opts, baseline=baseline,
        engine_keys=engine.feature_keys))
    return study


def _check_same_run(study: optuna.Study, ws: Workspace) -> None:
    data_hash = study.user_attrs.get("moqwk_data_hash")
    if data_hash is not None and data_hash != ws.corpus.data_hash:
        raise StorageError(f"study {study.study_name!r} was run on other data (data hash "
                          f"{data_hash[:12]}…); use another --study-name or run directory")
    cfg_hash = study.user_attrs.get("moqwk_config_hash")
    if cfg_hash is not None and cfg_hash != ws.config.study_hash():
        raise StorageError(f"study {study.study_name!r} was run with another config (hash "
                          f"{cfg_hash[:12]}…); resume with the same config or use another "
                          "--study-name")
