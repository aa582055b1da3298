"""The residual diagnostics of one CV run: the text of ``reports/residual_diagnostics.md``.

A pure text builder from :class:`moqwk.core.metrics.CVMetrics` (no I/O). It lives in the run
directory's package, beside :mod:`moqwk.run.cv_outputs` that writes it with the CV run's other
outputs, because the reports package sits above the stages in the layer table
(``moqwk/_layers.py``) and a CV run may not import it. :mod:`moqwk.reports.markdown`
re-exports it.
"""

from __future__ import annotations

import json
import math

from moqwk.core.metrics import CVMetrics
from moqwk.core.objectives import fmt


def residual_diagnostics(metrics: CVMetrics, *, title: str, scheme: str, params: dict,
                         global_scale: bool) -> str:
    """Prompt slice table (worst first) and the tail slices."""
    m = metrics
    lines = [
        f"# Residual diagnostics: {title}",
        "",
        f"Scheme `{scheme}`, {m.repeats} repeat(s); prompts with at least {m.min_prompt_n} essays "
        f"count toward the objectives ({m.n_eligible_prompts} prompts).",
        "",
        "| metric | value |",
        "|---|---|",
        f"| worst-prompt QWK | {fmt(m.worst_prompt_qwk)} ({m.worst_prompt or 'n/a'}) |",
        f"| mean per-prompt QWK | {fmt(m.mean_qwk)} |",
        f"| pooled QWK | {fmt(m.pooled_qwk) if global_scale else 'n/a (per-prompt scales)'} |",
        f"| low-tail MAE (normalised) | {fmt(m.low_tail_mae)} |",
        f"| high-tail MAE (normalised) | {fmt(m.high_tail_mae)} |",
        "",
        "## Tail slices",
        "",
        "| tail | essays | MAE (norm.) | mean signed error (norm.) | MAE (score units) "
        "| mean signed error (score units) |",
        "|---|---|---|---|---|---|",
    ]
    for name, t in (("low", m.low_tail), ("high", m.high_tail)):
        lines.append(f"| {name} | {t.n} | {fmt(t.mae)} | {fmt(t.bias)} | {fmt(t.mae_units)} "
                     f"| {fmt(t.bias_units)} |")
    lines += [
        "",
        "A negative signed error in the high tail and a positive one in the low tail mean the "
        "model shrinks toward the middle of the scale.",
        "",
        "## Prompts, worst first",
        "",
        "| prompt | essays | levels | QWK | QWK sd (repeats) | MAE (norm.) | bias (norm.) "
        "| in objective |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = sorted(m.per_prompt, key=lambda r: (not r.eligible, _nan_last(r.qwk), r.prompt))
    for r in rows:
        lines.append(f"| {r.prompt} | {r.n} | {r.n_levels} | {fmt(r.qwk)} | {fmt(r.qwk_sd)} "
                     f"| {fmt(r.mae)} | {fmt(r.bias)} | {'yes' if r.eligible else 'no'} |")
    lines += ["", "## Parameters", "", "```json"]
    lines += [json.dumps(params, indent=2, sort_keys=True, default=str), "```", ""]
    return "\n".join(lines)


def _nan_last(x: float) -> float:
    return math.inf if x is None or math.isnan(x) else x
