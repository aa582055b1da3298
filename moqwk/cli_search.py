"""CLI commands of the search and selection stages (search, status, select, grid, compare)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from moqwk.errors import RunDirError


def cmd_search(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live

    from moqwk.cli import _load
    from moqwk.live import live_view
    from moqwk.runs import Workspace
    from moqwk.search import DEFAULT_N_TRIALS, SearchOptions, run_search

    config = _load(args)
    ws = Workspace.open(config, Path(args.run_dir))
    n_trials = args.n_trials or int(config.search.get("n_trials", DEFAULT_N_TRIALS))
    baseline, source = None, "config"
    if args.baseline_from:
        baseline, source = _baseline_from(Path(args.baseline_from))
    opts = SearchOptions(n_trials=n_trials, timeout=args.timeout, n_jobs=args.n_jobs,
                         storage=args.storage, study_name=args.study_name,
                         sampler=args.sampler, baseline_params=baseline,
                         baseline_source=source)
    console = Console(highlight=False)
    if console.is_terminal:
        with Live(console=console, refresh_per_second=2, transient=False) as live:
            study = run_search(ws, opts, on_update=lambda recs, prog: live.update(
                live_view(recs, prog)))
    else:
        seen: set[int] = set()

        def line(recs: list[dict], prog: dict) -> None:
            for r in recs:
                if r["number"] in seen or r["state"] in ("running", "waiting"):
                    continue
                seen.add(r["number"])
                v = r["values"] or {}
                console.print(
                    f"trial {r['number']:>3} {r['state']:<11} "
                    + " ".join(f"{k}={v[k]:.3f}" for k in v)
                    + (f" feasible={r['feasible']}" if v else f" ({r['failure_reason']})"))

        study = run_search(ws, opts, on_update=line)
    from moqwk.live import trials_table
    from moqwk.search import TRIALS_JSON

    recs = json.loads((ws.run_dir / TRIALS_JSON).read_text())
    console.print(trials_table(recs, limit=None, title=f"Study {study.study_name}: all trials "
                                                       "(* = feasible Pareto front)"))
    console.print(f"Next: moqwk select --config {args.config} --run-dir {args.run_dir}")
    return 0


def _baseline_from(path: Path) -> tuple[dict, str]:
    """The params selected in a grid run (its selected_params.json) to use as the baseline."""
    f = path / "artifacts" / "selected_params.json" if path.is_dir() else path
    if not f.exists():
        raise RunDirError(f"--baseline-from: {f} not found; run `moqwk select` on the grid run")
    data = json.loads(f.read_text())
    return dict(data["params"]), f"selected params of {f}"


def cmd_status(args: argparse.Namespace) -> int:
    from rich.console import Console

    from moqwk.live import progress_line, trials_table
    from moqwk.search import PROGRESS, TRIALS_JSON

    run_dir = Path(args.run_dir)
    tf, pf = run_dir / TRIALS_JSON, run_dir / PROGRESS
    if not tf.exists() or not pf.exists():
        raise RunDirError(f"{run_dir} has no search yet ({TRIALS_JSON} missing); "
                          "start one with `moqwk search`")
    recs = json.loads(tf.read_text())
    prog = json.loads(pf.read_text())
    console = Console(highlight=False)
    console.print(trials_table(recs, limit=None if args.all else 20))
    console.print(progress_line(prog))
    return 0


def _add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", help="Optuna storage URL (default: sqlite:///RUN_DIR/study.db); "
                                     "PostgreSQL: postgresql+psycopg://USER:PW@HOST:PORT/DB")
    p.add_argument("--study-name", default="moqwk", help="study name in the storage")


def register(add) -> None:
    p = add("search", "NSGA-II over the four objectives with tail guardrails; resumable",
            cmd_search)
    p.add_argument("--config", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--n-trials", type=int, help="trial budget (default: search.n_trials or 40)")
    p.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    p.add_argument("--n-jobs", type=int, default=1, help="trials at once in this process")
    p.add_argument("--sampler", choices=["nsga2", "tpe", "random", "grid"],
                   help="override search.sampler (for comparisons)")
    p.add_argument("--baseline-from", help="a grid run dir (or selected_params.json) whose "
                                           "selected config is the baseline")
    _add_storage(p)

    p = add("status", "show the trials and progress of a running or finished search", cmd_status)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--all", action="store_true", help="every trial, not the last 20")
