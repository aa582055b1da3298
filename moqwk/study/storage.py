"""Optuna storages: opening one (SQLite, PostgreSQL or a journal file) and creating or loading a
moqwk study.

:data:`BACKENDS` holds what differs between storage backends (how a URL is opened for a search
and for reading only, what to do once it is open); adding a backend is one entry there. A study
does not store its sampler: every create and every load passes one explicitly (see
:mod:`moqwk.study.samplers`).
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from moqwk.base.artifacts import mask_url
from moqwk.core.objectives import ObjectiveSet
from moqwk.errors import StorageError

#: The URL forms moqwk's messages offer (one per backend).
URL_FORMS = ("sqlite:///PATH", "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB",
             "journal:///ABSOLUTE/PATH.log")


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


def _rdb(url: str, *, engine_kwargs: Mapping[str, Any],
         after_open: Callable[[optuna.storages.RDBStorage], None] | None) -> Any:
    """An RDB storage with heartbeats (what :func:`moqwk.study.recovery` relies on)."""
    for attempt in range(_SCHEMA_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    url, engine_kwargs=dict(engine_kwargs), heartbeat_interval=15,
                    grace_period=60,
                )
            if after_open is not None:
                after_open(storage)
            return storage
        except Exception as e:  # noqa: BLE001 - SQLAlchemy and driver errors vary widely
            if attempt + 1 < _SCHEMA_ATTEMPTS and _schema_race(e):
                time.sleep(0.2 * (attempt + 1))
                continue
            raise
    raise AssertionError("unreachable")


def _rdb_readonly(url: str) -> Any:
    """An RDB storage that creates no table (what the dashboard reads)."""
    return optuna.storages.RDBStorage(url, skip_table_creation=True)


JOURNAL_PREFIX = "journal://"


def journal_path(url: str) -> Path:
    """The log file of a ``journal://`` URL: ``journal:///tmp/x.log`` is ``/tmp/x.log``;
    ``journal://runs/x.log`` is relative to the working directory."""
    rest = url[len(JOURNAL_PREFIX):]
    if not rest or rest.endswith("/"):
        raise StorageError(f"storage URL {url!r} names no file; use journal:///PATH/FILE.log")
    return Path(rest)


def _journal_url(url: str) -> str:
    """The journal URL with its path made absolute (what the run record keeps, so a resume from
    another directory finds the same file)."""
    return JOURNAL_PREFIX + str(journal_path(url).absolute())


def _journal(url: str) -> Any:
    """Optuna's JournalStorage on a log file (no server; the file is created if missing).

    Writers take a lock file next to the log (``JournalFileSymlinkLock``: works on NFS), so
    several workers, threads or processes, can share one journal. Journal storages have no
    heartbeat: a worker that dies on this host is seen by its pid (:mod:`moqwk.study.recovery`);
    on another host its trial stays RUNNING until a worker there is restarted.
    """
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    path = journal_path(url)
    if not path.parent.is_dir():
        raise StorageError(f"journal storage {url}: directory {path.parent} does not exist; "
                           "create it first")
    return JournalStorage(JournalFileBackend(str(path)))


def _journal_readonly(url: str) -> Any:
    """The journal for reading: a missing file is an error, not a new empty journal."""
    path = journal_path(url)
    if not path.is_file():
        raise StorageError(f"journal storage {url}: {path} not found; run `moqwk search "
                           f"--storage {url}` first")
    return _journal(url)


@dataclass(frozen=True, kw_only=True)
class Backend:
    """One kind of storage: the URL prefix that selects it, how to open it for a search, how to
    open it for reading only (no table or file created), and the URL a run records."""

    prefix: str
    open: Callable[[str], Any]
    open_readonly: Callable[[str], Any]
    canonical: Callable[[str], str] = field(default=lambda url: url)


#: Workers started together on a new storage all create Optuna's tables and version row; all but
#: one can lose that race (a duplicate row or table). The tables exist then: opening again works.
_SCHEMA_ATTEMPTS = 4

BACKENDS: tuple[Backend, ...] = (
    Backend(prefix="sqlite",
            open=functools.partial(_rdb, engine_kwargs={"connect_args": {"timeout": 60}},
                                   after_open=_serialise_sqlite_writes),
            open_readonly=_rdb_readonly),
    Backend(prefix="postgresql",
            open=functools.partial(_rdb, engine_kwargs={"connect_args": {"connect_timeout": 10},
                                                        "pool_pre_ping": True},
                                   after_open=None),
            open_readonly=_rdb_readonly),
    Backend(prefix=JOURNAL_PREFIX, open=_journal, open_readonly=_journal_readonly,
            canonical=_journal_url),
)

#: Any other ``scheme://`` URL is handed to SQLAlchemy as it is (MySQL, for example).
_OTHER_RDB = Backend(prefix="", open=functools.partial(_rdb, engine_kwargs={}, after_open=None),
                     open_readonly=_rdb_readonly)


def _schema_race(e: Exception) -> bool:
    from sqlalchemy import exc

    return isinstance(e, (exc.IntegrityError, exc.ProgrammingError)) or (
        "already exists" in str(e))


def backend_for(url: str) -> Backend:
    """The backend of ``url``; a string that is no URL is one StorageError with the forms."""
    if "://" not in url:
        raise StorageError(f"storage URL {mask_url(url)!r} is not a URL; use "
                           + ", ".join(URL_FORMS[:-1]) + f" or {URL_FORMS[-1]}")
    return next((b for b in BACKENDS if url.startswith(b.prefix)), _OTHER_RDB)


def canonical_url(url: str | None) -> str | None:
    """``url`` as a run records it (a journal's path made absolute; others unchanged)."""
    return None if url is None else backend_for(url).canonical(url)


def _opened(url: str, how: Callable[[str], Any]) -> optuna.storages.BaseStorage:
    try:
        return how(url)
    except StorageError:
        raise
    except Exception as e:  # noqa: BLE001 - SQLAlchemy, driver and file errors vary widely
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StorageError(f"cannot open storage {mask_url(url)}: {mask_url(reason)}; check the "
                           "URL, that the server is up and the credentials are right") from None


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The storage a search writes to; one clear StorageError when it cannot be opened."""
    return _opened(url, backend_for(url).open)


def open_storage_readonly(url: str) -> optuna.storages.BaseStorage:
    """The storage for reading only: no table, no file is created."""
    return _opened(url, backend_for(url).open_readonly)


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
