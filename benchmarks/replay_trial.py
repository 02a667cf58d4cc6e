"""Replays a finished Tune trial of ``train_diffusion`` in this process and compares its RFID curve.

    python -m benchmarks.replay_trial RUN/tune/train_diffusion_<id>_... [--iterations N]

It reads the trial's ``params.json`` (its config) and ``result.json`` (what it reported), trains the
same config again for the iterations the trial reported (or ``--iterations``), and prints both RFID
curves. A trial's run depends only on its config and seed, so the two agree to the last digit when
the code trains as it did: the check that a change of the code left the training unchanged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from ray_diffnas.trainable.trial import run_training


class _Enough(BaseException):
    """Raised by the reporter once the wanted iterations are in (not an Exception: the trainable's
    fault handler must let it through)."""


def replay(trial_dir: Path, iterations: int | None = None) -> tuple[list[float], list[float]]:
    """The trial's reported RFIDs and the replayed ones, iteration by iteration."""
    config = json.loads((trial_dir / "params.json").read_text())
    reported = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines() if line.strip()]
    saved = {int(r["training_iteration"]): float(r["rfid"]) for r in reported if "rfid" in r}
    wanted = iterations or max(saved)
    replayed: list[float] = []

    def report(metrics: dict[str, Any], checkpoint: Any = None) -> None:
        replayed.append(float(metrics["rfid"]))
        if len(replayed) >= wanted:
            raise _Enough

    try:
        run_training(config, None, report)
    except _Enough:
        pass
    return [saved[i] for i in sorted(saved) if i <= wanted], replayed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trial_dir", type=Path)
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads: the trial's CPUs (Ray runs a 1-CPU trial with one thread, and the "
        "order of a float sum depends on the thread count)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    saved, replayed = replay(args.trial_dir, args.iterations)
    print(
        json.dumps(
            {
                "trial": args.trial_dir.name,
                "reported": saved,
                "replayed": replayed,
                "identical": saved == replayed[: len(saved)],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
