"""``train_diffusion``: the Ray Tune function trainable of one architecture trial."""

from __future__ import annotations

import json
import pickle
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import ray
import torch
from ray import tune

from ray_diffnas.data.datasets import load_dataset
from ray_diffnas.diffusion.trainer import DiffusionTrainer
from ray_diffnas.errors import ConfigError
from ray_diffnas.metrics.rfid import RFID
from ray_diffnas.model.cost import measure_cost
from ray_diffnas.spaces.unet_arch import UNetArch
from ray_diffnas.trainable.faults import check_memory, report_fault
from ray_diffnas.trainable.settings import TrainingSettings

STATE_FILE = "trainer.pt"
CONFIG_FILE = "trial_config.json"
# The same noise for every evaluation of every trial: RFIDs differ by the model alone.
EVAL_SEED = 1234

Reporter = Callable[..., None]


def train_diffusion(config: dict[str, Any]) -> None:
    """Trains one UNet architecture as a diffusion model and reports its RFID to Tune.

    One ``training_iteration`` is ``steps_per_iteration`` optimizer steps followed by one RFID
    evaluation (ASHA's clock). Each report carries ``rfid``, ``rfid_features``, ``loss``,
    ``latency_ms``, ``params_m``, ``gflops``, ``images_seen``, ``step`` and ``node_id``, and a checkpoint
    (model, EMA, optimizer, step, RNG states) that a restored trial resumes from.

    Config keys: ``arch`` (a :class:`UNetArch` dict) and the :class:`TrainingSettings` fields.

    Example:
        >>> from ray import tune
        >>> from ray_diffnas import UNetSpace
        >>> space = UNetSpace(image_size=8, base_channels=(8,), num_res_blocks=(1,))
        >>> tuner = tune.Tuner(train_diffusion, param_space=space.param_space(
        ...     dataset="digits", steps_per_iteration=5, max_iterations=1, rfid_samples=50,
        ...     sampler_steps=2), tune_config=tune.TuneConfig(metric="rfid", mode="min",
        ...     num_samples=1))
        >>> tuner.fit().get_best_result().metrics["rfid"] > 0  # doctest: +SKIP
        True
    """
    run_training(config, tune.get_checkpoint(), tune.report)


def run_training(config: Mapping[str, Any], checkpoint: tune.Checkpoint | None, report: Reporter) -> None:
    """The trainable's body, with Tune's checkpoint and report passed in.

    A trial that fails (its loss became NaN, it grew past ``max_memory_gb``, anything raised)
    first reports a last result whose ``fault`` entry says why, so the searcher learns the
    reason, and then raises, so Tune retries it (``FailureConfig``) or records it as failed.
    """
    try:
        _train_and_report(config, checkpoint, report)
    except Exception as error:
        report_fault(report, error)
        raise


def _train_and_report(config: Mapping[str, Any], checkpoint: tune.Checkpoint | None, report: Reporter) -> None:
    # CPU seconds of this trial's process (its own worker), setup included, over every run of it: what it
    # cost beside its wall time (time_total_s), which other trials' load also stretches.
    cpu = CpuClock()
    settings = TrainingSettings.from_config(config)
    data = load_dataset(settings.dataset, settings.data_root, settings.image_size)
    if "arch" not in config:
        raise ConfigError(
            "train_diffusion's config needs an 'arch' entry (a UNetArch dict); use UNetSpace.param_space()."
        )
    arch = UNetArch.from_dict(config["arch"], data.image_size)
    trainer = DiffusionTrainer(arch, data, settings)
    # The trial's setup draws from the trial's own RNG stream, in the order it always has (the latency
    # measurement's random input, the feature classifier's initial weights before its cached ones load):
    # training then draws its dropout masks from where they did, and a seed gives the run it gave before.
    with trainer.rng_scope():
        cost = measure_cost(trainer.model, data.image_size, data.channels)
        rfid = RFID(data, settings.rfid_features, trainer.device)
    done = 0  # iterations finished before this run (from the checkpoint)
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            done = load_trainer(trainer, Path(folder))
    cpu.before = trainer.cpu_seconds  # what the runs before this one spent (0 for a new trial)
    fixed = {
        "latency_ms": cost.latency_ms,
        "params_m": cost.params_m,
        "gflops": cost.gflops,
        "rfid_features": rfid.features,
        "arch_key": arch.key(),
        "node_id": _node_id(),
    }
    for iteration in range(done + 1, settings.max_iterations + 1):
        loss = trainer.train_steps(settings.steps_per_iteration)
        check_memory(settings.max_memory_gb, trainer.step)
        score = rfid(trainer.sample(settings.rfid_samples, settings.sampler_steps, seed=EVAL_SEED))
        check_memory(settings.max_memory_gb, trainer.step)
        trainer.cpu_seconds = cpu.seconds()
        metrics = {
            "rfid": score,
            "loss": loss,
            "images_seen": trainer.images_seen,
            "step": trainer.step,
            "cpu_seconds": trainer.cpu_seconds,
            **fixed,
        }
        with tempfile.TemporaryDirectory() as folder:
            save_trainer(trainer, iteration, dict(config), Path(folder))
            report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


class CpuClock:
    """CPU seconds (user + system, every thread) of this process since it was made, plus ``before``."""

    def __init__(self, before: float = 0.0) -> None:
        self.before, self.start = before, time.process_time()

    def seconds(self) -> float:
        return self.before + time.process_time() - self.start


def _node_id() -> str | None:
    """The Ray node this trial runs on (on a cluster, which machine trained it)."""
    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def save_trainer(trainer: DiffusionTrainer, iteration: int, config: dict[str, Any], folder: Path) -> None:
    torch.save({**trainer.state_dict(), "iteration": iteration}, folder / STATE_FILE)
    (folder / CONFIG_FILE).write_text(json.dumps(_jsonable(config), indent=1))


def load_trainer(trainer: DiffusionTrainer, folder: Path) -> int:
    """Loads a checkpoint folder into ``trainer``; returns the iteration it was saved at."""
    path = folder / STATE_FILE
    if not path.is_file():
        raise ConfigError(
            f"Checkpoint folder {str(folder)!r} has no {STATE_FILE}; it was not written by train_diffusion."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # RNG states must stay on the CPU
        trainer.load_state_dict(state)
        return int(state["iteration"])
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, TypeError, ValueError) as error:
        # torch's own message would suggest weights_only=False: never right for a file of unknown origin.
        raise ConfigError(
            f"Checkpoint file {str(path)!r} is not a readable train_diffusion checkpoint of architecture "
            f"{trainer.arch.key()} (corrupted, truncated, or written by another program or architecture: "
            f"{type(error).__name__}). Resume from an earlier checkpoint folder, or start the trial again."
        ) from None


def load_checkpoint(folder: str | Path) -> DiffusionTrainer:
    """Rebuilds a trained model (with its EMA) from a checkpoint folder written by ``train_diffusion``."""
    folder = Path(folder)
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise ConfigError(
            f"Checkpoint folder {str(folder)!r} has no {CONFIG_FILE}; it was not written by train_diffusion."
        )
    config = json.loads(config_path.read_text())
    settings = TrainingSettings.from_config(config)
    data = load_dataset(settings.dataset, settings.data_root, settings.image_size)
    trainer = DiffusionTrainer(UNetArch.from_dict(config["arch"], data.image_size), data, settings)
    load_trainer(trainer, folder)
    return trainer


def _jsonable(config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(config, default=str))
