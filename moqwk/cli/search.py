"""``moqwk search`` and ``moqwk grid``: run (or resume) a study in a run directory."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from moqwk.cli._common import add_config, add_run_dir, add_storage, progress_for
from moqwk.console import make_console
from moqwk.study.samplers import SAMPLERS


def _run(args: argparse.Namespace, *, sampler: str | None) -> int:
    from moqwk._api.shown import run_search_shown
    from moqwk._api.study import prepare_search
    from moqwk.run.record import read_run_record, reproduce_command

    run_dir = Path(args.run_dir)
    ws, opts = prepare_search(
        config=args.config, run_dir=run_dir, n_trials=getattr(args, "n_trials", None),
        sampler=sampler, seed=args.seed, timeout=args.timeout, n_jobs=args.n_jobs,
        storage=args.storage, study_name=args.study_name,
        baseline_from=getattr(args, "baseline_from", None))
    console = make_console()
    run_search_shown(console, ws, opts, progress=progress_for(args, console))
    record = read_run_record(run_dir)
    nxt = ["moqwk", "select", "--run-dir", str(run_dir)]
    if record is not None and record.storage:
        nxt += ["--storage", record.storage, "--study-name", record.study_name]
    console.print("Next: " + " ".join(shlex.quote(c) for c in nxt))
    if record is not None:
        console.print("Resume or re-check: "
                      + " ".join(shlex.quote(c) for c in reproduce_command(run_dir, record)))
    return 0


def run_search_cmd(args: argparse.Namespace) -> int:
    return _run(args, sampler=args.sampler)


def run_grid_cmd(args: argparse.Namespace) -> int:
    return _run(args, sampler="grid")


def _common(p: argparse.ArgumentParser) -> None:
    add_config(p)
    add_run_dir(p)
    p.add_argument("--seed", type=int, help="the sampler's seed (overrides search.seed)")
    p.add_argument("--n-jobs", type=int, help="trials at once in this process (default: "
                                              "search.n_jobs, else the usable cores)")
    p.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    add_storage(p)


def register(add) -> None:
    p = add("search", "NSGA-II over the four objectives with tail guardrails; resumable",
            run_search_cmd)
    _common(p)
    p.add_argument("--n-trials", type=int, help="the study's trial budget (default: the run's "
                                                "recorded budget, else search.n_trials)")
    p.add_argument("--sampler", choices=[n for n in SAMPLERS if n != "grid"],
                   help="override search.sampler (for comparisons; a run keeps its sampler)")
    p.add_argument("--baseline-from", help="a grid run dir (or selected_params.json) whose "
                                           "selected pipeline (params, mapping, features.*) "
                                           "is the baseline, trial 0")

    p = add("grid", "the fixed-grid baseline: every grid point through the same CV, objectives "
                    "and guardrails, in the same run layout (select works on it unchanged)",
            run_grid_cmd)
    _common(p)
