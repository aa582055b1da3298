"""``moqwk search`` as separate processes: a worker killed mid-trial, and two workers sharing a
study on SQLite and on PostgreSQL.

Each worker is ``python -m moqwk.cli search ...`` in its own process, as a user would start it.
The storages are real; a killed worker is killed with SIGKILL (no cleanup of any kind).
"""

from __future__ import annotations

import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import optuna
import pytest
from optuna.trial import TrialState

OBJECTIVES = ("worst_prompt_qwk", "mean_qwk", "low_tail_mae", "high_tail_mae")
TOLERANCE = 0.05
TIMEOUT = 600  # seconds for one worker process; far above what it needs, only against hangs

pytestmark = pytest.mark.slow


def cli(*args: object) -> list[str]:
    return [sys.executable, "-m", "moqwk.cli", *(str(a) for a in args)]


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    with open(log.with_suffix(".out"), "wb") as out, open(log.with_suffix(".err"), "wb") as err:
        return subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)


def finish(proc: subprocess.Popen, log: Path) -> tuple[int, str, str]:
    try:
        rc = proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return (rc, log.with_suffix(".out").read_text(errors="replace"),
            log.with_suffix(".err").read_text(errors="replace"))


def is_counted(t) -> bool:
    """Complete, failed for a reason of its own, or stopped by fold racing (not surplus)."""
    return t.state == TrialState.COMPLETE or (
        t.state == TrialState.FAIL and "moqwk_failure" in t.user_attrs) or (
        t.state == TrialState.PRUNED and "moqwk_pruned" in t.user_attrs)


def is_surplus(t) -> bool:
    return t.state == TrialState.PRUNED and t.user_attrs.get("moqwk_surplus") is True


def load(url: str, name: str = "moqwk") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url,
                             sampler=optuna.samplers.NSGAIISampler())


# --------------------------------------------------------------------------- killed mid-trial


def running_trials(db: Path) -> dict[int, str]:
    """RUNNING trials past drawing their params (moqwk_params set): number -> worker.

    Such a trial is in its CV (or just past it): killing it now is killing it mid-trial.
    """
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        return {}
    try:
        rows = con.execute(
            "SELECT t.number, w.value_json FROM trials t "
            "JOIN trial_user_attributes w ON w.trial_id = t.trial_id AND w.key = 'moqwk_worker' "
            "JOIN trial_user_attributes p ON p.trial_id = t.trial_id AND p.key = 'moqwk_params' "
            "WHERE t.state = 'RUNNING'"
        ).fetchall()
    except sqlite3.OperationalError:  # not created yet, or locked by the writer for a moment
        return {}
    finally:
        con.close()
    return {int(n): json.loads(v) for n, v in rows}


def complete_in_progress(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "progress.json").read_text())["complete"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def kill_mid_trial(cmd: list[str], run_dir: Path, log: Path, *, min_complete: int) -> int:
    """Start ``cmd``, SIGKILL it once ``min_complete`` trials are done and one is running.

    Returns the number of the trial it was running. A kill that lands just between two trials
    (nothing left RUNNING) is retried with a fresh start of the same command.
    """
    db = run_dir / "study.db"
    for _attempt in range(3):
        proc = start(cmd, log)
        try:
            deadline = time.monotonic() + TIMEOUT
            seen: dict[int, str] = {}
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    pytest.fail(f"search exited ({proc.returncode}) before it could be killed: "
                                f"{log.with_suffix('.err').read_text()}")
                if complete_in_progress(run_dir) >= min_complete:
                    seen = {n: w for n, w in running_trials(db).items()
                            if w.endswith(f":{proc.pid}")}
                    if seen:
                        proc.send_signal(signal.SIGKILL)
                        break
                time.sleep(0.05)
            else:
                pytest.fail("no trial was running within the timeout")
        finally:
            if proc.poll() is None and not seen:
                proc.kill()
            proc.wait()
        left = running_trials(db)
        if left:
            assert list(left) == list(seen), (left, seen)
            return next(iter(left))
    pytest.fail("three kills in a row landed between trials")


def test_killed_worker_trial_is_retried_and_nothing_finished_is_lost(tmp_path,
                                                                     write_search_config):
    cfg = write_search_config(tmp_path / "config.yaml", tolerance=TOLERANCE)
    run_dir = tmp_path / "run"
    n = 6
    cmd = cli("search", "--config", cfg, "--run-dir", run_dir, "--n-trials", n)
    killed = kill_mid_trial(cmd, run_dir, tmp_path / "killed", min_complete=2)

    url = f"sqlite:///{run_dir / 'study.db'}"
    before = {t.number: (t.params, t.values) for t in load(url).trials
              if t.state == TrialState.COMPLETE}
    assert len(before) >= 2

    rc, out, err = finish(start(cmd, tmp_path / "resumed"), tmp_path / "resumed")
    assert rc == 0, err

    trials = load(url).trials
    assert sum(map(is_counted, trials)) == n
    # No finished trial lost or changed.
    after = {t.number: (t.params, t.values) for t in trials if t.state == TrialState.COMPLETE}
    assert {k: after.get(k) for k in before} == before
    # The killed trial is an interrupted failure (not counted) and was run again.
    k = trials[killed]
    assert k.state == TrialState.FAIL and "moqwk_failure" not in k.user_attrs
    retries = [t for t in trials if t.user_attrs.get("moqwk_retry_of") == killed]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.number > killed and is_counted(retry)
    assert retry.params == k.params
    assert retry.user_attrs.get("moqwk_role", "sampled") == k.user_attrs.get("moqwk_role",
                                                                             "sampled")
    # The files say the same.
    recs = {r["number"]: r for r in
            json.loads((run_dir / "artifacts/optuna_trials.json").read_text())}
    assert recs[killed]["state"] == "interrupted"
    assert recs[retry.number]["retry_of"] == killed
    prog = json.loads((run_dir / "progress.json").read_text())
    interrupted = [t for t in trials if t.state == TrialState.FAIL
                   and "moqwk_failure" not in t.user_attrs]
    assert prog["interrupted"] == len(interrupted) >= 1
    assert prog["complete"] + prog["failed"] == n
    assert (prog["running"], prog["waiting"]) == (0, 0)


def dead_worker_id() -> str:
    """A worker id (host:pid) on this host whose process has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return f"{socket.gethostname()}:{proc.pid}"


def hand_made_study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}",
                               directions=["maximize", "maximize", "minimize", "minimize"])


def test_enqueued_trial_killed_before_drawing_its_params_is_retried_with_them(tmp_path):
    """The baseline must run even if its worker died before ``suggest``: the retry carries the
    params it was enqueued with, its role and ``moqwk_retry_of``."""
    from moqwk.study.recovery import recover_interrupted

    study = hand_made_study(tmp_path)
    params = {"max_depth": 3, "learning_rate": 0.1}
    study.enqueue_trial(params, user_attrs={"moqwk_role": "baseline"})
    trial = study.ask()  # RUNNING with its fixed params, none drawn yet
    trial.set_user_attr("moqwk_worker", dead_worker_id())
    assert trial.params == {}

    assert recover_interrupted(study) == [trial.number]
    trials = study.trials
    assert trials[trial.number].state == TrialState.FAIL
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert len(waiting) == 1
    assert waiting[0].system_attrs["fixed_params"] == params
    assert waiting[0].user_attrs == {"moqwk_role": "baseline", "moqwk_retry_of": trial.number}
    assert recover_interrupted(study) == []  # once only


def test_sampled_trial_killed_while_drawing_params_is_not_retried_half_drawn(tmp_path):
    """A retry of half a config would be another config under the killed trial's name."""
    from moqwk.study.recovery import recover_interrupted

    study = hand_made_study(tmp_path)
    trial = study.ask()
    trial.suggest_int("max_depth", 2, 5)  # killed before drawing the rest (no moqwk_params)
    trial.set_user_attr("moqwk_worker", dead_worker_id())

    assert recover_interrupted(study) == []
    assert [t.state for t in study.trials] == [TrialState.FAIL]
    assert "moqwk_failure" not in study.trials[0].user_attrs  # interrupted: not counted


# --------------------------------------------------------------------------- two workers


def check_shared_study(study: optuna.Study, n: int, pids: list[int], assert_guardrails) -> None:
    trials = study.trials
    counted = [t for t in trials if is_counted(t)]
    assert len(counted) == n
    # Everything else was started after the budget was used and says so.
    assert all(is_surplus(t) for t in trials if not is_counted(t)), \
        [(t.number, t.state.name, t.user_attrs) for t in trials if not is_counted(t)]
    workers = {t.user_attrs["moqwk_worker"] for t in counted}
    assert {w.rpartition(":")[2] for w in workers} == {str(p) for p in pids}  # both ran trials
    # The first generation's random draws: the workers did not draw the same configs.
    drawn = [tuple(sorted(t.params.items())) for t in counted
             if t.user_attrs.get("moqwk_role", "sampled") == "sampled"
             and t.system_attrs.get("NSGAIISampler:generation") == 0]
    assert len(drawn) >= 4
    assert len(set(drawn)) == len(drawn), "both workers drew the same configs"
    # One baseline (trial 0), and both workers measured the guardrails against it.
    assert [t.number for t in trials if t.user_attrs.get("moqwk_role") == "baseline"] == [0]
    raced = [t for t in counted if t.state == TrialState.PRUNED]
    assert all(t.user_attrs["moqwk_pruned"]["folds_run"] == 4 for t in raced)
    assert_guardrails([t for t in counted if t not in raced], baseline=trials[0].values,
                      tolerance=TOLERANCE, names=study.metric_names)


OPEN_AT_ONCE = """\
import pathlib, sys, time
from moqwk.study.storage import open_storage
here = pathlib.Path(sys.argv[2])
(here / f"ready-{sys.argv[3]}").touch()
while not (here / "go").exists():
    time.sleep(0.001)
open_storage(sys.argv[1])
"""


def test_workers_opening_a_new_storage_together_all_succeed(tmp_path):
    """Each creates Optuna's tables and version row at the same moment: none may fail."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    n = 4
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_AT_ONCE, url, str(tmp_path), str(i)],
                              stderr=subprocess.PIPE, text=True) for i in range(n)]
    try:
        deadline = time.monotonic() + TIMEOUT
        while len(list(tmp_path.glob("ready-*"))) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        (tmp_path / "go").touch()
        errs = [p.communicate(timeout=TIMEOUT)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0] * n, errs


def test_workers_seeded_alike_still_draw_different_configs(tmp_path, write_search_config):
    """Workers started together all seed their sampler before any trial exists, so alike. Two
    study handles with such samplers, taking turns on one storage, must not draw in lockstep."""
    from moqwk.config import load_config
    from moqwk.run.workspace import Workspace
    from moqwk.stages.search_loop import Objective, SearchOptions, run_search, sampler_spec
    from moqwk.study.samplers import make_sampler
    from moqwk.study.space import distributions

    cfg = load_config(write_search_config(tmp_path / "config.yaml", tolerance=TOLERANCE,
                                          search=WORKERS_SEARCH))
    ws = Workspace.open(cfg, tmp_path / "run")
    run_search(ws, SearchOptions(n_trials=1))  # the baseline, so both handles find guardrails
    spec = sampler_spec(ws)
    url = f"sqlite:///{tmp_path / 'run' / 'study.db'}"
    handles = []
    for _ in range(2):
        study = optuna.load_study(study_name="moqwk", storage=url,
                                  sampler=make_sampler(spec, n_existing=0))
        objective = Objective(ws, space=distributions(cfg.search.space),
                              fixed=cfg.baseline_params, n_jobs=1, tolerance=TOLERANCE,
                              target=10, sampler_seed=spec.seed)
        handles.append((study, objective))
    for _ in range(2):
        for study, objective in handles:
            study.optimize(objective, n_trials=1)
    trials = optuna.load_study(study_name="moqwk", storage=url).trials
    drawn = [tuple(sorted(t.params.items())) for t in trials[1:]]
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 5
    assert len(set(drawn)) == len(drawn) == 4, "the two handles drew the same configs"


def run_two_workers(cfg: Path, run_dirs: list[Path], url: str, name: str, n: int,
                    logs: Path) -> list[tuple[int, str, str, int]]:
    procs = [start(cli("search", "--config", cfg, "--run-dir", d, "--n-trials", n,
                       "--storage", url, "--study-name", name), logs / f"worker{i}")
             for i, d in enumerate(run_dirs)]
    results = []
    for i, p in enumerate(procs):
        results.append((*finish(p, logs / f"worker{i}"), p.pid))
    return results


#: Population 6 without seeded neighbours: the baseline and 5 random draws, then 2 children;
#: fold racing on and eager (a check after 4 of 5 folds, no margin), so that workers stop
#: trials while others finish theirs.
WORKERS_SEARCH = {"population_size": 6, "seed_neighbours": 0, "racing": True,
                  "racing_rungs": [4], "racing_margin": 0.0}


def test_two_workers_share_one_sqlite_study(tmp_path, write_workers_config, assert_guardrails):
    cfg = write_workers_config(tmp_path / "config.yaml", tolerance=TOLERANCE,
                               search=WORKERS_SEARCH)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    n = 8
    results = run_two_workers(cfg, [tmp_path / "run"] * 2, url, "shared", n, tmp_path)
    for rc, _out, err, _pid in results:
        assert rc == 0, err
    check_shared_study(load(url, "shared"), n, [r[3] for r in results], assert_guardrails)
    prog = json.loads((tmp_path / "run" / "progress.json").read_text())
    assert prog["target"] == n
    # each worker's log lists every worker's trials: each line says which worker ran it
    ran = {t.number: t.user_attrs["moqwk_worker"] for t in load(url, "shared").trials}
    pids = {r[3] for r in results}
    for _rc, out, _err, _pid in results:
        # a log line starts with the time of day (HH:MM:SS)
        lines = [re.sub(r"^\d\d:\d\d:\d\d ", "", ln) for ln in out.splitlines()]
        # a finished trial's line (per-fold lines read "trial N fold K/M")
        lines = [ln for ln in lines if re.match(r"trial +\d+ ", ln) and " fold " not in ln]
        assert lines
        for ln in lines:
            number = int(ln.split()[1])
            m = re.search(r" worker=(\S+)  \[", ln)
            assert m and m.group(1) == ran[number], ln
            assert int(m.group(1).rpartition(":")[2]) in pids


def test_two_workers_share_one_postgres_study(tmp_path, write_workers_config, postgres_url,
                                              assert_guardrails):
    cfg = write_workers_config(tmp_path / "config.yaml", tolerance=TOLERANCE,
                               search=WORKERS_SEARCH)
    name = f"moqwk-test-{uuid.uuid4().hex[:12]}"
    n = 8
    run_dirs = [tmp_path / "machine-a", tmp_path / "machine-b"]
    try:
        results = run_two_workers(cfg, run_dirs, postgres_url, name, n, tmp_path)
        for rc, _out, err, _pid in results:
            assert rc == 0, err
        check_shared_study(load(postgres_url, name), n, [r[3] for r in results],
                           assert_guardrails)

        password = urlsplit(postgres_url).password
        assert password, "MOQWK_TEST_POSTGRES_URL has no password: masking cannot be checked"
        texts = {f"worker{i} {kind}": text for i, (_rc, out, err, _pid) in enumerate(results)
                 for kind, text in (("stdout", out), ("stderr", err))}
        for d in run_dirs:
            for f in ("artifacts/optuna_study.json", "progress.json",
                      "artifacts/optuna_trials.json"):
                texts[f"{d.name}/{f}"] = (d / f).read_text()
        for where, text in texts.items():
            assert password not in text, f"the storage password leaked into {where}"
        for d in run_dirs:
            record = json.loads((d / "artifacts/optuna_study.json").read_text())
            assert ":***@" in record["storage"]
            assert record["study_name"] == name
    finally:
        try:
            optuna.delete_study(study_name=name, storage=postgres_url)
        except KeyError:
            pass
