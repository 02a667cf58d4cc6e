"""A whole architecture search: Tune run, results table, plots and a summary."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import BasicVariantGenerator, Searcher

from ray_diffnas.atomic import atomic_write
from ray_diffnas.constraints import parse_constraints
from ray_diffnas.data import load_dataset
from ray_diffnas.local_llm import LocalLLMServer
from ray_diffnas.errors import ConfigError, DiffNASError
from ray_diffnas.plots import plot_search, save_image_grid
from ray_diffnas.results import leaderboard, results_frame, write_results
from ray_diffnas.rfid import RFID
from ray_diffnas.settings import TrainingSettings
from ray_diffnas.storage import atomic_local_filesystem, remove_partial_writes
from ray_diffnas.searcher_base import MEMORY_FILE
from ray_diffnas.space import UNetSpace
from ray_diffnas.trainable import EVAL_SEED, load_checkpoint, train_diffusion
from ray_diffnas.tune_state import has_saved_state
from ray_diffnas.training import DiffusionTrainer

logger = logging.getLogger(__name__)

TUNE_FOLDER = "tune"  # Tune's experiment folder inside --output
OPTIONS_FILE = "search_options.json"  # the options a search started with, for --resume
DEFAULT_REDUCTION_FACTOR = 2.0  # ASHA's eta unless --reduction-factor says otherwise


@dataclass(frozen=True)
class SearchOptions:
    """Everything ``ray-diffnas search`` takes (see ``ray-diffnas search --help``)."""

    dataset: str = "mnist"
    data_root: str | None = None
    image_size: int | None = 16
    searcher: str = "graph"
    num_samples: int = 8
    # 8 iterations give ASHA three rungs (1, 2, 4) below a full trial; with 4 it had two, which
    # caps its saving at 50 % (benchmarks.end_to_end: 61 % fewer steps over 3 seeds with 8).
    max_iterations: int = 8
    steps_per_iteration: int = 100
    batch_size: int = 32
    rfid_samples: int = 500
    sampler_steps: int = 10
    rfid_features: str = "auto"
    scheduler: str = "asha"
    reduction_factor: float = DEFAULT_REDUCTION_FACTOR  # ASHA's eta: each rung promotes the best 1/eta of the trials
    output: Path = Path("runs/search")
    seed: int = 0
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None
    llm: str = "openai"  # gpt4 searcher: openai (OPENAI_API_KEY / OPENAI_BASE_URL) or local
    model: str | None = None  # gpt4 searcher: the model name (default gpt-4o; the local model for --llm local)
    constraints: tuple[str, ...] = ()  # e.g. ("latency_ms<=5",): the graph searcher asks for them
    torch_compile: bool = False  # trials train through torch.compile

    def training_settings(self) -> dict[str, Any]:
        return {
            "max_iterations": self.max_iterations, "steps_per_iteration": self.steps_per_iteration,
            "batch_size": self.batch_size, "rfid_samples": self.rfid_samples,
            "sampler_steps": self.sampler_steps, "rfid_features": self.rfid_features, "seed": self.seed,
            "torch_compile": self.torch_compile,
        }


def make_searcher(options: SearchOptions, local_llm: LocalLLMServer | None = None) -> Searcher | BasicVariantGenerator:
    if options.searcher == "random":
        return BasicVariantGenerator(random_state=options.seed)
    if options.searcher == "gpt4":
        from ray_diffnas.gpt4_searcher import DEFAULT_MODEL, GPT4Searcher

        # max_trials = num_samples: a resume whose Tune state lags its searcher's asks for no trial too many.
        if local_llm is not None:  # the endpoint comes from $OPENAI_BASE_URL: a resumed run's server has another port
            return GPT4Searcher(model=options.model or local_llm.model, seed=options.seed, max_trials=options.num_samples)
        return GPT4Searcher(model=options.model or DEFAULT_MODEL, seed=options.seed,  # key checked up front
                            max_trials=options.num_samples)
    if options.searcher == "graph":
        from ray_diffnas.graph_searcher import GraphDiffusionSearcher

        # Few trials: start learning after a few outcomes instead of the default warm-up.
        warmup = max(2, min(10, options.num_samples // 2))
        return GraphDiffusionSearcher(constraints=list(options.constraints), warmup=warmup, seed=options.seed,
                                      max_trials=options.num_samples)
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


@contextlib.contextmanager
def local_llm_server(options: SearchOptions) -> Iterator[LocalLLMServer | None]:
    """The local LLM server for ``--searcher gpt4 --llm local``, started here and stopped at the
    end; ``$OPENAI_BASE_URL`` points at it meanwhile."""
    if options.llm not in ("openai", "local"):
        raise ConfigError(f"Unknown llm {options.llm!r}; choose 'openai' or 'local'.")
    if options.searcher != "gpt4" or options.llm != "local":
        yield None
        return
    previous = os.environ.get("OPENAI_BASE_URL")
    with LocalLLMServer() as server:
        os.environ["OPENAI_BASE_URL"] = server.url
        try:
            yield server
        finally:
            if previous is None:
                os.environ.pop("OPENAI_BASE_URL", None)
            else:
                os.environ["OPENAI_BASE_URL"] = previous


def make_scheduler(name: str, max_iterations: int,
                   reduction_factor: float = DEFAULT_REDUCTION_FACTOR) -> TrialScheduler:
    if name == "asha":
        if not reduction_factor > 1:
            raise ConfigError(f"ASHA's reduction factor must be > 1 (it keeps 1/factor of the trials at each rung), "
                              f"but got {reduction_factor}.")
        return ASHAScheduler(time_attr="training_iteration", max_t=max_iterations, grace_period=1,
                             reduction_factor=reduction_factor)
    if name == "none":
        return FIFOScheduler()
    raise ConfigError(f"Unknown scheduler {name!r}; choose 'asha' or 'none'.")


def warn_ignored_options(options: SearchOptions) -> None:
    """Logs each option the chosen searcher or scheduler does not use (a likely slip, not an error)."""
    if parse_constraints(list(options.constraints)) and options.searcher != "graph":
        logger.warning("--constraint guides only the graph searcher; %s ignores it.", options.searcher)
    if options.scheduler != "asha" and options.reduction_factor != DEFAULT_REDUCTION_FACTOR:
        logger.warning("--reduction-factor is ASHA's; --scheduler %s ignores it.", options.scheduler)


def run_search(options: SearchOptions, resume: bool = False) -> dict[str, Any]:
    """Runs the search and writes ``results.parquet``, ``search.png`` and ``best_samples.png``.

    With ``resume``, finishes the search in ``options.output`` that was stopped or killed: Tune
    restores its trials (unfinished ones from their checkpoints) and the searcher with its memory.
    A search stopped before Tune's first save has nothing to restore; it starts again from the beginning.
    Returns a JSON-able summary (best trial, its RFID, the untrained RFID, file paths).
    """
    # Check every setting before the expensive work (loading data, training RFID's classifier).
    TrainingSettings.from_config({"dataset": options.dataset, "image_size": options.image_size,
                                  **options.training_settings()})
    if options.image_size is not None:
        UNetSpace(image_size=options.image_size)  # a size no UNet fits fails here, with the fix
    scheduler = make_scheduler(options.scheduler, options.max_iterations, options.reduction_factor)
    check_llm_reachable(options)
    warn_ignored_options(options)
    output = options.output.expanduser().resolve()
    keep_options = resume  # a resumed search keeps the options file it started with
    tune_folder = output / TUNE_FOLDER
    if resume and not (tune.Tuner.can_restore(str(tune_folder)) and has_saved_state(tune_folder)):
        # Killed before Tune's first save: no trial result was kept, so starting over loses nothing.
        logger.warning("%s holds no Tune experiment state yet (the search was stopped before its first save); "
                       "starting it again from the beginning with its saved options.", output)
        resume = False
    elif not resume and (output / TUNE_FOLDER).exists():
        raise DiffNASError(f"{str(output)!r} already holds a search; finish it with 'ray-diffnas search --resume "
                           f"{output}', or pass another --output.")
    output.mkdir(parents=True, exist_ok=True)
    # Load the data and build RFID's reference statistics here, once: a bad path fails before
    # any trial starts, and trials find the feature extractor cached.
    data = load_dataset(options.dataset, options.data_root, options.image_size)
    rfid = RFID(data, options.rfid_features)
    space = UNetSpace(image_size=data.image_size)
    param_space = space.param_space(dataset=options.dataset, data_root=_absolute(options.data_root),
                                    **options.training_settings())

    trainable = tune.with_resources(train_diffusion, {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial})
    if not keep_options:
        save_options(options, output)
    with local_llm_server(options) as local_llm:
        if not ray.is_initialized():
            ray.init(address=options.address, include_dashboard=False, configure_logging=False)
        if resume:
            removed = remove_partial_writes(output / TUNE_FOLDER)
            if removed:
                logger.info("Removed %d temporary file(s) of writes the stop cut off.", removed)
            # Errored trials stay errored (they failed for a reason); killed ones resume.
            tuner = tune.Tuner.restore(str(output / TUNE_FOLDER), trainable=trainable, resume_errored=False,
                                       storage_filesystem=atomic_local_filesystem())
        else:
            tuner = _new_tuner(options, trainable, param_space, make_searcher(options, local_llm), scheduler, output)
        frame = results_frame(tuner.fit())
    summary = summarize(frame, rfid, output, options)
    memory_file = output / TUNE_FOLDER / MEMORY_FILE
    if memory_file.exists():
        summary["search_memory"] = str(memory_file)
    return summary


def _new_tuner(options: SearchOptions, trainable: Any, param_space: dict[str, Any], searcher: Any,
               scheduler: TrialScheduler, output: Path) -> tune.Tuner:
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric="rfid", mode="min", num_samples=options.num_samples, search_alg=searcher,
            scheduler=scheduler,
        ),
        run_config=tune.RunConfig(
            # A kill while Tune copies its state to --output must leave no file half-written.
            name=TUNE_FOLDER, storage_path=str(output), storage_filesystem=atomic_local_filesystem(),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="rfid",
                                                    checkpoint_score_order="min"),
        ),
    )


def save_options(options: SearchOptions, output: Path) -> Path:
    """Writes the search's options next to its results, for ``ray-diffnas search --resume``."""
    values = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(options).items()}
    text = json.dumps(values, indent=1)
    return atomic_write(output / OPTIONS_FILE, lambda tmp: Path(tmp).write_text(text))


def load_options(folder: str | os.PathLike) -> SearchOptions:
    """The options of the search saved in ``folder`` (its ``--output``), to resume it.

    Raises:
        DiffNASError: when ``folder`` holds no search this command can resume.
    """
    folder = Path(folder).expanduser().resolve()
    path = folder / OPTIONS_FILE
    if not path.is_file():  # without tune/ the search was stopped before Tune started: it starts over
        raise DiffNASError(f"{str(folder)!r} holds no search to resume (no {OPTIONS_FILE}); "
                           f"pass the --output folder of a search started with 'ray-diffnas search'.")
    try:
        values = json.loads(path.read_text())
        fields = {f.name for f in dataclasses.fields(SearchOptions)}
        if not isinstance(values, dict) or set(values) - fields:
            raise ValueError(f"unknown entries {sorted(set(values) - fields) if isinstance(values, dict) else values!r}")
        values["constraints"] = tuple(values.get("constraints") or ())
        values["output"] = folder  # the folder may have moved since
        return SearchOptions(**values)
    except (ValueError, TypeError) as error:
        raise DiffNASError(f"{str(path)!r} is damaged or not written by 'ray-diffnas search' ({error}); "
                           f"start a new search, or restore the file from a backup.") from None


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
