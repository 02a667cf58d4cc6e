"""The README main command end to end, with ASHA and without: wall time, best RFID, training steps.

Runs ``ray-diffnas search`` once per scheduler with the same seed and ``num_samples`` (as a user
would, in a subprocess), then reads each run's ``summary.json`` and ``results.parquet``. The
compute a run spent is the sum over trials of the optimizer steps they trained (each trial's last
reported ``step``); ASHA's saving is ``1 - steps(asha) / steps(none)``.

    python -m benchmarks.end_to_end [--work-dir runs/end_to_end] [--schedulers asha none]
        [--output benchmarks/results/end_to_end.json] [-- extra ray-diffnas search flags]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.report import report


def run_search(scheduler: str, folder: Path, extra: list[str]) -> dict[str, Any]:
    """One ``ray-diffnas search`` run; returns its wall time and what it wrote."""
    command = [sys.executable, "-m", "ray_diffnas.cli", "search", "--scheduler", scheduler,
               "--output", str(folder), *extra]
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    wall_s = time.perf_counter() - start
    summary = json.loads((folder / "summary.json").read_text())
    trials = pd.read_parquet(folder / "results.parquet")
    return {
        "scheduler": scheduler,
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
    """Adds each run's steps and best RFID relative to the run without a scheduler."""
    baseline = next((row for row in rows if row["scheduler"] == "none"), None)
    for row in rows:
        if baseline is None:
            row["steps_saved"] = row["rfid_vs_none"] = None
            continue
        row["steps_saved"] = 1 - row["training_steps"] / baseline["training_steps"]
        row["rfid_vs_none"] = row["best_rfid"] / baseline["best_rfid"] - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", default="runs/end_to_end", help="one search folder per scheduler inside")
    parser.add_argument("--schedulers", nargs="+", default=["asha", "none"])
    parser.add_argument("--output", default="benchmarks/results/end_to_end.json")
    parser.add_argument("extra", nargs="*", help="more `ray-diffnas search` flags, after `--`")
    args = parser.parse_args()
    work = Path(args.work_dir)
    for scheduler in args.schedulers:
        if (work / scheduler).exists():
            parser.error(f"{work / scheduler} exists; pass a new --work-dir (earlier runs are kept, not overwritten).")
    rows = [run_search(scheduler, work / scheduler, args.extra) for scheduler in args.schedulers]
    compare(rows)
    pct = (lambda v: "-" if v is None else f"{100 * v:+.0f} %")
    report(rows, [("scheduler", "scheduler", str), ("wall_s", "wall s", lambda v: f"{v:.0f}"),
                  ("trials", "trials", str), ("training_steps", "steps", str),
                  ("steps_saved", "steps saved", pct), ("best_rfid", "best RFID", lambda v: f"{v:.2f}"),
                  ("rfid_vs_none", "RFID vs none", pct), ("best_arch", "best architecture", str)], args.output)


if __name__ == "__main__":
    main()
