"""``moqwk search`` and ``moqwk grid``: run (or resume) a study in a run directory."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from moqwk import artifacts
from moqwk.cli._common import (
    add_config,
    add_run_dir,
    add_storage,
    config_for_run,
    progress_for,
)
from moqwk.console import make_console
from moqwk.errors import RunDirError
from moqwk.study.samplers import SAMPLERS


def _baseline_from(path: Path) -> tuple[dict, str]:
    """The params selected in a grid run (its selected_params.json) to use as the baseline."""
    from moqwk.run.layout import SELECTED

    f = path / SELECTED if path.is_dir() else path
    if not f.exists():
        raise RunDirError(f"--baseline-from: {f} not found; run `moqwk select` on the grid run")
    return dict(artifacts.read_json(f)["params"]), f"selected params of {f}"


def _run(args: argparse.Namespace, *, sampler: str | None) -> int:
    from moqwk.config import load_config
    from moqwk.console.views import show_search
    from moqwk.run.record import check_run_kind, read_run_record, reproduce_command
    from moqwk.run.workspace import Workspace
    from moqwk.search import SearchOptions

    run_dir = Path(args.run_dir)
    # A change of kind or sampler (--sampler, `grid` on a search, a --config with another
    # sampler) is refused before any config comparison, with the command that resumes the run.
    asked = sampler or (load_config(args.config).search.sampler if args.config else None)
    check_run_kind(run_dir, kind="grid" if asked == "grid" else "search", sampler=asked)
    config = config_for_run(args, level="study", sampler=sampler, seed=args.seed)
    ws = Workspace.open(config, run_dir, level="study")
    baseline, source = None, "config"
    if getattr(args, "baseline_from", None):
        baseline, source = _baseline_from(Path(args.baseline_from))
    opts = SearchOptions(
        n_trials=getattr(args, "n_trials", None),
        timeout=args.timeout if args.timeout is not None else config.search.timeout,
        n_jobs=args.n_jobs if args.n_jobs is not None else config.search.n_jobs,
        storage=args.storage, study_name=args.study_name, baseline_params=baseline,
        baseline_source=source)
    console = make_console()
    show_search(console, ws, opts, progress=progress_for(args, console))
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
                                           "selected config is the baseline")

    p = add("grid", "the fixed-grid baseline: every grid point through the same CV, objectives "
                    "and guardrails, in the same run layout (select works on it unchanged)",
            run_grid_cmd)
    _common(p)
