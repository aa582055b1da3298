"""The live search view: the last trials and a progress line (pure renderables)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from moqwk.console.tables import clock_text, trials_table
from moqwk.core.objectives import DEFAULT_OBJECTIVES, ObjectiveSet


def progress_text(prog: dict) -> str:
    done = prog["complete"] + prog["failed"]
    eta = prog.get("eta_s")
    return (f"{done}/{prog['target']} trials ({prog['complete']} complete, "
            f"{prog['failed']} failed, {prog['running']} running, {prog['feasible']} feasible)"
            f"  elapsed {clock_text(prog['elapsed_s'])}"
            f"  ETA {clock_text(eta)}")


def progress_short(prog: dict) -> str:
    """``done/target trials, ETA …``: what a log line of a finished trial ends with."""
    done = prog["complete"] + prog["failed"]
    eta = prog.get("eta_s")
    return (f"{done}/{prog['target']} trials, elapsed {clock_text(prog['elapsed_s'])}, "
            f"ETA {clock_text(eta)}")


def progress_line(prog: dict) -> Table:
    """The bar and the counts side by side; the counts wrap in their column when the console is
    narrow. (In a Group, a bar has no line end: the counts ran on past the console's width and
    were cut, losing the elapsed time and the ETA on an 80-column terminal.)"""
    done = prog["complete"] + prog["failed"]
    bar = ProgressBar(total=max(1, prog["target"]), completed=min(done, prog["target"]), width=40)
    line = Table.grid(padding=(0, 1))
    line.add_row(bar, Text(progress_text(prog)))
    return line


def live_view(records: Sequence[dict], prog: dict, *, limit: int = 15,
              objectives: ObjectiveSet = DEFAULT_OBJECTIVES) -> Group:
    return Group(trials_table(records, limit=limit, objectives=objectives), progress_line(prog))
