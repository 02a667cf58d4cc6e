"""A whole architecture search: Tune run, results table, plots and a summary."""

from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import BasicVariantGenerator, Searcher

from ray_diffnas.constraints import parse_constraints
from ray_diffnas.data import load_dataset
from ray_diffnas.local_llm import LocalLLMServer
from ray_diffnas.errors import ConfigError, DiffNASError
from ray_diffnas.plots import plot_search, save_image_grid
from ray_diffnas.results import leaderboard, results_frame, write_results
from ray_diffnas.rfid import RFID
from ray_diffnas.settings import TrainingSettings
from ray_diffnas.searcher_base import MEMORY_FILE
from ray_diffnas.space import UNetSpace
from ray_diffnas.trainable import EVAL_SEED, load_checkpoint, train_diffusion
from ray_diffnas.training import DiffusionTrainer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchOptions:
    """Everything ``ray-diffnas search`` takes (see ``ray-diffnas search --help``)."""

    dataset: str = "mnist"
    data_root: str | None = None
    image_size: int | None = 16
    searcher: str = "graph"
    num_samples: int = 8
    max_iterations: int = 4
    steps_per_iteration: int = 100
    batch_size: int = 32
    rfid_samples: int = 500
    sampler_steps: int = 10
    rfid_features: str = "auto"
    scheduler: str = "asha"
    output: Path = Path("runs/search")
    seed: int = 0
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None
    llm: str = "openai"  # gpt4 searcher: openai (OPENAI_API_KEY / OPENAI_BASE_URL) or local
    model: str | None = None  # gpt4 searcher: the model name (default gpt-4o; the local model for --llm local)
    constraints: tuple[str, ...] = ()  # e.g. ("latency_ms<=5",): the graph searcher asks for them

    def training_settings(self) -> dict[str, Any]:
        return {
            "max_iterations": self.max_iterations, "steps_per_iteration": self.steps_per_iteration,
            "batch_size": self.batch_size, "rfid_samples": self.rfid_samples,
            "sampler_steps": self.sampler_steps, "rfid_features": self.rfid_features, "seed": self.seed,
        }


def make_searcher(options: SearchOptions, local_llm: LocalLLMServer | None = None) -> Searcher | BasicVariantGenerator:
    if options.searcher == "random":
        return BasicVariantGenerator(random_state=options.seed)
    if options.searcher == "gpt4":
        from ray_diffnas.gpt4_searcher import DEFAULT_MODEL, GPT4Searcher

        if local_llm is not None:
            return GPT4Searcher(model=options.model or local_llm.model, base_url=local_llm.url, seed=options.seed)
        return GPT4Searcher(model=options.model or DEFAULT_MODEL, seed=options.seed)  # key checked up front
    if options.searcher == "graph":
        from ray_diffnas.graph_searcher import GraphDiffusionSearcher

        # Few trials: start learning after a few outcomes instead of the default warm-up.
        warmup = max(2, min(10, options.num_samples // 2))
        return GraphDiffusionSearcher(constraints=list(options.constraints), warmup=warmup, seed=options.seed)
    raise ConfigError(f"Unknown searcher {options.searcher!r}; choose one of ['graph', 'random', 'gpt4'].")


def check_llm_reachable(options: SearchOptions) -> None:
    """``--searcher gpt4 --llm openai`` needs a key or an endpoint: say so before any work."""
    if options.searcher == "gpt4" and options.llm == "openai" and not (
            os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL")):
        raise DiffNASError(
            "--searcher gpt4 needs an LLM: set OPENAI_API_KEY (and OPENAI_BASE_URL for another "
            "OpenAI-compatible server), or run one on this machine with --llm local "
            "(pip install 'ray-diffnas[local-llm]')."
        )


def local_llm_server(options: SearchOptions) -> contextlib.AbstractContextManager:
    """The local LLM server for ``--searcher gpt4 --llm local``, started here and stopped at the end."""
    if options.searcher == "gpt4" and options.llm == "local":
        return LocalLLMServer()
    if options.llm not in ("openai", "local"):
        raise ConfigError(f"Unknown llm {options.llm!r}; choose 'openai' or 'local'.")
    return contextlib.nullcontext()


def make_scheduler(name: str, max_iterations: int) -> TrialScheduler:
    if name == "asha":
        return ASHAScheduler(time_attr="training_iteration", max_t=max_iterations, grace_period=1, reduction_factor=2)
    if name == "none":
        return FIFOScheduler()
    raise ConfigError(f"Unknown scheduler {name!r}; choose 'asha' or 'none'.")


def run_search(options: SearchOptions) -> dict[str, Any]:
    """Runs the search and writes ``results.parquet``, ``search.png`` and ``best_samples.png``.

    Returns a JSON-able summary (best trial, its RFID, the untrained RFID, file paths).
    """
    # Check every setting before the expensive work (loading data, training RFID's classifier).
    TrainingSettings.from_config({"dataset": options.dataset, "image_size": options.image_size,
                                  **options.training_settings()})
    if options.image_size is not None:
        UNetSpace(image_size=options.image_size)  # a size no UNet fits fails here, with the fix
    check_llm_reachable(options)
    if parse_constraints(list(options.constraints)) and options.searcher != "graph":
        logger.warning("--constraint guides only the graph searcher; %s ignores it.", options.searcher)
    output = options.output.expanduser().resolve()
    output.mkdir(parents=True, exist_ok=True)
    # Load the data and build RFID's reference statistics here, once: a bad path fails before
    # any trial starts, and trials find the feature extractor cached.
    data = load_dataset(options.dataset, options.data_root, options.image_size)
    rfid = RFID(data, options.rfid_features)
    space = UNetSpace(image_size=data.image_size)
    param_space = space.param_space(dataset=options.dataset, data_root=_absolute(options.data_root),
                                    **options.training_settings())

    with local_llm_server(options) as local_llm:
        searcher = make_searcher(options, local_llm)
        if not ray.is_initialized():
            ray.init(address=options.address, include_dashboard=False, configure_logging=False)
        tuner = tune.Tuner(
            tune.with_resources(train_diffusion, {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial}),
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric="rfid", mode="min", num_samples=options.num_samples, search_alg=searcher,
                scheduler=make_scheduler(options.scheduler, options.max_iterations),
            ),
            run_config=tune.RunConfig(
                name="tune", storage_path=str(output),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="rfid",
                                                        checkpoint_score_order="min"),
            ),
        )
        frame = results_frame(tuner.fit())
    summary = summarize(frame, rfid, output, options)
    memory_file = output / "tune" / MEMORY_FILE
    if memory_file.exists():
        summary["search_memory"] = str(memory_file)
    return summary


def summarize(frame: pd.DataFrame, rfid: RFID, output: Path, options: SearchOptions) -> dict[str, Any]:
    results_path = write_results(frame, output)
    search_plot = plot_search(frame, output / "search.png")
    scored = frame.dropna(subset=["best_rfid"])
    summary: dict[str, Any] = {
        "trials": len(frame), "trials_with_rfid": len(scored),
        "status_counts": frame["status"].value_counts().to_dict(),
        "rfid_features": rfid.features, "results": str(results_path), "search_plot": str(search_plot),
        "samples_plot": None, "best_trial_id": None, "best_rfid": math.nan, "untrained_rfid": math.nan,
        "leaderboard": leaderboard(frame),
    }
    if scored.empty:
        logger.error("No trial reported an RFID; see the 'error' column of %s.", results_path)
        return summary
    best = scored.iloc[0]
    summary.update(best_trial_id=best["trial_id"], best_rfid=float(best["best_rfid"]), best_arch=best["arch_key"],
                   best_checkpoint=best["checkpoint"])
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


def _absolute(path: str | None) -> str | None:
    # Trials run in other working directories (and on other nodes): pass absolute paths.
    return None if path is None else str(Path(path).expanduser().resolve())
