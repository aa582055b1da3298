"""The sampler registry: every sampler ``moqwk search`` can use, built the same way each time.

A study does not store its sampler, so every create and every load passes one explicitly (or
Optuna would silently fall back to TPE on resume). :data:`SAMPLERS` feeds the config check, the
``--sampler`` choices and :func:`make_sampler`; adding a sampler is one entry here.

Optuna is imported inside the builders, so reading the names costs no Optuna import.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True, kw_only=True)
class SamplerSpec:
    """What a sampler is built from (recorded in ``optuna_study.json``)."""

    name: str = "nsga2"
    seed: int = 0
    population_size: int = 10
    mutation_prob: float | None = None
    crossover: str = "uniform"
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _nsga2(spec: SamplerSpec, seed: int, grid: Mapping[str, list] | None
           ) -> optuna.samplers.BaseSampler:
    import optuna
    from optuna.samplers import nsgaii

    kinds: dict[str, Callable[[], nsgaii.BaseCrossover]] = {
        "blxalpha": nsgaii.BLXAlphaCrossover, "sbx": nsgaii.SBXCrossover,
        "vsbx": nsgaii.VSBXCrossover, "undx": nsgaii.UNDXCrossover, "spx": nsgaii.SPXCrossover}
    crossover = (nsgaii.UniformCrossover(spec.swapping_prob) if spec.crossover == "uniform"
                 else kinds[spec.crossover]())
    return optuna.samplers.NSGAIISampler(
        population_size=spec.population_size, mutation_prob=spec.mutation_prob,
        crossover=crossover, crossover_prob=spec.crossover_prob,
        swapping_prob=spec.swapping_prob, seed=seed)


def _tpe(spec: SamplerSpec, seed: int, grid: Mapping[str, list] | None
         ) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, multivariate=True)


def _random(spec: SamplerSpec, seed: int, grid: Mapping[str, list] | None
            ) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _grid(spec: SamplerSpec, seed: int, grid: Mapping[str, list] | None
          ) -> optuna.samplers.BaseSampler:
    import optuna

    if not grid:
        raise ValueError("the grid sampler needs a grid {param: [values]}")
    return optuna.samplers.GridSampler(dict(grid), seed=seed)


@dataclass(frozen=True, kw_only=True)
class SamplerKind:
    name: str
    help: str
    build: Callable[[SamplerSpec, int, Mapping[str, list] | None], optuna.samplers.BaseSampler]
    #: Seed the first generation with neighbours of the baseline (NSGA-II breeds from them).
    seeds_neighbours: bool = False
    #: Build with a seed that changes on each resume (so resumed trials do not replay earlier
    #: draws). Not for the grid: GridSampler shuffles the grid once from its seed and runs trial
    #: number i (below the grid's size) on point i of that order, so every process of a grid
    #: study must shuffle alike, or a resumed grid repeats some points and never runs others.
    reseed_on_resume: bool = True


SAMPLERS: Mapping[str, SamplerKind] = {k.name: k for k in (
    SamplerKind(name="nsga2", help="NSGA-II, constraints-aware (the default)", build=_nsga2,
                seeds_neighbours=True),
    SamplerKind(name="tpe", help="multivariate TPE (for comparisons)", build=_tpe),
    SamplerKind(name="random", help="uniform random search (for comparisons)", build=_random),
    SamplerKind(name="grid", help="every point of search.grid (what `moqwk grid` runs)",
                build=_grid, reseed_on_resume=False),
)}
SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLERS)
CROSSOVERS: tuple[str, ...] = ("uniform", "blxalpha", "sbx", "vsbx", "undx", "spx")


def derived_seed(seed: int, n_existing: int) -> int:
    """A sampler seed that differs after a resume, so resumed trials do not replay earlier ones."""
    digest = hashlib.sha256(f"{seed}:{n_existing}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def make_sampler(spec: SamplerSpec, *, n_existing: int,
                 grid: Mapping[str, list] | None = None) -> optuna.samplers.BaseSampler:
    """The sampler of ``spec``, seeded from its seed and the number of trials already stored
    (the grid: as for a new study, whatever is stored; see ``SamplerKind.reseed_on_resume``)."""
    kind = SAMPLERS[spec.name]
    return kind.build(spec, derived_seed(spec.seed, n_existing if kind.reseed_on_resume else 0),
                      grid)


def seed_sampler_for_trial(sampler: optuna.samplers.BaseSampler, seed: int, number: int) -> None:
    """Reseed ``sampler`` (and its inner random sampler) from ``seed`` and the trial number.

    A trial's draws then depend on the seed, its number and the study, not on which worker asks:
    workers started together (each seeded before any trial existed) would otherwise draw the
    same configs in lockstep, and a resumed run would replay its first trials.

    Private Optuna attributes: ``_rng`` (a LazyRandomState) and ``_random_sampler``. Optuna has
    no public API to reseed a sampler between trials (``BaseSampler.reseed_rng`` draws a fresh
    OS-random seed, which would break determinism).
    """
    s = derived_seed(seed, number)
    for obj in (sampler, getattr(sampler, "_random_sampler", None)):
        state = getattr(obj, "_rng", None)
        if state is not None and hasattr(state, "rng"):
            state.rng.seed(s)
