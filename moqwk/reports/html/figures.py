"""One builder per figure of the HTML report: plain records in, a figure and its caption out.

Builders use matplotlib's object API (``Figure``, no pyplot state), so they are safe to call from
any thread and leave nothing open. Colours are the Okabe-Ito palette (distinct under the common
colour-vision deficiencies), and every highlighted thing also differs by marker shape.

Objective names, labels and directions come from the metric registry
(:mod:`moqwk.core.objectives`): a builder is given the run's :class:`ObjectiveSet`, whose roles
say which axis carries the tie band (the primary objective) and which tails the guardrails limit.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from moqwk.core.objectives import ObjectiveSet, fmt, metric
from moqwk.reports.html.summaries import running_best
from moqwk.reports.words import count

if TYPE_CHECKING:
    from moqwk.study.records import TrialRecord

#: The guardrail keys (in ``guardrails`` records) that limit the low and the high tail objective.
GUARDRAIL_KEYS = ("low_tail_limit", "high_tail_limit")

FRONT = "#0072B2"      # blue
DOMINATED = "#56B4E9"  # sky blue
INFEASIBLE = "#999999"
BASELINE = "#000000"
SELECTED = "#D55E00"   # vermillion
TIE = "#F0E442"        # yellow
GUARD = "#CC79A7"      # reddish purple
RAW = "#009E73"        # bluish green
HOLDOUT = "#E69F00"    # orange

#: matplotlib settings for every figure (applied while building and saving).
STYLE: dict[str, Any] = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e5e5",
    "grid.linewidth": 0.6,
    "svg.fonttype": "path",  # glyphs as outlines: the same look without the font installed
}


@dataclass
class BuiltFigure:
    """A figure, the file stem it is saved under, its title and a caption on how to read it."""

    name: str
    title: str
    figure: Figure
    caption: str


P = ParamSpec("P")


def styled(build: Callable[P, BuiltFigure]) -> Callable[P, BuiltFigure]:
    """Run a builder under :data:`STYLE` (matplotlib reads most settings when artists are made)."""
    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> BuiltFigure:
        with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]  # keys are Literals
            return build(*args, **kwargs)
    return wrapper


def label(name: str) -> str:
    """The metric's label from the registry."""
    return metric(name).label


def _better(name: str) -> str:
    return "higher is better" if metric(name).maximize else "lower is better"


def guardrail_limits(objectives: ObjectiveSet,
                     guardrails: Mapping[str, float] | None) -> dict[str, float]:
    """Tail objective -> its guardrail limit (the low tail first), where the run records one."""
    if not guardrails:
        return {}
    return {o: float(guardrails[k]) for o, k in zip(objectives.tails, GUARDRAIL_KEYS, strict=True)
            if guardrails.get(k) is not None}


def _guard_line(ax, value: float, values: Sequence[float], *, vertical: bool) -> None:
    """A guardrail line; when it lies far outside the data, a note at the edge instead, so that
    the points keep the axis (a far guardrail would squash them into a corner)."""
    lo, hi = (min(values), max(values)) if values else (value, value)
    span = (hi - lo) or abs(hi) * 0.1 or 0.1
    if lo - 0.5 * span <= value <= hi + 0.5 * span:
        (ax.axvline if vertical else ax.axhline)(value, color=GUARD, ls="--", lw=1.2, zorder=1)
        return
    beyond = value > hi
    text = f"guardrail {value:.3f} " + (("\u2192" if beyond else "\u2190") if vertical
                                        else ("\u2191" if beyond else "\u2193"))
    if vertical:
        xy, ha, va = ((0.99, 0.03), "right", "bottom") if beyond else ((0.01, 0.03), "left",
                                                                        "bottom")
    else:
        xy, ha, va = ((0.99, 0.97), "right", "top") if beyond else ((0.99, 0.03), "right",
                                                                     "bottom")
        # Room for the note beyond every value: the baseline's line lies at the edge of the
        # data when the baseline is the worst trial, and the note sat on it.
        pad = 0.05 * span
        room = 0.3 * span
        ax.set_ylim(lo - pad, hi + room) if beyond else ax.set_ylim(lo - room, hi + pad)
    ax.text(*xy, text, transform=ax.transAxes, ha=ha, va=va, fontsize=8.5, color=GUARD)


def _split(trials: Sequence[TrialRecord], front: Sequence[int]
           ) -> dict[str, list[TrialRecord]]:
    done = [t for t in trials if t.state == "complete" and t.values]
    on_front = set(front)
    return {
        "front": [t for t in done if t.number in on_front],
        "dominated": [t for t in done if t.feasible and t.number not in on_front],
        "infeasible": [t for t in done if not t.feasible and t.number not in on_front],
    }


def _vals(t: TrialRecord) -> dict[str, float]:
    """The values of a complete trial (the figures only plot those)."""
    assert t.values is not None
    return t.values


# ------------------------------------------------------------------------------ Pareto front


@styled
def pareto_projections(trials: Sequence[TrialRecord], *, objectives: ObjectiveSet,
                       front: Sequence[int], baseline: int, selected: int | None,
                       tie_band: tuple[float, float] | None,
                       guardrails: Mapping[str, float] | None) -> BuiltFigure:
    """Every pair of objectives: front, dominated, infeasible, baseline, selected, tie band."""
    names = objectives.names
    tie_axis = objectives.primary
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    n_cols = 3 if len(pairs) > 4 else max(1, len(pairs))
    n_rows = math.ceil(len(pairs) / n_cols)
    fig = Figure(figsize=(11.5, 3.6 * n_rows + 0.7), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    groups = _split(trials, front)
    by_number = {t.number: t for t in trials}
    base, sel = by_number.get(baseline), by_number.get(selected) if selected is not None else None
    guard = guardrail_limits(objectives, guardrails)

    def xy(recs: list[TrialRecord], a: str, b: str) -> tuple[list[float], list[float]]:
        return [_vals(r)[a] for r in recs], [_vals(r)[b] for r in recs]

    for ax, (a, b) in zip(axes, pairs, strict=False):
        if tie_band is not None:
            if a == tie_axis:
                ax.axvspan(*tie_band, color=TIE, alpha=0.45, lw=0, zorder=0, gid=f"tie:{a}:{b}")
            elif b == tie_axis:
                ax.axhspan(*tie_band, color=TIE, alpha=0.45, lw=0, zorder=0, gid=f"tie:{a}:{b}")
        for o, limit in guard.items():
            if o in (a, b):
                _guard_line(ax, limit, [_vals(t)[o] for g in groups.values() for t in g],
                            vertical=o == a)
        # gid: the artist's role (tests find points by it; SVG output names the group after it)
        ax.scatter(*xy(groups["infeasible"], a, b), marker="x", s=28, color=INFEASIBLE, lw=1.2,
                   zorder=2, gid=f"infeasible:{a}:{b}")
        ax.scatter(*xy(groups["dominated"], a, b), marker="o", s=30, facecolor="white",
                   edgecolor=DOMINATED, lw=1.3, zorder=3, gid=f"dominated:{a}:{b}")
        ax.scatter(*xy(groups["front"], a, b), marker="o", s=38, color=FRONT, zorder=4,
                   gid=f"front:{a}:{b}")
        if base and base.values:
            ax.scatter(*xy([base], a, b), marker="s", s=70, facecolor="none",
                       edgecolor=BASELINE, lw=1.8, zorder=5, gid=f"baseline:{a}:{b}")
        if sel and sel.values:
            ax.scatter(*xy([sel], a, b), marker="*", s=190, color=SELECTED, edgecolor="white",
                       lw=0.6, zorder=6, gid=f"selected:{a}:{b}")
        ax.set_xlabel(f"{label(a)}\n({_better(a)})")
        ax.set_ylabel(f"{label(b)}\n({_better(b)})")
    for ax in axes[len(pairs):]:
        ax.set_visible(False)

    handles: list[Artist] = [
        Line2D([], [], marker="o", ls="", color=FRONT, ms=7, label="feasible Pareto front"),
        Line2D([], [], marker="o", ls="", mfc="white", mec=DOMINATED, mew=1.3, ms=7,
               label="feasible, dominated"),
        Line2D([], [], marker="x", ls="", color=INFEASIBLE, mew=1.2, ms=7,
               label="infeasible (breaks a tail guardrail)"),
        Line2D([], [], marker="s", ls="", mfc="none", mec=BASELINE, mew=1.8, ms=8,
               label=f"baseline (trial {baseline})"),
    ]
    if sel is not None:
        handles.append(Line2D([], [], marker="*", ls="", color=SELECTED, mec="white", ms=14,
                              label=f"selected (trial {selected})"))
    if tie_band is not None:
        handles.append(Patch(color=TIE, alpha=0.45, label="tie band"))
    if guard:
        handles.append(Line2D([], [], color=GUARD, ls="--", lw=1.2, label="tail guardrail"))
    fig.legend(handles=handles, loc="outside upper center", ncols=min(4, len(handles)),
               frameon=False)

    n_done = sum(len(v) for v in groups.values())
    caption = (
        f"Each panel plots two of the {len(names)} objectives for the "
        f"{count(n_done, 'finished trial')}; the axis labels say which way is better. Filled blue "
        f"dots are the feasible Pareto front ({count(len(groups['front']), 'trial')} not beaten "
        f"on all {len(names)} objectives at once by another trial that keeps both tail "
        "guardrails); a front trial can look beaten in one panel because panels show two "
        "objectives at a time. Hollow dots are feasible but "
        f"dominated ({len(groups['dominated'])}), grey crosses break a tail guardrail "
        f"({len(groups['infeasible'])}). The black square is the baseline (trial {baseline})"
        + (f", the orange star the selected trial {selected}" if sel is not None else "")
        + ". ")
    if tie_band is not None:
        caption += (
            f"The yellow band spans {label(tie_axis)} {fmt(tie_band[0])} to {fmt(tie_band[1])} "
            f"(the tie tolerance, {fmt(tie_band[1] - tie_band[0])}, below the front's best): "
            f"front trials inside it count as tied on {label(tie_axis)} and the selector ranks "
            f"them by {label(objectives.secondary)}. ")
    if guard:
        caption += ("Dashed lines are the tail guardrails (the baseline's tail MAE plus the "
                    "tolerance); beyond them a trial is infeasible. A guardrail far from every "
                    "trial is named at the panel's edge instead of drawn.")
    return BuiltFigure("pareto_front", "Feasible Pareto front, pairwise", fig, caption.strip())


# ------------------------------------------------------------------------------ per prompt


@styled
def per_prompt(table: pd.DataFrame, *, min_prompt_n: int, order_by: str = "selected",
               coverage: float = 0.95, n_boot: int, seed: int) -> BuiltFigure:
    """Per-prompt QWK of each config with bootstrap intervals, worst first, cut at min_prompt_n.

    ``table`` is :func:`moqwk.reports.html.summaries.per_prompt_qwk`'s output.
    """
    configs = list(dict.fromkeys(table["config"]))
    key = order_by if order_by in configs else configs[0]
    ref = table[table["config"] == key].set_index("prompt")
    eligible = ref["n"] >= min_prompt_n
    order = (list(ref[eligible].sort_values(["qwk", "n"], na_position="first").index)
             + list(ref[~eligible].sort_values(["qwk", "n"], na_position="first").index))
    n_elig = int(eligible.sum())
    gap = 0.8 if n_elig < len(order) else 0.0
    ypos = {p: i + (gap if i >= n_elig else 0.0) for i, p in enumerate(order)}
    height = 1.6 + 0.3 * len(order) + gap * 0.3
    fig = Figure(figsize=(9.5, height), layout="constrained")
    ax = fig.subplots()
    colours = {"baseline": BASELINE, "selected": SELECTED}
    markers = {"baseline": "s", "selected": "D"}
    offsets = np.linspace(-0.17, 0.17, len(configs)) if len(configs) > 1 else [0.0]
    for off, name in zip(offsets, configs, strict=True):
        rows = table[table["config"] == name].set_index("prompt").loc[order]
        y = np.array([ypos[p] for p in order]) + off
        c = colours.get(name, FRONT)
        ax.errorbar(rows["qwk"], y, xerr=[rows["qwk"] - rows["lo"], rows["hi"] - rows["qwk"]],
                    fmt=markers.get(name, "o"), color=c, ms=5, elinewidth=1.2, capsize=2,
                    label=f"{name}", zorder=3)
        worst = rows.loc[rows["n"] >= min_prompt_n, "qwk"].min()
        if not math.isnan(worst):
            ax.axvline(worst, color=c, ls=":", lw=1, zorder=1)
    ax.set_yticks([ypos[p] for p in order], [f"{p}  (n={int(ref.loc[p, 'n'])})" for p in order])
    ax.set_ylim(max(ypos.values()) + 0.7, -0.7)
    if gap:
        cut = n_elig - 0.5 + gap / 2
        ax.axhline(cut, color="#444444", lw=1, ls="--")
        # one short line: it must fit the gap, and long prompt labels leave the axes narrow
        ax.text(0.01, cut + 0.12, f"below: n < min_prompt_n = {min_prompt_n}, scored but not "
                "in the objectives", transform=ax.get_yaxis_transform(),
                ha="left", va="top", fontsize=8.5, color="#444444")
    ax.set_xlabel(f"QWK (higher is better); bars: {int(coverage * 100)}% bootstrap interval")
    ax.grid(axis="y", visible=False)
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], color="#666666", ls=":", lw=1))
    labels.append("worst-prompt QWK of each config")
    fig.legend(handles, labels, loc="outside upper center", ncols=len(labels), frameon=False)
    caption = (
        f"One row per prompt, sorted by the {key} config's QWK with its worst prompt at the top; "
        f"n is the prompt's essay count. Only prompts with at least {min_prompt_n} essays make "
        "the objectives"
        + (" (those above the dashed line)" if gap else "")
        + ": the dotted vertical lines mark each config's worst-prompt QWK among them. Bars are "
        f"{int(coverage * 100)}% percentile bootstrap intervals ({n_boot} resamples of essays "
        f"within each prompt, seed {seed}, the same resamples for both configs); where two "
        "configs' bars overlap widely the difference on that prompt is within noise.")
    return BuiltFigure("per_prompt_qwk", "Per-prompt QWK, worst first", fig, caption)


# ------------------------------------------------------------------------------ calibration


@styled
def calibration(curves: Mapping[str, pd.DataFrame], *, units: str,
                tails: tuple[float | None, float | None] = (None, None),
                raw: pd.DataFrame | None = None) -> BuiltFigure:
    """Mean predicted score by true score, per config, with the identity line and counts.

    ``curves`` maps a config to :func:`moqwk.reports.html.summaries.calibration` output;
    ``raw`` is the selected config's curve before the score mapping, if known.
    """
    fig = Figure(figsize=(8.5, 6.2), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3.2, 1])
    first = next(iter(curves.values()))
    xs = first["true"].to_numpy(float)
    lo_x, hi_x = float(xs.min()), float(xs.max())
    pad = (hi_x - lo_x) * 0.04 or 0.5
    low, high = tails
    for ax in (top, bottom):
        if low is not None:
            ax.axvspan(lo_x - pad, low + (xs[1] - xs[0] if len(xs) > 1 else 0) / 2,
                       color="#dddddd", lw=0, zorder=0)
        if high is not None:
            ax.axvspan(high - (xs[1] - xs[0] if len(xs) > 1 else 0) / 2, hi_x + pad,
                       color="#dddddd", lw=0, zorder=0)
    top.plot([lo_x, hi_x], [lo_x, hi_x], color="#666666", lw=1, ls="--",
             label="perfect calibration", zorder=1)
    colours = {"baseline": BASELINE, "selected": SELECTED}
    markers = {"baseline": "s", "selected": "D"}
    for name, c in curves.items():
        col = colours.get(name, FRONT)
        yerr = np.vstack([c["mean"] - c["ci_lo"], c["ci_hi"] - c["mean"]])
        top.errorbar(c["true"], c["mean"], yerr=np.nan_to_num(yerr), fmt="-" + markers.get(
            name, "o"), color=col, ms=5, lw=1.5, capsize=2, label=name, zorder=3)
    if raw is not None:
        top.plot(raw["true"], raw["mean"], color=RAW, lw=1.3, ls="-.", marker=".",
                 label="selected, before score mapping", zorder=2)
    top.set_ylabel(f"mean predicted score ({units})")
    fig.legend(*top.get_legend_handles_labels(), loc="outside upper center", ncols=4,
               frameon=False)
    if low is not None:
        top.text(lo_x - pad * 0.8, 0.98, "low tail", transform=top.get_xaxis_transform(),
                 ha="left", va="top", fontsize=8.5, color="#444444")
    if high is not None:
        top.text(hi_x + pad * 0.8, 0.02, "high tail", transform=top.get_xaxis_transform(),
                 ha="right", va="bottom", fontsize=8.5, color="#444444")
    width = (xs[1] - xs[0]) * 0.8 if len(xs) > 1 else 0.4
    bottom.bar(first["true"], first["n"], width=width, color="#888888", zorder=2)
    bottom.set_ylabel("essays")
    bottom.set_xlabel(f"true score ({units})")
    top.set_xlim(lo_x - pad, hi_x + pad)
    names = " and ".join(curves)
    caption = (
        f"Mean predicted score (out of fold, averaged over repeats) at each true score level "
        f"for the {names} config{'s' if len(curves) > 1 else ''}; bars are 95% intervals of the "
        "mean over essays. On the dashed diagonal predictions would be right on average. A "
        "curve flatter than the diagonal shows shrinkage: essays at the low end are "
        "over-scored and those at the high end under-scored. Shaded columns are the low and "
        "high tails the tail objectives score; the bottom panel counts the essays at each "
        "level, so thin tails are visible.")
    if raw is not None:
        caption += (" The dash-dot line is the selected config's raw prediction before it is "
                    "rounded and clipped to the rubric, which shows the score mapping's effect.")
    return BuiltFigure("calibration", "Calibration: shrinkage at the tails", fig, caption)


# ------------------------------------------------------------------------------ history


@styled
def search_history(trials: Sequence[TrialRecord], *, objectives: ObjectiveSet, baseline: int,
                   selected: int | None,
                   guardrails: Mapping[str, float] | None) -> BuiltFigure:
    """Each objective by trial number, with the running best feasible value."""
    names = objectives.names
    guard = guardrail_limits(objectives, guardrails)
    n_cols = 2
    n_rows = math.ceil(len(names) / n_cols)
    fig = Figure(figsize=(11.5, 3.3 * n_rows + 0.6), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharex=True).ravel()
    done = [t for t in trials if t.state == "complete" and t.values]
    failed = [t.number for t in trials if t.state == "fail"]
    by_number = {t.number: t for t in trials}
    base, sel = by_number.get(baseline), by_number.get(selected) if selected is not None else None
    last = max((t.number for t in trials), default=0)
    for ax, o in zip(axes, names, strict=False):
        feas = [t for t in done if t.feasible]
        infeas = [t for t in done if not t.feasible]
        ax.scatter([t.number for t in infeas], [_vals(t)[o] for t in infeas], marker="x",
                   color=INFEASIBLE, s=26, lw=1.2, zorder=2, gid=f"infeasible:{o}")
        ax.scatter([t.number for t in feas], [_vals(t)[o] for t in feas], marker="o",
                   color=DOMINATED, s=22, zorder=3, gid=f"feasible:{o}")
        best = running_best(trials, o, str(metric(o).direction))
        if best:
            xs = [n for n, _ in best] + [last]
            ys = [v for _, v in best] + [best[-1][1]]
            ax.step(xs, ys, where="post", color=FRONT, lw=1.8, zorder=4, gid=f"best:{o}")
        if base and base.values:
            ax.axhline(base.values[o], color=BASELINE, ls=":", lw=1.1, zorder=1)
        if o in guard:
            _guard_line(ax, guard[o], [_vals(t)[o] for t in done], vertical=False)
        if sel and sel.values:
            ax.scatter([sel.number], [sel.values[o]], marker="*", s=170, color=SELECTED,
                       edgecolor="white", lw=0.6, zorder=6)
        if failed:
            ax.plot(failed, [0.02] * len(failed), ls="", marker="|", ms=9, color="#444444",
                    transform=ax.get_xaxis_transform(), zorder=5)
        ax.set_ylabel(f"{label(o)}\n({_better(o)})")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    for ax in axes[-n_cols:]:
        ax.set_xlabel("trial number")
    handles = [
        Line2D([], [], marker="o", ls="", color=DOMINATED, ms=6, label="feasible trial"),
        Line2D([], [], marker="x", ls="", color=INFEASIBLE, mew=1.2, ms=6,
               label="infeasible trial"),
        Line2D([], [], color=FRONT, lw=1.8, label="best feasible so far"),
        Line2D([], [], color=BASELINE, ls=":", lw=1.1, label=f"baseline (trial {baseline})"),
    ]
    if guard:
        handles.append(Line2D([], [], color=GUARD, ls="--", lw=1.2, label="tail guardrail"))
    if sel is not None:
        handles.append(Line2D([], [], marker="*", ls="", color=SELECTED, mec="white", ms=13,
                              label=f"selected (trial {selected})"))
    if failed:
        handles.append(Line2D([], [], marker="|", ls="", color="#444444", ms=9,
                              label="failed trial"))
    fig.legend(handles=handles, loc="outside upper center", ncols=4, frameon=False)
    caption = (
        "Each objective of every finished trial, in the order the trials were numbered (the "
        f"baseline is trial {baseline}, then what the sampler proposed). The "
        "step line is the best value among feasible trials so far: the running front's edge "
        "in that objective. A line that stops moving early means later trials found nothing "
        "better on that objective; the dotted line is the baseline's value and dashed lines "
        "are the tail guardrails."
        + (" Ticks on the x axis mark failed trials." if failed else ""))
    return BuiltFigure("search_history", "The search over time", fig, caption)


# ------------------------------------------------------------------------------ compare


@styled
def in_sample_vs_fresh(compare: Mapping, *, objectives: ObjectiveSet,
                       this_run: str | None = None) -> BuiltFigure:
    """In-sample (the search's folds) against fresh-fold numbers of the primary and secondary
    objectives, for each compared run."""
    runs = list(compare["runs"])
    metrics = (objectives.primary, objectives.secondary)
    fig = Figure(figsize=(10.5, 1.9 + 0.55 * len(runs)), layout="constrained")
    axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False).ravel()
    names = []
    for r in runs:
        n = f"{_short(r['run_dir'])}\n{r.get('sampler', '')}, trial {r['trial_number']}"
        names.append(n + ("  (this run)" if this_run and _same_dir(r["run_dir"], this_run)
                          else ""))
    y = np.arange(len(runs))
    for ax, m in zip(axes, metrics, strict=True):
        ins = np.array([_num(r["in_sample"].get(m)) for r in runs], dtype=float)
        fresh = np.array([_num(r["fresh"].get(m)) for r in runs], dtype=float)
        for yi, a, b in zip(y, ins, fresh, strict=True):
            ax.annotate("", xy=(b, yi), xytext=(a, yi),
                        arrowprops={"arrowstyle": "->", "color": "#666666", "lw": 1.2})
            ax.text((a + b) / 2, yi + 0.18, f"{b - a:+.3f}", ha="center", va="bottom",
                    fontsize=8.5)
        ax.scatter(ins, y, marker="o", s=45, facecolor="white", edgecolor=FRONT, lw=1.5,
                   zorder=3, label="in-sample (search folds)")
        ax.scatter(fresh, y, marker="o", s=45, color=SELECTED, zorder=4,
                   label="fresh folds")
        ax.set_xlabel(f"{label(m)} ({_better(m)})")
        ax.grid(axis="y", visible=False)
    # The same width in every panel, and at least 0.04 QWK: a gap of 0.003 should look small.
    spans = []
    for m in metrics:
        v = np.array([_num(r[k].get(m)) for r in runs for k in ("in_sample", "fresh")],
                     dtype=float)
        spans.append((np.nanmin(v), np.nanmax(v)))
    width = max(0.04, *(hi - lo for lo, hi in spans)) * 1.3
    for ax, (lo, hi) in zip(axes, spans, strict=True):
        mid = (lo + hi) / 2
        ax.set_xlim(mid - width / 2, mid + width / 2)
    axes[0].set_yticks(y, names)
    axes[0].set_ylim(len(runs) - 0.4, -0.6)
    axes[0].legend(loc="lower left", frameon=True, framealpha=0.9, fontsize=8.5)
    ff = compare.get("fresh_folds", {})
    caption = (
        f"For each compared run, its selected config's {label(metrics[0])} and "
        f"{label(metrics[1])} on the folds the search used "
        "(hollow) and on fresh prompt-holdout folds the search never saw (filled; "
        f"seed {ff.get('seed', '?')}, {ff.get('repeats', '?')} repeat(s)). The arrow and number "
        "are the change from in-sample to fresh: a negative number is how much the search's "
        "own numbers flatter the winner (selection optimism). Judge configs on the fresh "
        "numbers.")
    return BuiltFigure("in_sample_vs_fresh", "In-sample against fresh folds", fig, caption)


def _num(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _short(path: str) -> str:
    parts = str(path).rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) > 1 else parts[0]


def _same_dir(a: str, b: str) -> bool:
    from pathlib import Path

    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


def selection_bias(selection: Mapping, *, objectives: ObjectiveSet,
                   compare: Mapping | None = None, this_run: str | None = None) -> BuiltFigure:
    """In-sample against the selection-bias-corrected estimate (BBC-CV) of the primary and
    secondary objectives, with the estimate's interval, and the fresh-fold value where
    ``compare`` re-scored this run."""
    sb = selection["selection_bias"]
    holdout = selection.get("holdout")
    metrics = [m for m in (objectives.primary, objectives.secondary) if m in sb["summary"]]
    fresh: dict = {}
    for r in (compare or {}).get("runs", []):
        if this_run and _same_dir(r["run_dir"], this_run):
            fresh = r["fresh"]
    fig = Figure(figsize=(10.5, 2.4), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False).ravel()
    for ax, m in zip(axes, metrics, strict=True):
        e = sb["summary"][m]
        err = [[e["estimate"] - e["lo"]], [e["hi"] - e["estimate"]]]
        ax.errorbar([e["estimate"]], [0], xerr=err, fmt="o", color=SELECTED, capsize=5, lw=1.5,
                    zorder=4,
                    label="expected on new folds (BBC-CV, interval)")
        ax.scatter([e["in_sample"]], [0], marker="o", s=55, facecolor="white", edgecolor=FRONT,
                   lw=1.5, zorder=5, label="in-sample (search folds)")
        if fresh.get(m) is not None:
            ax.scatter([fresh[m]], [0], marker="D", s=45, color=BASELINE, zorder=6,
                       label="fresh folds (compare)")
        if holdout and m in holdout.get("size_corrected", {}):
            hv, hse = holdout["size_corrected"][m], holdout["se"][m]
            hi = min(hv + hse, 1.0) if metric(m).maximize else hv + hse  # a QWK is at most 1
            ax.errorbar([hv], [-0.35], xerr=[[hse], [hi - hv]], fmt="s", color=HOLDOUT,
                        capsize=4, lw=1.2, zorder=4, label="holdout, size-corrected (±1 SE)")
        ax.set_yticks([])
        ax.set_ylim(-0.8, 0.8)
        ax.set_xlabel(f"{label(m)} ({_better(m)})")
        ax.text(0.01, 0.95, f"in-sample minus expected: {e['optimism']:+.3f}",
                transform=ax.transAxes, va="top", fontsize=8.5)
    if holdout:  # three markers a panel: the legend goes below, clear of them
        fig.set_figheight(2.9)
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=4,
                   frameon=False, fontsize=8)
    else:
        axes[0].legend(loc="lower left", frameon=True, framealpha=0.9, fontsize=8)
    caption = (
        f"The selected trial's {label(metrics[0])}"
        + (f" and {label(metrics[1])}" if len(metrics) > 1 else "")
        + " on the folds the search chose on (hollow) and what the selection can be expected to "
          f"score on new folds (filled, with its {sb.get('interval', '95% percentile')} "
          "interval): BBC-CV replays the whole selection on "
          f"{sb.get('n_boot')} bootstrap resamples of every trial's out-of-fold predictions and "
          "scores each choice on the essays left out, so it corrects the optimism of picking the "
          "best of many trials; no model is retrained and the stability gate is not replayed. "
          "A diamond marks the fresh-fold value where `moqwk compare` re-scored this run."
        + (f" The square, below, is the choice scored once on the holdout's "
           f"{holdout['n_essays']} essays ({holdout['assumes']}), corrected for the holdout's "
           "smaller prompts, with one bootstrap SE either side." if holdout else ""))
    return BuiltFigure("selection_bias", "Expected on new folds", fig, caption)
