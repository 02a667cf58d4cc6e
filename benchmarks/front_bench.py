"""Issue 20: every searcher judged by the front it finds (two objectives at once), resumable.

For each table and pair of objectives, ``ray-diffnas bench-table`` with two ``--objective``s scores
each query by the hypervolume ratio and IGD of the feasible rows found so far against the table's
true front (``ray_diffnas/bench/pareto_bench.py``):

- NAS-Bench-201 (development table): accuracy against ``latency_fpga_ms`` and against
  ``latency_gold_6226_ms``;
- the shipped digits UNet table: RFID against ``latency_ms`` and against ``params_m``.

Seeds 0-19 (where choices may be made) and 100-119 (reported only); 100 queries; the baselines
(random search, Optuna's multi-objective TPE, NSGA-II with population 20) first, then the project's
searchers as they learn to take several objectives (``--searchers``). Each finished (searcher, seed)
run is kept in ``benchmarks/results/front_bench/runs/`` and reused on a rerun, on any machine.

    python -m benchmarks.front_bench [--steps compare tables] [--searchers random,optuna,nsga2]
        [--only nb201-fpga ...] [--seed-sets 0-19 100-119] [--part 0-9] [--budget 100]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.unet_bench import NB201, RUNS, SEED_SETS, SHIPPED, run_plans, summary_table

RESULTS = Path("benchmarks/results/front_bench")
BASELINES = "random,optuna,nsga2"
UNET = SHIPPED / "unet_digits8.parquet"
PAIRS = {  # name: (table, --space or None for a table that records it, the two objectives)
    "nb201-fpga": (NB201, "nb201", ("cifar10_valid_acc:max", "latency_fpga_ms:min")),
    "nb201-cpu": (NB201, "nb201", ("cifar10_valid_acc:max", "latency_gold_6226_ms:min")),
    "unet-latency": (UNET, None, ("rfid_final:min", "latency_ms:min")),
    "unet-params": (UNET, None, ("rfid_final:min", "params_m:min")),
}


def plans(
    searchers: str, budget: int, only: list[str] | None, seed_sets: list[str] | None = None
) -> list[tuple[str, list[str]]]:
    """(name, bench-table flags) of every comparison: each pair for each seed set (default: both)."""
    found = []
    for seeds in seed_sets or SEED_SETS:
        for pair, (table, space, objectives) in PAIRS.items():
            if only and pair not in only:
                continue
            name = f"{pair}-seeds{seeds}"
            flags = ["--table", str(table), *(["--space", space] if space else [])]
            for objective in objectives:
                flags += ["--objective", objective]
            # the LLM searchers (gpt4, hybrid) with the local model, as in the single-objective comparisons
            flags += ["--searcher", searchers, "--seeds", seeds, "--budget", str(budget), "--llm", "local"]
            found.append((name, [*flags, "--output", str(RUNS / "front" / name)]))
    return found


def compare(
    searchers: str, budget: int, only: list[str] | None, seed_sets: list[str] | None, part: str | None = None
) -> None:
    run_plans(plans(searchers, budget, only, seed_sets), RESULTS, part)


def markdown(summary: dict) -> str:
    """The docs' table: median hypervolume ratio [bootstrap 95 % of the median] and mean IGD per budget."""

    def median_ratio(point: dict) -> str:
        low, high = point["median_regret_ci95"] or (None, None)  # regret = 1 - ratio
        median = point["median_best"]
        return f"{median:.3f} [{1 - high:.3f}, {1 - low:.3f}]" if low is not None else f"{median:.3f}"

    return summary_table(summary, "median HV ratio", median_ratio, "mean IGD @100", lambda p: f"{p['mean_igd']:.3f}")


def tables() -> None:
    for path in sorted(RESULTS.glob("*.json")):
        summary = json.loads(path.read_text())
        seeds = f"{summary['seeds'][0]}-{summary['seeds'][-1]}"
        reference = ", ".join(f"{m} {v:.4g}" for m, v in summary["table"]["reference_point"].items())
        print(f"\n{path.stem}: {' vs '.join(summary['objectives'])}, seeds {seeds}; true front "
              f"{len(summary['table']['front'])} architectures; reference point {reference}")  # fmt: skip
        print(markdown(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", nargs="+", default=["compare", "tables"], choices=["compare", "tables"])
    parser.add_argument("--searchers", default=BASELINES)
    parser.add_argument("--only", nargs="+", choices=sorted(PAIRS), help="these pairs only")
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--seed-sets", nargs="+", choices=SEED_SETS, help="these seed sets only")
    parser.add_argument("--part", help="compare: only these seeds (e.g. 0-9), kept for a later full compare")
    args = parser.parse_args()
    for step in args.steps:
        if step == "compare":
            compare(args.searchers, args.budget, args.only, args.seed_sets, args.part)
        else:
            tables()


if __name__ == "__main__":
    main()
