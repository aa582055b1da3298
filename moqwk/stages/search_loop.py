"""``moqwk search``: NSGA-II over the four objectives, tail guardrails as constraints.

The baseline config runs first (trial 0); its tail errors set the guardrails. Every trial runs
the CV engine and records its objective values, two constraints (feasible when <= 0) and what
selection needs later (per-prompt QWK, out-of-fold prediction levels). The budget counts
finished trials and trials that failed for a reason of their own; a trial whose worker died is
retried. Everything Optuna-specific lives in :mod:`moqwk.study`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from moqwk.base import artifacts
from moqwk.base.progress import NO_PROGRESS, Progress
from moqwk.core.mapping import (
    FEATURE_PREFIX,
    PARAM_PREFIX,
    complete_params,
    model_params,
    spec_to_params,
)
from moqwk.engine import racing
from moqwk.engine.cv import CVEngine, TrialRun, usable_cores, xgb_threads
from moqwk.errors import ConfigError, MoqwkError, StorageError
from moqwk.run.artifact_records import ProgressRecord
from moqwk.run.layout import PROGRESS, STUDY_JSON, TRIALS_JSON, default_storage_url
from moqwk.run.record import (
    RunRecord,
    plan_study_run,
    read_run_record,
    record_config,
    write_run_record,
)
from moqwk.run.splits_file import splits_hash
from moqwk.run.workspace import Workspace
from moqwk.study.attrs import StudyAttr, TrialAttr
from moqwk.study.records import (
    CONSTRAINTS,
    RECORD_VERSION,
    feasible_front,
    is_counted,
    objective_names,
    progress,
    trial_records,
)
from moqwk.study.recovery import (
    assign_generation,
    fail_own_running,
    recover_interrupted,
    worker_id,
)
from moqwk.study.samplers import SAMPLERS, SamplerSpec, make_sampler, seed_sampler_for_trial
from moqwk.study.space import (
    contains,
    distributions,
    distributions_to_json,
    grid_size,
    grid_space,
    neighbours,
    suggest,
)
from moqwk.study.storage import create_or_load, load_study, open_storage

#: Constraint value recorded for a trial with no usable tail error (a failure): clearly infeasible.
INFEASIBLE = 1.0


@dataclass(frozen=True)
class SearchOptions:
    """How to run a search. The sampler and its seed come from the config (``--sampler`` and
    ``--seed`` override them there); ``n_trials`` None keeps a run's recorded budget."""

    n_trials: int | None = None
    timeout: float | None = None
    n_jobs: int | None = None  # None: search.n_jobs (whose auto is the usable cores)
    storage: str | None = None
    study_name: str = "moqwk"
    baseline_params: Mapping[str, Any] | None = None
    baseline_source: str = "config"
    extra_configs: tuple[Mapping[str, Any], ...] = ()


@dataclass
class SearchState:
    """What the live display and the progress file read after each trial."""

    run_dir: Path
    target: int
    names: tuple[str, ...]
    started: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)
    last: list[dict] = field(default_factory=list)
    #: Trials running in this process: number -> folds done, folds in all, start time.
    running: dict[int, dict[str, Any]] = field(default_factory=dict)
    racing: dict[str, Any] | None = None
    workers: int = 1


def _budget(trials: list[FrozenTrial]) -> tuple[int, int]:
    """Trials that used the budget, and trials running now (queued ones are not yet spent)."""
    counted = sum(is_counted(t) for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    return counted, running


def _guardrails(low: float, high: float, tolerance: float, trial: int | None) -> dict[str, Any]:
    return {"baseline_trial": trial, "low_tail_mae": low, "high_tail_mae": high,
            "tolerance": tolerance, "low_tail_limit": low + tolerance,
            "high_tail_limit": high + tolerance}


class Objective:
    """One trial: params from the space, CV on the cached folds, values and constraints.

    An error that will repeat for every trial (a baseline that fails, a space the stored study
    does not accept) is kept in ``fatal`` and stops the study; :func:`run_search` raises it.
    """

    def __init__(self, ws: Workspace, *, space: dict, fixed: Mapping[str, Any], n_jobs: int,
                 tolerance: float, target: int, sampler_seed: int | None = None,
                 progress: Progress = NO_PROGRESS) -> None:
        self.ws = ws
        self.space = space
        self.fixed = model_params(fixed)
        #: The ``mapping.*`` and ``features.*`` keys trial 0 scores with (today's scoring
        #: unless configured, or the pipeline ``--baseline-from`` names).
        self.baseline_pipeline = baseline_pipeline(ws.config, fixed)
        self.tolerance = tolerance
        self.objectives = ws.config.objectives
        self.nthread = xgb_threads(n_jobs, ws.config.model.nthread)
        self.target = target
        self.sampler_seed = sampler_seed  # set: reseed the sampler for each trial
        self.on_start: Callable[[optuna.Study], None] | None = None
        self.fatal: MoqwkError | None = None
        self._local = threading.local()
        self._store: Any = None
        self._predictions: Any = None
        self._guard: dict[str, Any] | None = None
        self._guard_lock = threading.Lock()
        self._progress = progress  # the first engine's fold features; trials report themselves
        self.racing: racing.RacingPlan | None = None
        #: Called after each fold of a trial: (trial number, folds done, folds in all).
        self.on_fold: Callable[[int, int, int], None] | None = None

    def engine(self) -> CVEngine:
        eng = getattr(self._local, "engine", None)
        if eng is None:
            first = self._store is None
            eng = self.ws.engine("prompt_holdout", nthread=self.nthread, store=self._store,
                                 predictions=self._predictions,
                                 progress=self._progress if first else NO_PROGRESS)
            self._store = eng.store  # threads share one feature store (and its memo)
            self._predictions = eng.predictions  # and one raw-prediction cache
            eng.prepare()
            self._local.engine = eng
        return eng

    def guardrails(self, study: optuna.Study) -> dict[str, Any]:
        """The baseline's tail errors plus tolerance.

        Normally read from the study (the baseline trial records them). While another worker is
        still running the baseline, this worker computes the same numbers itself: the baseline's
        CV is deterministic, so waiting could only ever save time, and it could deadlock.
        """
        g = study.user_attrs.get(StudyAttr.GUARDRAILS)
        if g:
            return g
        failed = [t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
                  if t.user_attrs.get(TrialAttr.ROLE) == "baseline"
                  and TrialAttr.FAILURE in t.user_attrs]
        if failed:
            raise ConfigError(f"the baseline trial {failed[0].number} failed "
                              f"({failed[0].user_attrs[TrialAttr.FAILURE]}); fix baseline.params")
        with self._guard_lock:
            if self._guard is None:
                m = self.engine().run({**self.fixed, **self.baseline_pipeline}).metrics
                self._guard = _guardrails(m.low_tail_mae, m.high_tail_mae, self.tolerance, None)
            return self._guard

    def _params(self, trial: optuna.Trial, role: str) -> dict[str, Any]:
        """Everything the trial scores with: the fixed params, the drawn ones and its mapping
        written out as ``mapping.*`` keys (the baseline's own mapping for the baseline)."""
        try:
            params = suggest(trial, self.space, self.fixed)
        except ValueError as e:  # the stored study knows these parameters with other ranges
            raise StorageError(
                f"trial {trial.number} cannot draw its parameters ({e}); the study was made "
                "with another search space: resume it with its own config, or start a new "
                "--run-dir") from None
        if role == "baseline":
            params.update({k: v for k, v in self.baseline_pipeline.items()
                           if k not in self.space})
        return complete_params(params, self.ws.config.mapping.spec)

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        study = trial.study
        trial.set_user_attr(TrialAttr.WORKER, worker_id())
        if self.sampler_seed is not None:  # before anything is drawn for this trial
            seed_sampler_for_trial(study.sampler, self.sampler_seed, trial.number)
        assign_generation(study, trial)
        role = trial.user_attrs.get(TrialAttr.ROLE, "sampled")
        ahead = [t for t in study.get_trials(deepcopy=False)
                 if t.number < trial.number and (is_counted(t) or t.state in
                                                 (TrialState.RUNNING, TrialState.WAITING))]
        if len(ahead) >= self.target:
            trial.set_user_attr(TrialAttr.SURPLUS, True)
            raise optuna.TrialPruned("budget already used by other workers")
        try:
            params = self._params(trial, role)
            trial.set_user_attr(TrialAttr.PARAMS, params)
            if self.on_start is not None:
                self.on_start(study)  # progress.json and the live table show it running
            run = self.engine().start(params)
            number = trial.number

            def fold_done() -> None:
                if self.on_fold is not None:
                    self.on_fold(number, run.done, run.n_fits)

            if self.on_fold is not None:
                self.on_fold(number, 0, run.n_fits)
            if role != "baseline":
                self._race(trial, run, fold_done)
            result = run.finish(on_fold=fold_done)
            m = result.metrics
            named = self.objectives.values(m)
            bad = [n for n, v in named.items() if not math.isfinite(v)]
            if bad:
                raise ValueError(f"undefined metric(s) {', '.join(bad)} (no eligible prompt or "
                                 "no essay in a tail?)")
            guard = (_guardrails(m.low_tail_mae, m.high_tail_mae, self.tolerance, trial.number)
                     if role == "baseline" else self.guardrails(study))
        except optuna.TrialPruned:
            raise
        except Exception as e:
            reason = f"{type(e).__name__}: {e}".strip()[:500]
            trial.set_user_attr(TrialAttr.FAILURE, reason)
            for name in CONSTRAINTS:
                trial.set_constraint(name, INFEASIBLE)
            if isinstance(e, MoqwkError):
                self.fatal = self.fatal or e
                study.stop()
            raise
        trial.set_constraint("low_tail_guardrail", m.low_tail_mae - guard["low_tail_limit"])
        trial.set_constraint("high_tail_guardrail", m.high_tail_mae - guard["high_tail_limit"])
        trial.set_user_attr(TrialAttr.PER_PROMPT_QWK, m.per_prompt_qwk())
        trial.set_user_attr(TrialAttr.METRICS, {
            "pooled_qwk": m.pooled_qwk, "low_tail_bias": m.low_tail_bias,
            "high_tail_bias": m.high_tail_bias, "worst_prompt": m.worst_prompt,
            "n_eligible_prompts": m.n_eligible_prompts, "timings": result.timings})
        es = self.ws.corpus.essay_scale
        n = len(self.ws.corpus)
        pred = result.oof["y_pred"].to_numpy(float).reshape(-1, n)
        trial.set_user_attr(TrialAttr.OOF_LEVEL, [es.level(row).tolist() for row in pred])
        trial.set_user_attr(TrialAttr.MAPPING, {"spec": result.mapping["spec"],
                                              "transductive": result.transductive,
                                              "fallback_share": result.mapping["fallback_share"]})
        if role == "baseline":
            study.set_user_attr(StudyAttr.GUARDRAILS, guard)
        return tuple(named[n] for n in self.objectives.names)


    def _race(self, trial: optuna.Trial, run: TrialRun, fold_done: Callable[[], None]) -> None:
        """Run the trial's folds rung by rung; after each, stop it (PRUNED, with the folds run,
        the rung and the reason) when :func:`moqwk.engine.racing.check` says it cannot reach the
        feasible front. A trial whose predictions are all cached costs nothing to finish."""
        p = self.racing
        if p is None or run.cached:
            return
        study = trial.study
        for i, rung in enumerate(p.rungs):
            run.advance(rung, on_fold=fold_done)
            trials = study.get_trials(deepcopy=False)
            front, numbers = feasible_front(trials, p.names)
            limits = {}
            g = study.user_attrs.get(StudyAttr.GUARDRAILS)
            if g:
                limits = {"low_tail_mae": g["low_tail_limit"],
                          "high_tail_mae": g["high_tail_limit"]}
            partial = racing.partial_of(run.partial_pred(), self.ws.corpus, self.ws.config)
            verdict = racing.check(p, partial, front=front, front_numbers=numbers, limits=limits)
            if verdict is not None:
                trial.set_user_attr(TrialAttr.PRUNED, {
                    "folds_run": run.done, "folds_total": run.n_fits, "rung": i + 1,
                    "rungs": list(p.rungs), **verdict.to_dict(), "timings": dict(run.timings)})
                raise optuna.TrialPruned(verdict.reason)


def baseline_pipeline(config: Any, baseline: Mapping[str, Any]) -> dict[str, Any]:
    """The ``mapping.*`` and ``features.*`` keys trial 0 scores with. A baseline that names its
    own (``--baseline-from``: a selected trial's params) keeps them, its mapping replacing
    ``baseline.mapping`` whole; otherwise ``baseline.mapping`` and the config's features."""
    mapping = {k: v for k, v in baseline.items() if k.startswith(PARAM_PREFIX)}
    features = {k: v for k, v in baseline.items() if k.startswith(FEATURE_PREFIX)}
    return {**(mapping or spec_to_params(config.baseline_mapping)), **features}


def _ensure_enqueued(study: optuna.Study, baseline: Mapping[str, Any], space: dict,
                     ws: Workspace, opts: SearchOptions, n_trials: int) -> None:
    """The first generation of a new study: the baseline, user configs, baseline neighbours."""
    full = {**baseline, **ws.config.features.params(space),  # the baseline's feature variant
            **baseline_pipeline(ws.config, baseline)}
    study.enqueue_trial({k: full[k] for k in space if k in full},
                        user_attrs={TrialAttr.ROLE: "baseline"})
    search = ws.config.search
    extra = list(opts.extra_configs) + list(search.initial_configs)
    for cfg in extra:
        study.enqueue_trial({k: cfg[k] for k in space if k in cfg},
                            user_attrs={TrialAttr.ROLE: "seed"})
    n_neigh = search.seed_neighbours
    if n_neigh is None:
        n_neigh = max(0, search.population_size // 2 - 1 - len(extra))
    n_neigh = min(n_neigh, max(0, n_trials - 1 - len(extra)))  # never queue past the budget
    if SAMPLERS[search.sampler].seeds_neighbours and n_neigh > 0:
        for cfg in neighbours(space, full, k=n_neigh, seed=ws.config.search_seed):
            study.enqueue_trial(cfg, user_attrs={TrialAttr.ROLE: "seed"})


def sampler_spec(ws: Workspace) -> SamplerSpec:
    s = ws.config.search
    return SamplerSpec(name=s.sampler, seed=ws.config.search_seed,
                       population_size=s.population_size, mutation_prob=s.mutation_prob,
                       crossover=s.crossover, crossover_prob=s.crossover_prob,
                       swapping_prob=s.swapping_prob)


def study_record(ws: Workspace, study: optuna.Study, *, url: str, spec: SamplerSpec,
                 space: dict, run: RunRecord, baseline: Mapping[str, Any],
                 engine_keys: list[str]) -> dict:
    """What ``optuna_study.json`` holds: how the study was made, hashes and versions."""
    obj = ws.config.objectives
    return {
        "study_name": study.study_name,
        "storage": artifacts.mask_url(url),
        "objectives": obj.to_dict(),
        "directions": dict(zip(obj.names, obj.directions, strict=True)),
        "constraints": list(CONSTRAINTS),
        "trial_record_version": RECORD_VERSION,  # of optuna_trials.json's rows (a bare list)
        "guardrails": study.user_attrs.get(StudyAttr.GUARDRAILS),
        "sampler": spec.to_dict(),
        "seeds": {"search": spec.seed, "cv": ws.config.cv.seed,
                  "features": ws.config.features.seed},
        "n_trials_target": run.n_trials,
        "run": run.to_dict(),
        "space": distributions_to_json(space),
        "baseline": {"params": dict(baseline), "source": run.baseline_source},
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
        prog = progress(trials, target=state.target, started=state.started, names=state.names,
                        workers=state.workers)
        prog["running_trials"] = [{"number": k, **v} for k, v in sorted(state.running.items())]
        prog["racing"] = state.racing
        artifacts.write_json(ws.run_dir / PROGRESS, ProgressRecord(**prog).to_dict())
        # the same snapshot as the counts; readers of the file get TrialRecords (read_trials),
        # the live view these rows
        recs = [r.to_dict() for r in trial_records(study, trials)]
        artifacts.write_json(ws.run_dir / TRIALS_JSON, recs)
        state.last = recs
        return prog


def _storage_url(ws: Workspace, opts: SearchOptions, old: RunRecord | None) -> str:
    if opts.storage:
        return opts.storage
    if old is not None and old.storage:
        if "***" in old.storage:
            raise StorageError(f"{ws.run_dir}'s study lives in {old.storage}; give --storage "
                               "with the full URL (its password is not recorded)")
        return old.storage
    return default_storage_url(ws.run_dir)


def run_search(ws: Workspace, opts: SearchOptions, *,
               on_update: Callable[[list[dict], dict], None] | None = None,
               progress: Progress = NO_PROGRESS) -> optuna.Study:
    """Create or resume the study and run trials until the budget is used.

    ``progress`` sees the fold features being built (before the first trial); each trial is
    reported through ``on_update`` as before.
    """
    if opts.n_trials is not None and opts.n_trials < 1:
        raise ConfigError(f"--n-trials must be >= 1, got {opts.n_trials}")
    n_jobs = opts.n_jobs if opts.n_jobs is not None else ws.config.search.n_jobs
    n_jobs = usable_cores() if n_jobs is None else n_jobs  # search.n_jobs: auto
    if n_jobs < 1:
        raise ConfigError(f"--n-jobs must be >= 1, got {n_jobs}")
    cfg = ws.config
    grid = dict(cfg.search.grid) if cfg.search.sampler == "grid" else None
    old = read_run_record(ws.run_dir)
    run = plan_study_run(
        ws.run_dir, cfg, kind="grid" if grid is not None else "search", n_trials=opts.n_trials,
        storage=opts.storage, study_name=opts.study_name, data_hash=ws.corpus.data_hash,
        baseline_source=opts.baseline_source,
        baseline_params=dict(opts.baseline_params) if opts.baseline_params else None)
    baseline = dict(run.baseline_params or cfg.baseline_params)
    if grid is not None:
        space = grid_space(grid, baseline)
        n_trials = 1 + grid_size(grid)  # the baseline, then every point
    else:
        space = distributions(cfg.search.space)
        n_trials = int(run.n_trials or cfg.search.n_trials)
        full = {**baseline, **cfg.features.params(space), **baseline_pipeline(cfg, baseline)}
        outside = [n for n in contains(space, full)
                   if n in full or not n.startswith(PARAM_PREFIX)]  # unused mapping params
        if outside:
            name = outside[0]
            value = full.get(name)
            if run.baseline_params:
                where = f"the --baseline-from pipeline's {name}={value!r}"
            elif name.startswith(PARAM_PREFIX):
                where = f"baseline.mapping ({name}={value!r})"
            else:
                where = f"baseline.params.{name}={value!r}"
            raise ConfigError(
                f"{where} lies outside search.space.{name} ({space[name]}); widen the space or "
                "change the baseline, since the baseline is trial 0 of the search")
    run = RunRecord.from_dict({**run.to_dict(), "n_trials": n_trials})
    url = _storage_url(ws, opts, old)
    storage = open_storage(url)
    spec = sampler_spec(ws)
    existing = load_study(storage, study_name=opts.study_name)
    sampler = make_sampler(spec, n_existing=len(existing.trials) if existing else 0, grid=grid)
    study, created = create_or_load(storage, study_name=opts.study_name, sampler=sampler,
                                    url=url, objectives=cfg.objectives)
    _check_same_run(study, ws)
    if created:
        study.set_user_attr(StudyAttr.CONFIG_HASH, cfg.study_hash())
        study.set_user_attr(StudyAttr.DATA_HASH, ws.corpus.data_hash)
        study.set_user_attr(StudyAttr.TARGET, n_trials)
        _ensure_enqueued(study, baseline, space, ws, opts, n_trials)
    record_config(ws.run_dir, cfg, replace_scoring_only=old is None or not old.is_study)
    write_run_record(ws.run_dir, run)
    recover_interrupted(study)

    state = SearchState(run_dir=ws.run_dir, target=n_trials, names=objective_names(study),
                        workers=n_jobs)
    objective = Objective(ws, space=space, fixed=baseline, n_jobs=n_jobs,
                          tolerance=cfg.tails.tolerance, target=n_trials,
                          sampler_seed=spec.seed, progress=progress)
    engine = objective.engine()  # build or load the fold features before any trial
    objective.racing = racing.plan(cfg, engine.n_fits, state.names) if grid is None else None
    state.racing = objective.racing.to_dict() if objective.racing is not None else None
    artifacts.write_json(ws.run_dir / STUDY_JSON, study_record(
        ws, study, url=url, spec=spec, space=space, run=run, baseline=baseline,
        engine_keys=engine.feature_keys))

    def update(st: optuna.Study) -> None:
        prog = write_outputs(ws, st, state)
        if on_update is not None:
            on_update(state.last, prog)

    objective.on_start = update

    def fold(number: int, done: int, total: int) -> None:
        with state.lock:
            info = state.running.setdefault(number, {"started": time.time()})
            info.update(folds_done=done, folds_total=total)
        if on_update is not None and done > 0:
            prog = write_outputs(ws, study, state)
            on_update(state.last, {**prog, "fold_event": {"trial": number, "done": done,
                                                          "total": total}})

    objective.on_fold = fold

    def callback(st: optuna.Study, t: FrozenTrial) -> None:
        with state.lock:
            state.running.pop(t.number, None)
        counted, running = _budget(st.get_trials(deepcopy=False))
        if counted + running >= n_trials:
            st.stop()
        update(st)

    counted, _ = _budget(study.get_trials(deepcopy=False))
    update(study)
    if counted < n_trials:
        running_before = {t.number for t in study.get_trials(
            deepcopy=False, states=(TrialState.RUNNING,))}
        try:
            study.optimize(objective, n_trials=None, timeout=opts.timeout, n_jobs=n_jobs,
                           callbacks=[callback], catch=(Exception,), gc_after_trial=False,
                           show_progress_bar=False)
        except KeyboardInterrupt:
            # the trial the Ctrl-C stopped is recorded as interrupted, not running
            fail_own_running(study, running_before)
            write_outputs(ws, study, state)
            raise
    write_outputs(ws, study, state)
    artifacts.write_json(ws.run_dir / STUDY_JSON, study_record(
        ws, study, url=url, spec=spec, space=space, run=run, baseline=baseline,
        engine_keys=engine.feature_keys))
    if objective.fatal is not None:
        raise objective.fatal
    return study


def _check_same_run(study: optuna.Study, ws: Workspace) -> None:
    data_hash = study.user_attrs.get(StudyAttr.DATA_HASH)
    if data_hash is not None and data_hash != ws.corpus.data_hash:
        raise StorageError(f"study {study.study_name!r} was run on other data (data hash "
                           f"{data_hash[:12]}…); use another --study-name or run directory")
    cfg_hash = study.user_attrs.get(StudyAttr.CONFIG_HASH)
    if cfg_hash is not None and cfg_hash != ws.config.study_hash():
        raise StorageError(f"study {study.study_name!r} was run with another config (hash "
                           f"{cfg_hash[:12]}…); resume it with the config it was made with "
                           "(drop --config to use the run directory's), or use another "
                           "--study-name")
