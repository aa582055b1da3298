"""A search run with a console view on it: what ``moqwk search``, ``grid`` and ``demo`` do.

The view (:class:`moqwk.console.views.SearchView`) only renders; this module, above both the
search and the console in the layer table (``moqwk/_layers.py``), runs the search and hands
the view what it shows.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from moqwk.base import artifacts
from moqwk.base.progress import NO_PROGRESS, Progress
from moqwk.console.views import SearchView
from moqwk.run.layout import TRIALS_JSON


def run_search_shown(console: Console, ws: Any, opts: Any, *,
                     progress: Progress = NO_PROGRESS) -> Any:
    """Run (or resume) the search of ``ws`` with ``opts``, shown on ``console``; the study.

    ``progress`` shows the fold features being built first; the trial view starts with the
    first trial. The full trial table is printed at the end, and on Ctrl-C (on a terminal)
    the trials finished so far, before the interrupt goes on.
    """
    from moqwk.stages.search_loop import run_search

    view = SearchView(console, ws.config.objectives,
                      shared=getattr(opts, "storage", None) is not None)
    trials = ws.run_dir / TRIALS_JSON
    try:
        with view:
            study = run_search(ws, opts, on_update=view.update, progress=progress)
    except KeyboardInterrupt:
        if trials.exists():
            view.interrupted(artifacts.read_json(trials))
        raise
    view.finished(artifacts.read_json(trials), study.study_name)
    return study
