"""The typed, versioned records of a run's artifacts (moqwk.run.artifact_records), on the files a
real demo search and selection wrote (the shared ``selected_run``).

- each record read from its file gives that file back byte for byte (``to_dict`` then the same
  JSON writer), with its ``record_version``;
- a file written before the version key existed reads as version 1;
- a newer version, a missing required key or an unknown key is one ``Error:`` line through the
  CLI (``fit``, ``compare``, ``report``), exit 7, and nothing is written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from moqwk.base import artifacts
from moqwk.errors import RunDirError
from moqwk.run.artifact_records import (
    CVMetricsRecord,
    ProgressRecord,
    SelectionRecord,
    read_cv_metrics,
    read_progress,
    read_selection,
    read_trials,
)
from moqwk.study.records import RECORD_VERSION as TRIAL_RECORD_VERSION
from moqwk.study.records import TrialRecord

SELECTED = "artifacts/selected_params.json"
PROGRESS = "progress.json"
CV_METRICS = "artifacts/cv_metrics.json"
TRIALS = "artifacts/optuna_trials.json"
STUDY = "artifacts/optuna_study.json"


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _edit(path: Path, change) -> None:
    data = _json(path)
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture
def run_copy(selected_run, tmp_path) -> Path:
    """A copy of the shared selected run (its model directory, if any, left out)."""
    dst = tmp_path / "run"
    shutil.copytree(selected_run.run_dir, dst, ignore=shutil.ignore_patterns("model"))
    return dst


def _listing(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


# --------------------------------------------------------------------------- round trips


def test_selection_record_round_trips_the_file_byte_for_byte(selected_run):
    path = selected_run.run_dir / SELECTED
    record = read_selection(selected_run.run_dir)
    assert _json(path)["record_version"] == SelectionRecord.RECORD_VERSION == 1
    assert artifacts.dumps(record.to_dict()) == path.read_text(encoding="utf-8")
    # the typed fields are the file's
    raw = _json(path)
    assert record.chosen and record.trial_number == raw["trial_number"]
    assert record.params == raw["params"] and record.values == raw["values"]
    assert record.baseline["trial_number"] == raw["baseline"]["trial_number"]
    assert record.gate_passed is raw["stability_gate"]["results"][-1]["passed"] is True
    assert sorted(record.objective_set.names) == sorted(raw["values"])


def test_progress_record_round_trips_the_file_byte_for_byte(selected_run):
    path = selected_run.run_dir / PROGRESS
    record = read_progress(selected_run.run_dir)
    assert _json(path)["record_version"] == ProgressRecord.RECORD_VERSION == 1
    assert artifacts.dumps(record.to_dict()) == path.read_text(encoding="utf-8")
    trials = read_trials(selected_run.run_dir)
    assert record.complete == sum(t.state == "complete" for t in trials) > 0
    assert record.target == len([t for t in trials if t.state in ("complete", "fail")])


def test_cv_metrics_record_round_trips_the_file_byte_for_byte(selected_run):
    """select rewrote cv_metrics.json for its choice: the record is that trial's run."""
    path = selected_run.run_dir / CV_METRICS
    record = read_cv_metrics(selected_run.run_dir)
    assert _json(path)["record_version"] == CVMetricsRecord.RECORD_VERSION == 1
    assert artifacts.dumps(record.to_dict()) == path.read_text(encoding="utf-8")
    chosen = read_selection(selected_run.run_dir)
    assert record.scheme == "prompt_holdout" and record.params == chosen.params
    assert record.mean_qwk == pytest.approx(chosen.values["mean_qwk"], abs=1e-12)


def test_trial_rows_read_as_records_and_give_the_file_back(selected_run):
    path = selected_run.run_dir / TRIALS
    rows = read_trials(selected_run.run_dir)
    assert all(isinstance(r, TrialRecord) for r in rows)
    assert [r.number for r in rows] == list(range(len(rows)))
    assert artifacts.dumps([r.to_dict() for r in rows]) == path.read_text(encoding="utf-8")
    assert _json(selected_run.run_dir / STUDY)["trial_record_version"] == TRIAL_RECORD_VERSION


# --------------------------------------------------------------------------- older files


def test_files_without_a_version_read_as_version_1(run_copy):
    for rel in (SELECTED, PROGRESS, CV_METRICS):
        _edit(run_copy / rel, lambda d: d.pop("record_version"))
    _edit(run_copy / STUDY, lambda d: d.pop("trial_record_version"))
    old_sel, old_prog = read_selection(run_copy), read_progress(run_copy)
    assert old_sel.to_dict()["record_version"] == 1
    assert old_sel.to_dict() == _json(run_copy / SELECTED) | {"record_version": 1}
    assert old_prog.to_dict() == _json(run_copy / PROGRESS) | {"record_version": 1}
    assert read_cv_metrics(run_copy).to_dict() == _json(run_copy / CV_METRICS) | {
        "record_version": 1}
    assert len(read_trials(run_copy)) == len(_json(run_copy / TRIALS))


def test_a_selection_from_before_later_keys_reads_with_their_defaults(run_copy):
    """A record holding only the keys the first selections wrote reads; the others default."""
    keep = ("trial_number", "params", "values", "baseline", "stability_gate")
    _edit(run_copy / SELECTED, lambda d: [d.pop(k) for k in list(d) if k not in keep])
    rec = read_selection(run_copy)
    assert rec.holdout is None and rec.selection_bias is None and rec.objectives is None
    assert rec.objective_set.names == ("worst_prompt_qwk", "mean_qwk", "low_tail_mae",
                                       "high_tail_mae")


# --------------------------------------------------------------------------- refused files


@pytest.mark.parametrize("change, says", [
    (lambda d: d.pop("params"), "no `params` key"),
    (lambda d: d.update(record_version=2), "`record_version` is 2, newer than this moqwk"),
    (lambda d: d.update(record_version="one"), "`record_version` must be a whole number"),
    (lambda d: d.update(params=None), "`params` is null"),
    (lambda d: d.update(params=[1, 2]), "`params` must be a JSON object"),
    (lambda d: d.update(shiny=1), "unknown key(s) shiny"),
])
def test_fit_refuses_a_bad_selected_params_with_one_error_line(run_copy, moqwk, change, says,
                                                               assert_one_error_line):
    _edit(run_copy / SELECTED, change)
    before = _listing(run_copy)
    rc, _out, err = moqwk("fit", "--run-dir", run_copy)
    assert rc == 7
    line = assert_one_error_line(err, str(run_copy / SELECTED), says)
    assert f"moqwk select --run-dir {run_copy}" in line or "upgrade moqwk" in line
    assert _listing(run_copy) == before  # no model directory, no temporary one


def test_fit_of_a_trial_refuses_trial_rows_of_a_newer_version(run_copy, moqwk,
                                                              assert_one_error_line):
    _edit(run_copy / STUDY, lambda d: d.update(trial_record_version=TRIAL_RECORD_VERSION + 1))
    before = _listing(run_copy)
    rc, _out, err = moqwk("fit", "--run-dir", run_copy, "--trial", "0")
    assert rc == 7
    assert_one_error_line(err, str(run_copy / STUDY), "`trial_record_version`", "upgrade moqwk")
    assert _listing(run_copy) == before


def test_fit_of_a_trial_names_a_bad_trial_row(run_copy, moqwk, assert_one_error_line):
    _edit(run_copy / TRIALS, lambda rows: rows[1].pop("state"))
    rc, _out, err = moqwk("fit", "--run-dir", run_copy, "--trial", "0")
    assert rc == 7
    assert_one_error_line(err, str(run_copy / TRIALS), "trial record 1", "no state field",
                          f"moqwk search --run-dir {run_copy}")


@pytest.mark.parametrize("change, says", [
    (lambda d: d.pop("complete"), "no `complete` key"),
    (lambda d: d.update(record_version=7), "`record_version` is 7"),
])
def test_compare_refuses_a_bad_progress_json_and_writes_nothing(
        run_copy, selected_run, moqwk, tmp_path, change, says, assert_one_error_line):
    _edit(run_copy / PROGRESS, change)
    before = _listing(run_copy)
    out = tmp_path / "cmp"
    rc, _out, err = moqwk("compare", run_copy, "--config", selected_run.config, "--out", out,
                          "--fresh-repeats", "1")
    assert rc == 7
    assert_one_error_line(err, str(run_copy / PROGRESS), says, "moqwk search --run-dir")
    assert not out.exists() and _listing(run_copy) == before


def test_report_refuses_cv_metrics_of_a_newer_version_and_writes_nothing(
        run_copy, moqwk, assert_one_error_line):
    _edit(run_copy / CV_METRICS, lambda d: d.update(record_version=2))
    before = _listing(run_copy)
    rc, _out, err = moqwk("report", "--run-dir", run_copy)
    assert rc == 7
    assert_one_error_line(err, str(run_copy / CV_METRICS), "`record_version` is 2",
                          "upgrade moqwk")
    assert _listing(run_copy) == before


def test_a_record_that_is_not_an_object_is_refused(tmp_path):
    with pytest.raises(RunDirError, match="does not hold a selection record"):
        SelectionRecord.from_dict([1], source=tmp_path / SELECTED)
    with pytest.raises(RunDirError, match="no `complete`, `failed`, `target` keys"):
        ProgressRecord.from_dict({}, source="progress.json")
