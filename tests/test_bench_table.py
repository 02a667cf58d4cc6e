"""``ray-diffnas bench-table``: real Tune runs on a synthetic table, the files they write, and bad inputs."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ray_diffnas.app.cli import main
from ray_diffnas.errors import ConfigError
from ray_diffnas.spaces.nb201 import OPERATIONS, NB201Arch, NB201Space

ROOT = Path(__file__).resolve().parents[1]
REAL_TABLE = ROOT.parent / "shared" / "data" / "nb201_cifar10_valid.csv"
OP_SCORE = {"none": 0.0, "skip_connect": 1.0, "avg_pool_3x3": 1.5, "nor_conv_1x1": 2.5, "nor_conv_3x3": 3.0}
OP_LATENCY = {"none": 0.0, "skip_connect": 0.1, "avg_pool_3x3": 0.4, "nor_conv_1x1": 0.6, "nor_conv_3x3": 1.5}


def synthetic_row(ops: tuple[str, ...]) -> dict[str, float | str]:
    """A made-up but deterministic benchmark row: accuracy rewards convolutions on later edges."""
    accuracy = 50.0 + sum(OP_SCORE[op] * (1 + 0.1 * i) for i, op in enumerate(ops))
    return {
        "arch": NB201Arch(ops).to_string(),
        "acc": round(accuracy, 4),
        "latency_ms": round(1.0 + sum(OP_LATENCY[op] for op in ops), 4),
        "note": "synthetic",
    }


@pytest.fixture(scope="module")
def full_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every NB201 cell (as a published table has), shuffled, with an accuracy and a latency column."""
    rows = [synthetic_row(ops) for ops in itertools.product(OPERATIONS, repeat=6)]
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=0)
    path = tmp_path_factory.mktemp("table") / "synthetic.csv"
    frame.to_csv(path, index=False)
    return path


def run_cli(*args: str) -> int:
    return main(["bench-table", *args])


@pytest.mark.slow
def test_random_and_optuna_runs_write_consistent_results(
    ray_session, full_table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench"
    code = run_cli(
        "--table",
        str(full_table),
        "--space",
        "nb201",
        "--objective",
        "acc:max",
        "--constraint",
        "latency_ms<=6",
        "--searcher",
        "random,optuna",
        "--budget",
        "8",
        "--seeds",
        "2",
        "--output",
        str(out),
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "random" in printed and "optuna" in printed and "table optimum acc" in printed
    assert "Configuration for experiment" not in printed  # Tune's banner stays off stdout

    table = pd.read_csv(full_table).set_index("arch")
    feasible = table[table["latency_ms"] <= 6]
    optimum = feasible["acc"].max()

    traj = pd.read_parquet(out / "trajectories.parquet")
    assert len(traj) == 2 * 2 * 8
    assert set(traj["searcher"]) == {"random", "optuna"}
    for (_, _), run in traj.groupby(["searcher", "seed"]):
        assert run["query"].tolist() == list(range(1, 9))
        assert run["in_table"].all() and run["error"].isna().all()
        # What the trial reported is the table's row for the architecture it looked up.
        assert np.allclose(run["objective"], table.loc[run["arch_key"], "acc"].to_numpy())
        assert (run["feasible"] == (table.loc[run["arch_key"], "latency_ms"] <= 6).to_numpy()).all()
        best = run["best_so_far"].ffill().dropna()
        assert best.is_monotonic_increasing
        expected = np.fmax.accumulate(np.where(run["feasible"], run["objective"], np.nan))
        assert np.allclose(run["best_so_far"], expected, equal_nan=True)
        assert (run["regret"].dropna() >= 0).all()
        assert np.allclose(run["regret"], optimum - run["best_so_far"], equal_nan=True)
        assert run["duplicate"].sum() == run["arch_key"].duplicated().sum()

    summary = json.loads((out / "summary.json").read_text())
    assert summary["objective"] == "acc" and summary["mode"] == "max" and summary["budget"] == 8
    assert summary["constraints"] == ["latency_ms<=6"] and summary["seeds"] == [0, 1]
    info = summary["table"]
    assert info["rows"] == 5**6 and info["optimum"] == pytest.approx(optimum)
    assert table.loc[info["optimum_arch"], "acc"] == pytest.approx(optimum)
    assert pd.read_csv(full_table).iloc[info["optimum_row"]]["arch"] == info["optimum_arch"]
    assert info["feasible_rows"] == len(feasible)
    for name in ("random", "optuna"):
        stats = summary["searchers"][name]
        assert list(stats["checkpoints"]) == ["8"]
        point = stats["checkpoints"]["8"]
        finals = traj[(traj["searcher"] == name) & (traj["query"] == 8)]
        assert point["median_best"] == pytest.approx(finals["best_so_far"].median())
        assert point["mean_regret"] == pytest.approx(finals["regret"].mean())
        assert len(stats["queries_to_optimum"]) == 2 and len(stats["wall_seconds"]) == 2
        share = traj.loc[traj["searcher"] == name, "feasible"].mean()
        assert stats["feasible_share"] == pytest.approx(share, abs=1e-4)
        assert stats["warmup"] == 0 and stats["feasible_share_after_warmup"] == stats["feasible_share"]
        assert stats["queries"] == [8, 8] and stats["seconds_per_query"] > 0
    assert (out / "bench.png").stat().st_size > 10_000
    assert (out / "tune" / "optuna-seed1").is_dir()


def test_scoring_of_a_partial_table_min_objective_and_trial_order() -> None:
    """Queries outside the table are counted and never feasible; trials are put in suggestion order."""
    from ray_diffnas.bench.harness import RunRecord, TableBenchmark
    from ray_diffnas.bench.table import load_table

    space = NB201Space()
    rng = np.random.default_rng(1)
    frame = pd.DataFrame([synthetic_row(ops) for ops in sorted({space.sample(rng).ops for _ in range(200)})])
    table = load_table(frame, space)
    bench = TableBenchmark(table, "latency_ms", "min")
    inside = [{"arch": space.validate(cell).to_dict()} for cell in frame["arch"][:2]]
    outside = [
        {"arch": {"ops": list(ops)}}
        for ops in itertools.product(OPERATIONS, repeat=6)
        if NB201Arch(ops).key() not in table.rows
    ][:2]
    trials = []
    for number, config in enumerate([outside[0], inside[0], outside[1], inside[1], inside[0]]):
        _, metrics = table.lookup().query(config)  # what the trial reports
        trials.append(({**metrics, "trial_id": f"5e1f0_{number:05d}"}, config, None))
    run = bench.trajectory("random", 3, trials[::-1])  # Tune's result order is not the suggestion order
    assert run["trial_id"].tolist() == [f"5e1f0_{n:05d}" for n in range(5)]
    assert run["in_table"].tolist() == [False, True, False, True, True]
    assert (run["feasible"] == run["in_table"]).all() and run.loc[~run["in_table"], "objective"].isna().all()
    latencies = frame.set_index("arch")["latency_ms"]
    first, second = latencies[frame["arch"][0]], latencies[frame["arch"][1]]
    assert np.isnan(run["best_so_far"][0])
    assert run["best_so_far"].tolist()[1:] == [first, first, min(first, second), min(first, second)]
    assert np.allclose(run["regret"][1:], run["best_so_far"][1:] - frame["latency_ms"].min())
    assert run["duplicate"].tolist() == [False, False, False, False, True]
    stats = bench.summarize([RunRecord("random", 3, run, 2.0)], budget=5)["searchers"]["random"]
    assert stats["not_in_table"] == [2] and stats["duplicates"] == [1] and stats["feasible_share"] == 0.6
    assert stats["seconds_per_query"] == 0.4 and stats["checkpoints"]["5"]["median_best"] == min(first, second)
    # --against: each searcher's mean regret minus each named searcher's (random search by default).
    graph = bench.trajectory("graph", 3, [trials[1]])  # one query: the first architecture only
    records = [RunRecord("random", 3, run, 2.0), RunRecord("graph", 3, graph, 1.0)]
    assert bench.summarize(records, budget=5)["against"] == ["random"]
    summary = bench.summarize(records, budget=5, against=("random", "graph"))
    assert summary["against"] == ["random", "graph"]
    difference = (first - frame["latency_ms"].min()) - run["regret"].iloc[-1]
    versus = summary["searchers"]["graph"]["against_random"]["5"]["mean_regret_difference"]
    assert versus == pytest.approx(difference)
    assert summary["searchers"]["random"]["against_graph"]["5"]["mean_regret_difference"] == pytest.approx(-difference)
    assert "against_graph" not in summary["searchers"]["graph"]


def test_kept_runs_serve_a_copy_of_the_table_in_another_folder(tmp_path: Path) -> None:
    """A kept run names its table by file name and content, so that runs kept in a repository serve every
    clone of it; runs kept before that (the absolute path, no digest) are matched by the file's name."""
    from ray_diffnas.bench.harness import TableBenchmark, _same_settings

    frame = pd.DataFrame([synthetic_row(ops) for ops in itertools.islice(itertools.product(OPERATIONS, repeat=6), 50)])
    here, there = tmp_path / "here" / "t.csv", tmp_path / "there" / "t.csv"
    for path in (here, there):
        path.parent.mkdir()
        frame.to_csv(path, index=False)
    settings = TableBenchmark.from_file(here, "acc:max").run_settings(10)
    elsewhere = TableBenchmark.from_file(there, "acc:max").run_settings(10)
    assert settings == elsewhere and settings["table"] == "t.csv" and settings["table_sha256"]
    legacy = {k: v for k, v in settings.items() if k != "table_sha256"} | {"table": str(here.resolve())}
    assert _same_settings(json.dumps(legacy), json.dumps(elsewhere), ())
    frame.loc[frame["acc"].idxmin(), "acc"] -= 1.0  # another table: same file name, rows and optimum
    frame.to_csv(there, index=False)
    changed = TableBenchmark.from_file(there, "acc:max").run_settings(10)
    assert changed["optimum"] == settings["optimum"] and changed["rows"] == settings["rows"]
    assert not _same_settings(json.dumps(settings), json.dumps(changed), ())


def test_a_run_kept_with_other_settings_is_refused_not_replaced(tmp_path: Path) -> None:
    """A rerun into the same folder with another budget must not overwrite hours of kept runs one by one."""
    from ray_diffnas.bench.harness import RUN_METADATA_KEY, RUNS_FOLDER, TableBenchmark
    from ray_diffnas.bench.table import write_table_file

    path = tmp_path / "t.csv"
    pd.DataFrame([synthetic_row(ops) for ops in itertools.islice(itertools.product(OPERATIONS, repeat=6), 50)]).to_csv(
        path, index=False
    )
    bench, output = TableBenchmark.from_file(path, "acc:max"), tmp_path / "bench"
    kept = output / RUNS_FOLDER / "random-seed0.parquet"
    kept.parent.mkdir(parents=True)
    settings = json.dumps(bench.run_settings(10), sort_keys=True)
    write_table_file(
        pd.DataFrame({"searcher": ["random"], "seed": [0]}), kept, {"settings": settings}, key=RUN_METADATA_KEY
    )
    before = kept.read_bytes()
    with pytest.raises(
        ConfigError, match=r"kept with other settings \(budget: 10 there, 5 now\); pass another --output"
    ):
        bench.run("random", budget=5, seeds=[0], output=output)  # refused before any run (no Ray here)
    assert kept.read_bytes() == before
    bench.check_kept_runs(["random"], [0], 10, output)  # the same settings: reused, nothing to refuse
    bench.check_kept_runs(["random"], [1], 5, output)  # another seed's run: nothing kept to replace


def test_kept_hybrid_runs_are_told_apart_by_their_warm_up(tmp_path: Path) -> None:
    """--hybrid-warmup is part of a hybrid run's settings (a run kept before it existed warmed up on the
    LLM's candidates); the other searchers' kept runs serve either value."""
    from ray_diffnas.bench.harness import TableBenchmark, _same_settings, _settings_not_used_by
    from ray_diffnas.searchers.hybrid_warmup import HYBRID_WARMUPS

    path = tmp_path / "t.csv"
    pd.DataFrame([synthetic_row(ops) for ops in itertools.islice(itertools.product(OPERATIONS, repeat=6), 50)]).to_csv(
        path, index=False
    )
    llm, uniform = (
        TableBenchmark.from_file(path, "acc:max", hybrid_warmup=w).run_settings(10) for w in HYBRID_WARMUPS[::-1]
    )
    legacy = json.dumps({k: v for k, v in llm.items() if k != "hybrid_warmup"})
    assert _same_settings(legacy, json.dumps(llm), _settings_not_used_by("hybrid"))
    assert not _same_settings(legacy, json.dumps(uniform), _settings_not_used_by("hybrid"))
    assert not _same_settings(json.dumps(uniform), json.dumps(llm), _settings_not_used_by("hybrid"))
    for searcher in ("graph", "gpt4", "random"):
        assert _same_settings(json.dumps(uniform), json.dumps(llm), _settings_not_used_by(searcher))
    with pytest.raises(ConfigError, match="hybrid_warmup must be one of"):
        TableBenchmark.from_file(path, "acc:max", hybrid_warmup="gpt4")


def test_table_warns_about_bad_and_duplicate_rows(caplog: pytest.LogCaptureFixture) -> None:
    from ray_diffnas.bench.table import load_table

    good = synthetic_row(("nor_conv_3x3",) * 6)
    other = synthetic_row(("none",) * 6)
    frame = pd.DataFrame([good, {**good, "acc": 1.0}, other, {**other, "arch": "|conv~0|"}, {**other, "arch": None}])
    table = load_table(frame, NB201Space())
    assert len(table) == 2 and table.skipped_rows == 2 and table.duplicate_rows == 1
    assert table.rows[good["arch"]]["acc"] == good["acc"]  # the first row of a duplicate is kept
    assert table.columns == ("acc", "latency_ms")  # the text column is not a metric
    assert "2 of 5 rows" in caplog.text and "1 rows" in caplog.text


def test_unet_space_reads_json_cells() -> None:
    from ray_diffnas.bench.table import load_table
    from ray_diffnas.spaces.registry import space_from_spec
    from ray_diffnas.spaces.unet_space import UNetSpace

    space = space_from_spec("unet:16")
    assert isinstance(space, UNetSpace) and space.image_size == 16
    archs = [space.sample(np.random.default_rng(seed)) for seed in range(5)]
    frame = pd.DataFrame({"arch": [json.dumps(a.to_dict()) for a in archs], "fid": np.arange(5.0)})
    table = load_table(frame, space)
    lookup = table.lookup()
    key, metrics = lookup.query({"arch": archs[2].to_dict()})
    assert key == archs[2].key() and metrics == table.rows[key]
    assert len(table) == len({a.key() for a in archs})


@pytest.mark.skipif(not REAL_TABLE.exists(), reason="the shared NAS-Bench-201 table is not beside the checkout")
def test_real_nb201_table_loads_with_its_published_optimum() -> None:
    from ray_diffnas.bench.harness import TableBenchmark

    bench = TableBenchmark.from_file(REAL_TABLE, "cifar10_valid_acc:max", space="nb201")
    assert len(bench.table) == 15625 and bench.table.skipped_rows == 0
    assert bench.optimum == pytest.approx(91.6067, abs=1e-3)


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


BAD_INPUTS = {
    # case: (extra args replacing the defaults, a file to write or None, words the message must hold)
    "missing file": ({"--table": "{tmp}/nope.csv"}, None, ["does not exist", "nope.csv"]),
    "unreadable parquet": (
        {"--table": "{tmp}/t.parquet"},
        ("t.parquet", "not parquet at all"),
        ["could not be read as Parquet"],
    ),
    "empty file": ({"--table": "{tmp}/t.csv"}, ("t.csv", ""), ["is empty"]),
    "header only": ({"--table": "{tmp}/t.csv"}, ("t.csv", "arch,acc\n"), ["has no rows"]),
    "no arch column": ({"--arch-column": "cell"}, "good", ["no architecture column 'cell'", "'arch'", "--arch-column"]),
    "objective missing": ({"--objective": "top1:max"}, "good", ["'top1' is not in", "'acc'"]),
    "objective not numeric": ({"--objective": "note:max"}, "good", ["'note'", "not numeric", "synthetic"]),
    "objective syntax": ({"--objective": "acc"}, "good", ["COLUMN:max or COLUMN:min"]),
    "objective mode": ({"--objective": "acc:best"}, "good", ["COLUMN:max or COLUMN:min"]),
    "constraint column missing": ({"--constraint": "energy<=3"}, "good", ["'energy<=3'", "'energy' is not in"]),
    "constraint syntax": ({"--constraint": "latency_ms=3"}, "good", ["METRIC<=VALUE"]),
    "constraint unsatisfiable": ({"--constraint": "latency_ms<=0.1"}, "good", ["meets the constraints", "ranges"]),
    "no parseable row": ({}, ("t.csv", "arch,acc\nfoo,1\nbar,2\n"), ["No row", "'foo'", "--space"]),
    "unknown space": ({"--space": "nb301"}, "good", ["Unknown space 'nb301'", "unet:IMAGE_SIZE"]),
    "unknown searcher": ({"--searcher": "random,bayes"}, "good", ["Unknown searcher", "bayes", "optuna"]),
    "against a searcher not run": ({"--against": "graph"}, "good", ["--against graph", "add it to --searcher"]),
    "asha replay without a curve": ({"--scheduler": "asha"}, "good", ["ASHA replay", "curve", "--scheduler none"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_fail_with_one_clear_message(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overrides, table, words = BAD_INPUTS[case]
    if table == "good":
        path = tmp_path / "good.csv"
        pd.DataFrame(
            [synthetic_row(ops) for ops in itertools.islice(itertools.product(OPERATIONS, repeat=6), 50)]
        ).to_csv(path, index=False)
    elif table is None:
        path = tmp_path / "unused.csv"
    else:
        path = _write(tmp_path / table[0], table[1])
    args = {
        "--table": str(path),
        "--objective": "acc:max",
        "--searcher": "random",
        "--budget": "3",
        "--seeds": "1",
        "--output": str(tmp_path / "out"),
    }
    args.update({k: v.format(tmp=tmp_path) for k, v in overrides.items()})
    code = run_cli(*itertools.chain.from_iterable(args.items()))
    err = capsys.readouterr().err
    assert code == 2, err
    message = [line for line in err.splitlines() if line.startswith("ray-diffnas: error:")]
    assert len(message) == 1, err
    for word in words:
        assert word in message[0], message[0]
    assert not (tmp_path / "out" / "summary.json").exists()


def test_a_missing_table_and_a_one_objective_searcher_on_a_front_are_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The missing file is the error (not "give --objective", which a build-table table would not need); a
    searcher that takes one objective is refused before any other searcher's runs, not after them."""
    code = run_cli("--table", str(tmp_path / "missing.parquet"), "--searcher", "random", "--seeds", "1")
    err = capsys.readouterr().err
    assert code == 2 and "missing.parquet' does not exist" in err and "--objective must be given" not in err
    path = tmp_path / "t.csv"
    pd.DataFrame([synthetic_row(ops) for ops in itertools.islice(itertools.product(OPERATIONS, repeat=6), 50)]).to_csv(
        path, index=False
    )
    output = tmp_path / "out"
    objectives = ["--objective", "acc:max", "--objective", "latency_ms:min"]
    code = run_cli("--table", str(path), *objectives, "--searcher", "graph,evolution", "--output", str(output))
    err = capsys.readouterr().err
    assert code == 2 and "--searcher evolution takes one objective; with several use one of" in err
    assert not (output / "runs").exists()  # refused before the graph searcher's runs


def test_search_command_takes_graph_default_and_constraints() -> None:
    from ray_diffnas.app.cli import build_parser
    from ray_diffnas.searchers.factory import SEARCHERS

    args = build_parser().parse_args(["search", "--constraint", "latency_ms<=5", "--constraint", "params_m<=1"])
    assert args.searcher == "graph" and set(SEARCHERS) == {
        "random",
        "gpt4",
        "hybrid",
        "graph",
        "optuna",
        "nsga2",
        "evolution",
    }
    assert args.constraints == ["latency_ms<=5", "params_m<=1"]
    assert build_parser().parse_args(["search"]).constraints is None


def test_checkpoints_and_objective_parsing() -> None:
    from ray_diffnas.bench.harness import checkpoints
    from ray_diffnas.searchers.objective import Objective

    assert checkpoints(100) == [10, 25, 50, 100] and checkpoints(120) == [10, 25, 50, 100, 120]
    assert checkpoints(3) == [3]
    objective = Objective.parse("a:b:min")
    assert (objective.metric, objective.mode) == ("a:b", "min")


@pytest.mark.parametrize(
    "flag,value,message",
    [
        ("--budget", "0", "expected a positive integer, but got 0"),
        ("--seeds", "0", "expected a positive count or a range such as 100-119, but got '0'"),
        ("--seeds", "119-100", "expected a positive count or a range such as 100-119, but got '119-100'"),
    ],
)
def test_counts_below_one_are_refused_by_the_parser(
    flag: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli("--table", str(tmp_path / "t.csv"), "--objective", "acc:max", flag, value)
    assert exit_info.value.code == 2
    assert f"argument {flag}: {message}" in capsys.readouterr().err


def test_the_search_command_runs_every_searcher_but_optunas() -> None:
    from ray_diffnas.app.options import SearchOptions
    from ray_diffnas.errors import DiffNASError
    from ray_diffnas.searchers.factory import SEARCH_COMMAND_SEARCHERS, SEARCHERS

    assert set(SEARCHERS) - set(SEARCH_COMMAND_SEARCHERS) == {"optuna", "nsga2"}
    SearchOptions(searcher="evolution").check()
    for name in ("optuna", "nsga2"):
        with pytest.raises(DiffNASError, match="bench-table"):
            SearchOptions(searcher=name).check()


def test_a_seed_with_no_feasible_query_yet_counts_as_the_worst_feasible_pick() -> None:
    """Under a constraint, a seed whose queries so far all broke it has no pick: its regret is the worst
    feasible row's, so the mean counts it (dropping it would flatter a searcher that proposes infeasible
    architectures)."""
    from ray_diffnas.bench.harness import RunRecord, TableBenchmark
    from ray_diffnas.bench.table import load_table

    space = NB201Space()
    frame = pd.DataFrame([synthetic_row(ops) for ops in itertools.islice(itertools.product(OPERATIONS, repeat=6), 300)])
    bench = TableBenchmark(load_table(frame, space), "acc", "max", constraints=["latency_ms<=2"])
    slow = [a for a, ms in zip(frame["arch"], frame["latency_ms"]) if ms > 2][:12]
    fast = [a for a, ms in zip(frame["arch"], frame["latency_ms"]) if ms <= 2][:12]

    def run_of(seed: int, cells: list[str]) -> RunRecord:
        trials = []
        for number, cell in enumerate(cells):
            config = {"arch": space.validate(cell).to_dict()}
            _, metrics = bench.table.lookup().query(config)
            trials.append(({**metrics, "trial_id": f"ab_{number:05d}"}, config, None))
        return RunRecord("random", seed, bench.trajectory("random", seed, trials), 1.0)

    infeasible_first, feasible = run_of(0, [*slow[:10], *fast[:2]]), run_of(1, fast)
    worst = max(abs(bench.optimum - a) for a, ms in zip(frame["acc"], frame["latency_ms"]) if ms <= 2)
    assert bench.no_pick_regret == pytest.approx(worst)
    assert infeasible_first.trajectory["regret"].iloc[:10].tolist() == pytest.approx([worst] * 10)
    at_10 = bench.summarize([infeasible_first, feasible], budget=12)["searchers"]["random"]["checkpoints"]["10"]
    assert at_10["seeds_with_a_feasible_query"] == 1
    assert at_10["mean_regret"] == pytest.approx((worst + feasible.trajectory["regret"].iloc[9]) / 2)
