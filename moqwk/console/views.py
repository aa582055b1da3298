"""What each command prints, built from the renderables in :mod:`moqwk.console.tables`."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from moqwk.console.live import live_view, progress_short
from moqwk.console.progress import stamp
from moqwk.console.tables import (
    compare_table,
    front_table,
    prompt_table,
    summary_table,
    trial_line,
    trials_table,
)
from moqwk.core.metrics import CVMetrics
from moqwk.core.objectives import ObjectiveSet, metric
from moqwk.reports.markdown import objectives_of
from moqwk.run.layout import BASELINE_OOF, SELECTED, SUMMARY


def show_cv(console: Console, metrics: CVMetrics, *, title: str, limit: int | None = None,
            prompts_title: str = "Per-prompt QWK (worst first)") -> None:
    console.print(prompt_table(metrics, limit=limit, title=prompts_title))
    console.print(summary_table(metrics, title=title))


class _OptunaLogsAboveLive:
    """Optuna's log lines (a failed trial) printed above the live table, not into it.

    Optuna's handler writes to the ``sys.stderr`` it was created with, past the live view's
    redirection: a line written there moved the cursor, and the transient view then erased the
    wrong lines, leaving its header behind. While the view runs, the handler writes to the
    redirected ``sys.stderr``, which prints above it.
    """

    def __init__(self) -> None:
        self._saved: list[tuple[logging.StreamHandler, Any]] = []

    def start(self) -> None:
        _echo_control_chars(False)
        for h in logging.getLogger("optuna").handlers:
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                old = h.setStream(sys.stderr)  # None: it writes there already
                if old is not None:
                    self._saved.append((h, old))

    def stop(self) -> None:
        for h, stream in self._saved:
            h.setStream(stream)
        self._saved.clear()
        _echo_control_chars(True)


def _echo_control_chars(on: bool) -> None:
    """Whether the terminal echoes Ctrl-C as ``^C``. Off while the live table runs: the echo
    landed after the table's last, full-width line, wrapped, and the transient table then
    erased one line too few, leaving its title behind."""
    try:
        import termios
    except ImportError:  # not a POSIX terminal
        return
    try:
        fd = sys.stdin.fileno()
        if not os.isatty(fd):
            return
        attrs = termios.tcgetattr(fd)
        attrs[3] = attrs[3] | termios.ECHOCTL if on else attrs[3] & ~termios.ECHOCTL
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except (OSError, ValueError, AttributeError, termios.error):
        pass


class SearchView:
    """What ``moqwk search`` shows while a search runs: a live table on a terminal, one line
    per finished trial (and per fold of a running trial) in a log.

    It renders; it does not run anything. The caller runs the search inside ``with view:``
    with :meth:`update` as its ``on_update`` callback, then hands :meth:`finished` the trial
    records (or :meth:`interrupted` those written so far, on Ctrl-C). The live table starts
    with the first update, so it never shares the screen with the fold-feature progress shown
    before the first trial. ``shared``: the study lives in a storage other workers may share,
    so each log line names the worker of its trial.
    """

    def __init__(self, console: Console, objectives: ObjectiveSet, *, shared: bool = False):
        self.console = console
        self.objectives = objectives
        self.shared = shared
        self.first: dict | None = None  # the progress before any trial of this run
        self._seen: set[int] = set()
        self._live: Any = None
        self._logs = _OptunaLogsAboveLive()

    def __enter__(self) -> SearchView:
        if self.console.is_terminal:
            from rich.live import Live

            self._live = Live(console=self.console, refresh_per_second=2, transient=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._logs.stop()
            self._live.stop()

    def update(self, recs: list[dict], prog: dict) -> None:
        """The search's ``on_update``: the trial records and the progress so far."""
        if self.first is None:
            self.first = dict(prog)
        if self._live is not None:
            self._live.update(live_view(recs, prog, objectives=self.objectives))
            if not self._live.is_started:
                self._live.start()
                self._logs.start()
            return
        ev = prog.get("fold_event")
        if ev:  # one line per fold of a running trial
            self.console.print(f"{stamp()}trial {ev['trial']:>3} fold {ev['done']}/{ev['total']}")
        new = [r for r in recs if r["number"] not in self._seen
               and r["state"] not in ("running", "waiting")]
        # A study several workers share (a --storage, or trials of another process): each
        # worker's log lists every worker's trials, so each line says who ran it.
        shared = self.shared or len({r.get("worker") for r in recs if r.get("worker")}) > 1
        for r in new:
            self._seen.add(r["number"])
            self.console.print(stamp() + trial_line(r, self.objectives.names, worker=shared)
                               + "  [" + progress_short(prog) + "]")

    def interrupted(self, records: list[dict]) -> None:
        """Ctrl-C: the live view is transient, so leave the trials finished so far on a
        terminal's screen (a log has printed them already)."""
        if self.console.is_terminal:
            self.console.print(trials_table(records, limit=None, objectives=self.objectives,
                                            title="Trials so far (* = feasible Pareto front)"))

    def finished(self, records: list[dict], study_name: str) -> None:
        """The full trial table, and a note when the budget was used before this run."""
        self.console.print(trials_table(records, limit=None, objectives=self.objectives,
                                        title=f"Study {study_name}: all trials "
                                              "(* = feasible Pareto front)"))
        before = self.first
        if before is not None and before["complete"] + before["failed"] >= before["target"]:
            self.console.print(f"The study had already used its budget ({before['target']} "
                               "trials): no new trial ran. Raise it with --n-trials to run more.")


def show_selection(console: Console, record: dict, run_dir: Path, *,
                   html_report: Path | None = None) -> None:
    """What ``moqwk select`` prints. ``html_report``: the HTML report the selection wrote, if
    any (the caller knows; this view never looks at the disk, whose working directory may hold
    another run of the same name)."""
    objectives = objectives_of(record)
    from moqwk.reports.decision import decision_sentences, unfinished_sentence

    console.print(front_table(record, objectives))
    for sentence in decision_sentences(record):
        style = "yellow" if sentence == unfinished_sentence(record) else None
        console.print(sentence, style=style)
    if record["tail_tradeoff"]:
        console.print(f"[yellow]Tail regression allowed: {record['tail_regression_reason']}[/]")
    console.print(f"wrote {run_dir / SELECTED}, {run_dir / BASELINE_OOF} and {run_dir / SUMMARY}")
    if html_report is not None:
        console.print(f"report with figures: {html_report}")


def _joint_line(joint: dict | None) -> str:
    if not joint or joint.get("ok", True):
        return ""
    return (f"; but the losses lean one way: {joint['mean_standardised_loss']:.2f} SE worse on "
            f"average (joint limit {joint['limit']:g})")


def show_compare(console: Console, record: dict, out: Path) -> None:
    console.print(compare_table(record, objectives_of(record)))
    for r in record["runs"]:
        if r.get("unfinished"):
            console.print(f"{r['run_dir']}: {r['unfinished']}", style="yellow")
    if any(r.get("transductive") for r in record["runs"]):
        console.print("* transductive mapping: each essay's score depends on the other essays of "
                      "its prompt scored with it (fresh folds score them in the mapping's declared "
                      "batch, mapping.batch in its params)")
    v = record.get("verdict")
    if v:
        ties = [metric(m).label for m, c in v.get("checks", {}).items() if c.get("tie")]
        worse = [metric(m).label for m, c in v.get("checks", {}).items() if not c.get("ok")]
        console.print(f"Verdict on fresh folds: {v['first']} vs {v['second']}: "
                      f"{'MET' if v['met'] else 'NOT met'}"
                      + (f"; worse beyond noise on {', '.join(worse)}" if worse else "")
                      + (f"; within noise (a tie) on {', '.join(ties)}" if ties else "")
                      + _joint_line(v.get("joint")))
    console.print(f"wrote {out / 'compare.md'} and {out / 'compare.json'}")
