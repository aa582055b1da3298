"""The console layer's renderables (moqwk.console.tables, .live) and the console itself.

Renderables are rendered to text on a fixed-width console, as Rich tests its own; what a row
says is checked cell by cell. The exact layout is pinned by the golden tests
(tests/test_golden_console.py).
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from moqwk.console import LOG_WIDTH, heading, make_console
from moqwk.console.live import live_view, progress_line, progress_text
from moqwk.console.tables import (
    compare_table,
    duration_text,
    front_numbers,
    front_table,
    trial_line,
    trials_table,
)
from moqwk.core.objectives import DEFAULT_OBJECTIVES, ObjectiveSet

NAMES = DEFAULT_OBJECTIVES.names


def render(renderable, width: int = 100) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None, force_terminal=False)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def rows(text: str) -> dict[str, list[str]]:
    """Body rows of a rendered table: first cell -> all cells (stripped)."""
    out = {}
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            out[cells[0]] = cells
    return out


def rec(number: int, values: tuple | None, *, feasible: bool = True, state: str = "complete",
        role: str = "sampled", duration: float | None = 1.5, failure: str | None = None) -> dict:
    return {"number": number, "state": state, "role": role, "feasible": feasible,
            "values": None if values is None else dict(zip(NAMES, values, strict=True)),
            "duration_s": duration, "failure_reason": failure}


#: 0 and 2 are on the feasible front; 1 is dominated by 0 on every objective (higher MAEs are
#: worse); 3 beats everyone but breaks a guardrail, so it is on no front and dominates nobody.
RECORDS = [
    rec(0, (0.60, 0.70, 0.10, 0.10), role="baseline"),
    rec(1, (0.50, 0.60, 0.20, 0.20)),
    rec(2, (0.70, 0.65, 0.15, 0.10)),
    rec(3, (0.90, 0.90, 0.01, 0.01), feasible=False),
    rec(4, None, feasible=False, state="fail", duration=0.2, failure="XGBoostError: bad tree"),
    rec(5, None, feasible=False, state="running", duration=None),
]


# --------------------------------------------------------------------------- the trial table


def test_front_marks_follow_each_objectives_direction():
    assert front_numbers(RECORDS, NAMES) == {0, 2}
    # A study that minimised the QWKs and maximised the MAEs would have another front: the
    # directions come from the names, so the same numbers under those roles are not read alike.
    flipped = ObjectiveSet(primary="low_tail_mae", secondary="high_tail_mae",
                           tails=("worst_prompt_qwk", "mean_qwk"))
    swapped = [{**r, "values": None if r["values"] is None else dict(zip(
        flipped.names, r["values"].values(), strict=True))} for r in RECORDS]
    assert front_numbers(swapped, flipped.names) == {1}  # lowest "QWKs", highest "MAEs"


def test_trial_table_rows():
    table = rows(render(trials_table(RECORDS)))
    assert table["0*"] == ["0*", "complete (baseline)", "0.600", "0.700", "0.100", "0.100",
                           "yes", "1.5s"]
    assert table["1"][1:] == ["complete", "0.500", "0.600", "0.200", "0.200", "yes", "1.5s"]
    assert table["2*"][2] == "0.700"
    assert table["3"][6] == "no"  # complete but infeasible: no star
    assert table["4"][1:] == ["fail", "n/a", "n/a", "n/a", "n/a", "-", "0.2s"]
    assert table["5"][1] == "running" and table["5"][-1] == "-"


def test_trial_table_shows_the_last_rows_when_limited():
    many = [rec(i, (0.5, 0.6, 0.2, 0.2)) for i in range(30)]
    shown = rows(render(trials_table(many, limit=15)))
    numbers = sorted(int(k.rstrip("*")) for k in shown if k.rstrip("*").isdigit())
    assert numbers == list(range(15, 30))
    assert len(rows(render(trials_table(many, limit=None)))) == 30


def test_columns_follow_the_objectives():
    o = ObjectiveSet(primary="mean_qwk", secondary="worst_prompt_qwk",
                     tails=("high_tail_mae", "low_tail_mae"))
    text = render(trials_table(RECORDS, objectives=o))
    header = next(ln for ln in text.splitlines() if "#" in ln and "state" in ln)
    assert [c.strip() for c in header.strip("┃").split("┃")][2:6] == [
        "mean QWK", "worst QWK", "high MAE", "low MAE"]
    assert rows(text)["0*"][2:6] == ["0.700", "0.600", "0.100", "0.100"]


@pytest.mark.parametrize("seconds, text", [(None, "-"), (0.04, "0.0s"), (119.94, "119.9s"),
                                           (120, "2.0m"), (5400, "90.0m")])
def test_duration_text(seconds, text):
    assert duration_text(seconds) == text


def test_trial_line_says_everything_on_one_line():
    line = trial_line(RECORDS[0], NAMES)
    assert line == ("trial   0 complete (baseline) worst_prompt_qwk=0.600 mean_qwk=0.700 "
                    "low_tail_mae=0.100 high_tail_mae=0.100 feasible=yes")
    assert trial_line(RECORDS[3], NAMES).endswith("feasible=no")
    assert trial_line(RECORDS[4], NAMES) == "trial   4 fail (XGBoostError: bad tree)"
    assert trial_line(rec(123, None, state="interrupted", feasible=False), NAMES) == \
        "trial 123 interrupted (interrupted)"


# --------------------------------------------------------------------------- live view


PROG = {"complete": 3, "failed": 1, "running": 2, "feasible": 2, "target": 10,
        "elapsed_s": 75.0, "eta_s": 150.0}


def test_progress_text():
    assert progress_text(PROG) == ("4/10 trials (3 complete, 1 failed, 2 running, 2 feasible)"
                                   "  elapsed 0:01:15  ETA 0:02:30")
    assert progress_text({**PROG, "eta_s": None}).endswith("ETA -")


@pytest.mark.parametrize("eta", [59.6, 119.0, 121.0, 3725.0])
def test_elapsed_and_eta_keep_one_format_across_two_minutes(eta):
    """The ETA used to switch from seconds (119.0s) to minutes (2.0m) as it crossed two
    minutes; now it is H:MM:SS at any size, like the progress bars' times."""
    import re

    text = progress_text({**PROG, "eta_s": eta, "elapsed_s": eta})
    assert re.search(r"elapsed \d+:\d\d:\d\d  ETA \d+:\d\d:\d\d$", text), text


@pytest.mark.parametrize("width", [60, 80, 100, 240])
def test_progress_line_keeps_every_word_at_any_width(width):
    """The counts wrap beside the bar; nothing runs past the console's edge and is cut."""
    text = render(progress_line(PROG), width=width)
    assert all(len(line) <= width for line in text.splitlines())
    words = re.sub(r"[━╸╺ ]+", " ", text).split()
    assert words == progress_text(PROG).split()


def test_live_view_is_the_last_trials_and_the_progress():
    many = [rec(i, (0.5, 0.6, 0.2, 0.2)) for i in range(20)]
    text = render(live_view(many, PROG, limit=5))
    assert sorted(int(k.rstrip("*")) for k in rows(text) if k.rstrip("*").isdigit()) == \
        list(range(15, 20))
    assert text.splitlines()[-1].split()[-1] == "0:02:30"  # the progress line comes last


def log_console() -> Console:
    return Console(width=200, file=io.StringIO(), color_system=None, force_terminal=False)


def test_the_search_view_renders_what_it_is_handed_and_runs_nothing():
    """``SearchView`` is fed records and progress by its caller (moqwk/_api/shown.py runs the
    search): in a log, one line per finished trial and per fold event, each trial once."""
    from moqwk.console.views import SearchView

    console = log_console()
    prog = {**PROG, "complete": 0, "failed": 0, "running": 1, "target": 10}
    mine = [{**r, "worker": "host:1"} for r in RECORDS]  # one worker: lines do not name it
    with SearchView(console, DEFAULT_OBJECTIVES) as view:
        view.update([rec(0, None, state="running")], {**prog, "fold_event": {
            "trial": 0, "done": 1, "total": 3}})
        view.update(mine[:1], prog)
        view.update(mine[:2], prog)  # trial 0 again: not repeated
    view.finished(mine, "moqwk")
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert lines[0].endswith("trial   0 fold 1/3")
    trials = [ln for ln in lines if re.search(r"trial +\d+ +complete", ln)]
    assert [re.search(r"trial +(\d+)", ln).group(1) for ln in trials] == ["0", "1"]
    assert "worker" not in trials[0]
    assert any("Study moqwk: all trials" in ln for ln in lines)
    assert not any("already used its budget" in ln for ln in lines)


def test_the_search_view_says_when_the_budget_was_used_before():
    from moqwk.console.views import SearchView

    console = log_console()
    mine = [{**r, "worker": "host:1"} for r in RECORDS]
    with SearchView(console, DEFAULT_OBJECTIVES, shared=True) as view:  # a --storage study
        view.update(mine, {**PROG, "complete": 9, "failed": 1, "running": 0, "target": 10})
    view.interrupted(mine)  # a log printed the trials already: nothing more
    view.finished(mine, "moqwk")
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "Trials so far" not in text
    assert "The study had already used its budget (10 trials): no new trial ran." in text
    trials = [ln for ln in text.splitlines() if re.search(r"trial +\d+ ", ln)]
    assert len(trials) == 5, trials  # trial 5 is still running
    assert all("worker=host:1" in ln for ln in trials), trials


def test_on_a_terminal_the_search_view_is_a_live_table_left_behind_on_ctrl_c():
    from moqwk.console.views import SearchView

    out = io.StringIO()
    console = Console(width=140, file=out, color_system=None, force_terminal=True)
    with SearchView(console, DEFAULT_OBJECTIVES) as view:
        assert not view._live.is_started  # the live table waits for the first trial
        view.update(RECORDS, PROG)
        assert view._live.is_started
    assert not view._live.is_started
    view.interrupted(RECORDS)
    text = out.getvalue()
    assert "Trials so far (* = feasible Pareto front)" in text
    assert "trial   0 complete" not in text  # no log lines on a terminal


# --------------------------------------------------------------------------- selection, compare


def selection_record() -> dict:
    cand = [{"rank": 1, "trial_number": 7, "in_tie_band": True, "worst_prompt_qwk": 0.61,
             "mean_qwk": 0.70, "low_tail_mae": 0.12, "high_tail_mae": 0.10},
            {"rank": 2, "trial_number": 4, "in_tie_band": True, "worst_prompt_qwk": 0.60,
             "mean_qwk": 0.71, "low_tail_mae": 0.11, "high_tail_mae": 0.10},
            {"rank": 3, "trial_number": 0, "in_tie_band": False, "worst_prompt_qwk": 0.50,
             "mean_qwk": 0.69, "low_tail_mae": 0.10, "high_tail_mae": 0.09}]
    return {"trial_number": 4, "tie_tolerance": 0.0234, "candidates": cand,
            "stability_gate": {"results": [{"trial_number": 7, "passed": False},
                                           {"trial_number": 4, "passed": True}]}}


def test_front_table_shows_rank_tie_band_and_each_gate_verdict():
    text = render(front_table(selection_record()))
    assert "Ranked Pareto front (tie tolerance 0.0234)" in text
    by_rank = rows(text)
    assert by_rank["1"] == ["1", "7", "0.610", "0.700", "0.120", "0.100", "yes", "fail"]
    assert by_rank["2"] == ["2", "4", "0.600", "0.710", "0.110", "0.100", "yes", "pass"]
    assert by_rank["3"] == ["3", "0", "0.500", "0.690", "0.100", "0.090", "", "-"]


def test_compare_table_puts_in_sample_beside_fresh():
    record = {"fresh_folds": {"scheme": "prompt_holdout", "seed": 1042, "repeats": 3},
              "runs": [{"run_dir": "runs/search", "sampler": "nsga2", "trial_number": 12,
                        "in_sample": {"worst_prompt_qwk": 0.66, "mean_qwk": 0.72},
                        "fresh": {"worst_prompt_qwk": 0.58, "mean_qwk": 0.70,
                                  "low_tail_mae": 0.13, "high_tail_mae": 0.11},
                        "gate_passed": True}]}
    text = render(compare_table(record), width=110)
    assert "fresh = prompt_holdout seed 1042, 3 repeat(s)" in text
    (row,) = [re.split(r"\s{2,}", ln.strip()) for ln in text.splitlines()
              if ln.startswith("runs/search")]
    assert row == ["runs/search", "nsga2 #12", "0.660/0.580", "0.720/0.700", "0.130/0.110",
                   "pass"]


def test_compare_table_never_cuts_a_run_directory():
    """Two runs whose names differ only at the end stay told apart on an 80-column terminal."""
    runs = [{"run_dir": f"runs/ellipse-nsga2-budget-40-{tag}", "sampler": "nsga2",
             "trial_number": 3, "in_sample": {}, "fresh": {}, "gate_passed": True}
            for tag in ("seed-7", "seed-8")]
    text = render(compare_table({"fresh_folds": {"scheme": "prompt_holdout", "seed": 1,
                                                 "repeats": 1}, "runs": runs}), width=80)
    lines = text.splitlines()
    header = next(ln for ln in lines if ln.startswith("run "))
    width = header.index("choice")  # the run column, up to the next one
    body = lines[next(i for i, ln in enumerate(lines) if ln.startswith("─")) + 1:]
    first_cells = "".join(ln[:width].strip() for ln in body)
    assert first_cells == "".join(r["run_dir"] for r in runs)


# --------------------------------------------------------------------------- the console


def test_a_log_console_is_wide_and_never_wraps(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    console = make_console()  # pytest's captured stdout is not a terminal
    assert not console.is_terminal
    assert console.width == LOG_WIDTH >= 200 and console.soft_wrap
    monkeypatch.setenv("COLUMNS", "80")  # a narrower terminal's COLUMNS does not narrow a log
    assert make_console().width == LOG_WIDTH
    monkeypatch.setenv("COLUMNS", "300")
    assert make_console().width == 300


def test_no_color_is_honoured_in_a_log(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert make_console().no_color


def test_a_heading_in_a_log_is_one_line(capsys: pytest.CaptureFixture[str]):
    heading(make_console(), "Baseline CV")
    assert capsys.readouterr().out == "== Baseline CV\n"


def test_the_live_footer_keeps_counting_between_updates(monkeypatch):
    """Rich re-renders the footer on its timer: 30 s after the last update the elapsed time
    has grown by 30 s and the ETA shrunk by as much (it froze at the update's numbers)."""
    import moqwk.console.live as live

    clock = [1000.0]
    monkeypatch.setattr(live.time, "monotonic", lambda: clock[0])
    footer = live.LiveFooter(PROG)
    assert "elapsed 0:01:15  ETA 0:02:30" in render(footer, width=200)
    clock[0] += 30.0
    assert "elapsed 0:01:45  ETA 0:02:00" in render(footer, width=200)


def test_pruned_trials_are_counted_done_and_their_folds_shown():
    prog = {**PROG, "pruned": 2, "running_trials": [
        {"number": 7, "folds_done": 2, "folds_total": 5, "started": 100.0}]}
    assert progress_text(prog).startswith("6/10 trials (3 complete, 2 pruned, 1 failed")
    from moqwk.console.live import folds_text

    assert folds_text(prog, now=131.0) == "trial 7: 2/5 folds, 0:00:31"
    assert "trial 7: 2/5 folds" in render(progress_line(prog), width=200)
    pruned = rec(9, None, state="pruned", feasible=False)
    pruned["pruned"] = {"folds_run": 2, "folds_total": 5, "reason": "dominated by trial 3"}
    assert trial_line(pruned, NAMES) == ("trial   9 pruned (stopped after 2 of 5 folds: "
                                         "dominated by trial 3)")
