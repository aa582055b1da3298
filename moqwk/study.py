"""Optuna at the edge: storages, samplers, and creating or loading a moqwk study.

A study does not store its sampler: every create and every load passes one explicitly, or Optuna
would silently fall back to TPE on resume.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution

from moqwk.artifacts import mask_url
from moqwk.core.metrics import DIRECTIONS, OBJECTIVES
from moqwk.errors import ConfigError, StorageError

SAMPLERS = ("nsga2", "tpe", "random", "grid")
STUDY_DB = "study.db"


def default_storage_url(run_dir: Path) -> str:
    return f"sqlite:///{(Path(run_dir) / STUDY_DB).resolve()}"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats; one clear StorageError when it cannot be reached."""
    masked = mask_url(url)
    if "://" not in url:
        raise StorageError(f"storage URL {masked!r} is not a URL; use sqlite:///PATH or "
                           "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB")
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}
    elif url.startswith("postgresql"):
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
        engine_kwargs["pool_pre_ping"] = True
    for attempt in range(_SCHEMA_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=15, grace_period=60,
                )
            if url.startswith("sqlite"):
                _serialise_sqlite_writes(storage)
            return storage
        except Exception as e:  # noqa: BLE001 - SQLAlchemy and driver errors vary widely
            if attempt + 1 < _SCHEMA_ATTEMPTS and _schema_race(e):
                time.sleep(0.2 * (attempt + 1))
                continue
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StorageError(f"cannot open storage {masked}: {mask_url(reason)}; check the "
                               "URL, that the server is up and the credentials are right") from None
    raise AssertionError("unreachable")


#: Workers started together on a new storage all create Optuna's tables and version row; all but
#: one can lose that race (a duplicate row or table). The tables exist then: opening again works.
_SCHEMA_ATTEMPTS = 4


def _schema_race(e: Exception) -> bool:
    from sqlalchemy import exc

    return isinstance(e, (exc.IntegrityError, exc.ProgrammingError)) or (
        "already exists" in str(e))


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


@dataclass(frozen=True)
class SamplerSpec:
    name: str = "nsga2"
    seed: int = 0
    population_size: int = 10
    mutation_prob: float | None = None
    crossover: str = "uniform"
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def sampler_spec(search: Mapping[str, Any], *, seed: int, name: str | None = None) -> SamplerSpec:
    name = name or search.get("sampler", "nsga2")
    if name not in SAMPLERS:
        raise ConfigError(f"search.sampler: must be one of {', '.join(SAMPLERS)}, got {name!r}")
    pop = search.get("population_size", 10)
    if not isinstance(pop, int) or pop < 2:
        raise ConfigError(f"search.population_size: must be an integer >= 2, got {pop!r}")
    crossover = search.get("crossover", "uniform")
    if crossover not in ("uniform", "blxalpha", "sbx", "vsbx", "undx", "spx"):
        raise ConfigError(f"search.crossover: unknown crossover {crossover!r}")
    return SamplerSpec(name=name, seed=int(search.get("seed", seed)), population_size=pop,
                       mutation_prob=search.get("mutation_prob"), crossover=crossover,
                       crossover_prob=float(search.get("crossover_prob", 0.9)),
                       swapping_prob=float(search.get("swapping_prob", 0.5)))


def derived_seed(seed: int, n_existing: int) -> int:
    """A sampler seed that differs after a resume, so resumed trials do not replay earlier ones."""
    digest = hashlib.sha256(f"{seed}:{n_existing}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def seed_sampler_for_trial(sampler: optuna.samplers.BaseSampler, seed: int, number: int) -> None:
    """Reseed ``sampler`` (and its inner random sampler) from ``seed`` and the trial number.

    A trial's draws then depend on the seed, its number and the study, not on which worker asks:
    workers started together (each seeded before any trial existed) would otherwise draw the
    same configs in lockstep, and a resumed run would replay its first trials.
    """
    s = derived_seed(seed, number)
    for obj in (sampler, getattr(sampler, "_random_sampler", None)):
        state = getattr(obj, "_rng", None)  # optuna's LazyRandomState
        if state is not None and hasattr(state, "rng"):
            state.rng.seed(s)


def make_sampler(spec: SamplerSpec, *, n_existing: int,
                 grid: Mapping[str, list] | None = None) -> optuna.samplers.BaseSampler:
    seed = derived_seed(spec.seed, n_existing)
    if spec.name == "nsga2":
        from optuna.samplers import nsgaii

        crossovers: dict[str, Callable[[], nsgaii.BaseCrossover]] = {
            "uniform": nsgaii.UniformCrossover, "blxalpha": nsgaii.BLXAlphaCrossover,
            "sbx": nsgaii.SBXCrossover, "vsbx": nsgaii.VSBXCrossover,
            "undx": nsgaii.UNDXCrossover, "spx": nsgaii.SPXCrossover}
        crossover: nsgaii.BaseCrossover = (
            nsgaii.UniformCrossover(spec.swapping_prob) if spec.crossover == "uniform"
            else crossovers[spec.crossover]())
        return optuna.samplers.NSGAIISampler(
            population_size=spec.population_size, mutation_prob=spec.mutation_prob,
            crossover=crossover, crossover_prob=spec.crossover_prob,
            swapping_prob=spec.swapping_prob, seed=seed)
    if spec.name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if spec.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if not grid:
        raise ConfigError("search.grid: the grid sampler needs a grid {param: [values]}")
    return optuna.samplers.GridSampler(dict(grid), seed=seed)


def create_or_load(storage: optuna.storages.BaseStorage, *, study_name: str,
                   sampler: optuna.samplers.BaseSampler, url: str) -> tuple[optuna.Study, bool]:
    """The study, and whether this call created it. Checks an existing one has our objectives."""
    directions = [DIRECTIONS[o] for o in OBJECTIVES]
    try:
        study = optuna.create_study(storage=storage, study_name=study_name, sampler=sampler,
                                    directions=directions)
        study.set_metric_names(list(OBJECTIVES))
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        pass
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
    got = [d.name.lower() for d in study.directions]
    if got != directions:
        raise StorageError(f"study {study_name!r} in {mask_url(url)} has directions {got}, not "
                           f"moqwk's {directions}; choose another --study-name")
    return study, False


def distributions_of(space: Mapping[str, BaseDistribution]) -> dict[str, Any]:
    return {k: optuna.distributions.distribution_to_json(v) for k, v in space.items()}
