"""Storage behaviour the search relies on, against real SQLite."""

from __future__ import annotations

import collections
import threading
import warnings

import optuna
import pytest

from moqwk.errors import StorageError
from moqwk.study.storage import open_storage


def test_concurrent_workers_never_pop_the_same_queued_trial(tmp_path):
    # SQLite ignores SELECT ... FOR UPDATE; without BEGIN IMMEDIATE this ran 4-13 of 60 queued
    # trials twice and crashed on the second tell.
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(storage=storage, study_name="race")
    for i in range(40):
        study.enqueue_trial({"x": float(i)})
    seen: collections.Counter = collections.Counter()
    errors: list[str] = []

    def worker() -> None:
        s = optuna.load_study(study_name="race", storage=storage)
        for _ in range(10):
            try:
                t = s.ask()
                x = t.suggest_float("x", 0, 100)
                seen[x] += 1
                s.tell(t, x)
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(e))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert sorted(seen) == [float(i) for i in range(40)]
    assert set(seen.values()) == {1}


def test_unreachable_postgres_is_one_clear_error_without_the_password():
    with pytest.raises(StorageError) as e:
        open_storage("postgresql+psycopg://user:hunter2@127.0.0.1:1/db")
    msg = str(e.value)
    assert "hunter2" not in msg and "***" in msg
    assert "cannot open storage" in msg
