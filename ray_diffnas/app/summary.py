"""The last step of a search: the results table, the plots and the summary of the best trial."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from ray.tune import ResultGrid

from ray_diffnas.app.options import SearchOptions
from ray_diffnas.app.plots import plot_search, save_image_grid
from ray_diffnas.app.results import best_trial, leaderboard, meets_no_constraint, ranked, results_frame, write_results
from ray_diffnas.diffusion.trainer import DiffusionTrainer
from ray_diffnas.metrics.rfid import RFID
from ray_diffnas.searchers.memory import RANK_COLUMN
from ray_diffnas.searchers.pareto import ParetoObjective
from ray_diffnas.trainable.reports import METRIC
from ray_diffnas.trainable.trial import EVAL_SEED, load_checkpoint

logger = logging.getLogger(__name__)


def summarize(grid: ResultGrid, rfid: RFID, output: Path, options: SearchOptions) -> dict[str, Any]:
    """Writes ``results.parquet``, ``search.png`` and ``best_samples.png``; returns the summary."""
    target = options.target()
    frame = ranked(results_frame(grid), target)
    results_path = write_results(frame, output)
    search_plot = plot_search(frame, output / "search.png")
    scored = frame.dropna(subset=["best_rfid"])
    summary: dict[str, Any] = {
        "trials": len(frame),
        "trials_with_rfid": len(scored),
        "status_counts": frame["status"].value_counts().to_dict(),
        "rfid_features": rfid.features,
        "results": str(results_path),
        "search_plot": str(search_plot),
        "samples_plot": None,
        "best_trial_id": None,
        "best_rfid": math.nan,
        "untrained_rfid": math.nan,
        "leaderboard": leaderboard(frame),
    }
    if isinstance(target, ParetoObjective):  # the trade-off: every trial on the front, by best RFID
        front = frame[frame[RANK_COLUMN] == 0]
        summary["objectives"] = target.metrics
        summary["front"] = [
            {"trial_id": row["trial_id"], "arch_key": row["arch_key"], METRIC: row["best_rfid"]}
            | {m: row[m] for m in target.metrics[1:]}
            for row in front.to_dict("records")
        ]
    best = best_trial(frame)
    if best is None:
        logger.error("No trial reported an RFID; see the 'error' column of %s.", results_path)
        return summary
    if meets_no_constraint(frame):
        logger.warning("No trial met %s; the summary names the best trial regardless.", ", ".join(options.constraints))
    summary.update(
        best_trial_id=best["trial_id"],
        best_rfid=float(best["best_rfid"]),
        best_arch=best["arch_key"],
        best_checkpoint=best["checkpoint"],
    )
    if best["checkpoint"]:
        trainer = load_checkpoint(best["checkpoint"])
        summary["untrained_rfid"] = untrained_rfid(trainer, rfid)
        samples = trainer.sample(64, steps=max(options.sampler_steps, 50), seed=EVAL_SEED)
        title = f"best: {best['arch_key']}  RFID {best['best_rfid']:.2f}"
        summary["samples_plot"] = str(save_image_grid(samples, output / "best_samples.png", title))
    return summary


def untrained_rfid(trainer: DiffusionTrainer, rfid: RFID) -> float:
    """RFID of the same architecture, freshly initialised, under the same evaluation settings."""
    fresh = DiffusionTrainer(trainer.arch, trainer.data, trainer.settings, trainer.device)
    s = trainer.settings
    return rfid(fresh.sample(s.rfid_samples, s.sampler_steps, seed=EVAL_SEED))
