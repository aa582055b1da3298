"""``moqwk report``: rebuild a run's self-contained HTML report and its figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from moqwk.cli._common import add_run_dir, add_storage, progress_for
from moqwk.console import make_console


def run(args: argparse.Namespace) -> int:
    from moqwk.reports.html import build_report
    from moqwk.run.layout import FIGURES_DIR

    run_dir = Path(args.run_dir)
    con = make_console()
    report = build_report(run_dir, storage=args.storage, study_name=args.study_name,
                          compare=Path(args.compare) if args.compare else None,
                          progress=progress_for(args, con))
    for note in report.notes:
        con.print(note, style="yellow")
    con.print(f"wrote {report.html} and {len(report.figures)} figure(s) in "
              f"{run_dir / FIGURES_DIR}")
    return 0


def register(add) -> None:
    p = add("report", "rebuild the run's self-contained HTML report and its figures "
                      "(reports/optuna_summary.html, reports/figures/); select writes them too",
            run)
    add_run_dir(p)
    p.add_argument("--compare", help="a compare.json to draw in-sample against fresh folds from "
                                     "(default: RUN_DIR/compare/compare.json if present)")
    add_storage(p)
