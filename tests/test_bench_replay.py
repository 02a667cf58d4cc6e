"""bench-table on a table build-table wrote: defaults from its metadata, ASHA replay of its curves,
bootstrap intervals, seed ranges, and runs kept between invocations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ray_diffnas.app.cli import main
from ray_diffnas.bench.build import ARCH_COLUMN, DEFAULT_OBJECTIVE, curve_column
from ray_diffnas.bench.harness import RUNS_FOLDER, LLMRunError, TableBenchmark, _same_settings
from ray_diffnas.bench.table import write_table_file
from ray_diffnas.errors import ConfigError
from ray_diffnas.searchers.llm.local_server import free_port
from ray_diffnas.spaces.unet_bench import bench_space

pytestmark = pytest.mark.slow  # real Tune runs: about a minute in all

ITERATIONS = 8
SPACE = bench_space(8)


@pytest.fixture(scope="module")
def table_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A table shaped as build-table writes it, with made-up curves (wider nets learn faster)."""
    rows = []
    for arch in SPACE.enumerate():
        final = 3.0 - 0.02 * arch.base_channels - 0.1 * sum(arch.num_res_blocks) + 0.05 * arch.mid_attention
        start = 20.0 - arch.base_channels / 4
        curve = [final + (start - final) / k**1.5 for k in range(1, ITERATIONS + 1)]
        row = {ARCH_COLUMN: json.dumps(arch.to_dict(), sort_keys=True), "arch_key": arch.key()}
        row.update({curve_column(k): v for k, v in enumerate(curve, start=1)})
        row.update(rfid_final=curve[-1], rfid_best=min(curve), latency_ms=float(arch.base_channels), params_m=0.1)
        rows.append(row)
    metadata = {
        "arch_column": ARCH_COLUMN,
        "objective": DEFAULT_OBJECTIVE,
        "space": SPACE.to_dict(),
        "curve": {
            "metric": "rfid",
            "columns": [curve_column(k) for k in range(1, ITERATIONS + 1)],
            "derived": ["rfid_final", "rfid_best"],
        },
        "dataset": "digits",
    }
    path = tmp_path_factory.mktemp("table") / "table.parquet"
    return write_table_file(pd.DataFrame(rows), path, metadata)


def test_asha_replay_reports_the_curve_and_counts_compute(table_path: Path, tmp_path: Path) -> None:
    bench = TableBenchmark.from_file(table_path, scheduler="asha")  # objective, space and column from the file
    assert (bench.objective, len(bench.table), bench.curve[-1]) == ("rfid_final", 320, "rfid@8")
    result = bench.run(["random"], budget=6, seeds=1, output=tmp_path)
    runs = result.trajectories
    assert runs["budget_used"].iloc[-1] <= 6 + 1e-9
    assert math.isclose(runs["iterations"].sum() / ITERATIONS, runs["budget_used"].iloc[-1])
    assert (runs["iterations"] < ITERATIONS).any(), "ASHA stopped no trial"
    assert len(runs) > 6  # more architectures looked at than a plain run of the same compute
    # What a replayed trial reported: the curve one iteration at a time, never the final values early.
    trial = next((tmp_path / "tune").glob("random-seed0/*/result.json"))
    reports = [json.loads(line) for line in trial.read_text().splitlines()]
    assert all("rfid_best" not in r and "rfid@8" not in r for r in reports)
    key = json.dumps(reports[0]["config"]["arch"], sort_keys=True)
    row = pd.read_parquet(table_path).set_index(ARCH_COLUMN).loc[key]
    assert [r["rfid_final"] for r in reports] == [row[f"rfid@{i}"] for i in range(1, len(reports) + 1)]
    # The pick is the best reported value, scored by its true final value.
    picked = runs.loc[runs["objective"].idxmin()]
    assert math.isclose(runs["best_so_far"].iloc[-1], picked["true_objective"])


def test_asha_replay_with_a_later_first_rung_stops_no_trial_before_it(table_path: Path, tmp_path: Path) -> None:
    bench = TableBenchmark.from_file(table_path, scheduler="asha", grace_period=2)
    runs = bench.run(["random"], budget=6, seeds=1, output=tmp_path).trajectories
    assert runs["iterations"].min() >= 2 and (runs["iterations"] < ITERATIONS).any(), runs["iterations"].tolist()
    # a run kept before --grace-period replayed ASHA from the first iteration: it serves grace 1, not 2
    first = TableBenchmark.from_file(table_path, scheduler="asha").run_settings(6)
    legacy = json.dumps({k: v for k, v in first.items() if k != "grace_period"})
    assert _same_settings(legacy, json.dumps(first), ())
    assert not _same_settings(legacy, json.dumps(bench.run_settings(6)), ())
    with pytest.raises(ConfigError, match="grace period must be from 1 to 8"):
        TableBenchmark.from_file(table_path, scheduler="asha", grace_period=ITERATIONS + 1)


def test_plain_runs_report_intervals_and_are_kept_between_invocations(table_path: Path, tmp_path: Path) -> None:
    bench = TableBenchmark.from_file(table_path)
    first = bench.run(["random", "evolution"], budget=12, seeds=[3, 4], output=tmp_path)
    point = first.summary["searchers"]["evolution"]["checkpoints"]["10"]
    low, high = point["mean_regret_ci95"]
    assert low <= point["mean_regret"] <= high and point["median_regret_ci95"] is not None
    assert first.summary["seeds"] == [3, 4] and (tmp_path / "bench.png").stat().st_size > 0
    # Where the trials came from: evolution names its sources (warm-up draws, then mutations), Tune's
    # random search does not; each source's regret is its architectures' true values against the optimum.
    table = pd.read_parquet(table_path)
    assert first.summary["table"]["uniform_draw_mean_regret"] == pytest.approx(
        (table["rfid_final"] - table["rfid_final"].min()).mean()
    )
    # Chance at a query: the mean regret of the table's architectures its run had not tried yet.
    sources = first.summary["searchers"]["evolution"]["sources"]
    assert "sources" not in first.summary["searchers"]["random"]
    regret = (table.set_index("arch_key")["rfid_final"] - bench.optimum).abs()
    evolved = first.trajectories[(first.trajectories["searcher"] == "evolution") & ~first.trajectories["duplicate"]]
    chance: dict[str, list[float]] = {}
    for _, run in evolved.groupby("seed"):
        for position, (_, query) in enumerate(run.sort_values("query").iterrows()):
            untried = regret.drop(run.sort_values("query")["arch_key"].iloc[:position])
            chance.setdefault(query["proposer"], []).append(untried.mean())
    for name, source in sources.items():
        mine = evolved[evolved["proposer"] == name]
        assert source["queries"] == len(mine) and source["seeds"] == 2
        assert source["mean_regret"] == pytest.approx((mine["true_objective"] - bench.optimum).abs().mean())
        assert source["chance_mean_regret"] == pytest.approx(np.mean(chance[name]))
        assert source["gain_over_chance"] == pytest.approx(source["chance_mean_regret"] - source["mean_regret"])
    assert sum(s["share"] for s in sources.values()) == pytest.approx(1.0) and "random" in sources
    # Every searcher against random search: the difference of mean regrets at each budget, with its interval.
    assert "against_random" not in first.summary["searchers"]["random"]
    versus = first.summary["searchers"]["evolution"]["against_random"]["10"]
    regret_at_10 = first.trajectories[first.trajectories["query"] == 10].groupby("searcher")["regret"].mean()
    assert versus["mean_regret_difference"] == pytest.approx(regret_at_10["evolution"] - regret_at_10["random"])
    low, high = versus["mean_regret_difference_ci95"]
    assert low <= versus["mean_regret_difference"] <= high
    trials_before = sorted(p.name for p in (tmp_path / "tune").glob("*/*"))
    again = bench.run(["random", "evolution"], budget=12, seeds=[3, 4], output=tmp_path)  # every run kept
    assert sorted(p.name for p in (tmp_path / "tune").glob("*/*")) == trials_before
    pd.testing.assert_frame_equal(first.trajectories, again.trajectories)
    # Searchers that ask no LLM: their kept runs serve a comparison that names an LLM for gpt4 or hybrid.
    local = TableBenchmark.from_file(table_path, llm="local", model="some-model")
    assert local.run_settings(12) != bench.run_settings(12)
    beside_an_llm = local.run(["random", "evolution"], budget=12, seeds=[3, 4], output=tmp_path)
    assert sorted(p.name for p in (tmp_path / "tune").glob("*/*")) == trials_before
    pd.testing.assert_frame_equal(first.trajectories, beside_an_llm.trajectories)
    kept = sorted((tmp_path / "runs").iterdir())
    before = [path.read_bytes() for path in kept]
    with pytest.raises(ConfigError, match=r"kept with other settings \(budget: 12 there, 10 now\)"):
        bench.run(["random"], budget=10, seeds=[3], output=tmp_path)  # another budget: never over the kept run
    assert [path.read_bytes() for path in kept] == before
    other = bench.run(["random"], budget=10, seeds=[3], output=tmp_path / "budget10")  # in a folder of its own
    assert other.trajectories["query"].max() == 10


def test_the_command_takes_a_seed_range(table_path: Path, tmp_path: Path) -> None:
    code = main(
        ["bench-table", "--table", str(table_path), "--searcher", "optuna", "--budget", "5", "--seeds", "100-101",
         "--output", str(tmp_path)]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["seeds"] == [100, 101] and summary["objective"] == "rfid_final"
    assert np.isfinite(summary["searchers"]["optuna"]["checkpoints"]["5"]["mean_regret"])


@pytest.mark.parametrize("searcher", ["evolution", "optuna", "random"])
def test_queries_are_in_the_order_the_searcher_suggested_them(searcher: str, table_path: Path, tmp_path: Path) -> None:
    """Tune's result grid is in no particular order and a Searcher's trial ids carry no counter; Tune's
    trial folders do (``<trainable>_<trial id>_<counter>_<config>``): the queries must follow it."""
    result = TableBenchmark.from_file(table_path).run([searcher], budget=15, seeds=[0], output=tmp_path, plot=False)
    counters = {}
    for folder in (tmp_path / "tune" / f"{searcher}-seed0").glob("lookup_trainable_*"):
        trial_id = json.loads((folder / "result.json").read_text().splitlines()[0])["trial_id"]
        counters[trial_id] = int(folder.name.split(f"{trial_id}_", 1)[1].split("_", 1)[0])
    ordered = result.trajectories["trial_id"].tolist()
    assert len(ordered) == 15 and [counters[t] for t in ordered] == sorted(counters.values())


def test_an_llm_searchers_run_in_which_the_llm_failed_is_refused_not_kept(
    table_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of gpt4 whose LLM stopped answering (a closed port: a local server that died) measured the
    searcher's fallbacks, not the LLM: the benchmark stops with the reason and keeps nothing of it."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    bench = TableBenchmark.from_file(table_path)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(LLMRunError, match=r"gpt4 seed 0: (\d+) of \1 LLM calls failed .* not kept"):
        bench.cached_run("gpt4", 0, 4, tmp_path, llm_url=dead)
    assert not (tmp_path / RUNS_FOLDER).exists()
