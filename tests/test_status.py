"""``moqwk status``: read from the study itself, so every worker's trials appear.

Worker A starts a study in a shared SQLite storage and stops after its first trial (its
``progress.json`` then says 1 complete, and stays so). ``status --watch`` on A's run directory is
started as a separate process writing to a file (a log), then worker B finishes the budget from
its own run directory. The watcher must follow B's trials and end by itself.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from moqwk.cli import main

pytestmark = pytest.mark.slow

N = 4
TIMEOUT = 600  # only against a hang: the watcher must end by itself
PROGRESS = re.compile(r"^(\d+)/(\d+) trials \((\d+) complete, (\d+) failed, (\d+) running, "
                      r"(\d+) feasible\)")


def wait_for_output(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if path.exists() and path.read_text(encoding="utf-8").strip():
            return
        if proc.poll() is not None:
            return
        time.sleep(0.05)
    pytest.fail("status --watch printed nothing")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, write_search_config) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("status")
    cfg = write_search_config(root / "config.yaml")
    url = f"sqlite:///{root / 'shared.db'}"
    a, b = root / "worker-a", root / "worker-b"
    # A's budget is N, but it stops starting trials once 0.1 s have passed: after its first
    # trial (a trial takes about a second here; a fast machine may fit in one more).
    assert main(["search", "--config", str(cfg), "--run-dir", str(a), "--storage", url,
                 "--n-trials", str(N), "--timeout", "0.1"]) == 0
    a_progress = json.loads((a / "progress.json").read_text())
    assert 1 <= a_progress["complete"] < N  # precondition: B runs the rest

    log = root / "watch.log"
    with open(log, "wb") as out:
        watcher = subprocess.Popen([sys.executable, "-m", "moqwk.cli", "status", "--run-dir",
                                    str(a), "--watch", "0.3"], stdout=out,
                                   stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        wait_for_output(log, watcher)
        assert main(["search", "--config", str(cfg), "--run-dir", str(b), "--storage", url,
                     "--n-trials", str(N)]) == 0
        _out, err = watcher.communicate(timeout=TIMEOUT)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    study = optuna.load_study(study_name="moqwk", storage=url,
                              sampler=optuna.samplers.RandomSampler())
    return SimpleNamespace(root=root, url=url, a=a, b=b, a_progress=a_progress, study=study,
                           watch_rc=watcher.returncode, watch_err=err.decode(),
                           watch=log.read_text(encoding="utf-8"))


def table_numbers(text: str) -> list[int]:
    return [int(m.group(1)) for m in re.finditer(r"^│\s*(\d+)\*?\s*│", text, re.M)]


def test_status_of_worker_a_shows_worker_bs_trials(shared, moqwk):
    assert len(shared.study.trials) == N
    rc, out, err = moqwk("status", "--run-dir", shared.a)
    assert rc == 0, err
    assert table_numbers(out) == [t.number for t in shared.study.trials] == list(range(N))
    assert f"{N}/{N} trials ({N} complete, 0 failed, 0 running" in out
    # A's own files were last written when A stopped, before B ran the other trials: status
    # read the study, not them
    a_trials = json.loads((shared.a / "artifacts/optuna_trials.json").read_text())
    assert sum(t["state"] == "complete" for t in a_trials) == shared.a_progress["complete"] < N
    assert json.loads((shared.a / "progress.json").read_text()) == shared.a_progress


def test_watch_in_a_log_follows_the_study_and_ends_when_the_budget_is_used(shared):
    assert shared.watch_rc == 0, shared.watch_err
    lines = shared.watch.splitlines()
    counts = [PROGRESS.match(ln).groups() for ln in lines if PROGRESS.match(ln)]
    done_by_a = str(shared.a_progress["complete"])
    assert counts[0][:3] == (done_by_a, str(N), done_by_a)  # it started before B ran a trial
    assert counts[-1][:3] == (str(N), str(N), str(N))
    assert [int(c[0]) for c in counts] == sorted(int(c[0]) for c in counts)
    # one line per change of the counts, not one per refresh
    assert all(a != b for a, b in zip(counts, counts[1:], strict=False)), counts
    assert lines[-1] == "The study has used its budget."
    assert table_numbers(shared.watch) == list(range(N))  # the table, once, at the end
    assert shared.watch.count("┏") == 1
    assert "…" not in shared.watch


def test_status_with_storage_needs_no_run_of_its_own(shared, tmp_path, moqwk,
                                                     assert_one_error_line):
    rc, out, err = moqwk("status", "--run-dir", tmp_path / "elsewhere", "--storage", shared.url)
    assert rc == 0, err
    assert table_numbers(out) == list(range(N))
    rc, _out, err = moqwk("status", "--run-dir", tmp_path / "elsewhere")
    assert rc == 7
    assert_one_error_line(err, "no search yet", "--storage")


def test_status_of_an_unknown_study_exits_7(shared, moqwk, assert_one_error_line):
    rc, _out, err = moqwk("status", "--run-dir", shared.a, "--study-name", "nope")
    assert rc == 7
    assert_one_error_line(err, "no study 'nope'", "--study-name")


def test_status_all_and_the_last_twenty(tmp_path, moqwk):
    """Without --all the table shows the last 20 trials of a longer study."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="moqwk", storage=url,
                                directions=["maximize", "maximize", "minimize", "minimize"])
    study.set_metric_names(["worst_prompt_qwk", "mean_qwk", "low_tail_mae", "high_tail_mae"])
    for i in range(25):
        study.add_trial(optuna.trial.create_trial(
            values=[0.5, 0.6, 0.2 + i / 1000, 0.2],
            constraints={"low_tail_guardrail": -0.01, "high_tail_guardrail": -0.01}))
    rc, out, _err = moqwk("status", "--run-dir", tmp_path, "--storage", url)
    assert rc == 0 and table_numbers(out) == list(range(5, 25))
    rc, out, _err = moqwk("status", "--run-dir", tmp_path, "--storage", url, "--all")
    assert rc == 0 and table_numbers(out) == list(range(25))
    assert "25/25 trials" in out  # no run record: the study's trials are its budget
