"""The objective's one policy (better, feasible, missing), and every caller following it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ray_diffnas.bench.harness import TableBenchmark
from ray_diffnas.bench.table import load_table
from ray_diffnas.errors import ConfigError
from ray_diffnas.searchers.graph.searcher import GraphDiffusionSearcher
from ray_diffnas.searchers.memory import SearchMemory
from ray_diffnas.searchers.objective import Objective, reported
from ray_diffnas.spaces.nb201 import NB201Space


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf, "3.0", True])
def test_missing_means_absent_not_a_number_or_not_finite(value: object) -> None:
    assert reported({"m": value}, "m") is None
    assert reported({}, "m") is None
    assert reported({"m": np.float32(2.5)}, "m") == 2.5


@pytest.mark.parametrize("mode,better,worse", [("min", 1.0, 2.0), ("max", 2.0, 1.0)])
def test_better_follows_the_mode_and_beats_missing(mode: str, better: float, worse: float) -> None:
    objective = Objective("m", mode)
    assert objective.better(better, worse) and not objective.better(worse, better)
    assert not objective.better(better, better)  # a tie is not better
    assert objective.better(worse, None) and not objective.better(None, worse) and not objective.better(None, None)
    assert not objective.better(math.nan, worse)
    assert objective.best([None, worse, better, math.nan]) == better and objective.best([None]) is None
    assert sorted([None, worse, better], key=objective.sort_key) == [better, worse, None]


def test_a_missing_constrained_metric_is_infeasible() -> None:
    objective = Objective("rfid", "min", ["latency_ms<=5", "params_m>=0.1"])
    assert objective.feasible({"latency_ms": 5.0, "params_m": 0.2})
    assert not objective.feasible({"latency_ms": 5.1, "params_m": 0.2})
    assert not objective.feasible({"params_m": 0.2})  # latency never measured
    assert not objective.feasible({"latency_ms": math.nan, "params_m": 0.2})
    assert objective.constraint_states({"params_m": 0.0}) == [None, False]
    assert Objective("rfid").feasible({})  # no constraints: everything is feasible


def test_bad_objectives_get_clear_errors() -> None:
    with pytest.raises(ConfigError, match="mode must be one of"):
        Objective("m", "maximize")
    with pytest.raises(ConfigError, match="COLUMN:max or COLUMN:min"):
        Objective.parse("acc")
    with pytest.raises(ConfigError, match="non-empty"):
        Objective("")


def test_the_memory_and_the_graph_searcher_follow_the_policy() -> None:
    memory = SearchMemory("acc", "max")
    memory.propose("t1", {}, "k1", "user")
    for value in (1.0, math.nan, 3.0, 2.0):
        memory.report("t1", {"acc": value})
    curve = memory.get("t1").curve  # a missing value keeps its place, and is never the best
    assert curve[0] == 1.0 and math.isnan(curve[1]) and curve[2:] == [3.0, 2.0] and memory.get("t1").best == 3.0

    searcher = GraphDiffusionSearcher(space=NB201Space(), metric="acc", mode="max", constraints=["lat<=2"], seed=0)
    rng = np.random.default_rng(0)
    for i, metrics in enumerate([{"acc": 9.0, "lat": 1.0}, {"acc": 99.0}, {"acc": 95.0, "lat": 3.0}]):
        searcher.memory.propose(f"t{i}", {"arch": NB201Space().sample(rng).to_dict()}, f"k{i}", "user")
        searcher.memory.complete(f"t{i}", metrics, status="completed")
    # The best feasible trial is the only one that reported a latency within the bound.
    assert [r.trial_id for r in searcher._best_feasible(3)] == ["t0"]
    searcher._threshold = 95.0
    assert [searcher._labels(r) for r in searcher._finished()] == [[0, 1], [1, 2], [1, 0]]


def test_the_table_benchmark_counts_missing_constrained_metrics_as_infeasible() -> None:
    space = NB201Space()
    rng = np.random.default_rng(0)
    cells = sorted({space.sample(rng).key() for _ in range(3)})
    frame = pd.DataFrame({"arch": cells, "acc": [1.0, 3.0, 2.0], "lat": [1.0, math.nan, 1.0]})
    bench = TableBenchmark(load_table(frame, space), "acc", "max", ["lat<=2"])
    assert bench.optimum == 2.0  # the 3.0 row measured no latency
    trajectory = bench.trajectory(
        "random",
        0,
        [
            ({"acc": 3.0, "trial_id": "x_00000"}, {"arch": cells[1]}, None),
            ({"acc": 2.0, "trial_id": "x_00001"}, {"arch": cells[2]}, None),
        ],
    )
    assert trajectory["feasible"].tolist() == [False, True]
    assert trajectory["best_so_far"].tolist()[1] == 2.0 and trajectory["regret"].tolist()[1] == 0.0
