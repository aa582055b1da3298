"""The console layer: what moqwk prints, on a terminal and in a log.

- :mod:`moqwk.console.tables`: Rich renderables (trial table, ranked front, compare, CV);
- :mod:`moqwk.console.live`: the live search view;
- :mod:`moqwk.console.views`: each command's output, built from the two above.

On a terminal, output is Rich: colours, a live table during a search. In a log (stdout not a
terminal: CI, ``nohup``, ``| tee``) lines are never hard-wrapped and table cells never cut:
one line per trial, full cells.
"""

from __future__ import annotations

import os

from rich.console import Console

#: Width of a log: wide enough that no table moqwk prints is cut or wrapped.
LOG_WIDTH = 240


def make_console(*, stderr: bool = False) -> Console:
    """A console for the command line: Rich on a terminal, unwrapped full-width text in a log."""
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return Console(stderr=stderr, highlight=False)
    width = max(LOG_WIDTH, int(os.environ.get("COLUMNS", "0") or 0))
    return Console(stderr=stderr, highlight=False, width=width, soft_wrap=True,
                   no_color=True if os.environ.get("NO_COLOR") else None)


def heading(console: Console, text: str) -> None:
    """A section heading: a rule on a terminal, one ``== text`` line in a log."""
    if console.is_terminal:
        console.rule(text)
    else:
        console.print(f"== {text}")
