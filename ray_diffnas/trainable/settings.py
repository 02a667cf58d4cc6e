"""Training settings of one trial: everything in a trial's config besides the architecture."""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any, Mapping

from ray_diffnas.data.catalog import DATASETS, DatasetName
from ray_diffnas.errors import ConfigError
from ray_diffnas.metrics.catalog import FEATURE_CHOICES, FeatureChoice

# Who proposed a trial's architecture (graph, neighbour, llm, ...): a project searcher puts it in the
# trial's config, where the console, the results and the report read it; the trainable ignores it.
PROPOSER_KEY = "proposer"
# Config keys that Tune search spaces add and the trainable does not use.
SEARCH_ONLY_KEYS = frozenset({"space", PROPOSER_KEY})


@dataclass(frozen=True)
class TrainingSettings:
    """How a trial trains and evaluates its UNet. Defaults suit a 2-core CPU.

    Example:
        >>> s = TrainingSettings.from_config({"arch": {}, "dataset": "digits", "lr": 1e-3})
        >>> s.dataset, s.lr, s.total_steps
        ('digits', 0.001, 400)
    """

    dataset: DatasetName = "mnist"  # see ray_diffnas.data.catalog
    data_root: str | None = None  # Path for cifar10 / folder data sets.
    image_size: int | None = None  # Resize images to this size; None keeps the data set's own.
    batch_size: int = 32  # Images per training step.
    lr: float = 2e-3  # Peak AdamW learning rate (after warm-up, before cosine decay).
    weight_decay: float = 0.0  # AdamW weight decay.
    warmup_steps: int = 50  # Linear learning-rate warm-up steps.
    steps_per_iteration: int = 100  # Training steps per Tune iteration (one RFID evaluation each).
    max_iterations: int = 4  # Iterations in a full trial; sets the cosine schedule's length.
    ema_decay: float = 0.999  # Final EMA decay; warms up as min(decay, (1 + k) / (10 + k)).
    min_snr_gamma: float = 5.0  # Min-SNR-gamma loss weighting (Hang et al., ICCV 2023).
    rfid_samples: int = 500  # Generated images per RFID evaluation.
    sampler_steps: int = 10  # DDIM steps per generated image in RFID evaluations.
    rfid_features: FeatureChoice = "auto"  # see ray_diffnas.metrics.catalog and .features
    seed: int = 0  # Seeds weights, data order and noise.
    max_memory_gb: float | None = None  # Fail the trial (with the reason) when its process grows past this.
    # Train through torch.compile (fused kernels): for a GPU and long trials. On a small CPU the first
    # step compiles for minutes and later steps gain little (benchmarks.throughput --compile).
    torch_compile: bool = False

    @property
    def total_steps(self) -> int:
        return self.steps_per_iteration * self.max_iterations

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrainingSettings:
        """Reads and validates the training settings of a trial config.

        Raises:
            ConfigError: for an unknown key or a value of the wrong type or range.
        """
        known = {f.name for f in dataclasses.fields(cls)} | {"arch"} | SEARCH_ONLY_KEYS
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(f"Unknown config key(s) {unknown} for train_diffusion; known keys are {sorted(known)}.")
        values = {k: v for k, v in config.items() if k in {f.name for f in dataclasses.fields(cls)}}
        problems = [p for name, value in values.items() for p in _check(name, value)]
        if problems:
            raise ConfigError("Invalid training settings:\n  - " + "\n  - ".join(problems))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_POSITIVE_INTS = {"batch_size", "steps_per_iteration", "max_iterations", "sampler_steps"}
_NON_NEGATIVE_INTS = {"warmup_steps", "seed"}


def _check(name: str, value: Any) -> list[str]:
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    is_real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if name in _POSITIVE_INTS and not (is_int and value >= 1):
        return [f"{name} must be a positive integer, but got {value!r}."]
    if name in _NON_NEGATIVE_INTS and not (is_int and value >= 0):
        return [f"{name} must be an integer >= 0, but got {value!r}."]
    if name == "rfid_samples" and not (is_int and value >= 2):
        return [f"rfid_samples must be an integer >= 2 (FID needs a covariance), but got {value!r}."]
    if name in {"lr", "min_snr_gamma"} and not (is_real and value > 0):
        return [f"{name} must be a number > 0, but got {value!r}."]
    if name == "weight_decay" and not (is_real and value >= 0):
        return [f"weight_decay must be a number >= 0, but got {value!r}."]
    if name == "ema_decay" and not (is_real and 0 <= value < 1):
        return [f"ema_decay must be a number in [0, 1), but got {value!r}."]
    if name == "image_size" and value is not None and not (is_int and 4 <= value <= 1024):
        return [f"image_size must be an integer in [4, 1024] or None, but got {value!r}."]
    if name == "rfid_features" and value not in FEATURE_CHOICES:
        return [f"rfid_features must be one of {list(FEATURE_CHOICES)}, but got {value!r}."]
    if name == "max_memory_gb" and value is not None and not (is_real and value > 0):
        return [f"max_memory_gb must be a number > 0 (GiB) or None, but got {value!r}."]
    if name == "torch_compile" and not isinstance(value, bool):
        return [f"torch_compile must be True or False, but got {value!r}."]
    if name == "dataset" and value not in DATASETS:
        return [f"dataset must be one of {list(DATASETS)}, but got {value!r}."]
    if name == "data_root" and value is not None and not isinstance(value, str):
        return [f"data_root must be a path string or None, but got {value!r}."]
    return []
