"""Rich renderables for the console: pure builders, tested by rendering to a fixed-width string.

Columns and number formats come from the metric registry (:mod:`moqwk.core.objectives`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from rich import box
from rich.table import Table

from moqwk.core.metrics import CVMetrics
from moqwk.core.objectives import DEFAULT_OBJECTIVES, ObjectiveSet, fmt, metric
from moqwk.core.pareto import loss_matrix, pareto_front_mask


def prompt_table(metrics: CVMetrics, *, title: str = "Per-prompt QWK (worst first)",
                 limit: int | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for col, justify in (("prompt", "left"), ("n", "right"), ("QWK", "right"),
                         ("MAE", "right"), ("bias", "right"), ("obj", "center")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    rows = sorted(metrics.per_prompt,
                  key=lambda r: (not r.eligible, math.inf if math.isnan(r.qwk) else r.qwk,
                                 r.prompt))
    for r in rows[:limit] if limit else rows:
        style = "red" if r.eligible and r.prompt == metrics.worst_prompt else None
        table.add_row(r.prompt, str(r.n), fmt(r.qwk), fmt(r.mae), fmt(r.bias),
                      "yes" if r.eligible else "-", style=style)
    return table


def summary_table(metrics: CVMetrics, *, title: str = "CV summary") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    m = metrics
    table.add_row("worst-prompt QWK", f"{fmt(m.worst_prompt_qwk)} ({m.worst_prompt or 'n/a'})")
    table.add_row("mean per-prompt QWK", fmt(m.mean_qwk))
    table.add_row("pooled QWK", fmt(m.pooled_qwk))
    table.add_row("low-tail MAE / bias", f"{fmt(m.low_tail_mae)} / {fmt(m.low_tail_bias)}")
    table.add_row("high-tail MAE / bias", f"{fmt(m.high_tail_mae)} / {fmt(m.high_tail_bias)}")
    table.add_row("prompts in objective", str(m.n_eligible_prompts))
    return table


def front_numbers(records: Sequence[dict], names: Sequence[str]) -> set[int]:
    """Numbers of the trials on the current feasible Pareto front."""
    feas = [r for r in records if r["feasible"] and r["values"]]
    if not feas:
        return set()
    values = np.array([[r["values"][o] for o in names] for r in feas], dtype=float)
    mask = pareto_front_mask(loss_matrix(values, [str(metric(o).direction) for o in names]))
    return {r["number"] for r, m in zip(feas, mask, strict=True) if m}


def duration_text(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.1f}s" if s < 120 else f"{s / 60:.1f}m"


def _role_text(r: dict) -> str:
    """`` (baseline)``, `` (retry of 5)``, `` (seed, retry of 1)``: what a trial is, besides
    sampled."""
    parts = [r["role"]] if r["role"] != "sampled" else []
    if r.get("retry_of") is not None:
        parts.append(f"retry of {r['retry_of']}")
    return f" ({', '.join(parts)})" if parts else ""


def clock_text(s: float | None) -> str:
    """Elapsed time and ETA in one format whatever their size: ``0:00:42``, ``1:05:00`` (as
    the progress bars show theirs); a duration in seconds, then in minutes, switched units as
    the ETA crossed two minutes."""
    if s is None:
        return "-"
    whole = int(round(max(0.0, s)))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def trials_table(records: Sequence[dict], *, limit: int | None = 20,
                 title: str = "Trials (* = feasible Pareto front)",
                 objectives: ObjectiveSet = DEFAULT_OBJECTIVES) -> Table:
    names = objectives.names
    front = front_numbers(records, names)
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("state")
    for o in names:
        table.add_column(metric(o).short, justify="right")
    table.add_column("feasible", justify="center")
    table.add_column("time", justify="right")
    shown = list(records)[-limit:] if limit else list(records)
    for r in shown:
        v = r["values"] or {}
        mark = "*" if r["number"] in front else ""
        state = r["state"] + _role_text(r)
        feasible = "yes" if r["feasible"] else ("no" if r["values"] else "-")
        table.add_row(f"{r['number']}{mark}", state, *(metric(o).format(v.get(o)) for o in names),
                      feasible, duration_text(r["duration_s"]),
                      style="bold green" if mark else ("dim" if r["state"] != "complete" else None))
    return table


def _pruned_text(r: dict) -> str | None:
    """A trial stopped by fold racing: after how many folds, and why."""
    p = r.get("pruned")
    if not p:
        return None
    return f"stopped after {p['folds_run']} of {p['folds_total']} folds: {p['reason']}"


def trial_line(r: dict, names: Sequence[str], *, worker: bool = False) -> str:
    """One finished trial as one line (what a log gets instead of the live table); ``worker``:
    end with the ``host:pid`` that ran it (a study shared by several workers)."""
    v = r["values"] or {}
    tail = (f" feasible={'yes' if r['feasible'] else 'no'}" if v
            else f" ({r['failure_reason'] or _pruned_text(r) or r['state']})")
    role = _role_text(r)
    values = "".join(f" {k}={metric(k).format(v[k])}" for k in names if k in v)
    ran = f" worker={r['worker']}" if worker and r.get("worker") else ""
    return f"trial {r['number']:>3} {r['state']}{role}{values}{tail}{ran}"


def front_table(record: dict, objectives: ObjectiveSet = DEFAULT_OBJECTIVES) -> Table:
    """The ranked front and each gate verdict."""
    gates = {r["trial_number"]: r["passed"] for r in record["stability_gate"]["results"]}
    how = (record.get("tie_tolerance_method") or {}).get("method", "")
    why = f": {how}" if how.startswith("single candidate") else ""  # 0.0000 alone reads as a bug
    table = Table(title=f"Ranked Pareto front (tie tolerance {record['tie_tolerance']:.4f}{why})",
                  title_justify="left")
    cols = ["rank", "trial", *(metric(o).short for o in objectives.names), "tied", "gate"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("tied", "gate") else "right")
    for c in record["candidates"]:
        n = c["trial_number"]
        gate = "-" if n not in gates else ("pass" if gates[n] else "fail")
        style = "bold green" if n == record["trial_number"] else None
        table.add_row(str(c["rank"]), str(n),
                      *(metric(o).format(c[o]) for o in objectives.names),
                      "yes" if c["in_tie_band"] else "", gate, style=style)
    return table


def compare_table(record: dict, objectives: ObjectiveSet = DEFAULT_OBJECTIVES) -> Table:
    """``moqwk compare``: each run's selected config, in-sample against fresh.

    Seven columns so that it fits 80 columns: the run directory folds onto more lines (never
    cut: it names the run); each "a/b" pair keeps its width (split over two lines it would
    read as two numbers).
    """
    ff = record["fresh_folds"]
    table = Table(title=f"Selected configs; fresh = {ff['scheme']} seed {ff['seed']}, "
                        f"{ff['repeats']} repeat(s)", title_justify="left", pad_edge=False,
                  box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    p, s = metric(objectives.primary), metric(objectives.secondary)
    lo, hi = (metric(t) for t in objectives.tails)
    pair = len("0.000/0.000")
    table.add_column("run", overflow="fold", ratio=1)
    table.add_column("choice", overflow="fold")
    table.add_column(f"{p.short}\nin/fresh", min_width=pair)
    table.add_column(f"{s.short}\nin/fresh", min_width=pair)
    table.add_column("tails fresh\nlow/high", min_width=pair)  # no wider than the numbers
    table.add_column("gate", min_width=4)
    for r in record["runs"]:
        i, f = r["in_sample"], r["fresh"]
        mapping = (r.get("mapping") or "round") + ("*" if r.get("transductive") else "")
        table.add_row(r["run_dir"], f"{r['sampler']} #{r['trial_number']}\n{mapping}",
                      f"{p.format(i.get(p.name))}/{p.format(f.get(p.name))}",
                      f"{s.format(i.get(s.name))}/{s.format(f.get(s.name))}",
                      f"{lo.format(f.get(lo.name))}/{hi.format(f.get(hi.name))}",
                      "pass" if r["gate_passed"] else "fail")
    return table
