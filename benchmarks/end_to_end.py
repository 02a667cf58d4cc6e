"""The README main command end to end, with ASHA and without: wall time, best RFID, training steps.

Runs ``ray-diffnas search`` once per scheduler and seed with the same ``num_samples`` (as a user
would, in a subprocess), then reads each run's ``summary.json`` and ``results.parquet``. The
compute a run spent is the sum over trials of the optimizer steps they trained (each trial's last
reported ``step``); ASHA's saving is ``1 - steps(asha) / steps(none)``.

One seed is one sample of a noisy comparison: the searcher proposes from the results it has seen,
and ASHA changes which results arrive when, so the two runs of a seed need not try the same
architectures. With several ``--seeds`` a last row per scheduler pools them: steps summed over the
seeds, and the median over seeds of the best RFID relative to the same seed's run without a scheduler.

    python -m benchmarks.end_to_end [--work-dir runs/end_to_end] [--schedulers asha none]
        [--seeds 0] [--output benchmarks/results/end_to_end.json] [-- extra ray-diffnas search flags]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.report import report


def run_search(scheduler: str, seed: int, folder: Path, extra: list[str]) -> dict[str, Any]:
    """One ``ray-diffnas search`` run; returns its wall time and what it wrote."""
    command = [
        sys.executable,
        "-m",
        "ray_diffnas",
        "search",
        "--scheduler",
        scheduler,
        "--seed",
        str(seed),
        "--output",
        str(folder),
        *extra,
    ]
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    wall_s = time.perf_counter() - start
    summary = json.loads((folder / "summary.json").read_text())
    trials = pd.read_parquet(folder / "results.parquet")
    return {
        "scheduler": scheduler,
        "seed": seed,
        "wall_s": wall_s,
        "trials": len(trials),
        "best_rfid": summary["best_rfid"],
        "best_arch": summary["best_arch"],
        "untrained_rfid": summary.get("untrained_rfid"),
        "training_steps": int(trials["step"].fillna(0).sum()),
        "status_counts": trials["status"].value_counts().to_dict(),
        "output": str(folder),
    }


def compare(rows: list[dict[str, Any]]) -> None:
    """Adds each run's steps and best RFID relative to the same seed's run without a scheduler."""
    baselines = {row["seed"]: row for row in rows if row["scheduler"] == "none"}
    for row in rows:
        baseline = baselines.get(row["seed"])
        if baseline is None:
            row["steps_saved"] = row["rfid_vs_none"] = None
            continue
        row["steps_saved"] = 1 - row["training_steps"] / baseline["training_steps"]
        row["rfid_vs_none"] = row["best_rfid"] / baseline["best_rfid"] - 1


def pooled(rows: list[dict[str, Any]], schedulers: list[str]) -> list[dict[str, Any]]:
    """One row per scheduler over all seeds: summed steps and wall time, median relative RFID."""
    by_scheduler = {s: [row for row in rows if row["scheduler"] == s] for s in schedulers}
    none_steps = sum(row["training_steps"] for row in by_scheduler.get("none", []))
    out = []
    for scheduler, runs in by_scheduler.items():
        relative = [row["rfid_vs_none"] for row in runs if row["rfid_vs_none"] is not None]
        steps = sum(row["training_steps"] for row in runs)
        out.append(
            {
                "scheduler": scheduler,
                "seed": "all",
                "wall_s": sum(row["wall_s"] for row in runs),
                "trials": sum(row["trials"] for row in runs),
                "training_steps": steps,
                "steps_saved": 1 - steps / none_steps if none_steps else None,
                "best_rfid": statistics.median(row["best_rfid"] for row in runs),
                "rfid_vs_none": statistics.median(relative) if relative else None,
                "best_arch": "(median best RFID)",
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--work-dir",
        default="runs/end_to_end",
        help="one search folder per seed and scheduler inside (seedS/SCHEDULER)",
    )
    parser.add_argument("--schedulers", nargs="+", default=["asha", "none"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="one run per scheduler for each")
    parser.add_argument("--output", default="benchmarks/results/end_to_end.json")
    parser.add_argument("extra", nargs="*", help="more `ray-diffnas search` flags, after `--`")
    args = parser.parse_args()
    if any(flag.split("=")[0] in ("--seed", "--scheduler", "--output") for flag in args.extra):
        parser.error("--seed, --scheduler and --output are set per run; use --seeds and --schedulers instead.")
    work = Path(args.work_dir)
    folders = {(seed, s): work / f"seed{seed}" / s for seed in args.seeds for s in args.schedulers}
    for folder in folders.values():
        if folder.exists():
            parser.error(f"{folder} exists; pass a new --work-dir (earlier runs are kept, not overwritten).")
    rows = [run_search(s, seed, folder, args.extra) for (seed, s), folder in folders.items()]
    compare(rows)
    if len(args.seeds) > 1:
        rows += pooled(rows, args.schedulers)
    pct = lambda v: "-" if v is None else f"{100 * v:+.0f} %"
    report(
        rows,
        [
            ("scheduler", "scheduler", str),
            ("seed", "seed", str),
            ("wall_s", "wall s", lambda v: f"{v:.0f}"),
            ("trials", "trials", str),
            ("training_steps", "steps", str),
            ("steps_saved", "steps saved", pct),
            ("best_rfid", "best RFID", lambda v: f"{v:.2f}"),
            ("rfid_vs_none", "RFID vs none", pct),
            ("best_arch", "best architecture", str),
        ],
        args.output,
    )


if __name__ == "__main__":
    main()
