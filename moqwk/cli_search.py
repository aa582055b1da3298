"""CLI commands of the search and selection stages (search, status, select, grid, compare)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from moqwk.errors import RunDirError


def search_with_display(ws, opts, console):
    """Run the search with a live table on a terminal, one line per trial otherwise."""
    from rich.live import Live

    from moqwk.live import live_view, trials_table
    from moqwk.search import run_search

    if console.is_terminal:
        with Live(console=console, refresh_per_second=2, transient=True) as live:
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
                tail = (f" feasible={'yes' if r['feasible'] else 'no'}" if v
                        else f" ({r['failure_reason'] or r['state']})")
                console.print(f"trial {r['number']:>3} {r['state']:<11} "
                              + " ".join(f"{k}={v[k]:.3f}" for k in v) + tail)

        study = run_search(ws, opts, on_update=line)
    recs = [r for r in _records_of(ws.run_dir)]
    console.print(trials_table(recs, limit=None, title=f"Study {study.study_name}: all trials "
                                                       "(* = feasible Pareto front)"))
    return study


def _records_of(run_dir: Path) -> list[dict]:
    from moqwk.search import TRIALS_JSON

    return json.loads((run_dir / TRIALS_JSON).read_text())


def cmd_search(args: argparse.Namespace) -> int:
    from rich.console import Console

    from moqwk.cli import _load
    from moqwk.runs import Workspace
    from moqwk.search import DEFAULT_N_TRIALS, SearchOptions

    config = _load(args)
    ws = Workspace.open(config, Path(args.run_dir))
    n_trials = args.n_trials or int(config.search.get("n_trials", DEFAULT_N_TRIALS))
    baseline, source = None, "config"
    if args.baseline_from:
        baseline, source = _baseline_from(Path(args.baseline_from))
    timeout = args.timeout if args.timeout is not None else config.search.get("timeout")
    n_jobs = args.n_jobs if args.n_jobs is not None else int(config.search.get("n_jobs", 1))
    opts = SearchOptions(n_trials=n_trials, timeout=timeout, n_jobs=n_jobs,
                         storage=args.storage, study_name=args.study_name,
                         sampler=args.sampler, baseline_params=baseline,
                         baseline_source=source)
    console = Console(highlight=False)
    search_with_display(ws, opts, console)
    console.print(f"Next: moqwk select --config {args.config} --run-dir {args.run_dir}")
    return 0


def cmd_grid(args: argparse.Namespace) -> int:
    from rich.console import Console

    from moqwk.cli import _load
    from moqwk.runs import Workspace
    from moqwk.search import SearchOptions

    config = _load(args)
    ws = Workspace.open(config, Path(args.run_dir))
    console = Console(highlight=False)
    search_with_display(ws, SearchOptions(n_trials=1, storage=args.storage,
                                          study_name=args.study_name, sampler="grid",
                                          n_jobs=args.n_jobs), console)
    console.print(f"Next: moqwk select --config {args.config} --run-dir {args.run_dir}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from moqwk.cli import _load
    from moqwk.compare import compare_runs
    from moqwk.reports import fmt

    config = _load(args)
    out = Path(args.out)
    seed = args.fresh_seed if args.fresh_seed is not None else config.cv.seed + 1000
    record = compare_runs(config, [Path(d) for d in args.run_dirs], out, seed=seed,
                          repeats=args.fresh_repeats)
    table = Table(title=f"Selected configs; fresh = prompt-holdout seed {seed}, "
                        f"{args.fresh_repeats} repeat(s)", title_justify="left")
    for col in ("run", "sampler", "trial", "worst QWK (in/fresh)", "mean QWK (in/fresh)",
                "low MAE", "high MAE", "gate"):
        table.add_column(col)
    for r in record["runs"]:
        i, f = r["in_sample"], r["fresh"]
        table.add_row(r["run_dir"], r["sampler"], str(r["trial_number"]),
                      f"{fmt(i['worst_prompt_qwk'])} / {fmt(f['worst_prompt_qwk'])}",
                      f"{fmt(i['mean_qwk'])} / {fmt(f['mean_qwk'])}",
                      fmt(f["low_tail_mae"]), fmt(f["high_tail_mae"]),
                      "pass" if r["gate_passed"] else "fail")
    console = Console(highlight=False)
    console.print(table)
    v = record.get("verdict")
    if v:
        console.print(f"Verdict on fresh folds: {v['first']} vs {v['second']}: "
                      f"{'MET' if v['met'] else 'NOT met'}")
    console.print(f"wrote {out / 'compare.md'} and {out / 'compare.json'}")
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


def cmd_select(args: argparse.Namespace) -> int:
    import shlex

    from rich.console import Console

    from moqwk.cli import _load
    from moqwk.runs import Workspace
    from moqwk.selector import options_from, run_selection

    config = _load(args)
    ws = Workspace.open(config, Path(args.run_dir))
    opts = options_from(config.select, tie_tolerance=args.tie_tolerance,
                        gate_margin=args.gate_margin, max_gate_candidates=args.max_candidates,
                        allow_tail_regression=args.allow_tail_regression, reason=args.reason,
                        storage=args.storage, study_name=args.study_name)
    from moqwk.artifacts import mask_url

    cmd = ["moqwk", "select", "--config", args.config, "--run-dir", args.run_dir]
    if args.storage:
        cmd += ["--storage", mask_url(args.storage) or ""]
    if args.study_name != "moqwk":
        cmd += ["--study-name", args.study_name]
    if args.gate_margin is not None:
        cmd += ["--gate-margin", str(args.gate_margin)]
    if args.max_candidates is not None:
        cmd += ["--max-candidates", str(args.max_candidates)]
    if args.tie_tolerance is not None:
        cmd += ["--tie-tolerance", str(args.tie_tolerance)]
    if args.allow_tail_regression:
        cmd += ["--allow-tail-regression", "--reason", args.reason or ""]
    search_cmd = ["moqwk", "search", "--config", args.config, "--run-dir", args.run_dir]
    if args.storage:
        search_cmd += ["--storage", mask_url(args.storage) or "", "--study-name", args.study_name]
    commands = [" ".join(shlex.quote(c) for c in search_cmd)
                + "  # resumes the study; finished trials are kept",
                " ".join(shlex.quote(c) for c in cmd)]
    console = Console(highlight=False)
    record, _sel = run_selection(ws, opts, commands=commands)
    print_selection(console, record, ws.run_dir)
    return 0


def print_selection(console, record: dict, run_dir: Path) -> None:
    from moqwk.console import front_table
    from moqwk.selector import SELECTED, SUMMARY

    console.print(front_table(record))
    crit = record.get("success_criterion") or {}
    failed = [m for m, c in crit.get("checks", {}).items() if not c.get("ok")]
    console.print(f"Selected trial {record['trial_number']}; success criterion "
                  f"{'met' if crit.get('met') else 'NOT met'} against the baseline (trial "
                  f"{record['baseline']['trial_number']})"
                  + (f": worse on {', '.join(failed)}" if failed else "") + ".")
    if record["tail_tradeoff"]:
        console.print(f"[yellow]Tail regression allowed: {record['tail_regression_reason']}[/]")
    console.print(f"wrote {run_dir / SELECTED} and {run_dir / SUMMARY}")


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
    p.add_argument("--n-jobs", type=int, help="trials at once in this process (default: "
                                              "search.n_jobs or 1)")
    p.add_argument("--sampler", choices=["nsga2", "tpe", "random", "grid"],
                   help="override search.sampler (for comparisons)")
    p.add_argument("--baseline-from", help="a grid run dir (or selected_params.json) whose "
                                           "selected config is the baseline")
    _add_storage(p)

    p = add("grid", "the fixed-grid baseline: every grid point through the same CV, objectives "
                    "and guardrails, in the same run layout (select works on it unchanged)",
            cmd_grid)
    p.add_argument("--config", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--n-jobs", type=int, default=1, help="trials at once in this process")
    _add_storage(p)

    p = add("compare", "selected configs of runs side by side, re-scored on fresh folds",
            cmd_compare)
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="runs to compare; the "
                   "verdict asks whether the first matches or beats the second")
    p.add_argument("--config", required=True, help="the config the runs share")
    p.add_argument("--out", default="compare", help="where compare.md/.json go")
    p.add_argument("--fresh-seed", type=int, help="fold seed never used by the searches "
                                                  "(default: cv.seed + 1000)")
    p.add_argument("--fresh-repeats", type=int, default=3, help="fresh fold assignments")

    p = add("select", "choose one trial: feasible front, lexicographic rule, stability gate",
            cmd_select)
    p.add_argument("--config", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--tie-tolerance", type=float,
                   help="worst-prompt QWK tie band (default: estimated by bootstrap; 0 = strict)")
    p.add_argument("--gate-margin", type=float, help="largest allowed regression in the gate")
    p.add_argument("--max-candidates", type=int, help="candidates tried in the gate (default 3)")
    p.add_argument("--allow-tail-regression", action="store_true",
                   help="let trials that break a tail guardrail be chosen (needs --reason)")
    p.add_argument("--reason", help="why a tail regression is acceptable (recorded)")
    _add_storage(p)

    p = add("status", "show the trials and progress of a running or finished search", cmd_status)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--all", action="store_true", help="every trial, not the last 20")
