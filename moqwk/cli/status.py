"""``moqwk status``: the trials and progress of a running or finished search."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from moqwk.cli._common import add_run_dir
from moqwk.console import make_console

#: What a watched log reports a change of (elapsed time and ETA change at every refresh).
COUNTS = ("complete", "failed", "pruned", "interrupted", "running", "waiting", "feasible", "target")


def run(args: argparse.Namespace) -> int:
    from moqwk.console.live import progress_line, progress_text
    from moqwk.console.tables import trials_table
    from moqwk.stages.status import read_status

    run_dir = Path(args.run_dir)
    console = make_console()

    def view():  # type: ignore[no-untyped-def]
        st = read_status(run_dir, storage=args.storage, study_name=args.study_name)
        table = trials_table(st.records, limit=None if args.all else 20,
                             objectives=st.objectives)
        return st, table

    st, table = view()
    if args.watch is None:
        console.print(table)
        console.print(progress_line(st.progress))
        return 0
    if console.is_terminal:
        from rich.console import Group
        from rich.live import Live

        with Live(Group(table, progress_line(st.progress)), console=console,
                  refresh_per_second=1) as live:
            while not st.finished:
                time.sleep(args.watch)
                st, table = view()
                live.update(Group(table, progress_line(st.progress)))
    else:  # a log: one line each time the counts change (not each time the clock ticks)
        last: tuple | None = None
        while True:
            counts = tuple(st.progress[k] for k in COUNTS)
            if counts != last:
                console.print(progress_text(st.progress))
                last = counts
            if st.finished:
                break
            time.sleep(args.watch)
            st, table = view()
        console.print(table)
    console.print("The study has used its budget.")
    return 0


def register(add) -> None:
    p = add("status", "show the trials and progress of a running or finished search, read "
                      "from its study (every worker's trials)", run)
    add_run_dir(p)
    p.add_argument("--all", action="store_true", help="every trial, not the last 20")
    p.add_argument("--watch", type=float, nargs="?", const=2.0, metavar="SECONDS",
                   help="refresh every SECONDS (default 2) until the budget is used; Ctrl-C "
                        "stops watching")
    p.add_argument("--storage", help="the study's storage URL (default: the run's own)")
    p.add_argument("--study-name", help="study name (default: the run's)")
