"""The noise floor of a UNet table: how far a second seed and an early iteration agree with the table.

- **Seed to seed**: Spearman's rho of ``rfid_final`` between the table and the same architectures
  trained again with another seed (``build-table --sample N --seed 1``).
- **Early vs final**: Spearman's rho between RFID after iteration k (1, 2, 4) and after the last
  one, over every row of the table: how early ASHA may judge a trial.

Each rho comes with a percentile bootstrap 95 % interval over architectures (pairs resampled).

    python -m benchmarks.noise_floor --table runs/table-digits8/table.parquet \\
        --other runs/table-digits8-seed1/table.parquet [--output benchmarks/results/noise_floor_digits8.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ray_diffnas.bench.table import read_table_metadata


def spearman(x: np.ndarray, y: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Spearman's rho with its paired bootstrap 95 % interval."""
    rho = float(stats.spearmanr(x, y).statistic)

    def statistic(a: np.ndarray, b: np.ndarray) -> float:
        return float(stats.spearmanr(a, b).statistic)

    result = stats.bootstrap(
        (x, y), statistic, paired=True, vectorized=False, n_resamples=2000, method="percentile",
        rng=np.random.default_rng(seed),
    )  # fmt: skip
    return {"rho": rho, "ci95": [float(result.confidence_interval.low), float(result.confidence_interval.high)]}


def noise_floor(table: pd.DataFrame, other: pd.DataFrame | None, iterations: int) -> dict[str, Any]:
    complete = table[table["rfid_final"].notna()]
    out: dict[str, Any] = {"rows": len(table), "complete_rows": len(complete)}
    final = complete["rfid_final"].to_numpy()
    out["early_vs_final"] = {
        str(k): spearman(complete[f"rfid@{k}"].to_numpy(), final) for k in (1, 2, 4) if k < iterations
    }
    out["final_spread"] = {"min": float(final.min()), "median": float(np.median(final)), "max": float(final.max())}
    if other is not None:
        pairs = complete.merge(other[other["rfid_final"].notna()], on="arch_key", suffixes=("", "_other"))
        out["seed_to_seed"] = {
            "architectures": len(pairs),
            "final": spearman(pairs["rfid_final"].to_numpy(), pairs["rfid_final_other"].to_numpy()),
            "best": spearman(pairs["rfid_best"].to_numpy(), pairs["rfid_best_other"].to_numpy()),
            "median_abs_difference": float(np.median(np.abs(pairs["rfid_final"] - pairs["rfid_final_other"]))),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True)
    parser.add_argument("--other", default=None, help="the same architectures trained with another seed")
    parser.add_argument("--output", default="benchmarks/results/noise_floor_digits8.json")
    args = parser.parse_args()
    metadata = read_table_metadata(args.table) or {}
    iterations = int(metadata.get("training", {}).get("max_iterations", 8))
    other = pd.read_parquet(args.other) if args.other else None
    result = {
        "table": args.table,
        "other": args.other,
        "seeds": [metadata.get("seed"), (read_table_metadata(args.other) or {}).get("seed") if args.other else None],
        **noise_floor(pd.read_parquet(args.table), other, iterations),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
