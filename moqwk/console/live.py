"""The live search view: the last trials and a progress line (pure renderables).

The progress line is re-rendered on Rich's own refresh timer, not only when a trial or a fold
ends, so its elapsed time and ETA count on during a long trial (they froze before: "elapsed
9.6s ETA 2.7s" throughout a 71 s trial).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from moqwk.console.tables import clock_text, trials_table
from moqwk.core.objectives import DEFAULT_OBJECTIVES, ObjectiveSet


def _done(prog: dict) -> int:
    """Trials that used the budget: complete, failed, or stopped by fold racing."""
    return prog["complete"] + prog["failed"] + prog.get("pruned", 0)


def progress_text(prog: dict, *, since: float = 0.0) -> str:
    """The counts, elapsed time and ETA; ``since`` seconds have passed since ``prog`` was
    read (the elapsed time grows by them and the ETA shrinks, never below zero)."""
    done = _done(prog)
    eta = prog.get("eta_s")
    if eta is not None:
        eta = max(0.0, eta - since)
    pruned = f"{prog['pruned']} pruned, " if prog.get("pruned") else ""
    return (f"{done}/{prog['target']} trials ({prog['complete']} complete, {pruned}"
            f"{prog['failed']} failed, {prog['running']} running, {prog['feasible']} feasible)"
            f"  elapsed {clock_text(prog['elapsed_s'] + since)}"
            f"  ETA {clock_text(eta)}")


def folds_text(prog: dict, now: float | None = None) -> str | None:
    """The running trials' folds (``trial 7: fold 2/5, 31s``), or None when none reports."""
    now = time.time() if now is None else now
    parts = []
    for r in prog.get("running_trials") or []:
        if r.get("folds_total"):
            secs = clock_text(max(0.0, now - r.get("started", now)))
            parts.append(f"trial {r['number']}: {r.get('folds_done', 0)}/{r['folds_total']} "
                         f"folds, {secs}")
    return "; ".join(parts) or None


def progress_short(prog: dict) -> str:
    """``done/target trials, ETA …``: what a log line of a finished trial ends with."""
    done = _done(prog)
    eta = prog.get("eta_s")
    return (f"{done}/{prog['target']} trials, elapsed {clock_text(prog['elapsed_s'])}, "
            f"ETA {clock_text(eta)}")


def progress_line(prog: dict, *, since: float = 0.0) -> Table:
    """The bar and the counts side by side; the counts wrap in their column when the console is
    narrow. (In a Group, a bar has no line end: the counts ran on past the console's width and
    were cut, losing the elapsed time and the ETA on an 80-column terminal.) Below, a bar of
    the folds of each running trial."""
    done = _done(prog)
    bar = ProgressBar(total=max(1, prog["target"]), completed=min(done, prog["target"]), width=40)
    line = Table.grid(padding=(0, 1))
    line.add_row(bar, Text(progress_text(prog, since=since)))
    for r in prog.get("running_trials") or []:
        total = r.get("folds_total")
        if total:
            fold_bar = ProgressBar(total=total, completed=r.get("folds_done", 0), width=40)
            line.add_row(fold_bar, Text(folds_text({"running_trials": [r]}) or ""))
    return line


class LiveFooter:
    """The progress line, rendered afresh at each refresh of a ``rich.live.Live`` (its
    elapsed time and the running trials' clocks keep counting between updates)."""

    def __init__(self, prog: dict) -> None:
        self.prog = prog
        self.at = time.monotonic()

    def __rich__(self) -> Table:
        return progress_line(self.prog, since=time.monotonic() - self.at)


def live_view(records: Sequence[dict], prog: dict, *, limit: int = 15,
              objectives: ObjectiveSet = DEFAULT_OBJECTIVES) -> Group:
    return Group(trials_table(records, limit=limit, objectives=objectives), LiveFooter(prog))
