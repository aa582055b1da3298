"""The self-contained HTML report of a run: ``reports/optuna_summary.html`` and its figures.

``build_report(run_dir)`` reads the run's artifacts (:mod:`.load`), computes what the figures
draw (:mod:`.summaries`), draws them (:mod:`.figures`), and writes, each atomically:

- ``reports/optuna_summary.html``: one file, no script, no network, figures inline as SVG
  (:mod:`.page`);
- ``reports/figures/NAME.svg`` and ``NAME.png`` for papers and slides.

``moqwk select`` calls it after writing its artifacts and links the figures from
``optuna_summary.md``; ``moqwk report`` rebuilds it (for example after ``moqwk compare``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from moqwk.base import artifacts
from moqwk.base.progress import NO_PROGRESS, Progress
from moqwk.core.objectives import metric
from moqwk.reports.decision import decision_sentences
from moqwk.reports.html import figures as fig_mod
from moqwk.reports.html import summaries
from moqwk.reports.html.load import RunData, load_run, scale_arrays
from moqwk.reports.html.page import Rendered, page, render
from moqwk.reports.markdown import FigureLink
from moqwk.reports.words import count
from moqwk.run.layout import FIGURES_DIR, HTML_REPORT

#: Every figure name this module may write (stale ones are removed when a figure is dropped).
FIGURE_NAMES = ("pareto_front", "per_prompt_qwk", "calibration", "search_history",
                "in_sample_vs_fresh")
DEFAULT_N_BOOT = 1000

__all__ = ["DEFAULT_N_BOOT", "FIGURE_NAMES", "Report", "RunData", "build_figures",
           "build_report", "load_run"]


@dataclass(frozen=True)
class Report:
    """What :func:`build_report` wrote: the page, and each figure (for Markdown links)."""

    html: Path
    figures: list[FigureLink] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def build_figures(data: RunData, *, n_boot: int = DEFAULT_N_BOOT) -> list[fig_mod.BuiltFigure]:
    """Every figure the run's records allow, in page order; what is left out gets a note."""
    sel = data.selection
    obj = data.objectives
    guard = sel.get("guardrails") or (data.study or {}).get("guardrails")
    out = [fig_mod.pareto_projections(
        data.trials, objectives=obj, front=data.front, baseline=data.baseline_number,
        selected=data.selected_number, tie_band=summaries.tie_band(sel, obj.primary),
        guardrails=guard)]
    out += _oof_figures(data, n_boot=n_boot)
    out.append(fig_mod.search_history(
        data.trials, objectives=obj, baseline=data.baseline_number,
        selected=data.selected_number, guardrails=guard))
    if sel.get("selection_bias"):
        out.append(fig_mod.selection_bias(sel, objectives=obj, compare=data.compare,
                                          this_run=str(data.run_dir)))
    if data.compare and data.compare.get("runs"):
        out.append(fig_mod.in_sample_vs_fresh(data.compare, objectives=obj,
                                              this_run=str(data.run_dir)))
    else:
        data.notes.append(
            "No compare.json found: the in-sample numbers above come from the folds the search "
            "chose on, so they flatter the winner. `moqwk compare RUN_DIR --out RUN_DIR/compare` "
            "re-scores the selected config on fresh folds; `moqwk report --run-dir RUN_DIR` then "
            "adds an in-sample against fresh figure (or pass it --compare PATH).")
    return out


def _oof_figures(data: RunData, *, n_boot: int) -> list[fig_mod.BuiltFigure]:
    cv = data.cv_metrics
    if not data.oof or cv is None:
        if cv is None:
            data.notes.append("No artifacts/cv_metrics.json: the per-prompt and calibration "
                              "figures are left out.")
        return []
    configs: dict[str, pd.DataFrame] = {k: data.oof[k] for k in ("baseline", "selected")
                                        if k in data.oof}
    if data.selected_number == data.baseline_number and "selected" in configs:
        configs.pop("baseline", None)  # one config: drawing it twice would suggest two
        data.notes.append(f"The selected trial is the baseline (trial {data.baseline_number}): "
                          "the per-prompt and calibration figures show it once.")
    first = next(iter(configs.values()))
    essays = first[first["repeat"] == 0]
    lo, hi, step = scale_arrays(essays["prompt"].to_numpy(str), cv["scale"])
    n_levels = {r["prompt"]: int(r["n_levels"]) for r in cv["per_prompt"]}
    seed = int(((data.study or {}).get("seeds") or {}).get("cv", 0))
    table = summaries.per_prompt_qwk(configs, lo=lo, step=step, n_levels=n_levels,
                                     n_boot=n_boot, seed=seed)
    out = [fig_mod.per_prompt(table, min_prompt_n=int(cv["min_prompt_n"]), n_boot=n_boot,
                              seed=seed)]
    per_prompt_scale = cv["scale"].get("kind") != "global"
    curves = {k: summaries.calibration(v, lo=lo, hi=hi, normalise=per_prompt_scale)
              for k, v in configs.items()}
    raw = None
    if "selected" in configs and "y_pred_raw" in configs["selected"].columns:
        raw = summaries.calibration(configs["selected"], lo=lo, hi=hi,
                                    normalise=per_prompt_scale, column="y_pred_raw")
    tails = summaries.tail_levels(essays)
    if per_prompt_scale:
        tails = (None, None)  # tails differ by prompt on their own scales; not one column
    units = "normalised: 0 = bottom of the prompt's scale" if per_prompt_scale else "rubric points"
    out.append(fig_mod.calibration(curves, units=units, tails=tails, raw=raw))
    return out


def _summary(data: RunData) -> tuple[list[str], list[list[str]]]:
    sel = data.selection
    names = data.objectives.names
    header = ["config", *[metric(o).label for o in names]]
    base = sel["baseline"]
    rows = [[f"baseline (trial {base['trial_number']})",
             *[metric(o).format(base["values"].get(o)) for o in names]]]
    if sel.get("values"):
        rows.append([f"selected (trial {sel['trial_number']})",
                     *[metric(o).format(sel["values"].get(o)) for o in names]])
    return header, rows


def build_report(run_dir: Path, *, selection: Mapping | None = None,
                 trials: Sequence[Mapping[str, Any]] | None = None, storage: str | None = None,
                 study_name: str = "moqwk", compare: Path | None = None,
                 n_boot: int = DEFAULT_N_BOOT, progress: Progress = NO_PROGRESS) -> Report:
    """Write the HTML report and the figure files; return what was written.

    ``selection`` and ``trials`` are the records to report (``select`` passes the ones it has
    just decided on); without them the run's latest selection file and ``optuna_trials.json``
    are read. ``progress`` sees the figures being rendered (SVG and PNG; most of the time a
    report takes).
    """
    run_dir = Path(run_dir)
    data = load_run(run_dir, selection=selection, trials=trials, storage=storage,
                    study_name=study_name, compare=compare)
    built = build_figures(data, n_boot=n_boot)
    rendered: list[Rendered] = []
    with progress.stage(f"HTML report ({HTML_REPORT})", total=len(built),
                        unit="figures") as st:
        for b in built:
            rendered.append(render(b))
            st.advance()
    fig_dir = run_dir / FIGURES_DIR
    for r in rendered:
        artifacts.write_bytes(fig_dir / f"{r.name}.svg", r.svg)
        artifacts.write_bytes(fig_dir / f"{r.name}.png", r.png)
    kept = {r.name for r in rendered}
    for name in FIGURE_NAMES:
        if name not in kept:
            for ext in ("svg", "png"):
                (fig_dir / f"{name}.{ext}").unlink(missing_ok=True)

    sel = data.selection
    n_done = sum(t.state == "complete" for t in data.trials)
    n_pruned = sum(t.state == "pruned" for t in data.trials)
    pruned = (f" ({n_pruned} stopped early by fold racing, left out of the front)"
              if n_pruned else "")
    study = data.study or {}
    verdict = ("no trial selected: no candidate passed the stability gate"
               if data.selected_number is None else f"selected trial {data.selected_number}")
    subtitle = (f"Study {study.get('study_name', sel.get('study', {}).get('name', '?'))}: "
                f"{n_done} complete of {count(len(data.trials), 'trial')}{pruned}; {verdict}. "
                "In-sample numbers (the search's own prompt-holdout folds).")
    header, rows = _summary(data)
    footer = ["Read from " + ", ".join(f"{k}: {v}" for k, v in sorted(data.sources.items()))
              + "."]
    hashes = sel.get("hashes") or {}
    if hashes:
        footer.append(f"Config hash {str(hashes.get('config', ''))[:12]}, data hash "
                      f"{str(hashes.get('data', ''))[:12]}.")
    versions = sel.get("versions") or {}
    if versions:
        footer.append("Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())
                                               if k != "platform") + ".")
    footer.append(f"Rebuild: moqwk report --run-dir {run_dir}")
    text = page(title=f"moqwk search report: {run_dir.name}", subtitle=subtitle,
                decision=decision_sentences(sel), summary_header=header, summary_rows=rows,
                figures=rendered, notes=data.notes, footer=footer)
    html = artifacts.write_text(run_dir / HTML_REPORT, text)
    return Report(html, [FigureLink(r.name, r.title, r.caption) for r in rendered],
                  list(data.notes))
