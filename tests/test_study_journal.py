"""Optuna's JournalStorage as a study storage (``--storage journal:///PATH.log``): two worker
processes finish one budget together on one journal file; status, select and the dashboard read
it from the run's record. Real processes, a real journal file, no mocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TIMEOUT = 600  # seconds for one worker; far above what it needs, only against hangs
N_TRIALS = 8


def cli(*args: object) -> list[str]:
    return [sys.executable, "-m", "moqwk.cli", *(str(a) for a in args)]


def journal_trials(path: Path, name: str):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.load_study(study_name=name, storage=storage,
                             sampler=optuna.samplers.RandomSampler()).trials


@pytest.fixture(scope="module")
def journal_run(tmp_path_factory, write_workers_config):
    """Two ``moqwk search`` processes on one journal file and one run directory."""
    root = tmp_path_factory.mktemp("journal")
    cfg = write_workers_config(root / "config.yaml", tolerance=0.05,
                               search={"population_size": 6, "seed_neighbours": 0})
    log = root / "shared.log"
    url = f"journal://{log}"  # journal:///abs/path/shared.log
    run_dir = root / "run"
    procs = []
    for i in range(2):
        out = open(root / f"worker{i}.out", "wb")  # noqa: SIM115 - closed below
        err = open(root / f"worker{i}.err", "wb")  # noqa: SIM115
        procs.append((subprocess.Popen(
            cli("search", "--config", cfg, "--run-dir", run_dir, "--n-trials", N_TRIALS,
                "--storage", url, "--study-name", "shared"),
            stdout=out, stderr=err, stdin=subprocess.DEVNULL), out, err))
    results = []
    for i, (p, out, err) in enumerate(procs):
        try:
            rc = p.wait(timeout=TIMEOUT)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            out.close()
            err.close()
        results.append((rc, (root / f"worker{i}.err").read_text(errors="replace"), p.pid))
    return root, cfg, log, url, run_dir, results


def test_two_workers_finish_one_budget_on_one_journal(journal_run):
    from optuna.trial import TrialState

    _root, _cfg, log, _url, run_dir, results = journal_run
    for rc, err, _pid in results:
        assert rc == 0, err
    trials = journal_trials(log, "shared")
    counted = [t for t in trials if t.state == TrialState.COMPLETE or (
        t.state == TrialState.FAIL and "moqwk_failure" in t.user_attrs)]
    assert len(counted) == N_TRIALS
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    # the queued baseline ran once (two workers popping one queued trial would run it twice)
    roles = Counter(t.user_attrs.get("moqwk_role") for t in trials
                    if t.state == TrialState.COMPLETE)
    assert roles["baseline"] == 1
    # both processes ran trials of the one study
    workers = {t.user_attrs.get("moqwk_worker", "").rpartition(":")[2] for t in counted}
    assert {str(pid) for _rc, _err, pid in results} <= workers
    # the run records the journal with its absolute path, so a resume from elsewhere finds it
    record = json.loads((run_dir / "run.json").read_text())
    assert record["storage"] == f"journal://{log}"
    study = json.loads((run_dir / "artifacts/optuna_study.json").read_text())
    assert study["storage"] == f"journal://{log}"


def test_status_and_select_read_the_journal_from_the_run_record(journal_run, moqwk):
    _root, _cfg, _log, _url, run_dir, results = journal_run
    assert all(rc == 0 for rc, _err, _pid in results)
    rc, out, err = moqwk("status", "--run-dir", run_dir)
    assert rc == 0, err
    assert f"{N_TRIALS}/{N_TRIALS}" in out
    rc, out, err = moqwk("select", "--run-dir", run_dir, "--gate-margin", "0.5",
                         "--study-name", "shared")
    assert rc == 0, err
    sel = json.loads((run_dir / "artifacts/selected_params.json").read_text())
    assert sel["study"]["storage"].startswith("journal://")
    assert sel["study"]["n_counted"] == N_TRIALS


def test_dashboard_serves_the_journal_study(journal_run):
    _root, _cfg, _log, url, run_dir, _results = journal_run
    proc = subprocess.Popen(cli("dashboard", "--run-dir", run_dir, "--storage", url, "--port", 0),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("read-only view" in ln for ln in lines):
            line = proc.stdout.readline()
            assert line, f"dashboard exited: {proc.stderr.read() if proc.stderr else ''}"
            lines.append(line)
        base = lines[0].split(" on ", 1)[1].strip().removesuffix("/dashboard/")
        with urllib.request.urlopen(base + "/api/studies", timeout=30) as r:
            studies = json.loads(r.read())["study_summaries"]
        assert [s["study_name"] for s in studies] == ["shared"]
        with urllib.request.urlopen(f"{base}/api/studies/{studies[0]['study_id']}",
                                    timeout=30) as r:
            detail = json.loads(r.read())
        assert len(detail["trials"]) >= N_TRIALS
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()


def test_a_journal_in_a_missing_directory_is_one_error_line(tmp_path, write_search_config, moqwk,
                                                            assert_one_error_line):
    missing = tmp_path / "no-such-dir" / "x.log"
    cfg = write_search_config(tmp_path / "config.yaml")
    rc, _out, err = moqwk("search", "--config", cfg, "--run-dir", tmp_path / "run",
                          "--n-trials", 1, "--storage", f"journal://{missing}")
    assert rc == 4
    assert_one_error_line(err, "journal", str(missing.parent))
    assert not missing.parent.exists()


def test_reading_a_missing_journal_creates_no_file(tmp_path):
    from moqwk.errors import StorageError
    from moqwk.study.storage import open_storage_readonly

    path = tmp_path / "absent.log"
    with pytest.raises(StorageError, match="not found"):
        open_storage_readonly(f"journal://{path}")
    assert not path.exists()


def test_a_relative_journal_is_recorded_absolute(tmp_path, monkeypatch):
    from moqwk.study.storage import canonical_url

    monkeypatch.chdir(tmp_path)
    assert canonical_url("journal://runs/x.log") == f"journal://{tmp_path / 'runs/x.log'}"
    assert canonical_url("sqlite:///x.db") == "sqlite:///x.db"
