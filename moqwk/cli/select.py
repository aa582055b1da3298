"""``moqwk select``: the feasible Pareto front, the selection rule, the stability gate."""

from __future__ import annotations

import argparse
from pathlib import Path

from moqwk.cli._common import add_config, add_run_dir, add_storage, progress_for
from moqwk.console import make_console


def run(args: argparse.Namespace) -> int:
    from moqwk._api.study import select
    from moqwk.console.views import show_selection

    run_dir = Path(args.run_dir)
    console = make_console()
    result = select(run_dir=run_dir, config=args.config, tie_tolerance=args.tie_tolerance,
                    gate_margin=args.gate_margin, max_candidates=args.max_candidates,
                    allow_tail_regression=args.allow_tail_regression, reason=args.reason,
                    storage=args.storage, study_name=args.study_name,
                    progress=progress_for(args, console))
    show_selection(console, dict(result.record), run_dir,
                   html_report=result.paths.get("report"))
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
