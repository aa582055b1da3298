"""The "Reproduce" commands a run writes, run as written (issue 14).

For a ``search`` run and a ``grid`` run on the demo corpus, each really interrupted (``--timeout``
stops starting trials after the first one, so the run holds fewer trials than its budget):

- ``select`` on the interrupted run says it is unfinished, and its ``selected_params.json`` and
  ``optuna_summary.md`` list the same commands;
- running those commands finishes the run: its budget of trials, the earlier trials unchanged,
  and a new selection that no longer says unfinished;
- running the finished run's commands again changes nothing: no new trial, the same trial and
  selection records, exit 0.

test_grid_compare.py checks a finished grid re-run by hand (``grid --run-dir``); here the
commands are read from the files the user reads.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from pathlib import Path

import pytest

from moqwk.cli import main

pytestmark = pytest.mark.slow

GRID = {"max_depth": [2, 4], "learning_rate": [0.1, 0.2]}  # 4 points + the baseline


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def moqwk(command: str) -> tuple[int, str]:
    """A ``moqwk ...`` command line, run in-process with stdout captured (as in a log)."""
    argv = shlex.split(command, comments=True)
    assert argv[0] == "moqwk", command
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(argv[1:])
    return rc, out.getvalue()


def reproduce_commands(run_dir: Path) -> list[str]:
    """The commands of selected_params.json, checked against optuna_summary.md's Reproduce."""
    listed = read_json(run_dir / "artifacts/selected_params.json")["reproduce"]
    summary = (run_dir / "reports/optuna_summary.md").read_text(encoding="utf-8")
    block = re.search(r"^## Reproduce\n\n```sh\n(.*?)^```", summary, re.M | re.S)
    assert block, "optuna_summary.md has no Reproduce block"
    assert block.group(1).splitlines() == listed
    return listed


def trials(run_dir: Path) -> list[dict]:
    """optuna_trials.json without the wall-clock fields of each trial."""
    out = []
    for t in read_json(run_dir / "artifacts/optuna_trials.json"):
        out.append({k: v for k, v in t.items()
                    if k not in ("datetime_start", "datetime_complete", "duration_s")})
    return out


@pytest.mark.parametrize("kind", ["search", "grid"])
def test_reproduce_commands_finish_an_interrupted_run_and_then_change_nothing(
        kind: str, tmp_path: Path, write_search_config) -> None:
    budget = 4 if kind == "search" else len(GRID["max_depth"]) * len(GRID["learning_rate"]) + 1
    cfg = write_search_config(tmp_path / "config.yaml",
                              search={"n_trials": 4} if kind == "search" else {"grid": GRID})
    run = tmp_path / kind
    rc, _ = moqwk(f"moqwk {kind} --config {cfg} --run-dir {run} --timeout 0.1")
    assert rc == 0
    first = [t for t in trials(run) if t["state"] == "complete"]  # seeds may wait, enqueued
    assert 1 <= len(first) < budget, "--timeout 0.1 should stop after the first trial(s)"
    rc, out = moqwk(f"moqwk select --run-dir {run} --gate-margin 0.5")
    assert rc == 0
    assert f"The study is unfinished: {len(first)} of {budget}" in " ".join(out.split())

    commands = reproduce_commands(run)
    resume = f"moqwk {kind} --run-dir {run}"
    assert commands[0].startswith(resume + "  #"), commands  # the resume command comes first
    assert commands[1] == f"moqwk select --run-dir {run} --gate-margin 0.5"
    for command in commands:
        rc, _ = moqwk(command)
        assert rc == 0, command
    done = trials(run)
    assert [t["state"] for t in done] == ["complete"] * budget
    assert done[:len(first)] == first  # the earlier trials were kept, not re-run
    if kind == "grid":
        points = {(t["params"]["max_depth"], t["params"]["learning_rate"]) for t in done[1:]}
        assert len(points) == budget - 1  # every grid point once
    selected = read_json(run / "artifacts/selected_params.json")
    assert selected["study"]["n_counted"] == budget
    assert "unfinished" not in (run / "reports/optuna_summary.md").read_text(encoding="utf-8")

    again = reproduce_commands(run)
    assert again == commands
    for command in again:
        rc, _ = moqwk(command)
        assert rc == 0, command
    assert trials(run) == done
    assert read_json(run / "artifacts/selected_params.json") == selected
    assert read_json(run / "run.json")["n_trials"] == budget
