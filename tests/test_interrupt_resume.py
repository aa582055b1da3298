"""Ctrl-C, then the same command again: what a user does after an interrupt.

Each test starts the real command in a subprocess, waits until some trials have finished, sends
it SIGINT (what Ctrl-C sends) and checks what it printed and what a re-run of the very same
command does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

GRID = {"max_depth": [2, 3, 4], "learning_rate": [0.1, 0.2, 0.3]}


def _ctrl_c_as_on_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background job may inherit SIG_IGN


def _complete(run_dir: Path, *, running: bool = False) -> int:
    """Complete trials in the run's records; with ``running``, 0 unless one runs its CV (its
    params drawn): where a Ctrl-C lands in a real run, whose trials take minutes."""
    path = run_dir / "artifacts" / "optuna_trials.json"
    try:
        trials = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    if running and not any(t["state"] == "running" for t in trials):
        return 0
    return sum(t["state"] == "complete" for t in trials)


def interrupt(argv: list[str], run_dir: Path, *, after: int, timeout: float = 600
              ) -> subprocess.CompletedProcess:
    """Run ``moqwk *argv``; once ``after`` trials are complete, Ctrl-C it."""
    env = {**os.environ, "COLUMNS": "100"}
    proc = subprocess.Popen([sys.executable, "-m", "moqwk.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_ctrl_c_as_on_a_terminal)
    deadline = time.monotonic() + timeout
    while (_complete(run_dir, running=True) < after and proc.poll() is None
           and time.monotonic() < deadline):
        time.sleep(0.1)
    assert proc.poll() is None, "the command finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_an_interrupted_grid_resumes_with_the_command_that_started_it(
        tmp_path, write_search_config, moqwk):
    cfg = write_search_config(tmp_path / "cfg.yaml", search={"grid": GRID})
    run_dir = tmp_path / "g"
    argv = ["grid", "--config", str(cfg), "--run-dir", str(run_dir)]
    stopped = interrupt(argv, run_dir, after=2)
    assert stopped.returncode == 130, stopped.stderr
    assert "run the same command again to resume" in stopped.stderr
    done = _complete(run_dir)
    assert 2 <= done < 1 + 9
    rc, out, err = moqwk(*argv)  # the same command, --config included
    assert rc == 0, err
    trials = json.loads((run_dir / "artifacts/optuna_trials.json").read_text(encoding="utf-8"))
    complete = [t for t in trials if t["state"] == "complete"]
    points = sorted((t["params"]["max_depth"], t["params"]["learning_rate"])
                    for t in complete if t["role"] != "baseline")
    assert points == sorted((d, lr) for d in GRID["max_depth"] for lr in GRID["learning_rate"])

