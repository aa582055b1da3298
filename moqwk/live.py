"""The live search table and progress line (pure renderables, from trial records)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from moqwk.core.metrics import DIRECTIONS, OBJECTIVES
from moqwk.core.pareto import loss_matrix, pareto_front_mask
from moqwk.reports import fmt

SHORT = {"worst_prompt_qwk": "worst QWK", "mean_qwk": "mean QWK",
         "low_tail_mae": "low MAE", "high_tail_mae": "high MAE"}


def front_numbers(records: Sequence[dict]) -> set[int]:
    """Numbers of the trials on the current feasible Pareto front."""
    import numpy as np

    feas = [r for r in records if r["feasible"] and r["values"]]
    if not feas:
        return set()
    values = np.array([[r["values"][o] for o in OBJECTIVES] for r in feas], dtype=float)
    mask = pareto_front_mask(loss_matrix(values, [DIRECTIONS[o] for o in OBJECTIVES]))
    return {r["number"] for r, m in zip(feas, mask, strict=True) if m}


def _duration(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.1f}s" if s < 120 else f"{s / 60:.1f}m"


def trials_table(records: Sequence[dict], *, limit: int | None = 20,
                 title: str = "Trials (* = feasible Pareto front)") -> Table:
    front = front_numbers(records)
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("state")
    for o in OBJECTIVES:
        table.add_column(SHORT[o], justify="right")
    table.add_column("feasible", justify="center")
    table.add_column("time", justify="right")
    shown = list(records)[-limit:] if limit else list(records)
    for r in shown:
        v = r["values"] or {}
        mark = "*" if r["number"] in front else ""
        state = r["state"] + (f" ({r['role']})" if r["role"] != "sampled" else "")
        feasible = "yes" if r["feasible"] else ("no" if r["values"] else "-")
        table.add_row(f"{r['number']}{mark}", state, *(fmt(v.get(o)) for o in OBJECTIVES),
                      feasible, _duration(r["duration_s"]),
                      style="bold green" if mark else ("dim" if r["state"] != "complete" else None))
    return table


def progress_line(prog: dict) -> Group:
    done = prog["complete"] + prog["failed"]
    bar = ProgressBar(total=max(1, prog["target"]), completed=min(done, prog["target"]), width=40)
    eta = prog.get("eta_s")
    text = Text(f" {done}/{prog['target']} trials ({prog['complete']} complete, "
                f"{prog['failed']} failed, {prog['running']} running, {prog['feasible']} feasible)"
                f"  elapsed {_duration(prog['elapsed_s'])}"
                f"  ETA {_duration(eta) if eta is not None else '-'}")
    return Group(bar, text)


def live_view(records: Sequence[dict], prog: dict, *, limit: int = 15) -> Group:
    return Group(trials_table(records, limit=limit), progress_line(prog))
