"""Optuna storages: opening one (SQLite or PostgreSQL) and creating or loading a moqwk study.

:data:`BACKENDS` holds what differs between storage backends (connection arguments, what to do
once the engine exists); adding a backend is one entry there. A study does not store its
sampler: every create and every load passes one explicitly (see :mod:`moqwk.study.samplers`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from moqwk.artifacts import mask_url
from moqwk.core.objectives import ObjectiveSet
from moqwk.errors import StorageError


def sqlite_url(path: Path) -> str:
    """The storage URL of an SQLite file."""
    return f"sqlite:///{Path(path).resolve()}"


def _serialise_sqlite_writes(storage: optuna.storages.RDBStorage) -> None:
    """Make every SQLite transaction take the write lock when it begins (``BEGIN IMMEDIATE``).

    Optuna pops a queued trial by reading it as WAITING and then marking it RUNNING, relying on
    ``SELECT ... FOR UPDATE``, which SQLite ignores: two workers (threads or processes) could
    both pop the same queued trial, run it twice and crash on the second ``tell``. Measured:
    4 threads popping 60 queued trials ran 4-13 of them twice. With the lock taken at BEGIN,
    the read and the write are one critical section. PostgreSQL honours ``FOR UPDATE`` already.
    """
    from sqlalchemy import event

    engine = storage.engine

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # SQLAlchemy's begin below starts transactions

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners must not be reused


@dataclass(frozen=True, kw_only=True)
class Backend:
    """What one kind of database needs: SQLAlchemy engine arguments and a hook once opened."""

    prefix: str
    engine_kwargs: Mapping[str, Any] = field(default_factory=dict)
    after_open: Callable[[optuna.storages.RDBStorage], None] | None = None


BACKENDS: tuple[Backend, ...] = (
    Backend(prefix="sqlite", engine_kwargs={"connect_args": {"timeout": 60}},
            after_open=_serialise_sqlite_writes),
    Backend(prefix="postgresql", engine_kwargs={"connect_args": {"connect_timeout": 10},
                                                "pool_pre_ping": True}),
)

#: Workers started together on a new storage all create Optuna's tables and version row; all but
#: one can lose that race (a duplicate row or table). The tables exist then: opening again works.
_SCHEMA_ATTEMPTS = 4


def _schema_race(e: Exception) -> bool:
    from sqlalchemy import exc

    return isinstance(e, (exc.IntegrityError, exc.ProgrammingError)) or (
        "already exists" in str(e))


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats; one clear StorageError when it cannot be reached."""
    masked = mask_url(url)
    if "://" not in url:
        raise StorageError(f"storage URL {masked!r} is not a URL; use sqlite:///PATH or "
                           "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB")
    backend = next((b for b in BACKENDS if url.startswith(b.prefix)), Backend(prefix=""))
    for attempt in range(_SCHEMA_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    url, engine_kwargs=dict(backend.engine_kwargs), heartbeat_interval=15,
                    grace_period=60,
                )
            if backend.after_open is not None:
                backend.after_open(storage)
            return storage
        except Exception as e:  # noqa: BLE001 - SQLAlchemy and driver errors vary widely
            if attempt + 1 < _SCHEMA_ATTEMPTS and _schema_race(e):
                time.sleep(0.2 * (attempt + 1))
                continue
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StorageError(f"cannot open storage {masked}: {mask_url(reason)}; check the "
                               "URL, that the server is up and the credentials are right") from None
    raise AssertionError("unreachable")


def load_study(storage: optuna.storages.BaseStorage, *, study_name: str,
               sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study | None:
    """The stored study, or None when the storage holds no study of that name.

    Without a sampler (reading only, no trial will be asked for) a RandomSampler is passed, so
    Optuna does not build its default TPE sampler for nothing.
    """
    try:
        return optuna.load_study(study_name=study_name, storage=storage,
                                 sampler=sampler or optuna.samplers.RandomSampler())
    except KeyError:
        return None


def create_or_load(storage: optuna.storages.BaseStorage, *, study_name: str,
                   sampler: optuna.samplers.BaseSampler, url: str,
                   objectives: ObjectiveSet) -> tuple[optuna.Study, bool]:
    """The study, and whether this call created it. Checks an existing one has our objectives."""
    try:
        study = optuna.create_study(storage=storage, study_name=study_name, sampler=sampler,
                                    directions=objectives.directions)
        study.set_metric_names(list(objectives.names))
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        pass
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
    got = [d.name.lower() for d in study.directions]
    names = study.metric_names
    if got != objectives.directions or (names is not None and list(names) != list(
            objectives.names)):
        raise StorageError(f"study {study_name!r} in {mask_url(url)} optimises {names or got}, "
                           f"not {list(objectives.names)}; choose another --study-name")
    return study, False
