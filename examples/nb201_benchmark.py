"""Judge searchers on NAS-Bench-201 from Python: the harness behind ``ray-diffnas bench-table``.

Each seed of each searcher is a Ray Tune run whose trials look their cell up in the table
(CIFAR-10 validation accuracy of all 15,625 NAS-Bench-201 cells), so a run of 100 queries takes
seconds instead of GPU-days. Run it from the repository root:

    pip install -e ".[bench]"
    python examples/nb201_benchmark.py --budget 100 --seeds 3 --searchers random,optuna

The table comes from ``--table``, else ``$RAY_DIFFNAS_NB201_TABLE``, else
``../shared/data/nb201_cifar10_valid.csv`` beside the repository (columns ``arch``,
``cifar10_valid_acc``, ``latency_fpga_ms``, ...). Results go to ``--output``:
``trajectories.parquet``, ``summary.json`` and ``bench.png``. The same from the shell:

    ray-diffnas bench-table --table PATH.csv --space nb201 --objective cifar10_valid_acc:max \\
        --searcher random,optuna --budget 100 --seeds 3 --output runs/nb201-bench
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ray_diffnas.bench.harness import TableBenchmark

DEFAULT_TABLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nb201_cifar10_valid.csv"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--table",
        default=os.environ.get("RAY_DIFFNAS_NB201_TABLE", str(DEFAULT_TABLE)),
        help="NAS-Bench-201 table (CSV or Parquet) with an 'arch' column",
    )
    parser.add_argument("--objective", default="cifar10_valid_acc:max")
    parser.add_argument("--constraint", action="append", default=[], help="e.g. 'latency_fpga_ms<=3'")
    parser.add_argument("--budget", type=int, default=100, help="queries per run")
    parser.add_argument("--seeds", type=int, default=3, help="runs per searcher")
    parser.add_argument("--searchers", default="random,optuna", help="comma-separated: graph, random, optuna, gpt4")
    parser.add_argument("--output", default="runs/nb201-bench")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    bench = TableBenchmark.from_file(args.table, args.objective, space="nb201", constraints=args.constraint)
    print(f"{len(bench.table)} cells; the best {bench.objective} is {bench.optimum:g}: {bench.optimum_key}")
    result = bench.run(args.searchers, budget=args.budget, seeds=args.seeds, output=args.output)
    print(result.table_text())
    for name, stats in result.summary["searchers"].items():
        best = stats["checkpoints"][str(args.budget)]["median_best"]  # None: no feasible query
        print(
            f"{name}: median best {'-' if best is None else f'{best:.3f}'} after {args.budget} queries; "
            f"optimum reached after {stats['queries_to_optimum']} queries (per seed)"
        )
    print("Files:", ", ".join(str(p) for p in result.paths.values()))


if __name__ == "__main__":
    main()
