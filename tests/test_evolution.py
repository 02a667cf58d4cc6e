"""Regularized evolution: random until the population is full, then mutations of tournament winners."""

from __future__ import annotations

import numpy as np
import pytest

from ray_diffnas.errors import ConfigError
from ray_diffnas.searchers.evolution import RegularizedEvolution
from ray_diffnas.spaces.nb201 import NB201Space

SPACE = NB201Space()


def _score(ops: list[str]) -> float:
    return float(sum(op == "nor_conv_3x3" for op in ops))


def _run(searcher: RegularizedEvolution, trials: int, latency: float | None = None) -> None:
    for i in range(trials):
        config = searcher.suggest(f"t{i}")
        assert isinstance(config, dict)
        metrics = {"acc": _score(config["arch"]["ops"])}
        if latency is not None:
            metrics["latency_ms"] = latency if i % 2 else 100.0
        searcher.on_trial_complete(f"t{i}", metrics)


def test_children_are_one_mutation_from_a_member_of_the_recent_population() -> None:
    searcher = RegularizedEvolution(space=SPACE, metric="acc", mode="max", population_size=5, tournament_size=3)
    _run(searcher, 30)
    records = searcher.memory.records()
    assert [r.proposer for r in records[:5]] == ["random"] * 5
    assert {r.proposer for r in records[5:]} == {"neighbour"}
    for i, record in enumerate(records[5:], start=5):
        child = record.config["arch"]["ops"]
        population = [r.config["arch"]["ops"] for r in records[max(0, i - 5) : i]]
        assert min(sum(a != b for a, b in zip(child, p)) for p in population) == 1, (i, child)
    assert len(searcher.memory.keys()) == 30  # never the same architecture twice


def test_evolution_climbs_where_random_sampling_does_not() -> None:
    evolved, sampled = [], []
    for seed in range(5):
        searcher = RegularizedEvolution(space=SPACE, metric="acc", mode="max", seed=seed)
        _run(searcher, 60)
        evolved.append(searcher.memory.best().best)
        rng = np.random.default_rng(seed)
        sampled.append(max(_score(list(SPACE.sample(rng).ops)) for _ in range(60)))
    assert np.mean(evolved) > np.mean(sampled)


def test_feasible_members_win_tournaments() -> None:
    searcher = RegularizedEvolution(
        space=SPACE, metric="acc", mode="max", constraints=["latency_ms<=5"], population_size=4, tournament_size=4
    )
    _run(searcher, 4, latency=1.0)  # odd trials feasible, even ones not
    winner = searcher._tournament(searcher.population())
    assert winner.last_metrics["latency_ms"] <= 5


def test_state_round_trip_keeps_the_settings(tmp_path) -> None:
    searcher = RegularizedEvolution(space=SPACE, metric="acc", mode="max", population_size=4, tournament_size=2)
    _run(searcher, 6)
    path = searcher.save(str(tmp_path / "state.parquet"))
    blank = RegularizedEvolution()
    blank.restore(str(path))
    assert (blank.population_size, blank.tournament_size) == (4, 2)
    assert blank.suggest("next") == searcher.suggest("next")


@pytest.mark.parametrize("population,tournament", [(0, 1), (3, 4), (3, 0)])
def test_bad_sizes_are_named(population: int, tournament: int) -> None:
    with pytest.raises(ConfigError, match="population_size"):
        RegularizedEvolution(space=SPACE, population_size=population, tournament_size=tournament)


def test_the_factory_takes_a_warm_up_as_the_population() -> None:
    from ray_diffnas.searchers.factory import make_searcher
    from ray_diffnas.searchers.objective import Objective

    default = make_searcher("evolution", SPACE, Objective("acc", "max")).search_alg
    small = make_searcher("evolution", SPACE, Objective("acc", "max"), warmup=4).search_alg
    assert (default.population_size, default.tournament_size) == (10, 5)
    assert (small.population_size, small.tournament_size) == (4, 2)


def test_in_a_small_space_evolution_goes_on_after_a_winners_neighbours_are_all_tried() -> None:
    # The 320-architecture UNet bench space: a fixed winner's one-field mutations run out within tens of
    # trials. Evolution must keep proposing new architectures, not finish the search early.
    from ray_diffnas.spaces.unet_bench import bench_space

    space = bench_space(8)
    searcher = RegularizedEvolution(space=space, metric="rfid", mode="min", seed=0)
    for i in range(150):
        config = searcher.suggest(f"t{i}")
        assert isinstance(config, dict), f"finished after {i} trials"
        arch = space.validate(config["arch"])
        searcher.on_trial_complete(f"t{i}", {"rfid": float(arch.base_channels) + sum(arch.num_res_blocks)})
    records = searcher.memory.records()
    assert len({r.arch_key for r in records}) == 150
    assert sum(r.proposer == "neighbour" for r in records) > 100  # mostly mutations still
