"""``moqwk select``: the feasible Pareto front, the selection rule, the stability gate."""

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
from moqwk.run.layout import HTML_REPORT, STUDY_DB


def _commands(args: argparse.Namespace, run_dir: Path) -> list[str]:
    """How to redo this selection (and resume its search), from the run's own record."""
    from moqwk.run.record import read_run_record, reproduce_command

    cmd = ["moqwk", "select", "--run-dir", str(run_dir)]
    if args.storage:
        cmd += ["--storage", artifacts.mask_url(args.storage) or ""]
    if args.study_name != "moqwk":
        cmd += ["--study-name", args.study_name]
    for flag, value in (("--gate-margin", args.gate_margin),
                        ("--max-candidates", args.max_candidates),
                        ("--tie-tolerance", args.tie_tolerance)):
        if value is not None:
            cmd += [flag, str(value)]
    if args.allow_tail_regression:
        cmd += ["--allow-tail-regression", "--reason", args.reason or ""]
    out = []
    record = read_run_record(run_dir)
    if record is not None and record.is_study:
        out.append(" ".join(shlex.quote(c) for c in reproduce_command(run_dir, record))
                   + "  # resumes the study; finished trials are kept")
    out.append(" ".join(shlex.quote(c) for c in cmd))
    return out


def run(args: argparse.Namespace) -> int:
    from moqwk.console.views import show_selection
    from moqwk.run.workspace import Workspace
    from moqwk.selector import options_from, run_selection

    run_dir = Path(args.run_dir)
    start = (f"select works on a search or grid run: start one with `moqwk search --config "
             f"CONFIG --run-dir {shlex.quote(str(run_dir))}` (or `moqwk grid`), then select")
    if args.storage is None and not (run_dir / STUDY_DB).exists():
        # before the config is recorded there: a failed select writes nothing
        raise RunDirError(f"{run_dir} has no {STUDY_DB}; {start}, or pass the study's --storage")
    config = config_for_run(args, level="scoring", first=start)
    ws = Workspace.open(config, run_dir)
    opts = options_from(config.select, tie_tolerance=args.tie_tolerance,
                        gate_margin=args.gate_margin, max_gate_candidates=args.max_candidates,
                        allow_tail_regression=args.allow_tail_regression, reason=args.reason,
                        storage=args.storage, study_name=args.study_name)
    console = make_console()
    record, _sel = run_selection(ws, opts, commands=_commands(args, run_dir),
                                 progress=progress_for(args, console))
    html = ws.run_dir / HTML_REPORT
    show_selection(console, record, ws.run_dir, html_report=html if html.exists() else None)
    return 0


def register(add) -> None:
    p = add("select", "choose one trial: feasible front, lexicographic rule, stability gate", run)
    add_config(p)
    add_run_dir(p)
    p.add_argument("--tie-tolerance", type=float,
                   help="worst-prompt QWK tie band (default: estimated by bootstrap; 0 = strict)")
    p.add_argument("--gate-margin", type=float, help="largest allowed regression in the gate")
    p.add_argument("--max-candidates", type=int, help="candidates tried in the gate (default 3)")
    p.add_argument("--allow-tail-regression", action="store_true",
                   help="let trials that break a tail guardrail be chosen (needs --reason)")
    p.add_argument("--reason", help="why a tail regression is acceptable (recorded)")
    add_storage(p)
