"""What each command prints, built from the renderables in :mod:`moqwk.console.tables`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from moqwk import artifacts
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
from moqwk.progress import NO_PROGRESS, Progress
from moqwk.reports.markdown import objectives_of
from moqwk.run.layout import BASELINE_OOF, HTML_REPORT, SELECTED, SUMMARY, TRIALS_JSON


def show_cv(console: Console, metrics: CVMetrics, *, title: str, limit: int | None = None,
            prompts_title: str = "Per-prompt QWK (worst first)") -> None:
    console.print(prompt_table(metrics, limit=limit, title=prompts_title))
    console.print(summary_table(metrics, title=title))


def show_search(console: Console, ws: Any, opts: Any, *,
                progress: Progress = NO_PROGRESS) -> Any:
    """Run the search: a live table on a terminal, one line per finished trial in a log.

    Returns the study. The full trial table is printed at the end either way. ``progress``
    shows the fold features being built first; the live table starts with the first trial, so
    the two never share the screen.
    """
    from rich.live import Live

    from moqwk.search import run_search

    objectives: ObjectiveSet = ws.config.objectives
    first: list[dict] = []  # the progress before any trial of this call ran

    def remember(prog: dict) -> None:
        if not first:
            first.append(dict(prog))

    if console.is_terminal:
        live = Live(console=console, refresh_per_second=2, transient=True)
        try:
            def view(recs: list[dict], prog: dict) -> None:
                remember(prog)
                live.update(live_view(recs, prog, objectives=objectives))
                if not live.is_started:
                    live.start()

            try:
                study = run_search(ws, opts, on_update=view, progress=progress)
            finally:
                live.stop()
        except KeyboardInterrupt:
            # The live view is transient: leave the trials finished so far on the screen.
            path = ws.run_dir / TRIALS_JSON
            if path.exists():
                console.print(trials_table(artifacts.read_json(path), limit=None,
                                           objectives=objectives,
                                           title="Trials so far (* = feasible Pareto front)"))
            raise
    else:
        seen: set[int] = set()

        def line(recs: list[dict], prog: dict) -> None:
            remember(prog)
            ev = prog.get("fold_event")
            if ev:  # one line per fold of a running trial
                console.print(f"{stamp()}trial {ev['trial']:>3} fold {ev['done']}/{ev['total']}")
            new = [r for r in recs if r["number"] not in seen
                   and r["state"] not in ("running", "waiting")]
            for r in new:
                seen.add(r["number"])
                console.print(stamp() + trial_line(r, objectives.names) + "  ["
                              + progress_short(prog) + "]")

        study = run_search(ws, opts, on_update=line, progress=progress)
    console.print(trials_table(artifacts.read_json(ws.run_dir / TRIALS_JSON), limit=None,
                               objectives=objectives,
                               title=f"Study {study.study_name}: all trials "
                                     "(* = feasible Pareto front)"))
    before = first[0] if first else None
    if before is not None and before["complete"] + before["failed"] >= before["target"]:
        console.print(f"The study had already used its budget ({before['target']} trials): no "
                      "new trial ran. Raise it with --n-trials to run more.")
    return study


def show_selection(console: Console, record: dict, run_dir: Path) -> None:
    objectives = objectives_of(record)
    from moqwk.reports.decision import decision_sentences, unfinished_sentence

    console.print(front_table(record, objectives))
    for sentence in decision_sentences(record):
        style = "yellow" if sentence == unfinished_sentence(record) else None
        console.print(sentence, style=style)
    if record["tail_tradeoff"]:
        console.print(f"[yellow]Tail regression allowed: {record['tail_regression_reason']}[/]")
    console.print(f"wrote {run_dir / SELECTED}, {run_dir / BASELINE_OOF} and {run_dir / SUMMARY}")
    if (run_dir / HTML_REPORT).exists():
        console.print(f"report with figures: {run_dir / HTML_REPORT}")


def show_compare(console: Console, record: dict, out: Path) -> None:
    console.print(compare_table(record, objectives_of(record)))
    for r in record["runs"]:
        if r.get("unfinished"):
            console.print(f"{r['run_dir']}: {r['unfinished']}", style="yellow")
    if any(r.get("transductive") for r in record["runs"]):
        console.print("* transductive mapping: each essay's score depends on the other essays of "
                      "its prompt scored with it (fresh folds score each prompt as a batch)")
    v = record.get("verdict")
    if v:
        ties = [metric(m).label for m, c in v.get("checks", {}).items() if c.get("tie")]
        worse = [metric(m).label for m, c in v.get("checks", {}).items() if not c.get("ok")]
        console.print(f"Verdict on fresh folds: {v['first']} vs {v['second']}: "
                      f"{'MET' if v['met'] else 'NOT met'}"
                      + (f"; worse beyond noise on {', '.join(worse)}" if worse else "")
                      + (f"; within noise (a tie) on {', '.join(ties)}" if ties else ""))
    console.print(f"wrote {out / 'compare.md'} and {out / 'compare.json'}")
