"""Searchers given several objectives (Tune's metric=[...], mode=[...]): the graph searcher aims at the
Pareto front; the ones that take one metric say so."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_bench_table import synthetic_row

from ray_diffnas.errors import ConfigError
from ray_diffnas.searchers.evolution import RegularizedEvolution
from ray_diffnas.searchers.graph.searcher import GOOD, GraphDiffusionSearcher
from ray_diffnas.searchers.hybrid import HybridSearcher
from ray_diffnas.searchers.llm.searcher import GPT4Searcher
from ray_diffnas.searchers.pareto import non_dominated
from ray_diffnas.spaces.nb201 import OPERATIONS, NB201Space

SPACE = NB201Space()
METRICS, MODES = ["acc", "latency_ms"], ["max", "min"]


def rows() -> dict[str, dict[str, float]]:
    frame = pd.DataFrame([synthetic_row(ops) for ops in itertools.product(OPERATIONS, repeat=6)])
    return {
        SPACE.validate(r["arch"]).key(): {"acc": r["acc"], "latency_ms": r["latency_ms"]}
        for r in frame.to_dict("records")
    }


def drive(searcher: GraphDiffusionSearcher, table: dict[str, dict[str, float]], trials: int) -> None:
    for i in range(trials):
        config = searcher.suggest(f"t{i}")
        key = SPACE.validate(config["arch"]).key()
        searcher.on_trial_complete(
            f"t{i}", {**table.get(key, {"acc": 50.0, "latency_ms": 9.0}), "training_iteration": 1}
        )


def test_the_graph_searcher_labels_the_front_good_and_mutates_its_members() -> None:
    table = rows()
    searcher = GraphDiffusionSearcher(space=SPACE, metric=METRICS, mode=MODES, warmup=8, train_steps=30, seed=0)
    drive(searcher, table, 14)
    assert searcher.model is not None and searcher.pareto.metrics == METRICS
    ranks = searcher.memory.pareto_ranks()
    assert len(ranks) == 14 and min(ranks.values()) == 0
    finished = searcher.memory.records(["completed"])
    good = {r.trial_id for r in finished if searcher._labels(r)[0] == GOOD}
    front = {t for t, rank in ranks.items() if rank == 0}
    assert front <= good and len(good) >= 3  # the front, and the layers behind it up to three trials
    assert all(ranks[t] <= searcher._threshold for t in good)
    parents = searcher._best_feasible(5)
    assert [ranks[r.trial_id] for r in parents] == sorted(ranks[r.trial_id] for r in parents)  # the front first
    assert {r.trial_id for r in parents[: len(front)]} <= front and len(parents) == min(5, len(ranks))
    costs = np.array([[-r.last_metrics["acc"], r.last_metrics["latency_ms"]] for r in finished])
    assert sorted(np.flatnonzero(non_dominated(costs))) == sorted(
        i for i, r in enumerate(finished) if r.trial_id in front
    )


def test_several_objectives_survive_save_and_restore(tmp_path: Path) -> None:
    searcher = GraphDiffusionSearcher(space=SPACE, metric=METRICS, mode=MODES, warmup=4, train_steps=20, seed=1)
    drive(searcher, rows(), 6)
    path = searcher.save(str(tmp_path / "memory.parquet"))
    saved = pd.read_parquet(path)
    assert saved["pareto_rank"].notna().all() and (saved["pareto_rank"] == 0).any()  # the file shows the ranks
    blank = GraphDiffusionSearcher()
    blank.restore(str(path))
    assert blank.pareto == searcher.pareto and blank.memory.pareto_ranks() == searcher.memory.pareto_ranks()
    assert blank.suggest("next") is not None
    other = GraphDiffusionSearcher(space=SPACE, metric=["acc", "params"], mode=MODES)
    with pytest.raises(ConfigError, match="same metrics"):
        other.restore(str(path))


def test_searchers_that_take_one_metric_refuse_a_list() -> None:
    for make in (
        lambda: RegularizedEvolution(space=SPACE, metric=METRICS, mode=MODES),
        lambda: GPT4Searcher(space=SPACE, metric=METRICS, mode=MODES, base_url="http://127.0.0.1:9/v1"),
        lambda: HybridSearcher(
            llm=GPT4Searcher(base_url="http://127.0.0.1:9/v1"), space=SPACE, metric=METRICS, mode=MODES
        ),
    ):
        with pytest.raises(ConfigError, match="takes one metric"):
            make()
    with pytest.raises(ConfigError, match="one mode each|two or more"):
        GraphDiffusionSearcher(space=SPACE, metric=METRICS, mode=["max"])
    with pytest.raises(ConfigError, match="one metric takes one mode"):
        GraphDiffusionSearcher(space=SPACE, metric="acc", mode=MODES)
