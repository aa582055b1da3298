"""Benchmark: the cost of one moqwk trial against raw XGBoost, and trials per minute by workers.

On the ELLIPSE corpus, with prompt-holdout folds whose features are already cached, in one run:

1. Overhead: ``CVEngine.run(params)`` against a bare loop of ``xgboost.train`` + ``predict`` on
   the very same fold DMatrix objects, with the same booster params and rounds
   (``moqwk.cv.booster_params``). The two alternate within each repetition; the median ratio
   moqwk / raw is reported per param config (goal: <= 1.05). The fixed per-trial cost (out-of-fold
   frame and metrics) is also timed on its own.
2. Throughput: real searches with a small budget, 1 worker (2 XGBoost threads) against 2 workers
   (1 thread each): ``run_search`` in-process with ``n_jobs`` 1 and 2, and the ``moqwk search``
   CLI as 1 process and as 2 processes sharing one SQLite storage (``model.nthread: 1``, and
   optionally with the default thread count, i.e. oversubscribed). Trials per minute over the
   whole wall time and over the span from the first trial start to the last trial end.

``moqwk/__init__.py`` sets ``OMP_WAIT_POLICY=PASSIVE`` (unless already set) before XGBoost loads;
the benchmark imports moqwk first, so the raw XGBoost reference runs under the same policy.
Not part of the test suite::

    python benchmarks/trial_throughput.py [--reps 5] [--n-trials 8] \
        [--out benchmarks/results/trial_throughput.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import moqwk  # noqa: E402,F401,I001  - first: sets OMP_WAIT_POLICY before xgboost loads

import numpy as np  # noqa: E402
import optuna  # noqa: E402
import xgboost as xgb  # noqa: E402
import yaml  # noqa: E402

from moqwk import artifacts  # noqa: E402
from moqwk.config import parse_config  # noqa: E402
from moqwk.cv import booster_params  # noqa: E402
from moqwk.runs import Workspace  # noqa: E402
from moqwk.search import SearchOptions, run_search  # noqa: E402
from moqwk.trials_io import is_counted, records  # noqa: E402

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
        "baseline": {"params": dict(baseline or {})},
        "search": dict(search or {}),
    }


def overhead_param_sets(baseline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        "baseline (depth 4, 300 rounds)": dict(baseline),
        "deep (depth 8, mcw 1, 300 rounds)": {**baseline, "max_depth": 8,
                                              "min_child_weight": 1.0},
        "shallow (depth 2, 300 rounds)": {**baseline, "max_depth": 2},
        "short (depth 4, 50 rounds)": {**baseline, "n_estimators": 50},
    }


# --------------------------------------------------------------------------- part 1: overhead


def raw_trial(folds, bp: dict[str, Any], rounds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """What a script would do on the same prepared folds: train and predict, nothing else."""
    out = []
    for _r, _k, _tr, va, dtrain, dval in folds:
        booster = xgb.train(bp, dtrain, num_boost_round=rounds)
        out.append((va, booster.predict(dval)))
    return out


def measure_overhead(engine, params_sets: dict[str, dict], reps: int) -> dict[str, Any]:
    folds = engine.prepare()
    cfg = engine.config
    out: dict[str, Any] = {}
    for name, params in params_sets.items():
        bp, rounds = booster_params(params, objective=cfg.model.objective,
                                    nthread=engine.nthread, seed=cfg.cv.seed)
        # warm-up: the first train on a DMatrix builds its histogram index (for both paths)
        res = engine.run(params)
        raw = raw_trial(folds, bp, rounds)
        es = engine.corpus.essay_scale
        z = np.full(len(engine.corpus), np.nan)
        for va, pred in raw:
            z[va] = pred
        max_diff = float(np.nanmax(np.abs(es.raw_to_scale(z) - res.oof["y_pred_raw"].to_numpy())))
        t_moqwk, t_raw, t_fixed, t_trainpred = [], [], [], []
        for rep in range(reps):
            order = ("moqwk", "raw") if rep % 2 == 0 else ("raw", "moqwk")
            for which in order:
                t0 = time.perf_counter()
                if which == "moqwk":
                    res = engine.run(params)
                    t_moqwk.append(time.perf_counter() - t0)
                    tm = res.timings
                    t_trainpred.append(tm["train_s"] + tm["predict_s"])
                    t_fixed.append(t_moqwk[-1] - t_trainpred[-1])
                else:
                    raw_trial(folds, bp, rounds)
                    t_raw.append(time.perf_counter() - t0)
        ratios = [m / r for m, r in zip(t_moqwk, t_raw, strict=True)]
        out[name] = {
            "params": params, "booster_params": bp, "rounds": rounds,
            "moqwk_s": t_moqwk, "raw_s": t_raw, "moqwk_median_s": statistics.median(t_moqwk),
            "raw_median_s": statistics.median(t_raw),
            "ratio_of_medians": statistics.median(t_moqwk) / statistics.median(t_raw),
            "median_of_paired_ratios": statistics.median(ratios),
            "moqwk_outside_train_predict_median_s": statistics.median(t_fixed),
            "max_abs_diff_pred_raw_vs_moqwk": max_diff,
        }
        print(f"  {name}: moqwk {out[name]['moqwk_median_s']:.2f}s, raw "
              f"{out[name]['raw_median_s']:.2f}s, ratio {out[name]['ratio_of_medians']:.3f}",
              flush=True)
    return out


def measure_fixed_costs(engine, params: dict, n: int = 20) -> dict[str, float]:
    """The per-trial work besides XGBoost: the out-of-fold frame and the metrics."""
    folds = engine.prepare()
    bp, rounds = booster_params(params, objective=engine.config.model.objective,
                                nthread=engine.nthread, seed=engine.config.cv.seed)
    z = np.full((1, len(engine.corpus)), np.nan)
    fold_of = np.full((1, len(engine.corpus)), -1, dtype=np.int64)
    for (_r, k, _tr, va, _dt, _dv), (_va, pred) in zip(folds, raw_trial(folds, bp, rounds),
                                                        strict=True):
        z[0, va], fold_of[0, va] = pred, k
    t_frame, t_metrics = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        oof = engine._oof_frame(z, fold_of)
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


def _ts(s: str | None) -> float | None:
    return datetime.fromisoformat(s).timestamp() if s else None


def summarise_study(storage_url: str, study_name: str, wall_s: float) -> dict[str, Any]:
    study = optuna.load_study(study_name=study_name, storage=storage_url)
    trials = study.get_trials(deepcopy=False)
    counted = [t for t in trials if is_counted(t)]
    recs = {r["number"]: r for r in records(study)}
    done = [recs[t.number] for t in counted]
    starts = [_ts(r["datetime_start"]) for r in done]
    ends = [_ts(r["datetime_complete"]) for r in done]
    span = max(ends) - min(starts) if done else float("nan")
    in_trial_over, gaps = [], []
    for r in done:
        tm = (r.get("metrics") or {}).get("timings") or {}
        if r["duration_s"] is not None and "total_s" in tm:
            in_trial_over.append(r["duration_s"] - tm["total_s"])
    # with one worker, the time between one trial's end and the next one's start (sampler,
    # storage, the progress/trials JSON rewrite in the callback)
    ordered = sorted(zip(starts, ends, strict=True))
    for (_s0, e0), (s1, _e1) in zip(ordered, ordered[1:], strict=False):
        gaps.append(s1 - e0)
    states: dict[str, int] = {}
    for r in recs.values():
        states[r["state"]] = states.get(r["state"], 0) + 1
    n = len(counted)
    return {
        "counted_trials": n, "states": states, "wall_s": wall_s, "trial_span_s": span,
        "trials_per_min_wall": 60 * n / wall_s, "trials_per_min_span": 60 * n / span if n else 0,
        "trial_duration_s": [r["duration_s"] for r in done],
        "median_trial_duration_s": statistics.median([r["duration_s"] for r in done]),
        "trial_minus_engine_run_s": in_trial_over,
        "median_trial_minus_engine_run_s": statistics.median(in_trial_over)
        if in_trial_over else None,
        "gaps_between_trials_s": gaps,
        "trial_params": [{k: r["params"].get(k) for k in ("n_estimators", "max_depth",
                                                           "learning_rate")} for r in done],
        "sum_n_estimators": sum(int(r["params"]["n_estimators"]) for r in done),
        "roles": [r["role"] for r in done],
    }


def run_inprocess(config, corpus, run_dir: Path, n_trials: int, n_jobs: int) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    ws = Workspace(config, corpus, run_dir)
    url = f"sqlite:///{run_dir / 'study.db'}"
    t0 = time.perf_counter()
    run_search(ws, SearchOptions(n_trials=n_trials, n_jobs=n_jobs, storage=url,
                                 study_name="bench"))
    wall = time.perf_counter() - t0
    return summarise_study(url, "bench", wall)


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
    out = summarise_study(url, "bench", wall)
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
    parser.add_argument("--reps", type=int, default=5, help="repetitions per overhead config")
    parser.add_argument("--nthread", type=int, default=2,
                        help="XGBoost threads in the overhead comparison")
    parser.add_argument("--n-trials", type=int, default=8, help="trial budget of each search")
    parser.add_argument("--n-estimators", type=int, nargs=3, default=[50, 150, 50],
                        metavar=("LOW", "HIGH", "STEP"),
                        help="n_estimators range of the search space (kept small)")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--skip-processes", action="store_true",
                        help="only the in-process searches, not the CLI process runs")
    parser.add_argument("--oversubscribed", action=argparse.BooleanOptionalAction, default=True,
                        help="also run 2 CLI processes with the default thread count (2 each)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

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
        sec.info["fold_shapes"] = [[int(d.num_row()), int(d.num_col()), int(v.num_row())]
                                   for *_x, d, v in folds]
        result["sections"]["prepare_features"] = sec.info
        print(f"features prepared in {sec.info['wall_s']:.1f}s "
              f"(misses {engine.store.stats['misses']}, disk hits "
              f"{engine.store.stats['disk_hits']})", flush=True)

        if not args.skip_overhead:
            psets = overhead_param_sets(dict(config.baseline_params))
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
            search = {"space": space, "sampler": "nsga2", "population_size": 10, "seed": 0}
            result["search_config"] = {"space": space, "baseline_overrides": baseline,
                                       "search": {k: v for k, v in search.items()
                                                  if k != "space"}}
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
                with Section(name) as sec:
                    if kind == "inproc":
                        cfg = parse_config(raw, base_dir=REPO)
                        r = run_inprocess(cfg, corpus, run_dir, args.n_trials, n_jobs=n)
                    else:
                        r = run_processes(raw, run_dir, args.n_trials, n, env)
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
                r["ratio_vs_1_worker_wall"] = r["trials_per_min_wall"] / ref["trials_per_min_wall"]
                r["ratio_vs_1_worker_span"] = r["trials_per_min_span"] / ref["trials_per_min_span"]
                r["reference"] = [k for k, v in searches.items() if v is ref][0]
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
        print(f"{'params':36s} {'moqwk s':>8s} {'raw s':>8s} {'ratio':>7s} {'paired':>7s} "
              f"{'non-XGB s':>9s}")
        for name, o in result["overhead"].items():
            print(f"{name:36s} {o['moqwk_median_s']:8.3f} {o['raw_median_s']:8.3f} "
                  f"{o['ratio_of_medians']:7.3f} {o['median_of_paired_ratios']:7.3f} "
                  f"{o['moqwk_outside_train_predict_median_s']:9.3f}")
        fc = result["fixed_costs"]
        print(f"fixed per-trial work: oof frame {1000 * fc['oof_frame_median_s']:.1f} ms, "
              f"metrics {1000 * fc['metrics_median_s']:.1f} ms")
    if "searches" in result:
        print(f"\nSearch throughput ({args.n_trials} trials, n_estimators {args.n_estimators})")
        print(f"{'mode':50s} {'wall s':>7s} {'/min':>6s} {'ratio':>6s} {'/min*':>6s} "
              f"{'ratio*':>6s} {'other':>6s}")
        for name, r in result["searches"].items():
            print(f"{name:50s} {r['wall_s']:7.1f} {r['trials_per_min_wall']:6.2f} "
                  f"{r['ratio_vs_1_worker_wall']:6.2f} {r['trials_per_min_span']:6.2f} "
                  f"{r['ratio_vs_1_worker_span']:6.2f} "
                  f"{_fmt(r['section'].get('other_cores_busy'), '6.2f')}")
        print("/min: counted trials per minute of wall time; *: from the first trial start to "
              "the last trial end; ratio: against 1 worker of the same kind; other: CPU cores "
              "busy with other processes on average")
    la = result["load_average_samples"]
    print(f"load average: start {load_start[0]:.2f}, end {result['load_average_end'][0]:.2f}, "
          f"sampled min/median/max {la['min']:.2f}/{la['median']:.2f}/{la['max']:.2f}")

    out = Path(args.out) if Path(args.out).is_absolute() else REPO / args.out
    artifacts.write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
