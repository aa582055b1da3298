"""A failed command creates nothing: no run directory, no output directory, no parent of them.

Each test runs a command that fails (in the per-test empty working directory), checks its exit
code and its one ``Error:`` line, and that the directories it was given do not exist afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

UNREACHABLE = "postgresql+psycopg://u:pw@127.0.0.1:1/x"  # nothing listens on port 1
MALFORMED = "nonsense://x"


def _nothing_left(*paths: str) -> None:
    for p in paths:
        assert not Path(p).exists(), f"{p} was left behind"
    assert not Path("runs").exists(), sorted(map(str, Path("runs").rglob("*")))


def test_select_on_a_run_without_a_study_leaves_no_run_dir(moqwk, demo_config_path,
                                                          assert_one_error_line):
    rc, _out, err = moqwk("select", "--config", demo_config_path, "--run-dir", "runs/nope")
    assert rc == 7
    assert_one_error_line(err, "runs/nope")
    _nothing_left("runs/nope")
    # and so the run directory can still be started by the command the user meant
    rc, _out, err = moqwk("cv", "--config", demo_config_path, "--run-dir", "runs/nope")
    assert rc == 0, err


@pytest.mark.parametrize("url", [UNREACHABLE, MALFORMED])
@pytest.mark.parametrize("command", ["search", "grid"])
def test_a_storage_that_cannot_be_opened_leaves_no_run_dir(moqwk, write_search_config, tmp_path,
                                                          assert_one_error_line, url, command):
    cfg = write_search_config(tmp_path / "cfg.yaml")
    rc, _out, err = moqwk(command, "--config", cfg, "--run-dir", "runs/pg", "--storage", url)
    assert rc == 4
    line = assert_one_error_line(err, "cannot open storage")
    assert "pw" not in line
    _nothing_left("runs/pg")


def test_cv_with_a_missing_params_file_leaves_no_run_dir(moqwk, demo_config_path,
                                                         assert_one_error_line):
    rc, _out, err = moqwk("cv", "--config", demo_config_path, "--run-dir", "runs/a",
                          "--params", "missing.json")
    assert rc == 2
    assert_one_error_line(err, "--params", "missing.json")
    _nothing_left("runs/a")


def test_cv_failing_after_it_started_leaves_no_run_dir(moqwk, demo_config_path, tmp_path,
                                                       assert_one_error_line):
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"max_depth": 3, "n_estimators": 0}), encoding="utf-8")
    rc, _out, err = moqwk("cv", "--config", demo_config_path, "--run-dir", "runs/a",
                          "--params", params)
    assert rc == 2
    assert_one_error_line(err, "n_estimators")
    _nothing_left("runs/a")


@pytest.mark.parametrize("argv", [
    ["compare", "runs/nope", "--out", "runs/cmp"],
    ["fit", "--run-dir", "runs/nope", "--out", "runs/model"],
    ["report", "--run-dir", "runs/nope"],
])
def test_commands_on_a_missing_run_leave_nothing(moqwk, argv, error_lines):
    rc, _out, err = moqwk(*argv)
    assert rc != 0
    assert len(error_lines(err)) == 1 and error_lines(err)[0].startswith("Error: "), err
    _nothing_left()


def test_select_says_what_starts_a_run(moqwk, demo_config_path, assert_one_error_line):
    """select is never a run's first command: its error names the command that starts one, not
    "pass --config for its first command" (which would fail the same way)."""
    rc, _out, err = moqwk("select", "--run-dir", "runs/nope")
    assert rc == 7
    line = assert_one_error_line(err, "runs/nope", "moqwk search --config CONFIG --run-dir "
                                 "runs/nope")
    assert "first command" not in line
    rc, _out, err = moqwk("select", "--run-dir", "runs/nope", "--storage",
                          "sqlite:///elsewhere.db")
    assert rc == 2
    line = assert_one_error_line(err, "holds no run yet", "moqwk search --config CONFIG")
    assert "first command" not in line
    _nothing_left("elsewhere.db")


def test_a_failed_command_keeps_a_directory_that_existed(moqwk, demo_config_path):
    """Only what the failed command itself created goes: an existing directory and its files
    stay, even when the command fails in it."""
    run = Path("runs/mine")
    run.mkdir(parents=True)
    (run / "notes.txt").write_text("mine", encoding="utf-8")
    rc, _out, _err = moqwk("select", "--config", demo_config_path, "--run-dir", run)
    assert rc == 7
    assert (run / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]  # no config.yaml recorded


def test_a_new_run_dir_whose_study_holds_trials_is_kept(tmp_path):
    """A search that fails after trials finished (a storage lost mid-run) keeps them: the run
    directory goes only while its study is empty. An interrupt (130) keeps everything."""
    import optuna

    from moqwk.cli._leftovers import remove_leftovers

    empty, full = tmp_path / "empty", tmp_path / "full"
    for d in (empty, full):
        d.mkdir()
        optuna.create_study(storage=f"sqlite:///{d / 'study.db'}", study_name="moqwk")
    optuna.load_study(storage=f"sqlite:///{full / 'study.db'}", study_name="moqwk").optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    remove_leftovers([empty, full], 4)
    remove_leftovers([interrupted], 130)
    assert not empty.exists()
    assert (full / "study.db").exists()
    assert interrupted.exists()
