"""Optuna's samplers as baselines in Ray Tune runs (imported only where Optuna is installed).

Ray Tune saves its search algorithm with pickle (``Tuner`` at start, and on every experiment
checkpoint). Optuna's genetic samplers (NSGA-II) hold a ``threading.Lock``, which pickle refuses;
:class:`PicklableNSGAIISampler` drops it when saved and makes a new one when restored.
"""

from __future__ import annotations

import threading
from typing import Any

from optuna.samplers import NSGAIISampler


class PicklableNSGAIISampler(NSGAIISampler):
    """Optuna's NSGA-II that Ray Tune can save: its lock is re-made on unpickling.

    Example:
        >>> import pickle
        >>> sampler = pickle.loads(pickle.dumps(PicklableNSGAIISampler(population_size=20, seed=0)))
        >>> sampler.population_size
        20
    """

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_thread_lock", None)  # guards in-process caches only: a restored sampler needs its own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()
