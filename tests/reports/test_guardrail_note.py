"""A guardrail far beyond the data is a note at the panel's edge; the note must not sit on the
baseline's line, which lies at the edge of the data when the baseline is the worst trial."""

from __future__ import annotations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from moqwk.core.objectives import DEFAULT_OBJECTIVES
from moqwk.reports.html.figures import search_history
from moqwk.study.records import TrialRecord

NAMES = DEFAULT_OBJECTIVES.names


def _trial(n: int, low_mae: float) -> TrialRecord:
    values = {"worst_prompt_qwk": 0.5 + 0.01 * n, "mean_qwk": 0.6 + 0.01 * n,
              "low_tail_mae": low_mae, "high_tail_mae": 0.10}
    return TrialRecord(number=n, state="complete", values=values, feasible=True,
                       role="baseline" if n == 0 else "sampled")


@pytest.mark.parametrize("guard", [0.60, 0.05])  # far above every value, far below
def test_the_far_guardrail_note_clears_the_baselines_line(guard):
    # the baseline (trial 0) has the highest low-tail MAE of all: its line is the data's edge
    trials = [_trial(0, 0.20)] + [_trial(n, 0.20 - 0.01 * n) for n in range(1, 8)]
    if guard < 0.1:  # the baseline the lowest instead, the guardrail below everything
        trials = [_trial(0, 0.12)] + [_trial(n, 0.12 + 0.01 * n) for n in range(1, 8)]
    built = search_history(trials, objectives=DEFAULT_OBJECTIVES, baseline=0, selected=None,
                           guardrails={"low_tail_limit": guard})
    fig = built.figure
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[NAMES.index("low_tail_mae")]
    (note,) = [t for t in ax.texts if t.get_text().startswith("guardrail")]
    box = note.get_window_extent(renderer)
    base_y = trials[0].values["low_tail_mae"]
    (line,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == ":"
               and list(ln.get_ydata()) == [base_y, base_y]]
    _, y = ax.transData.transform((0, base_y))
    assert not (box.y0 - 2 <= y <= box.y1 + 2), (box, y)  # 2 px clear of the text
    for t in trials:  # nor on a point
        _, py = ax.transData.transform((0, t.values["low_tail_mae"]))
        px, _ = ax.transData.transform((t.number, 0))
        assert not (box.x0 <= px <= box.x1 and box.y0 <= py <= box.y1), t.number
