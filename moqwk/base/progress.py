"""Progress of long work, reported through a small interface the library is given.

Library code that takes a while (fold features, training every fold, the stability gate,
re-scoring on fresh folds) opens a *stage* and advances it::

    with progress.stage("fold features (prompt_holdout)", total=5, unit="folds") as st:
        for fold in folds:
            ...
            st.advance()

The library only ever sees :class:`Progress`; it never imports the console. What a stage looks
like is the caller's choice: :data:`NO_PROGRESS` (the default everywhere) shows nothing, and
:mod:`moqwk.console.progress` draws a Rich bar on a terminal and writes one plain line per stage
in a log. A stage that is left by an exception is closed all the same, with what was done.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol


class Stage(Protocol):
    """One open stage: call :meth:`advance` as units of work finish."""

    def advance(self, n: int = 1) -> None: ...


class Progress(Protocol):
    """Something that shows stages of long work (see :mod:`moqwk.console.progress`)."""

    def stage(self, label: str, *, total: int,
              unit: str) -> contextlib.AbstractContextManager[Stage]: ...


class _NullStage:
    def advance(self, n: int = 1) -> None:
        pass


class NullProgress:
    """Shows nothing: the default of every library function that reports progress."""

    @contextlib.contextmanager
    def stage(self, label: str, *, total: int, unit: str) -> Iterator[Stage]:
        yield _NullStage()


NO_PROGRESS: Progress = NullProgress()
