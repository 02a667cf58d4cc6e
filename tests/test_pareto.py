"""The multi-objective rules (ray_diffnas.searchers.pareto) against Optuna's hypervolume and brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ray_diffnas.errors import ConfigError
from ray_diffnas.searchers.pareto import (
    ParetoObjective,
    hypervolume,
    hypervolume_contributions,
    igd,
    non_dominated,
    pareto_ranks,
)

optuna_hv = pytest.importorskip("optuna._hypervolume").compute_hypervolume


def _brute_non_dominated(points: np.ndarray) -> list[bool]:
    def dominates(a, b):
        return bool(np.all(a <= b) and np.any(a < b))

    return [not any(dominates(q, p) for q in points) for p in points]


@pytest.mark.parametrize("dims", [2, 3, 4])
def test_hypervolume_equals_optunas_on_random_points(dims: int) -> None:
    rng = np.random.default_rng(dims)
    for _ in range(20):
        points = rng.random((int(rng.integers(1, 40)), dims))
        points = np.round(points, 2)  # ties on purpose: equal coordinates and duplicate points
        reference = np.full(dims, 1.1)
        front = points[non_dominated(points)]
        assert hypervolume(points, reference) == pytest.approx(optuna_hv(front, reference), rel=1e-12)


def test_points_that_do_not_beat_the_reference_add_nothing() -> None:
    assert hypervolume([[0.5, 2.0], [2.0, 0.5]], [1.0, 1.0]) == 0.0
    assert hypervolume([[0.5, 0.5], [0.5, 2.0]], [1.0, 1.0]) == pytest.approx(0.25)
    assert hypervolume(np.zeros((0, 2)), [1.0, 1.0]) == 0.0


def test_non_dominated_and_ranks_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    points = rng.integers(0, 6, size=(300, 3)).astype(float)  # many ties and duplicates
    assert non_dominated(points).tolist() == _brute_non_dominated(points)
    ranks = pareto_ranks(points)
    for rank in range(ranks.max() + 1):  # each layer is the front of what the earlier layers left
        rest = points[ranks >= rank]
        assert (ranks[ranks >= rank] == rank).tolist() == _brute_non_dominated(rest)


def test_contributions_are_what_each_point_alone_adds() -> None:
    points = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.0, 3.0], [2.0, 2.0]])
    contributions = hypervolume_contributions(points, [4.0, 4.0])
    assert contributions.tolist() == [1.0, 0.0, 1.0, 0.0, 0.0]  # a duplicate shares its region


def test_igd_is_zero_on_the_front_and_grows_with_the_gap() -> None:
    front = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    assert igd(front, front) == 0.0
    assert igd(front[:1], front) > igd(front[:2], front) > 0.0
    assert igd(front * [10, 1], front * [10, 1], scale=[10, 1]) == 0.0
    assert igd(np.zeros((0, 2)), front) == float("inf")
    for a, b in itertools.permutations(front, 2):
        assert igd([a], [b], scale=[2.0, 2.0]) == pytest.approx(np.linalg.norm((a - b) / 2.0))


def test_the_objective_turns_metrics_into_costs_and_names_bad_input() -> None:
    target = ParetoObjective(["acc", "latency_ms"], ["max", "min"], ["params_m<=2"])
    costs = target.costs({"acc": 91.0, "latency_ms": 3.0, "params_m": 1.0})
    assert costs.tolist() == [-91.0, 3.0] and target.values(costs).tolist() == [91.0, 3.0]
    assert target.costs({"acc": float("nan"), "latency_ms": 3.0}) is None
    assert target.feasible({"params_m": 1.0}) and not target.feasible({"params_m": 3.0}) and not target.feasible({})
    with pytest.raises(ConfigError, match="two or more metrics"):
        ParetoObjective(["acc"], ["max"])
    with pytest.raises(ConfigError, match="twice"):
        ParetoObjective(["acc", "acc"], ["max", "min"])
    with pytest.raises(ConfigError, match="COLUMN:max"):
        ParetoObjective.parse(["acc:max", "latency"])
