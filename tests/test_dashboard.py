"""``moqwk dashboard``: optuna-dashboard on a real run, read back through its HTTP API.

The server is the real command in a subprocess on 127.0.0.1 (a free port), the study a real
search; trials, metric names and constraint values are compared with ``optuna_trials.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from moqwk.cli import main
from moqwk.errors import RunDirError
from moqwk.stages.status import storage_for
from moqwk.study.dashboard import constraint_list, constraint_names

pytest.importorskip("optuna_dashboard", reason="the 'dashboard' extra is not installed")

CONSTRAINTS = ("low_tail_guardrail", "high_tail_guardrail")


def test_constraint_list_follows_the_given_order_then_names():
    named = {"b": 2.0, "low": -1.0, "a": 1.0, "high": 0.5}
    assert constraint_list(named, ("low", "high")) == [-1.0, 0.5, 1.0, 2.0]
    assert constraint_names(named, ("low", "high")) == ["low", "high", "a", "b"]
    assert constraint_list(named) == [1.0, 2.0, 0.5, -1.0]  # by name: a, b, high, low


def test_the_runs_storage_is_its_record_s_or_its_study_db(tmp_path):
    """What `moqwk dashboard` (and status) open: --storage, else the run record's storage
    unless its password was masked, else RUN_DIR/study.db."""
    from moqwk.run.record import RunRecord, write_run_record

    with pytest.raises(RunDirError, match="moqwk search"):
        storage_for(tmp_path, None)
    (tmp_path / "study.db").write_bytes(b"")
    assert storage_for(tmp_path, None).endswith("/study.db")
    record = RunRecord(kind="search", scoring_hash="s", data_hash="d",
                       storage="postgresql+psycopg://u:***@db:5432/x")
    write_run_record(tmp_path, record)
    with pytest.raises(RunDirError, match="--storage"):
        storage_for(tmp_path, None)
    write_run_record(tmp_path, RunRecord(kind="search", scoring_hash="s", data_hash="d",
                                         storage="postgresql+psycopg://u@db:5432/x"))
    assert storage_for(tmp_path, None) == "postgresql+psycopg://u@db:5432/x"
    assert storage_for(tmp_path, "sqlite:///other.db") == "sqlite:///other.db"


def test_dashboard_on_a_run_without_a_study_exits_7(tmp_path, capsys):
    assert main(["dashboard", "--run-dir", str(tmp_path), "--port", "0"]) == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "moqwk search" in err[0]


class Dashboard:
    """``moqwk dashboard`` in a subprocess; ``get`` reads its JSON API."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moqwk.cli", "dashboard", *args, "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"dashboard exited: {self.proc.stderr.read()}")
            self.lines.append(line.rstrip("\n"))
            if "read-only view" in line:
                break
        self.url = self.lines[0].split(" on ", 1)[1].strip()
        assert self.url.startswith("http://127.0.0.1:") and self.url.endswith("/dashboard/")
        self.base = self.url.removesuffix("/dashboard/")

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.base + path, timeout=30) as r:
            return json.loads(r.read())

    def request(self, method: str, path: str) -> int:
        req = urllib.request.Request(self.base + path, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def request_body(self, method: str, path: str) -> tuple[int, str]:
        req = urllib.request.Request(self.base + path, method=method,
                                     data=json.dumps({"version": 1, "body": "x"}).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


@pytest.fixture(scope="module")
def dashboard(selected_run) -> Iterator[Dashboard]:
    """One server for the module's tests (none of them changes the study: writes are refused)."""
    d = Dashboard("--run-dir", str(selected_run.run_dir))
    try:
        yield d
    finally:
        d.stop()


@pytest.mark.slow
def test_dashboard_shows_every_trial_with_metric_names_and_constraints(selected_run, dashboard):
    recs = json.loads((selected_run.run_dir / "artifacts/optuna_trials.json").read_text())
    studies = dashboard.get("/api/studies")["study_summaries"]
    assert [s["study_name"] for s in studies] == ["moqwk"]
    detail = dashboard.get(f"/api/studies/{studies[0]['study_id']}")
    assert detail["objective_names"] == ["worst_prompt_qwk", "mean_qwk", "low_tail_mae",
                                         "high_tail_mae"]
    by_number = {t["number"]: t for t in detail["trials"]}
    assert sorted(by_number) == sorted(r["number"] for r in recs)
    assert any(not r["feasible"] for r in recs) and any(r["feasible"] for r in recs)
    for r in recs:
        shown = by_number[r["number"]]["constraints"]
        assert shown == pytest.approx([r["constraints"][c] for c in CONSTRAINTS]), r["number"]
        if r["state"] == "complete":  # the dashboard's feasibility rule: every value <= 0
            assert all(v <= 0 for v in shown) == r["feasible"]
        attrs = {a["key"]: a["value"] for a in by_number[r["number"]]["user_attrs"]}
        for c in CONSTRAINTS:
            assert float(attrs[f"constraint:{c}"]) == pytest.approx(r["constraints"][c])
        if r["state"] == "complete":
            assert attrs["constraint:feasible"] == str(r["feasible"])
    assert any("0 = low_tail_guardrail, 1 = high_tail_guardrail" in ln for ln in dashboard.lines)


@pytest.mark.slow
def test_dashboard_refuses_writes_and_the_study_is_unchanged(selected_run, dashboard):
    before = (selected_run.run_dir / "study.db").read_bytes()
    study_id = dashboard.get("/api/studies")["study_summaries"][0]["study_id"]
    # a clean refusal: 403 with a one-line reason, not bottle's 500 page with a traceback
    for method, path in (("DELETE", f"/api/studies/{study_id}"),
                         ("PUT", f"/api/studies/{study_id}/note")):
        status, body = dashboard.request_body(method, path)
        assert status == 403, (method, path, status, body)
        assert "Traceback" not in body
        assert "read-only" in json.loads(body)["reason"]
    assert [s["study_name"] for s in dashboard.get("/api/studies")["study_summaries"]] \
        == ["moqwk"]
    assert (selected_run.run_dir / "study.db").read_bytes() == before


@pytest.mark.slow
@pytest.mark.postgres
def test_dashboard_on_postgresql_masks_the_password(selected_run, postgres_url, tmp_path):
    import optuna

    from moqwk.base.artifacts import mask_url
    from moqwk.run.layout import default_storage_url

    name = f"dashboard-{os.getpid()}"
    optuna.copy_study(from_study_name="moqwk",
                      from_storage=default_storage_url(selected_run.run_dir),
                      to_storage=postgres_url, to_study_name=name)
    run = tmp_path / "run"  # a run dir without study.db: the study lives in PostgreSQL
    (run / "artifacts").mkdir(parents=True)
    d = Dashboard("--run-dir", str(run), "--storage", postgres_url)
    try:
        out = "\n".join(d.lines)
        assert mask_url(postgres_url) in out
        password = postgres_url.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
        if password:
            assert password not in out
        names = [s["study_name"] for s in d.get("/api/studies")["study_summaries"]]
        assert name in names
    finally:
        d.stop()
        optuna.delete_study(study_name=name, storage=postgres_url)

