"""Progress of long work: one line per stage in a log, Rich bars on a terminal, none with --quiet.

The console side is exercised on real consoles writing to a StringIO (a log, or a forced
terminal); the library side on real runs: ``moqwk cv`` here, and the shared search, selection
and compare of conftest (whose output was captured as a log).
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from moqwk.base.progress import NO_PROGRESS
from moqwk.cli import build_parser, main
from moqwk.console.progress import BarProgress, LineProgress, make_progress

#: The time of day every log line starts with (LineProgress and the search's trial lines).
STAMP = re.compile(r"^\d\d:\d\d:\d\d ")


def _lines(text: str) -> list[str]:
    """``text``'s lines, each checked to start with the time of day, which is cut off."""
    out = []
    for ln in text.splitlines():
        if ln.startswith(("fold features", "training folds", "trial ")):
            raise AssertionError(f"a log line without its time of day: {ln!r}")
        out.append(STAMP.sub("", ln))
    return out


LINE = re.compile(r"^(?P<label>.+?): (?P<total>\d+) (?P<unit>\w+) \.\.\. "
                  r"(?P<end>(?:done, \d+ \w+|done after (?P<done>\d+) \w+ \(of up to \d+\)) "
                  r"in [\d.]+[sm])$")


def log_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=240, soft_wrap=True), out


def tty_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=160, color_system=None), out


# --------------------------------------------------------------------------- the console side


def test_make_progress_picks_bars_lines_or_nothing():
    assert isinstance(make_progress(tty_console()[0]), BarProgress)
    assert isinstance(make_progress(log_console()[0]), LineProgress)
    assert make_progress(tty_console()[0], quiet=True) is NO_PROGRESS
    assert make_progress(log_console()[0], quiet=True) is NO_PROGRESS


def test_a_log_gets_one_line_per_stage_with_what_was_done():
    con, out = log_console()
    p = LineProgress(con)
    with p.stage("fold features (prompt_holdout)", total=3, unit="folds") as st:
        for _ in range(3):
            st.advance()
    with p.stage("stability gate", total=20, unit="folds") as st:
        st.advance(10)  # the gate stopped at its first pass
    lines = _lines(out.getvalue())
    assert len(lines) == 2
    first, second = (LINE.match(ln) for ln in lines)
    assert first and first["label"] == "fold features (prompt_holdout)"
    assert first["total"] == "3" and first["end"].startswith("done, 3 folds in")
    # the gate's total is a bound: "done, 10 of 20 folds" read as a stage cut short
    assert second and second["done"] == "10" and "done after 10 folds (of up to 20)" in lines[1]
    assert "10 of 20" not in lines[1]


def test_a_stage_left_by_an_error_says_where_it_stopped():
    con, out = log_console()
    p = LineProgress(con)
    with pytest.raises(KeyboardInterrupt), p.stage("training folds", total=5, unit="folds") as st:
        st.advance(2)
        raise KeyboardInterrupt
    (line,) = _lines(out.getvalue())
    assert line.startswith("training folds: 5 folds ... stopped after 2 of 5 folds (")


def test_a_stage_inside_a_stage_still_gives_whole_lines():
    con, out = log_console()
    p = LineProgress(con)
    with p.stage("outer", total=1, unit="configs") as outer:
        with p.stage("inner", total=2, unit="folds") as inner:
            inner.advance(2)
        outer.advance()
    lines = _lines(out.getvalue())
    assert lines[0] == "outer: 1 configs ..."
    assert lines[1].startswith("inner: 2 folds ... done, 2 folds in")
    assert lines[2].startswith("outer: done, 1 configs in")


def test_a_terminal_gets_a_bar_per_stage():
    con, out = tty_console()
    p = BarProgress(con)
    with p.stage("fold features (prompt_holdout)", total=4, unit="folds") as st:
        for _ in range(4):
            st.advance()
    with pytest.raises(RuntimeError), p.stage("training folds", total=5, unit="folds") as st:
        st.advance(2)
        raise RuntimeError("boom")
    text = out.getvalue()
    assert "\x1b[?25l" in text  # the cursor is hidden while the bar is live: a terminal display
    final = [ln for ln in text.split("\n") if "fold features" in ln][-1]
    assert "4/4 folds" in final and "━" in final
    assert re.search(r"training folds \(stopped\).*2/5 folds", text)


# --------------------------------------------------------------------------- the CLI and library


def test_cv_in_a_log_prints_two_stages_and_quiet_prints_none(tmp_path, demo_config_path, capsys):
    assert main(["cv", "--config", str(demo_config_path), "--run-dir", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    stages = [ln for ln in _lines(out) if LINE.match(ln)]
    assert [LINE.match(ln)["label"] for ln in stages] == [  # type: ignore[index]
        "fold features (prompt_holdout)", "training folds (prompt_holdout)"]
    assert all(" 5 folds ... done, 5 folds in " in ln for ln in stages)

    assert main(["cv", "--quiet", "--config", str(demo_config_path), "--run-dir",
                 str(tmp_path / "b")]) == 0
    quiet = capsys.readouterr().out
    assert " ... " not in quiet and "fold features" not in quiet
    assert "CV summary" in quiet and "worst-prompt QWK" in quiet  # results are still printed


def test_quiet_is_a_global_and_a_per_command_flag():
    parser = build_parser()
    for argv in (["--quiet", "cv", "--run-dir", "r"], ["cv", "--run-dir", "r", "-q"],
                 ["-q", "select", "--run-dir", "r"], ["search", "--run-dir", "r", "--quiet"]):
        assert parser.parse_args(argv).quiet is True, argv
    assert parser.parse_args(["cv", "--run-dir", "r"]).quiet is False


def test_cv_on_a_terminal_draws_the_bars(tmp_path, demo_config_path):
    from moqwk.config import load_config
    from moqwk.run.cv_outputs import run_cv
    from moqwk.run.workspace import Workspace

    con, out = tty_console()
    ws = Workspace.open(load_config(demo_config_path), tmp_path / "run")
    result, engine, _paths = run_cv(ws, progress=BarProgress(con))
    text = out.getvalue()
    for label in ("fold features (prompt_holdout)", "training folds (prompt_holdout)"):
        final = [ln for ln in text.split("\n") if label in ln][-1]
        assert f"{engine.n_fits}/{engine.n_fits} folds" in final, final
    assert result.metrics.n_eligible_prompts > 0


def test_search_logs_its_features_once_and_then_one_line_per_trial(searched_run):
    lines = _lines(searched_run.stdout)
    features = [i for i, ln in enumerate(lines) if ln.startswith("fold features (")]
    trials = [i for i, ln in enumerate(lines) if re.match(r"^trial +\d+ ", ln)
              and not re.match(r"^trial +\d+ fold \d+/\d+$", ln)]
    assert len(features) == 1 and "5 folds ... done, 5 folds in" in lines[features[0]]
    assert len(trials) == len(searched_run.records) and features[0] < trials[0]


def test_compare_logs_the_fresh_folds(selected_run):
    lines = _lines(selected_run.compare_stdout)
    fresh = [ln for ln in lines if ln.startswith("fresh folds (seed ")]
    assert len(fresh) == 1
    assert "1 config(s) x 1 repeat(s): 5 folds ... done, 5 folds in" in fresh[0]
    features = [ln for ln in lines if ln.startswith("fold features (prompt_holdout)")]
    assert len(features) == 1
