"""A search piped to a file (CI, nohup, ``| tee``): one line per finished trial and one per
fold of a running trial, each starting with the time of day, nothing hard-wrapped at 80
columns, no table cell cut with '…'.

The search runs as its own process with stdout to a file, as a user's log would be written, and
with ``COLUMNS=80`` as an 80-column terminal exports it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

N = 3
NAMES = ("worst_prompt_qwk", "mean_qwk", "low_tail_mae", "high_tail_mae")


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory, write_search_config) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp("log")
    cfg = write_search_config(root / "config.yaml")
    run = root / "a-run-directory-with-a-long-name-so-paths-pass-eighty-columns"
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["COLUMNS"] = "80"
    with open(root / "search.log", "wb") as out:
        proc = subprocess.run([sys.executable, "-m", "moqwk.cli", "search", "--config", str(cfg),
                               "--run-dir", str(run), "--n-trials", str(N), "--n-jobs", "1"],
                              stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                              env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()
    return (root / "search.log").read_text(encoding="utf-8"), run


STAMP = re.compile(r"^\d\d:\d\d:\d\d ")


def _unstamped(text: str) -> list[str]:
    """The log's lines, the time of day cut from those that carry it."""
    return [STAMP.sub("", ln) for ln in text.splitlines()]


def test_trial_and_fold_lines_carry_the_time_of_day(log):
    text, _ = log
    stamped = [ln for ln in text.splitlines() if STAMP.match(ln)]
    assert any(" fold features " in f" {ln}" for ln in stamped)
    assert sum(" complete " in ln for ln in stamped) == N


def test_one_line_per_fold_of_each_trial(log):
    text, _ = log
    folds = [ln for ln in _unstamped(text) if re.fullmatch(r"trial +\d+ fold \d+/5", ln)]
    assert [(int(ln.split()[1]), ln.split()[-1]) for ln in folds] == [
        (t, f"{k}/5") for t in range(N) for k in range(1, 6)]


def test_one_line_per_finished_trial(log):
    text, run = log
    records = json.loads((run / "artifacts/optuna_trials.json").read_text())
    lines = [ln for ln in _unstamped(text) if ln.startswith("trial ") and " fold " not in ln]
    assert [int(ln.split()[1]) for ln in lines] == [r["number"] for r in records] == list(range(N))
    for ln, r in zip(lines, records, strict=True):
        for name in NAMES:  # every value of the trial, whole, on its own line
            assert f"{name}={r['values'][name]:.3f}" in ln, ln
        head, _, tail = ln.partition("  [")  # the trial, then the search's progress after it
        assert head.endswith(f"feasible={'yes' if r['feasible'] else 'no'}")
        assert re.fullmatch(r"\d+/\d+ trials, elapsed .+, ETA .+\]", tail), ln
    assert lines[0].startswith("trial   0 complete (baseline) ")
    assert [ln.partition("  [")[2].split("/")[0] for ln in lines] == [
        str(i) for i in range(1, N + 1)]


def test_nothing_is_hard_wrapped_at_eighty_columns(log):
    text, run = log
    lines = _unstamped(text)
    assert max(len(ln) for ln in lines) > 80  # precondition: there were long lines to wrap
    # every line is a known kind of line: no orphaned continuation of a wrapped one
    kinds = re.compile(r"^(trial +\d+ |\d+/\d+ trials \(|Study moqwk: all trials|[┏┃┡│└]|"
                       r"Next: moqwk select |Resume or re-check: moqwk search |"
                       r"fold features \(prompt_holdout\): \d+ folds \.\.\. done, )")
    assert all(kinds.match(ln) for ln in lines), [ln for ln in lines if not kinds.match(ln)]
    assert f"Resume or re-check: moqwk search --run-dir {run}" in lines


def test_no_table_cell_is_cut(log):
    text, _run = log
    assert "…" not in text
    rows = [ln for ln in text.splitlines() if ln.startswith("│")]
    assert len(rows) == N
    assert "complete (baseline)" in rows[0] and "complete (seed)" in rows[1]
