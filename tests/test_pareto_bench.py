"""``bench-table`` with several objectives: the front each searcher finds, scored by hypervolume and IGD."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_bench_table import synthetic_row

from ray_diffnas.app.cli import main
from ray_diffnas.bench.harness import RunRecord
from ray_diffnas.bench.pareto_bench import REFERENCE_MARGIN, ParetoBenchmark
from ray_diffnas.bench.table import load_table
from ray_diffnas.errors import ConfigError
from ray_diffnas.searchers.factory import make_searcher
from ray_diffnas.searchers.pareto import ParetoObjective, hypervolume, non_dominated
from ray_diffnas.spaces.nb201 import OPERATIONS, NB201Space

SPACE = NB201Space()
TARGET = ParetoObjective(["acc", "latency_ms"], ["max", "min"])


def small_table(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame([synthetic_row(ops) for ops in sorted({SPACE.sample(rng).ops for _ in range(rows)})])


def run_of(bench: ParetoBenchmark, cells: list[str]) -> pd.DataFrame:
    trials = []
    for number, cell in enumerate(cells):
        config = {"arch": SPACE.validate(cell).to_dict()}
        _, metrics = bench.table.lookup().query(config)
        trials.append(({**metrics, "trial_id": f"ab_{number:05d}"}, config, None))
    return bench.trajectory("random", 0, trials)


def test_the_true_front_and_the_reference_point() -> None:
    frame = small_table()
    bench = ParetoBenchmark(load_table(frame, SPACE), TARGET)
    costs = np.column_stack([-frame["acc"], frame["latency_ms"]])
    mask = non_dominated(costs)
    assert sorted(bench.front_keys) == sorted(frame.loc[mask, "arch"].map(lambda c: SPACE.validate(c).key()))
    values = bench.front_values()  # in the metrics' units, sorted by the first objective's cost (acc, best first)
    assert list(values[:, 0]) == sorted(values[:, 0], reverse=True)
    nadir = np.array([values[:, 0].min(), values[:, 1].max()])
    span = np.array([np.ptp(values[:, 0]), np.ptp(values[:, 1])])
    reference = bench.table_info()["reference_point"]
    assert reference["acc"] == pytest.approx(nadir[0] - REFERENCE_MARGIN * span[0])
    assert reference["latency_ms"] == pytest.approx(nadir[1] + REFERENCE_MARGIN * span[1])


def test_each_query_is_scored_by_the_front_found_so_far() -> None:
    frame = small_table()
    bench = ParetoBenchmark(load_table(frame, SPACE), TARGET)
    front = [SPACE.validate(c).key() for c in frame["arch"]]
    front = [k for k in front if k in bench.front_keys]
    dominated = [k for k in (SPACE.validate(c).key() for c in frame["arch"]) if k not in bench.front_keys][:3]
    run = run_of(bench, [*dominated, *front, front[0]])
    ratios = run["best_so_far"].to_numpy()
    assert np.all(np.diff(ratios) >= -1e-12) and 0 < ratios[0] < 1  # never falls; a dominated row counts a little
    assert ratios[-1] == pytest.approx(1.0) and run["regret"].iloc[-1] == pytest.approx(0.0)
    assert run["igd"].iloc[-1] == pytest.approx(0.0) and run["igd"].iloc[0] > 0
    assert run["duplicate"].tolist()[-1]  # the last query repeats the first front member
    first = np.array([bench.pareto.costs(bench.table.rows[dominated[0]])])
    assert ratios[0] == pytest.approx(hypervolume(first, bench.reference) / bench.front_hypervolume)

    summary = bench.summarize([RunRecord("random", 0, run, 1.0)], budget=len(run))
    assert summary["objective"] == "hypervolume_ratio" and summary["objectives"] == ["acc", "latency_ms"]
    stats = summary["searchers"]["random"]
    assert stats["queries_to_optimum"] == [float(len(dominated) + len(front))]  # when the front was complete
    assert stats["checkpoints"]["10"]["median_igd"] == pytest.approx(run["igd"].iloc[9])


def test_outside_the_table_and_infeasible_queries_add_nothing() -> None:
    frame = small_table()
    bench = ParetoBenchmark(
        load_table(frame, SPACE), ParetoObjective(["acc", "latency_ms"], ["max", "min"], ["latency_ms<=2"])
    )
    outside = next(
        "|"
        + "|+|".join("|".join(f"{op}~{i}" for i, op in enumerate(ops[a:b])) for a, b in ((0, 1), (1, 3), (3, 6)))
        + "|"
        for ops in itertools.product(OPERATIONS, repeat=6)
        if SPACE.validate({"ops": list(ops)}).key() not in bench.table.rows
    )
    slow = next(c for c, ms in zip(frame["arch"], frame["latency_ms"]) if ms > 2)
    run = run_of(bench, [outside, slow])
    assert run["best_so_far"].tolist() == [0.0, 0.0] and run["igd"].isna().all()


def test_the_summary_counts_the_seeds_that_found_a_feasible_row_and_judges_no_screen_by_one_objective() -> None:
    frame = small_table()
    bench = ParetoBenchmark(
        load_table(frame, SPACE), ParetoObjective(["acc", "latency_ms"], ["max", "min"], ["latency_ms<=2"])
    )
    slow = [c for c, ms in zip(frame["arch"], frame["latency_ms"]) if ms > 2][:12]
    fast = [c for c, ms in zip(frame["arch"], frame["latency_ms"]) if ms <= 2][:12]
    late, early = run_of(bench, [*slow[:10], *fast[:2]]), run_of(bench, fast)
    for run in (late, early):
        run["proposer"] = "llm"  # as an LLM searcher's trajectory names its trials
    runs = [RunRecord("random", 0, late, 1.0), RunRecord("random", 1, early, 1.0, screened_out=[{"key": slow[-1]}])]
    stats = bench.summarize(runs, budget=12)["searchers"]["random"]
    assert stats["checkpoints"]["10"]["seeds_with_a_feasible_query"] == 1  # the first run had none by then
    assert stats["checkpoints"]["10"]["median_best"] == pytest.approx(early["best_so_far"].iloc[9] / 2)
    screen = stats["llm_screen"]  # counts only: a regret against "the optimum" needs one objective
    assert screen["served"] == 24 and screen["screened_out"] == 1
    assert not any("regret" in key for key in screen)


def test_searchers_that_take_one_objective_say_so() -> None:
    with pytest.raises(ConfigError, match="takes one objective"):
        make_searcher("evolution", SPACE, TARGET)
    with pytest.raises(ConfigError, match="ASHA"):
        ParetoBenchmark(load_table(small_table(), SPACE), TARGET, scheduler="asha")


def test_bench_table_with_two_objectives_runs_random_tpe_nsga2_and_graph(
    ray_session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "table.csv"
    small_table(2000).to_csv(path, index=False)
    out = tmp_path / "bench"
    code = main(
        ["bench-table", "--table", str(path), "--space", "nb201", "--objective", "acc:max", "--objective",
         "latency_ms:min", "--searcher", "random,optuna,nsga2,graph", "--warmup", "6", "--budget", "12", "--seeds", "2",
         "--output", str(out)]
    )  # fmt: skip
    assert code == 0
    assert "the table's true front" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["searchers"]) == {"random", "optuna", "nsga2", "graph"}
    for stats in summary["searchers"].values():
        point = stats["checkpoints"]["12"]
        assert 0 < point["median_best"] <= 1 and point["mean_igd"] > 0 and stats["queries"] == [12, 12]
    traj = pd.read_parquet(out / "trajectories.parquet")
    for _, run in traj.groupby(["searcher", "seed"]):
        assert np.all(np.diff(run["best_so_far"]) >= -1e-12)
    assert (out / "bench.png").stat().st_size > 0
