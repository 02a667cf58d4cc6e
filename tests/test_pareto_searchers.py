"""Searchers given several objectives (Tune's metric=[...], mode=[...]): the graph searcher aims at the
Pareto front; the ones that take one metric say so."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from llm_server import FakeLLMServer
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
    with pytest.raises(ConfigError, match="takes one metric"):
        RegularizedEvolution(space=SPACE, metric=METRICS, mode=MODES)
    with pytest.raises(ConfigError, match="one mode each|two or more"):
        GraphDiffusionSearcher(space=SPACE, metric=METRICS, mode=["max"])
    with pytest.raises(ConfigError, match="one metric takes one mode"):
        GraphDiffusionSearcher(space=SPACE, metric="acc", mode=MODES)


def test_the_llm_is_shown_the_front_and_asked_to_extend_it() -> None:
    with FakeLLMServer(SPACE) as server:
        llm = GPT4Searcher(space=SPACE, metric=METRICS, mode=MODES, base_url=server.url, api_key="sk-test",
                           proposals_per_call=2, max_retries=0)  # fmt: skip
        table = rows()
        keys = list(table)[:6]
        for i, key in enumerate(keys):
            llm.memory.propose(f"w{i}", {"arch": SPACE.validate(key).to_dict()}, key, "warm_start")
            llm.memory.complete(f"w{i}", {**table[key], "training_iteration": 1}, "completed")
        llm.suggest("t1")
        prompt = server.user_prompts()[0]
    front = [keys[int(t[1:])] for t, rank in llm.memory.pareto_ranks().items() if rank == 0]
    assert "Current Pareto front" in prompt and all(k in prompt[prompt.index("## Now") :] for k in front)
    assert "extend the Pareto front" in prompt and "'latency_ms' (lower is better)" in prompt
    hybrid = HybridSearcher(llm=GPT4Searcher(base_url="http://127.0.0.1:9/v1"), space=SPACE, metric=METRICS, mode=MODES)
    assert hybrid.pareto.metrics == METRICS


def test_the_llm_fallback_mutates_the_front_members_that_hold_it_up() -> None:
    """With the LLM out, the fallback mutates the front members that add most hypervolume, not the first
    five in the order they were tried (those crowd one end of this front; the newest three span it)."""
    old = [("nor_conv_3x3",) * 5 + (op,) for op in OPERATIONS]  # one corner: accurate and slow
    new = [("none",) * 6, ("skip_connect",) * 6, ("avg_pool_3x3",) * 3 + ("nor_conv_1x1",) * 3]
    points = [(90.0 + 0.1 * i, 9.0 + 0.1 * i) for i in range(5)] + [(60.0, 1.0), (70.0, 3.0), (80.0, 6.0)]
    llm = GPT4Searcher(space=SPACE, metric=METRICS, mode=MODES, base_url="http://127.0.0.1:9/v1", api_key="sk-test",
                       max_retries=0, seed=0)  # fmt: skip
    for i, (ops, (acc, ms)) in enumerate(zip(old + new, points)):
        arch = SPACE.validate({"ops": list(ops)})
        llm.memory.propose(f"w{i}", {"arch": arch.to_dict()}, arch.key(), "warm_start")
        llm.memory.complete(f"w{i}", {"acc": acc, "latency_ms": ms, "training_iteration": 1}, "completed")
    assert all(rank == 0 for rank in llm.memory.pareto_ranks().values())  # eight on the front
    parents = [SPACE.validate(r.config["arch"]).ops for r in llm.memory.front_members(5)]
    assert set(new) <= set(parents)  # the three that span the front hold it up most

    def distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
        return sum(x != y for x, y in zip(a, b))

    children = [SPACE.validate(llm.suggest(f"t{i}")["arch"]).ops for i in range(24)]
    assert {llm.memory.get(f"t{i}").proposer for i in range(24)} == {"fallback"}
    assert all(min(distance(c, p) for p in parents) == 1 for c in children)
    assert any(min(distance(c, p) for p in new) == 1 for c in children)  # the newest members are mutated too


def test_a_warm_start_keeps_every_objective(tmp_path: Path) -> None:
    first = GraphDiffusionSearcher(space=SPACE, metric=METRICS, mode=MODES, warmup=20, seed=2)
    drive(first, rows(), 5)
    path = first.save(str(tmp_path / "memory.parquet"))
    second = GraphDiffusionSearcher(space=SPACE, metric=METRICS, mode=MODES, warm_start=str(path), seed=3)
    before = {
        r.arch_key: rank
        for r in first.memory.records()
        for t, rank in first.memory.pareto_ranks().items()
        if t == r.trial_id
    }
    after = {
        r.arch_key: rank
        for r in second.memory.records()
        for t, rank in second.memory.pareto_ranks().items()
        if t == r.trial_id
    }
    assert after == before and len(after) == 5


@pytest.mark.slow
def test_a_search_for_rfid_and_latency_prints_and_reports_its_front(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    out = tmp_path / "run"
    run = subprocess.run(
        [sys.executable, "-m", "ray_diffnas", "search", "--dataset", "digits", "--num-samples", "4",
         "--max-iterations", "2", "--steps-per-iteration", "15", "--rfid-samples", "100", "--sampler-steps", "3",
         "--objective", "rfid:min", "--objective", "latency_ms:min", "--output", str(out), "--seed", "2"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    table = pd.read_parquet(out / "results.parquet")
    ranked = table.dropna(subset=["pareto_rank"])
    costs = np.column_stack([ranked["best_rfid"], ranked["latency_ms"]])
    assert (ranked["pareto_rank"] == 0).tolist() == non_dominated(costs).tolist()
    assert table["pareto_rank"].fillna(99).is_monotonic_increasing  # the front first
    summary = json.loads((out / "summary.json").read_text())
    front = sorted(p["trial_id"] for p in summary["front"])
    assert front == sorted(ranked.loc[ranked["pareto_rank"] == 0, "trial_id"])
    assert "Pareto front of rfid against latency_ms" in run.stdout and "pareto_rank" in run.stdout
    memory = pd.read_parquet(out / "tune" / "search-memory.parquet")
    assert memory["pareto_rank"].notna().any()  # the searcher's memory ranks them too
    report = (out / "report.html").read_text()
    assert "Pareto rank" in report and "The Pareto front first" in report
    bad = subprocess.run(
        [sys.executable, "-m", "ray_diffnas", "search", "--searcher", "evolution", "--objective", "rfid:min",
         "--objective", "params_m:min", "--output", str(tmp_path / "bad")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode != 0 and "takes one objective" in bad.stderr
