"""ray_diffnas: architecture search for the denoising UNets of image diffusion models, on Ray Tune.

Names are imported on first use (PEP 562), so that ``ray-diffnas --help`` and a mistyped flag
answer at once instead of after importing torch and Ray.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "UNetArch": "arch", "ImageDataset": "data", "load_dataset": "data",
    "ConfigError": "errors", "DataError": "errors", "DiffNASError": "errors",
    "FeatureExtractorError": "errors", "TrainingDivergedError": "errors",
    "GPT4Searcher": "gpt4_searcher", "GraphDiffusionSearcher": "graph_searcher", "NB201Space": "nb201",
    "GraphDiffusion": "graph_diffusion", "Constraint": "constraints", "TableBenchmark": "bench_table", "SearchMemory": "memory", "RFID": "rfid",
    "MemorySearcher": "searcher_base", "Proposal": "searcher_base", "TrainingSettings": "settings",
    "UNetSpace": "space", "load_checkpoint": "trainable", "train_diffusion": "trainable", "UNet": "unet",
    "atomic_local_filesystem": "storage",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ray_diffnas' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ray_diffnas.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)


if TYPE_CHECKING:  # for type checkers and IDEs
    from ray_diffnas.arch import UNetArch
    from ray_diffnas.data import ImageDataset, load_dataset
    from ray_diffnas.errors import ConfigError, DataError, DiffNASError, FeatureExtractorError, TrainingDivergedError
    from ray_diffnas.bench_table import TableBenchmark
    from ray_diffnas.constraints import Constraint
    from ray_diffnas.gpt4_searcher import GPT4Searcher
    from ray_diffnas.graph_diffusion import GraphDiffusion
    from ray_diffnas.graph_searcher import GraphDiffusionSearcher
    from ray_diffnas.nb201 import NB201Space
    from ray_diffnas.memory import SearchMemory
    from ray_diffnas.rfid import RFID
    from ray_diffnas.searcher_base import MemorySearcher, Proposal
    from ray_diffnas.settings import TrainingSettings
    from ray_diffnas.space import UNetSpace
    from ray_diffnas.storage import atomic_local_filesystem
    from ray_diffnas.trainable import load_checkpoint, train_diffusion
    from ray_diffnas.unet import UNet
