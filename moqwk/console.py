"""Rich renderables for the console: pure builders, tested by rendering to a string."""

from __future__ import annotations

import math

from rich.table import Table

from moqwk.core.metrics import CVMetrics
from moqwk.reports import fmt


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


def front_table(record: dict) -> Table:
    """The ranked front and each gate verdict."""
    gates = {r["trial_number"]: r["passed"] for r in record["stability_gate"]["results"]}
    table = Table(title=f"Ranked Pareto front (tie tolerance {record['tie_tolerance']:.4f})",
                  title_justify="left")
    for col in ("rank", "trial", "worst QWK", "mean QWK", "low MAE", "high MAE", "tied", "gate"):
        table.add_column(col, justify="left" if col in ("tied", "gate") else "right")
    for c in record["candidates"]:
        n = c["trial_number"]
        gate = "-" if n not in gates else ("pass" if gates[n] else "fail")
        style = "bold green" if n == record["trial_number"] else None
        table.add_row(str(c["rank"]), str(n), fmt(c["worst_prompt_qwk"]), fmt(c["mean_qwk"]),
                      fmt(c["low_tail_mae"]), fmt(c["high_tail_mae"]),
                      "yes" if c["in_tie_band"] else "", gate, style=style)
    return table
