"""Benchmark: the cost of one moqwk trial against raw XGBoost, and trials per minute by workers.

On the ELLIPSE corpus, with prompt-holdout folds whose features are already cached, in one run:

1. Overhead: ``CVEngine.run(params)`` against a bare loop of ``xgboost.train`` + ``predict`` on
   the very same fold DMatrix objects, with the same booster params and rounds
   (``moqwk.engine.cv.booster_params``). The two alternate within each repetition; the median ratio
   moqwk / raw is reported per param config (goal: <= 1.05). The fixed per-trial cost (out-of-fold
   frame and metrics) is also timed on its own.
2. Throughput: real searches with a small budget, 1 worker (2 XGBoost threads) against 2 workers
   (1 thread each): ``run_search`` in-process with ``n_jobs`` 1 and 2, and the ``moqwk search``
   CLI as 1 process and as 2 processes sharing one SQLite storage (``model.nthread: 1``, and
   optionally with the default thread count, i.e. oversubscribed). Trials per minute over the
   whole wall time and over the span from the first trial start to the last trial end. The
   NSGA-II population is twice the budget, so every trial is the baseline or one of its enqueued
   neighbours and every mode runs the same param sets.
3. Bookkeeping: a real ``run_search`` whose CV returns a stored result at once, i.e. the cost per
   trial of the sampler, the SQLite storage, moqwk's trial attributes and the JSON callbacks.
4. Race probe: the same stubbed search with ``n_jobs=2``, several times, counting failures (two
   threads can take the same enqueued trial on SQLite; see ``race_probe``). A real search that
   fails is recorded and retried from scratch (``--max-attempts``).

``moqwk/__init__.py`` sets ``OMP_WAIT_POLICY=PASSIVE`` (unless already set) before XGBoost loads;
the benchmark imports moqwk first, so the raw XGBoost reference runs under the same policy.
Not part of the test suite::

    python benchmarks/trial_throughput.py [--reps 3] [--n-trials 8] [--cache-dir DIR] \
        [--out benchmarks/results/trial_throughput.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import moqwk  # noqa: E402,F401,I001  - first: sets OMP_WAIT_POLICY before xgboost loads

import numpy as np  # noqa: E402
import optuna  # noqa: E402
import xgboost as xgb  # noqa: E402
import yaml  # noqa: E402

from moqwk.base import artifacts  # noqa: E402
from moqwk.config import parse_config  # noqa: E402
from moqwk.core.mapping import spec_from_params  # noqa: E402
from moqwk.engine.cv import CVEngine, _Fold, booster_params  # noqa: E402
from moqwk.run.workspace import Workspace  # noqa: E402
from moqwk.stages.search_loop import Objective, SearchOptions, run_search  # noqa: E402
from moqwk.study.records import is_counted, records  # noqa: E402

DEFAULT_CSV = "../shared/data/ellipse/ELLIPSE_Final_github_test.csv"
SCALE = {"kind": "global", "min": 1.0, "max": 5.0, "step": 0.5}
DATA_COLUMNS = {"id_column": "text_id_kaggle", "text_column": "full_text",
                "prompt_column": "prompt", "score_column": "Overall"}


# --------------------------------------------------------------------------- machine load


class LoadMonitor:
    """Samples the 1-minute load average in the background, and splits machine CPU time into
    this benchmark's (itself and its finished child processes) and everyone else's."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - self._t0, os.getloadavg()[0]))
            self._stop.wait(self.every)

    def start(self) -> LoadMonitor:
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        loads = [v for _, v in self.samples]
        return {"n_samples": len(loads), "every_s": self.every, "min": min(loads),
                "median": statistics.median(loads), "max": max(loads)}


def _machine_busy_s() -> float | None:
    """Busy CPU-seconds of the whole machine since boot (all cores), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    busy = sum(vals[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Section:
    """Wall time, load averages and CPU split of one part of the benchmark."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.info: dict[str, Any] = {}

    def __enter__(self) -> Section:
        self._wall = time.perf_counter()
        self._busy = _machine_busy_s()
        self._own = _own_cpu_s()
        self.info["load_average_start"] = os.getloadavg()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._wall
        busy, own = _machine_busy_s(), _own_cpu_s() - self._own
        self.info.update(wall_s=wall, load_average_end=os.getloadavg()[0], own_cpu_s=own)
        if busy is not None and self._busy is not None:
            other = max(0.0, busy - self._busy - own)
            # CPU-seconds of other processes per wall second: 1.0 = one core busy elsewhere
            self.info.update(machine_busy_cpu_s=busy - self._busy, other_cpu_s=other,
                             other_cores_busy=other / wall if wall > 0 else None)


# --------------------------------------------------------------------------- configs


def raw_config(csv: Path, *, n_folds: int, nthread: int = 0, baseline: dict | None = None,
               search: dict | None = None) -> dict[str, Any]:
    return {
        "data": {"path": str(csv), **DATA_COLUMNS},
        "scale": dict(SCALE),
        "cv": {"n_folds": n_folds, "repeats": 1, "seed": 42},
        "model": {"nthread": nthread},
        # one XGBoost fit per fold, like the reference: a fitted stretch's inner cross-fits
        # (about 3x) are costed in score_mapping.py
        "mapping": {"method": "round"},
        "baseline": {"params": dict(baseline or {})},
        "search": dict(search or {}),
    }


def overhead_param_sets(baseline: dict[str, Any], deep_rounds: int) -> dict[str, dict[str, Any]]:
    rounds = baseline["n_estimators"]
    return {
        f"baseline (depth 4, {rounds} rounds)": dict(baseline),
        f"deep (depth 8, mcw 1, {deep_rounds} rounds)": {
            **baseline, "max_depth": 8, "min_child_weight": 1.0, "n_estimators": deep_rounds},
        f"shallow (depth 2, {rounds} rounds)": {**baseline, "max_depth": 2},
        "short (depth 4, 50 rounds)": {**baseline, "n_estimators": 50},
    }


# --------------------------------------------------------------------------- part 1: overhead


def raw_trial(folds: list[_Fold], bp: dict[str, Any],
              rounds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """What a script would do on the same prepared folds: train and predict, nothing else."""
    out = []
    for f in folds:
        booster = xgb.train(bp, f.dtrain, num_boost_round=rounds)
        out.append((f.val, booster.predict(f.dval)))
    return out


def measure_overhead(engine: CVEngine, params_sets: dict[str, dict], reps: int) -> dict[str, Any]:
    folds = engine.prepare()
    cfg = engine.config
    es = engine.corpus.essay_scale
    # warm-up: the first train on a DMatrix builds its histogram index, once for all params
    first = next(iter(params_sets.values()))
    bp, _ = booster_params(first, objective=cfg.model.objective, nthread=engine.nthread,
                           seed=cfg.cv.seed)
    t0 = time.perf_counter()
    raw_trial(folds, bp, 5)
    print(f"  warm-up (5 rounds per fold): {time.perf_counter() - t0:.2f}s", flush=True)
    out: dict[str, Any] = {}
    for name, params in params_sets.items():
        bp, rounds = booster_params(params, objective=cfg.model.objective,
                                    nthread=engine.nthread, seed=cfg.cv.seed)
        wall: dict[str, list[float]] = {"moqwk": [], "raw": []}
        cpu: dict[str, list[float]] = {"moqwk": [], "raw": []}
        outside, max_diff = [], None
        for rep in range(reps):
            order = ("moqwk", "raw") if rep % 2 == 0 else ("raw", "moqwk")
            for which in order:
                c0, t0 = time.process_time(), time.perf_counter()
                if which == "moqwk":
                    res = engine.run(params)
                else:
                    raw = raw_trial(folds, bp, rounds)
                wall[which].append(time.perf_counter() - t0)
                cpu[which].append(time.process_time() - c0)
                if which == "moqwk":
                    tm = res.timings
                    outside.append(wall["moqwk"][-1] - tm["train_s"] - tm["predict_s"])
            if max_diff is None:  # the two paths must do the same work
                z = np.full(len(engine.corpus), np.nan)
                for va, pred in raw:
                    z[va] = pred
                max_diff = float(np.nanmax(np.abs(es.raw_to_scale(z)
                                                  - res.oof["y_pred_raw"].to_numpy())))
        med = {k: statistics.median(v) for k, v in wall.items()}
        cmed = {k: statistics.median(v) for k, v in cpu.items()}
        out[name] = {
            "params": params, "booster_params": bp, "rounds": rounds,
            "moqwk_wall_s": wall["moqwk"], "raw_wall_s": wall["raw"],
            "moqwk_cpu_s": cpu["moqwk"], "raw_cpu_s": cpu["raw"],
            "moqwk_median_s": med["moqwk"], "raw_median_s": med["raw"],
            "ratio_of_medians": med["moqwk"] / med["raw"],
            "median_of_paired_ratios": statistics.median(
                m / r for m, r in zip(wall["moqwk"], wall["raw"], strict=True)),
            "cpu_ratio_of_medians": cmed["moqwk"] / cmed["raw"],
            "moqwk_outside_train_predict_s": outside,
            "moqwk_outside_train_predict_median_s": statistics.median(outside),
            "outside_share_of_trial": statistics.median(outside) / med["moqwk"],
            "max_abs_diff_pred_raw_vs_moqwk": max_diff,
        }
        o = out[name]
        print(f"  {name}: moqwk {o['moqwk_median_s']:.2f}s, raw {o['raw_median_s']:.2f}s, "
              f"ratio {o['ratio_of_medians']:.3f} (cpu {o['cpu_ratio_of_medians']:.3f}), "
              f"outside XGBoost {1000 * o['moqwk_outside_train_predict_median_s']:.0f} ms",
              flush=True)
    return out


def measure_fixed_costs(engine: CVEngine, params: dict, n: int = 20) -> dict[str, float]:
    """The per-trial work besides XGBoost: the out-of-fold frame and the metrics."""
    folds = engine.prepare()
    bp, rounds = booster_params(params, objective=engine.config.model.objective,
                                nthread=engine.nthread, seed=engine.config.cv.seed)
    z = np.full((1, len(engine.corpus)), np.nan)
    for (_va, pred), f in zip(raw_trial(folds, bp, rounds), folds, strict=True):
        z[0, f.val] = pred
    # the frame's inputs as a trial's score mapping makes them, here ``round`` (it needs no
    # inner predictions), made once outside the timing
    spec = spec_from_params({"mapping.method": "round"}, engine.config.mapping.spec)
    y_pred, z_mapped, fallback, fold_of, _records = engine._map_folds(spec, z, None, folds)
    t_frame, t_metrics = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        oof = engine._oof_frame(z, z_mapped, y_pred, fallback, fold_of)
        t1 = time.perf_counter()
        engine._metrics(oof)
        t_frame.append(t1 - t0)
        t_metrics.append(time.perf_counter() - t1)
    t_bp = []
    for _ in range(n):
        t0 = time.perf_counter()
        booster_params(params, objective=engine.config.model.objective, nthread=engine.nthread,
                       seed=engine.config.cv.seed)
        t_bp.append(time.perf_counter() - t0)
    return {"oof_frame_median_s": statistics.median(t_frame),
            "metrics_median_s": statistics.median(t_metrics),
            "booster_params_median_s": statistics.median(t_bp), "n": n}


# --------------------------------------------------------------------------- part 2: throughput


def _ts(r: dict[str, Any], key: str) -> float:
    """A counted trial's start or end as a timestamp (every counted trial has both)."""
    s = r[key]
    if not s:
        raise ValueError(f"trial {r['number']} is counted but has no {key}")
    return datetime.fromisoformat(s).timestamp()


def summarise_study(storage_url: str, study_name: str, wall_s: float,
                    workers: int) -> dict[str, Any]:
    study = optuna.load_study(study_name=study_name, storage=storage_url)
    trials = study.get_trials(deepcopy=False)
    counted = [t for t in trials if is_counted(t)]
    recs = {r["number"]: r for r in records(study)}
    done = [recs[t.number] for t in counted]
    starts = [_ts(r, "datetime_start") for r in done]
    ends = [_ts(r, "datetime_complete") for r in done]
    span = max(ends) - min(starts) if done else float("nan")
    in_trial_over, gaps = [], []
    for r in done:
        tm = (r.get("metrics") or {}).get("timings") or {}
        if r["duration_s"] is not None and "total_s" in tm:
            in_trial_over.append(r["duration_s"] - tm["total_s"])
    # with one worker, the time between one trial's end and the next one's start (sampler,
    # storage, the progress/trials JSON rewrite in the callback)
    ordered = sorted(zip(starts, ends, strict=True))
    if workers == 1:
        for (_s0, e0), (s1, _e1) in zip(ordered, ordered[1:], strict=False):
            gaps.append(s1 - e0)
    states: dict[str, int] = {}
    for r in recs.values():
        states[r["state"]] = states.get(r["state"], 0) + 1
    n = len(counted)
    durations = [r["duration_s"] for r in done if r["duration_s"] is not None]
    return {
        "in_trial_overhead_share": sum(x for x in in_trial_over if x <= 2.0) / sum(durations)
        if durations else None,
        "param_sets": sorted(json.dumps(r["params"], sort_keys=True) for r in done),
        "counted_trials": n, "states": states, "wall_s": wall_s, "trial_span_s": span,
        "trials_per_min_wall": 60 * n / wall_s, "trials_per_min_span": 60 * n / span if n else 0,
        "trial_duration_s": [r["duration_s"] for r in done],
        "median_trial_duration_s": statistics.median([r["duration_s"] for r in done]),
        "trial_minus_engine_run_s": in_trial_over,
        "median_trial_minus_engine_run_s": statistics.median(in_trial_over)
        if in_trial_over else None,
        "gaps_between_trials_s": gaps,
        "median_gap_between_trials_s": statistics.median(gaps) if gaps else None,
        # a worker that finishes a non-baseline trial before the baseline trial is done runs
        # the baseline's CV itself for the guardrails (Objective.guardrails): seen as a trial
        # that took much longer than its own CV
        "trials_with_extra_over_2s": sum(x > 2.0 for x in in_trial_over),
        "trial_params": [{k: r["params"].get(k) for k in ("n_estimators", "max_depth",
                                                           "learning_rate")} for r in done],
        "sum_n_estimators": sum(int(r["params"]["n_estimators"]) for r in done),
        "roles": [r["role"] for r in done],
    }


def run_inprocess(config, corpus, run_dir: Path, n_trials: int, n_jobs: int) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    ws = Workspace(config, corpus, run_dir)
    url = f"sqlite:///{run_dir / 'study.db'}"
    guard_s: list[float] = []
    orig = Objective.guardrails

    def timed_guardrails(self, study):
        t0 = time.perf_counter()
        try:
            return orig(self, study)
        finally:
            guard_s.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    with mock.patch.object(Objective, "guardrails", timed_guardrails), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        run_search(ws, SearchOptions(n_trials=n_trials, n_jobs=n_jobs, storage=url,
                                     study_name="bench"))
    wall = time.perf_counter() - t0
    out = summarise_study(url, "bench", wall, n_jobs)
    # Optuna warns when a constraint is set twice on one trial: two workers ran the same trial
    out["constraint_already_set_warnings"] = sum(
        "is already set" in str(w.message) for w in caught)
    out["guardrails_calls_s"] = guard_s
    out["guardrails_baseline_recomputed_s"] = [g for g in guard_s if g > 0.5]
    return out


class _InstantEngine:
    """Stands in for the CV engine: returns one real result at once, so that a search measures
    only what moqwk and Optuna do around the CV (sampling, storage, callbacks, JSON files)."""

    def __init__(self, engine, result) -> None:
        self.feature_keys = engine.feature_keys
        zero = dict.fromkeys(("train_s", "predict_s", "metrics_s", "total_s"), 0.0)
        self.result = dataclasses.replace(result, timings={**result.timings, **zero})

    def run(self, params):
        return dataclasses.replace(self.result, params=dict(params))


def make_stub(config, corpus, run_dir: Path) -> _InstantEngine:
    run_dir.mkdir(parents=True, exist_ok=True)
    engine = Workspace(config, corpus, run_dir).engine("prompt_holdout", nthread=1)
    return _InstantEngine(engine, engine.run(dict(config.baseline_params)))


def stub_search(config, corpus, stub: _InstantEngine, run_dir: Path, n_trials: int,
                n_jobs: int) -> tuple[float, str]:
    run_dir.mkdir(parents=True, exist_ok=True)
    ws = Workspace(config, corpus, run_dir)
    url = f"sqlite:///{run_dir / 'study.db'}"
    t0 = time.perf_counter()
    with mock.patch.object(Objective, "engine", lambda self: stub):
        run_search(ws, SearchOptions(n_trials=n_trials, n_jobs=n_jobs, storage=url,
                                     study_name="bench"))
    return time.perf_counter() - t0, url


def race_probe(config, corpus, stub: _InstantEngine, root: Path, runs: int,
               n_trials: int) -> dict[str, Any]:
    """``run_search`` with ``n_jobs=2`` on the default kind of storage (SQLite) and the CV
    stubbed out, ``runs`` times: how often does it fail? SQLite ignores SELECT ... FOR UPDATE,
    so two threads can both move the same enqueued (WAITING) trial to RUNNING (Optuna issue
    #4002); the second to finish it then fails in ``tell`` and ``study.optimize`` raises."""
    errors: list[str | None] = []
    for i in range(runs):
        try:
            stub_search(config, corpus, stub, root / f"race{i}", n_trials, 2)
            errors.append(None)
        except Exception as e:  # noqa: BLE001 - recorded, this is what is measured
            errors.append(f"{type(e).__name__}: {e}"[:300])
    failed = [e for e in errors if e is not None]
    return {"runs": runs, "n_trials": n_trials, "n_jobs": 2, "failed": len(failed),
            "errors": errors}


def measure_bookkeeping(config, corpus, stub: _InstantEngine, run_dir: Path,
                        n_trials: int) -> dict[str, Any]:
    """A real ``run_search`` whose CV costs nothing: the per-trial cost of everything else."""
    wall, url = stub_search(config, corpus, stub, run_dir, n_trials, 1)
    s = summarise_study(url, "bench", wall, 1)
    durations = s["trial_duration_s"]
    # single storage operations on the same kind of storage (SQLite, one commit each)
    # same engine settings as moqwk's open_storage, without the heartbeat (ask() outside
    # optimize() warns about it)
    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    study = optuna.load_study(study_name="bench", storage=storage)
    trial = study.ask()
    small, big = [], []
    level = [int(v) for v in np.arange(len(corpus)) % 9]
    for i in range(10):
        t = time.perf_counter()
        trial.set_user_attr(f"bench_small_{i}", i)
        small.append(time.perf_counter() - t)
    for i in range(5):
        t = time.perf_counter()
        trial.set_user_attr(f"bench_level_{i}", [level])
        big.append(time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(5):
        study.get_trials(deepcopy=False)
    get_trials = (time.perf_counter() - t) / 5
    t = time.perf_counter()
    for _ in range(5):
        records(study)
    recs = (time.perf_counter() - t) / 5
    return {
        "n_trials": n_trials, "wall_s": wall, "wall_per_trial_s": wall / n_trials,
        "median_trial_duration_s": statistics.median(durations),
        "first5_median_duration_s": statistics.median(durations[:5]),
        "last5_median_duration_s": statistics.median(durations[-5:]),
        "median_gap_between_trials_s": s["median_gap_between_trials_s"],
        "trial_duration_s": durations, "gaps_between_trials_s": s["gaps_between_trials_s"],
        "storage_set_user_attr_small_median_s": statistics.median(small),
        "storage_set_user_attr_oof_level_median_s": statistics.median(big),
        "study_get_trials_s": get_trials, "records_s": recs,
        "n_trials_in_study": len(study.trials),
    }


def _cli() -> list[str]:
    exe = shutil.which("moqwk", path=str(Path(sys.executable).parent))
    if exe:
        return [exe]
    return [sys.executable, "-c", "import sys; from moqwk.cli import main; sys.exit(main())"]


def run_processes(raw: dict, run_dir: Path, n_trials: int, n_procs: int,
                  env: dict[str, str]) -> dict[str, Any]:
    """``n_procs`` ``moqwk search`` processes on one run directory and one SQLite storage."""
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = run_dir / "config.yaml"
    cfg.write_text(yaml.safe_dump(raw, sort_keys=False))
    url = f"sqlite:///{run_dir / 'study.db'}"
    cmd = _cli() + ["search", "--config", str(cfg), "--run-dir", str(run_dir), "--n-trials",
                    str(n_trials), "--n-jobs", "1", "--storage", url, "--study-name", "bench"]
    t0 = time.perf_counter()
    procs = []
    for i in range(n_procs):
        log = open(run_dir / f"worker{i}.log", "w")  # noqa: SIM115 - closed below
        procs.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                       cwd=REPO), log))
        if i == 0 and n_procs > 1:
            time.sleep(0.5)  # let the first create the study and enqueue the first generation
    codes = []
    for p, log in procs:
        codes.append(p.wait())
        log.close()
    wall = time.perf_counter() - t0
    if any(codes):
        tails = "\n".join((run_dir / f"worker{i}.log").read_text()[-2000:] for i in
                          range(n_procs))
        raise RuntimeError(f"moqwk search exited with {codes}:\n{tails}")
    out = summarise_study(url, "bench", wall, n_procs)
    out["constraint_already_set_warnings"] = sum(
        (run_dir / f"worker{i}.log").read_text().count("is already set") for i in range(n_procs))
    out["exit_codes"] = codes
    out["command"] = " ".join(cmd)
    return out


# --------------------------------------------------------------------------- main


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default=os.environ.get("MOQWK_ELLIPSE_CSV", DEFAULT_CSV),
                        help="ELLIPSE CSV (relative paths are from the repo root)")
    parser.add_argument("--out", default="benchmarks/results/trial_throughput.json")
    parser.add_argument("--cache-dir", default=None,
                        help="feature cache (default: a temporary MOQWK_CACHE_DIR, built cold)")
    parser.add_argument("--n-folds", type=int, default=5, help="prompt-holdout folds")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per overhead config")
    parser.add_argument("--deep-rounds", type=int, default=30,
                        help="rounds of the deep (depth 8) overhead config; it is costly")
    parser.add_argument("--nthread", type=int, default=2,
                        help="XGBoost threads in the overhead comparison")
    parser.add_argument("--n-trials", type=int, default=8, help="trial budget of each search")
    parser.add_argument("--n-estimators", type=int, nargs=3, default=[50, 150, 50],
                        metavar=("LOW", "HIGH", "STEP"),
                        help="n_estimators range of the search space (kept small)")
    parser.add_argument("--population-size", type=int, default=None,
                        help="NSGA-II population of the searches (default: 2 x --n-trials, so "
                             "that all trials are the enqueued baseline and its neighbours)")
    parser.add_argument("--bookkeeping-trials", type=int, default=24,
                        help="trials of the search whose CV is stubbed out (0 = skip)")
    parser.add_argument("--race-probes", type=int, default=6,
                        help="n_jobs=2 searches with the CV stubbed out, counting failures "
                             "(0 = skip)")
    parser.add_argument("--max-attempts", type=int, default=3,
                        help="attempts per search mode (a failed attempt is recorded)")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--skip-processes", action="store_true",
                        help="only the in-process searches, not the CLI process runs")
    parser.add_argument("--oversubscribed", action=argparse.BooleanOptionalAction, default=True,
                        help="also run 2 CLI processes with the default thread count (2 each)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    csv = Path(args.csv) if Path(args.csv).is_absolute() else (REPO / args.csv).resolve()
    tmp_root = Path(tempfile.mkdtemp(prefix="moqwk-throughput-"))
    cache = Path(args.cache_dir).resolve() if args.cache_dir else tmp_root / "cache"
    os.environ["MOQWK_CACHE_DIR"] = str(cache)
    env = dict(os.environ)
    monitor = LoadMonitor().start()
    load_start = os.getloadavg()
    t_start = time.perf_counter()
    result: dict[str, Any] = {
        "csv": str(csv), "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else None,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "OMP_WAIT_POLICY_note": "set to PASSIVE by moqwk/__init__.py (setdefault) before "
                                "xgboost loads; child processes inherit it",
        "cache_dir": "temporary" if not args.cache_dir else str(cache),
        "load_average_start": list(load_start), "versions": artifacts.versions(),
        "platform": platform.platform(), "args": vars(args) | {"csv": str(csv)},
        "sections": {},
    }
    print(f"ELLIPSE {csv}; {os.cpu_count()} CPUs; load average {load_start[0]:.2f} "
          f"{load_start[1]:.2f} {load_start[2]:.2f}; OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY')}", flush=True)

    try:
        base = raw_config(csv, n_folds=args.n_folds)
        config = parse_config(base, base_dir=REPO)
        ws = Workspace.open(config, tmp_root / "overhead")
        corpus = ws.corpus
        print(f"{len(corpus)} essays, {len(corpus.prompt_names)} prompts, "
              f"{args.n_folds} prompt-holdout folds", flush=True)
        engine = ws.engine("prompt_holdout", nthread=args.nthread)
        with Section("prepare") as sec:
            folds = engine.prepare()
        sec.info["store_stats"] = engine.store.stats
        sec.info["fold_shapes"] = [[int(f.dtrain.num_row()), int(f.dtrain.num_col()),
                                    int(f.dval.num_row())] for f in folds]
        result["sections"]["prepare_features"] = sec.info
        print(f"features prepared in {sec.info['wall_s']:.1f}s "
              f"(misses {engine.store.stats['misses']}, disk hits "
              f"{engine.store.stats['disk_hits']})", flush=True)

        if not args.skip_overhead:
            psets = overhead_param_sets(dict(config.baseline_params), args.deep_rounds)
            print(f"overhead: {args.reps} reps x {len(psets)} configs, nthread={args.nthread}",
                  flush=True)
            with Section("overhead") as sec:
                result["overhead"] = measure_overhead(engine, psets, args.reps)
                result["fixed_costs"] = measure_fixed_costs(
                    engine, psets["short (depth 4, 50 rounds)"])
            result["sections"]["overhead"] = sec.info

        if not args.skip_search:
            lo, hi, step = args.n_estimators
            space = {
                "max_depth": {"type": "int", "low": 2, "high": 8},
                "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
                "n_estimators": {"type": "int", "low": lo, "high": hi, "step": step},
                "min_child_weight": {"type": "float", "low": 0.5, "high": 32.0, "log": True},
                "subsample": {"type": "float", "low": 0.5, "high": 1.0},
                "colsample_bytree": {"type": "float", "low": 0.3, "high": 1.0},
                "reg_lambda": {"type": "float", "low": 0.05, "high": 20.0, "log": True},
            }
            baseline = {"n_estimators": (lo + hi) // 2 // step * step}
            # population 2 x budget: the first generation is the baseline and n_trials - 1 of its
            # neighbours, all enqueued, so every mode runs the same param sets (sampled ones
            # would differ by mode, and one depth-8 trial can cost as much as five others)
            pop = args.population_size or max(10, 2 * args.n_trials)
            search = {"space": space, "sampler": "nsga2", "population_size": pop, "seed": 0}
            result["search_config"] = {"space": space, "baseline_overrides": baseline,
                                       "search": {k: v for k, v in search.items()
                                                  if k != "space"}}
            if args.bookkeeping_trials > 0:
                cfg = parse_config(raw_config(csv, n_folds=args.n_folds, baseline=baseline,
                                              search=search), base_dir=REPO)
                print(f"bookkeeping: a search of {args.bookkeeping_trials} trials with the CV "
                      "stubbed out ...", flush=True)
                stub = make_stub(cfg, corpus, tmp_root / "stub")
                with Section("bookkeeping") as sec:
                    bk = measure_bookkeeping(cfg, corpus, stub, tmp_root / "bookkeeping",
                                             args.bookkeeping_trials)
                bk["section"] = sec.info
                result["bookkeeping"] = bk
                print(f"  {1000 * bk['wall_per_trial_s']:.0f} ms per trial (in the trial "
                      f"{1000 * bk['median_trial_duration_s']:.0f} ms, between trials "
                      f"{1000 * bk['median_gap_between_trials_s']:.0f} ms)", flush=True)
            if args.race_probes > 0:
                cfg = parse_config(raw_config(csv, n_folds=args.n_folds, baseline=baseline,
                                              search=search), base_dir=REPO)
                if args.bookkeeping_trials <= 0:
                    stub = make_stub(cfg, corpus, tmp_root / "stub")
                print(f"race probe: {args.race_probes} searches with n_jobs=2 and the CV "
                      "stubbed out ...", flush=True)
                rp = race_probe(cfg, corpus, stub, tmp_root, args.race_probes, args.n_trials)
                result["race_probe_n_jobs_2"] = rp
                print(f"  {rp['failed']} of {rp['runs']} failed", flush=True)
            searches: dict[str, Any] = {}
            modes: list[tuple[str, Any]] = [
                ("in-process, n_jobs=1 (2 threads)", ("inproc", 1, 0)),
                ("in-process, n_jobs=2 (1 thread each)", ("inproc", 2, 0)),
            ]
            if not args.skip_processes:
                modes += [("CLI, 1 process (2 threads)", ("procs", 1, 0)),
                          ("CLI, 2 processes, shared SQLite (1 thread each)", ("procs", 2, 1))]
                if args.oversubscribed:
                    modes.append(("CLI, 2 processes, shared SQLite (2 threads each)",
                                  ("procs", 2, 0)))
            for i, (name, (kind, n, nthread)) in enumerate(modes):
                raw = raw_config(csv, n_folds=args.n_folds, nthread=nthread, baseline=baseline,
                                 search=search)
                run_dir = tmp_root / f"search{i}"
                print(f"search: {name}, {args.n_trials} trials ...", flush=True)
                failures = []
                for attempt in range(args.max_attempts):
                    try:
                        with Section(name) as sec:
                            if kind == "inproc":
                                cfg = parse_config(raw, base_dir=REPO)
                                r = run_inprocess(cfg, corpus, run_dir / f"a{attempt}",
                                                  args.n_trials, n_jobs=n)
                            else:
                                r = run_processes(raw, run_dir / f"a{attempt}", args.n_trials,
                                                  n, env)
                        break
                    except Exception as e:  # noqa: BLE001 - recorded and retried
                        failures.append({"error": f"{type(e).__name__}: {e}"[-1500:],
                                         "after_s": sec.info.get("wall_s")})
                        print(f"  attempt {attempt + 1} failed: "
                              f"{type(e).__name__}: {str(e).splitlines()[0][:200]}", flush=True)
                else:
                    searches[name] = {"failed_attempts": failures, "kind": kind}
                    continue
                r["failed_attempts"] = failures
                r["section"] = sec.info
                r["workers"], r["kind"] = n, kind
                r["xgb_threads_per_worker"] = nthread or (
                    len(os.sched_getaffinity(0)) // (n if kind == "inproc" else 1))
                searches[name] = r
                print(f"  {r['counted_trials']} trials in {r['wall_s']:.1f}s: "
                      f"{r['trials_per_min_wall']:.2f}/min (wall), "
                      f"{r['trials_per_min_span']:.2f}/min (first start to last end); other "
                      f"processes ~{_fmt(sec.info.get('other_cores_busy'), '.2f')} cores",
                      flush=True)
            for r in searches.values():
                ref = searches[modes[0][0] if r["kind"] == "inproc" else
                               "CLI, 1 process (2 threads)"]
                if "wall_s" not in r or "wall_s" not in ref:
                    continue
                r["ratio_vs_1_worker_wall"] = r["trials_per_min_wall"] / ref["trials_per_min_wall"]
                r["ratio_vs_1_worker_span"] = r["trials_per_min_span"] / ref["trials_per_min_span"]
                r["reference"] = [k for k, v in searches.items() if v is ref][0]
                r["same_param_sets_as_reference"] = r["param_sets"] == ref["param_sets"]
            result["searches"] = searches
    finally:
        result["load_average_end"] = list(os.getloadavg())
        result["load_average_samples"] = monitor.stop()
        result["total_wall_s"] = time.perf_counter() - t_start
        shutil.rmtree(tmp_root, ignore_errors=True)  # the cache too, unless --cache-dir

    # ---- tables
    if "overhead" in result:
        print(f"\nOverhead of one trial ({args.n_folds} prompt-holdout folds, nthread="
              f"{args.nthread}, {args.reps} reps, medians)")
        print(f"{'params':36s} {'moqwk s':>8s} {'raw s':>8s} {'ratio':>6s} {'paired':>6s} "
              f"{'cpu':>6s} {'non-XGB ms':>10s} {'share':>6s}")
        for name, o in result["overhead"].items():
            print(f"{name:36s} {o['moqwk_median_s']:8.3f} {o['raw_median_s']:8.3f} "
                  f"{o['ratio_of_medians']:6.3f} {o['median_of_paired_ratios']:6.3f} "
                  f"{o['cpu_ratio_of_medians']:6.3f} "
                  f"{1000 * o['moqwk_outside_train_predict_median_s']:10.1f} "
                  f"{100 * o['outside_share_of_trial']:5.2f}%")
        fc = result["fixed_costs"]
        print("ratio: moqwk / raw wall medians; paired: median of per-rep ratios; cpu: process "
              "CPU time; non-XGB: engine.run wall minus its own train+predict time")
        print(f"fixed per-trial work: oof frame {1000 * fc['oof_frame_median_s']:.1f} ms, "
              f"metrics {1000 * fc['metrics_median_s']:.1f} ms")
    if "bookkeeping" in result:
        bk = result["bookkeeping"]
        print(f"\nSearch bookkeeping with the CV stubbed out ({bk['n_trials']} trials, SQLite): "
              f"{1000 * bk['wall_per_trial_s']:.0f} ms per trial; in the trial "
              f"{1000 * bk['median_trial_duration_s']:.0f} ms (first 5 "
              f"{1000 * bk['first5_median_duration_s']:.0f}, last 5 "
              f"{1000 * bk['last5_median_duration_s']:.0f}), between trials "
              f"{1000 * bk['median_gap_between_trials_s']:.0f} ms; one set_user_attr "
              f"{1000 * bk['storage_set_user_attr_small_median_s']:.0f} ms (oof_level "
              f"{1000 * bk['storage_set_user_attr_oof_level_median_s']:.0f} ms)")
    if "searches" in result:
        print(f"\nSearch throughput ({args.n_trials} trials, n_estimators {args.n_estimators})")
        print(f"{'mode':50s} {'wall s':>7s} {'/min':>6s} {'ratio':>6s} {'/min*':>6s} "
              f"{'ratio*':>6s} {'rounds':>6s} {'same':>4s} {'slow':>4s} {'dup':>3s} {'ovh':>5s} "
              f"{'other':>6s} {'fails':>5s}")
        for name, r in result["searches"].items():
            if "wall_s" not in r:
                print(f"{name:50s} failed {len(r['failed_attempts'])} times: "
                      f"{r['failed_attempts'][-1]['error'].splitlines()[0][:80]}")
                continue
            print(f"{name:50s} {r['wall_s']:7.1f} {r['trials_per_min_wall']:6.2f} "
                  f"{r['ratio_vs_1_worker_wall']:6.2f} {r['trials_per_min_span']:6.2f} "
                  f"{r['ratio_vs_1_worker_span']:6.2f} {r['sum_n_estimators']:6d} "
                  f"{'yes' if r['same_param_sets_as_reference'] else 'no':>4s} "
                  f"{r['trials_with_extra_over_2s']:4d} "
                  f"{r['constraint_already_set_warnings'] // 2:3d} "
                  f"{_fmt(100 * (r['in_trial_overhead_share'] or 0), '4.1f')}% "
                  f"{_fmt(r['section'].get('other_cores_busy'), '6.2f')} "
                  f"{len(r['failed_attempts']):5d}")
        print("/min: counted trials per minute of wall time; *: from the first trial start to "
              "the last trial end; ratio: against 1 worker of the same kind; rounds: sum of "
              "n_estimators over the trials; same: the same param sets as the reference; "
              "slow: trials > 2 s longer than their own CV (a worker recomputing the baseline "
              "for the guardrails); dup: trials run twice (Optuna's constraint-already-set "
              "warning, two per trial); ovh: trial time outside the CV (storage, attributes; slow "
              "trials left out); other: CPU cores busy with other processes on average; fails: "
              "failed attempts before this one (retried from scratch)")
    if "race_probe_n_jobs_2" in result:
        rp = result["race_probe_n_jobs_2"]
        errs = sorted({e.splitlines()[0][:90] for e in rp["errors"] if e})
        print(f"n_jobs=2 race probe (CV stubbed out, SQLite): {rp['failed']} of {rp['runs']} "
              f"searches failed" + (f": {'; '.join(errs)}" if errs else ""))
    la = result["load_average_samples"]
    print(f"load average: start {load_start[0]:.2f}, end {result['load_average_end'][0]:.2f}, "
          f"sampled min/median/max {la['min']:.2f}/{la['median']:.2f}/{la['max']:.2f}")

    out = Path(args.out) if Path(args.out).is_absolute() else REPO / args.out
    artifacts.write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
