"""Regularized evolution (Real et al., AAAI 2019): the standard baseline of architecture search.

A population of the most recent results; each child is a mutation of the best of a random
tournament from it; the oldest member leaves as a child joins ("aging"). It needs nothing but
the space's ``sample`` and ``mutate``, so it searches any :class:`SearchSpace`.
"""

from __future__ import annotations

from typing import Any

from ray_diffnas.errors import ConfigError
from ray_diffnas.searchers.base import MemorySearcher, Proposal
from ray_diffnas.searchers.memory import SCORED, TrialRecord

# Within the ranges used on NAS-Bench-201 (population 10-20, tournament 5-10; see
# ../shared/notes/judging-searchers.md), fixed before any benchmark ran and not tuned since.
POPULATION_SIZE = 10
TOURNAMENT_SIZE = 5
RETOURNAMENTS = 3  # tournaments held for one child before its parent may be any member (small spaces)


class RegularizedEvolution(MemorySearcher):
    """Regularized (aging) evolution as a Ray Tune searcher.

    Proposals are random samples until ``population_size`` trials have finished with a value; after
    that each proposal mutates the fittest of ``tournament_size`` members drawn from the population:
    the ``population_size`` youngest of the finished trials, by the order they were proposed (their
    birth, as in Real et al.'s aging; with trials running at once this is not the order they
    finished). Fitness follows the :class:`Objective`: feasible before infeasible, then the best
    reported value. Failed trials never join the population.

    Args:
        population_size: Finished trials the population holds (the oldest-born leaves first).
        tournament_size: Members drawn for each tournament.
        **kwargs: As for :class:`MemorySearcher` (space, metric, mode, constraints, seed, ...).

    Example:
        >>> from ray_diffnas.spaces.nb201 import NB201Space
        >>> searcher = RegularizedEvolution(space=NB201Space(), metric="acc", mode="max",
        ...                                 population_size=2, tournament_size=2)
        >>> for i in range(3):
        ...     config = searcher.suggest(f"t{i}")
        ...     searcher.on_trial_complete(f"t{i}", {"acc": float(i)})
        >>> [r.proposer for r in searcher.memory.records()]
        ['random', 'random', 'neighbour']
    """

    def __init__(
        self, *, population_size: int = POPULATION_SIZE, tournament_size: int = TOURNAMENT_SIZE, **kwargs: Any
    ) -> None:
        if population_size < 1 or not 1 <= tournament_size <= population_size:
            raise ConfigError(
                f"RegularizedEvolution needs population_size >= 1 and 1 <= tournament_size <= population_size, "
                f"but got {population_size} and {tournament_size}."
            )
        self.population_size = population_size
        self.tournament_size = tournament_size
        super().__init__(**kwargs)

    def population(self) -> list[TrialRecord]:
        """The ``population_size`` most recently proposed trials that finished with a value."""
        scored = [r for r in self.memory.records(SCORED) if r.best is not None]
        return scored[-self.population_size :]

    def propose(self, count: int) -> list[Proposal]:
        proposals: list[Proposal] = []
        taken: set[str] = set()
        population = self.population()
        for _ in range(count):
            if len(population) < self.population_size:
                arch, proposer = self._neighbour([], taken), "random"
            else:
                arch, proposer = self._child(population, taken)
            if not self._untried(arch.key(), taken):
                break  # every draw was already tried: the space is (nearly) exhausted
            taken.add(arch.key())
            proposals.append(Proposal(arch, proposer))
        return proposals

    def _child(self, population: list[TrialRecord], taken: set[str]) -> tuple[Any, str]:
        """A new mutation of a tournament's winner. In a small space a winner's every neighbour may have
        been tried already: then further tournaments, then any member's mutation, and a fresh sample
        last, so that the search goes on while the space has untried architectures."""
        for _ in range(RETOURNAMENTS):
            parent = self._tournament(population)
            arch = self._neighbour([parent.config["arch"]], taken)
            if self._untried(arch.key(), taken):
                return arch, "neighbour"
        members = [r.config["arch"] for r in population]
        arch = self._neighbour(members, taken)
        if self._untried(arch.key(), taken):
            return arch, "neighbour"
        return self._neighbour([], taken), "random"

    def _tournament(self, population: list[TrialRecord]) -> TrialRecord:
        drawn = self.rng.choice(len(population), size=self.tournament_size, replace=False)
        contenders = [population[int(i)] for i in drawn]
        objective = self.objective
        return min(
            contenders,
            key=lambda r: (not objective.feasible(r.last_metrics), objective.sort_key(r.best)),
        )

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "population_size": self.population_size, "tournament_size": self.tournament_size}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.population_size = int(state.get("population_size", self.population_size))
        self.tournament_size = int(state.get("tournament_size", self.tournament_size))
