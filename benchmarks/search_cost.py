"""Benchmark: what a search costs with today's settings against the new defaults (issue 18).

For each seed, the same 25-trial ELLIPSE search twice, in one run of this script: *today*
(fold racing off, one job, XGBoost on all cores) and *new* (the new defaults: fold racing on,
``n_jobs: auto``). Each search is a ``moqwk search`` process of its own with an empty cache;
its wall time, CPU time and peak memory are read from the parent with ``os.wait4``. The
selection and the fresh re-scoring run afterwards in another process, untimed. The rules and
targets were registered in ``benchmarks/README.md`` before any run. Not part of the test suite::

    python benchmarks/search_cost.py [--seeds 7 8 9] [--trials 25] [--work DIR] [--out FILE]
    python benchmarks/search_cost.py --seeds 7 --trials 6 --work runs/cost-smoke   # smoke run

Each finished unit (arm, seed) keeps its row under ``--work/rows``, so a re-run resumes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from moqwk.base import artifacts  # noqa: E402
from moqwk.config import load_config  # noqa: E402

ARMS = {
    # today's settings: what search.n_jobs: 1 and no racing gave before issue 18
    "today": {"racing": False, "n_jobs": 1},
    # the new defaults, as a config that sets nothing gets them
    "new": {},
}
#: Each arm's ``model:`` settings. Amendment of 2026-12-03, before any run: ``model.max_bin``
#: became 32 (ADR 0006), so today's arm pins the 256 bins it trained with before issue 18.
MODEL = {"today": {"max_bin": 256}, "new": {}}
METRICS = ("worst_prompt_qwk", "mean_qwk", "low_tail_mae", "high_tail_mae")


def unit_dir(work: Path, arm: str, seed: int) -> Path:
    return work / f"{arm}-{seed}"


def write_config(base: Path, arm: str, seed: int, trials: int, where: Path) -> Path:
    """The arm's config: the base config with the data path made absolute, the seed, the
    budget and the arm's search settings."""
    raw = yaml.safe_load(base.read_text(encoding="utf-8"))
    raw["data"]["path"] = str(load_config(base).data.path)
    search = {k: v for k, v in (raw.get("search") or {}).items()
              if k not in ("racing", "n_jobs")}
    raw["search"] = {**search, "seed": seed, "n_trials": trials, **ARMS[arm]}
    model = {k: v for k, v in (raw.get("model") or {}).items() if k != "max_bin"}
    raw["model"] = {**model, **MODEL[arm]}
    where.mkdir(parents=True, exist_ok=True)
    path = where / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def timed_search(cfg: Path, run_dir: Path, trials: int, cache: Path, log: Path) -> dict:
    """``moqwk search`` as a child process: wall, CPU and peak memory of that child."""
    env = {**os.environ, "MOQWK_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-m", "moqwk.cli", "search", "--config", str(cfg), "--run-dir",
           str(run_dir), "--n-trials", str(trials)]
    load = os.getloadavg()
    with open(log, "ab") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"search failed (exit {proc.returncode}); see {log}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024, "loadavg_before": load,
            "loadavg_after": os.getloadavg()}


def score(cfg: Path, run_dir: Path, cache: Path, fresh_seed: int, fresh_repeats: int) -> dict:
    """Select (the config's rule and gate), then re-score the selection on fresh folds.
    Runs in a child of its own (``--child-score``), untimed."""
    os.environ["MOQWK_CACHE_DIR"] = str(cache)
    from moqwk._api.select_outputs import run_selection
    from moqwk.run.workspace import Workspace
    from moqwk.stages.selector import options_from

    config = load_config(cfg)
    ws = Workspace.open(config, run_dir)
    record, _ = run_selection(ws, options_from(config.select), commands=[])
    if record.params is None:  # run_selection raises instead when the gate chose nothing
        raise RuntimeError(f"{run_dir}: the selection record has no params")
    trials = artifacts.read_json(run_dir / "artifacts" / "optuna_trials.json")
    fresh = ws.engine("prompt_holdout", seed=fresh_seed, repeats=fresh_repeats)
    m = fresh.run(record.params).metrics
    return {
        "n_complete": sum(t["state"] == "complete" for t in trials),
        "n_pruned": sum(t["state"] == "pruned" for t in trials),
        "n_failed": sum(t["state"] == "fail" for t in trials),
        "pruned_folds_run": [t["pruned"]["folds_run"] for t in trials if t.get("pruned")],
        "selected_trial": record.trial_number, "tie_tolerance": record.tie_tolerance,
        "in_sample": record.values, "fresh": config.objectives.values(m),
        "fresh_seed": fresh_seed, "fresh_repeats": fresh_repeats,
    }


def run_unit(base: Path, arm: str, seed: int, args: argparse.Namespace, work: Path) -> dict:
    d = unit_dir(work, arm, seed)
    cfg = write_config(base, arm, seed, args.trials, d)
    run_dir, cache = d / "run", d / "cache"
    cost_path = d / "cost.json"
    if cost_path.exists():  # the search finished and was timed; its scoring did not finish
        cost = artifacts.read_json(cost_path)
    else:
        if run_dir.exists():  # a search cut short is run again from nothing (timing void)
            import shutil

            shutil.rmtree(run_dir)
            shutil.rmtree(cache, ignore_errors=True)
        cost = timed_search(cfg, run_dir, args.trials, cache, d / "search.log")
        artifacts.write_json(cost_path, cost)
    out = d / "score.json"
    subprocess.run([sys.executable, __file__, "--child-score", str(cfg), str(run_dir),
                    str(cache), str(out), str(args.fresh_seed), str(args.fresh_repeats)],
                   check=True, stdin=subprocess.DEVNULL)
    return {"arm": arm, "seed": seed, "trials": args.trials, "commit": git_commit(), **cost,
            **artifacts.read_json(out)}


def git_commit() -> str | None:
    """The code a unit ran (rows of one registered run may come from several sessions)."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "moqwk"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return out + ("+dirty" if dirty else "")


def repo_relative(path: Path) -> str:
    """``path`` as the repository names it, so the result file holds no machine's paths."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return path.name


def summarise(rows: list[dict]) -> dict:
    by = {(r["arm"], r["seed"]): r for r in rows}
    seeds = sorted({s for a, s in by if (("today", s) in by and ("new", s) in by)})
    if not seeds:
        return {"seeds": []}
    ratio = {s: by["today", s]["wall_s"] / by["new", s]["wall_s"] for s in seeds}
    cpu = {s: by["today", s]["cpu_s"] / by["new", s]["cpu_s"] for s in seeds}
    band = statistics.mean(by["today", s]["tie_tolerance"] for s in seeds)
    diff = {m: statistics.mean(by["new", s]["fresh"][m] - by["today", s]["fresh"][m]
                               for s in seeds) for m in ("mean_qwk", "worst_prompt_qwk")}
    median = statistics.median(ratio.values())
    return {
        "seeds": seeds, "wall_ratio": ratio, "cpu_ratio": cpu, "median_wall_ratio": median,
        "tie_band": band, "fresh_diff_new_minus_today": diff,
        "target_speed_met": median >= 3.0,
        "target_quality_met": all(abs(v) <= band for v in diff.values()),
    }


def markdown(rows: list[dict], summary: dict) -> str:
    lines = ["| arm | seed | wall (s) | CPU (s) | peak RSS (MB) | complete | pruned | selected "
             "| fresh worst QWK | fresh mean QWK | tie band |", "|" + "---|" * 11]
    for r in sorted(rows, key=lambda r: (r["seed"], r["arm"])):
        lines.append(f"| {r['arm']} | {r['seed']} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | "
                     f"{r['peak_rss_mb']:.0f} | {r['n_complete']} | {r['n_pruned']} | "
                     f"{r['selected_trial']} | {r['fresh']['worst_prompt_qwk']:.3f} | "
                     f"{r['fresh']['mean_qwk']:.3f} | {r['tie_tolerance']:.3f} |")
    if summary.get("seeds"):
        d = summary["fresh_diff_new_minus_today"]
        lines += ["", f"Median wall ratio today/new: {summary['median_wall_ratio']:.2f} "
                      f"(target >= 3.0: {'met' if summary['target_speed_met'] else 'NOT met'}).",
                  f"Fresh new - today: mean QWK {d['mean_qwk']:+.3f}, worst-prompt QWK "
                  f"{d['worst_prompt_qwk']:+.3f}, tie band {summary['tie_band']:.3f} (target: "
                  f"both within: {'met' if summary['target_quality_met'] else 'NOT met'})."]
    return "\n".join(lines) + "\n"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-score":
        cfg, run_dir, cache, row_out, fseed, frep = sys.argv[2:8]
        artifacts.write_json(Path(row_out), score(Path(cfg), Path(run_dir), Path(cache),
                                                  int(fseed), int(frep)))
        return 0
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "examples" / "ellipse.yaml"))
    ap.add_argument("--trials", type=int, default=25)
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    ap.add_argument("--fresh-seed", type=int, default=4242)
    ap.add_argument("--fresh-repeats", type=int, default=2)
    ap.add_argument("--work", help="keep the runs and rows here (default: a temp dir)")
    ap.add_argument("--out", help="the result JSON (default: results/search_cost.json for the "
                                  "registered run, else WORK/search_cost.json)")
    args = ap.parse_args()
    base = Path(args.config)
    load_config(base)  # fail early on a bad config
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="moqwk-cost-"))
    registered = args.trials == 25 and args.seeds == [7, 8, 9]
    out = Path(args.out) if args.out else (
        REPO / "benchmarks" / "results" / "search_cost.json" if registered
        else work / "search_cost.json")
    rows = []
    for i, seed in enumerate(args.seeds):
        order = ["today", "new"] if i % 2 == 0 else ["new", "today"]
        for arm in order:
            row_path = work / "rows" / f"{arm}-{seed}.json"
            if row_path.exists():
                row = artifacts.read_json(row_path)
                if row.get("trials") != args.trials:
                    row = None
            else:
                row = None
            if row is None:
                row = run_unit(base, arm, seed, args, work)
                artifacts.write_json(row_path, row)
            rows.append(row)
            print(f"{arm:>5} seed {seed}: wall {row['wall_s']:.0f} s, CPU {row['cpu_s']:.0f} s, "
                  f"peak {row['peak_rss_mb']:.0f} MB, {row['n_complete']} complete, "
                  f"{row['n_pruned']} pruned; fresh worst {row['fresh']['worst_prompt_qwk']:.3f}"
                  f" mean {row['fresh']['mean_qwk']:.3f}", flush=True)
    summary = summarise(rows)
    artifacts.write_json(out, {"registered": registered, "config": repo_relative(base),
                               "trials": args.trials, "seeds": args.seeds, "rows": rows,
                               "summary": summary, "versions": artifacts.versions(),
                               "usable_cores": len(os.sched_getaffinity(0))})
    md = markdown(rows, summary)
    artifacts.write_text(out.with_suffix(".md"), md)
    print()
    print(md)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
