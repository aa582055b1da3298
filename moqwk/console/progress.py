"""Progress of long work on the console: the :class:`moqwk.base.progress.Progress` the CLI
passes in.

- On a terminal, :class:`BarProgress`: a Rich progress bar per stage (what, how far, elapsed,
  time left). A finished stage stays on the screen as one completed bar.
- In a log (stdout not a terminal), :class:`LineProgress`: one plain line per stage, starting
  with the time of day (``14:03:07``). The line
  starts when the stage starts (``fold features (prompt_holdout): 5 folds ...``), so a log being
  followed says what is running, and ends with what was done and how long it took.
- ``--quiet``: :data:`moqwk.base.progress.NO_PROGRESS`, nothing at all.

:func:`make_progress` picks one for a console.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Column

from moqwk.base.progress import NO_PROGRESS, Progress, Stage
from moqwk.console.tables import duration_text


def stamp() -> str:
    """``HH:MM:SS`` and a space: what every line written to a log starts with."""
    return time.strftime("%H:%M:%S ")


def make_progress(console: Console, *, quiet: bool = False) -> Progress:
    """Bars on a terminal, one line per stage in a log, nothing with ``quiet``."""
    if quiet:
        return NO_PROGRESS
    return BarProgress(console) if console.is_terminal else LineProgress(console)


class _Counter:
    def __init__(self) -> None:
        self.done = 0

    def advance(self, n: int = 1) -> None:
        self.done += n


class LineProgress:
    """One plain line per stage: its label and size when it starts, the outcome when it ends."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._open: object | None = None  # the stage whose line is not finished yet

    @contextlib.contextmanager
    def stage(self, label: str, *, total: int, unit: str) -> Iterator[Stage]:
        if self._open is not None:  # a stage inside a stage: finish the outer line first
            self.console.print()
            self._open = None
        me = object()
        self.console.print(f"{stamp()}{label}: {total} {unit} ...", end="")
        self._open = me
        counter = _Counter()
        t0 = time.perf_counter()
        ok = False
        try:
            yield counter
            ok = True
        finally:
            secs = duration_text(time.perf_counter() - t0)
            did = (f"{counter.done} {unit}" if counter.done == total
                   else f"{counter.done} of {total} {unit}")
            if ok and counter.done < total:
                # a stage whose total is a bound (the gate stops at the first candidate that
                # passes): "done, 10 of 20 folds" read as a stage cut short
                end = f"done after {counter.done} {unit} (of up to {total}) in {secs}"
            else:
                end = f"done, {did} in {secs}" if ok else f"stopped after {did} ({secs})"
            if self._open is me:
                self.console.print(f" {end}")
            else:
                self.console.print(f"{stamp()}{label}: {end}")
            self._open = None


class _BarStage:
    def __init__(self, bars: RichProgress, task: int) -> None:
        self.bars = bars
        self.task = task

    def advance(self, n: int = 1) -> None:
        self.bars.advance(self.task, n)  # type: ignore[arg-type]


class BarProgress:
    """A Rich progress bar per stage; a stage opened inside another gets its own row."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bars: RichProgress | None = None

    def _new_bars(self) -> RichProgress:
        return RichProgress(
            # A long label is cut with an ellipsis, never wrapped: one row per stage.
            TextColumn("{task.description}",
                       table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console, transient=False, refresh_per_second=4, expand=True)

    @contextlib.contextmanager
    def stage(self, label: str, *, total: int, unit: str) -> Iterator[Stage]:
        owner = self._bars is None
        if self._bars is None:
            self._bars = self._new_bars()
            self._bars.start()
        bars = self._bars
        task = bars.add_task(label, total=max(total, 0), unit=unit)
        ok = False
        try:
            yield _BarStage(bars, task)  # type: ignore[arg-type]
            ok = True
        finally:
            done = next(t.completed for t in bars.tasks if t.id == task)
            if ok:  # a stage may end early (the gate stops at the first pass): show it full
                bars.update(task, total=done)
            else:
                bars.update(task, description=f"{label} (stopped)")
            bars.stop_task(task)
            if owner:
                bars.stop()
                self._bars = None
