"""Whether Ctrl-C ended a Tune run: Tune catches it and returns from ``fit`` without an error.

Tune's ``fit`` installs its own SIGINT (and SIGUSR1) handler; on the first signal it saves the run,
ends it, and puts back the handler it found. That is the one trace a stop leaves; a run that ends by
itself leaves Tune's handler installed (where it would swallow a later Ctrl-C, so it is put back here).
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from ray.tune import ResultGrid, Tuner

TUNE_HANDLER_OFF_ENV = "TUNE_DISABLE_SIGINT_HANDLER"  # set to 1, Tune leaves Ctrl-C alone (it raises)


def fit_watching_for_stop(tuner: Tuner) -> tuple[ResultGrid, bool]:
    """``tuner.fit()``, and whether a stop signal (Ctrl-C) ended it."""
    if not _tune_catches_signals():
        return tuner.fit(), False  # Ctrl-C raises KeyboardInterrupt: a stop cannot end fit quietly
    before = signal.getsignal(signal.SIGINT)
    try:
        grid = tuner.fit()
        stopped = not _installed_by_tune(signal.getsignal(signal.SIGINT))
    finally:
        if before is not None:  # None: a handler not installed from Python, which cannot be put back
            signal.signal(signal.SIGINT, before)
    return grid, stopped


def _tune_catches_signals() -> bool:
    """Tune installs its handler only from the main thread, and not when told not to."""
    return threading.current_thread() is threading.main_thread() and not int(os.environ.get(TUNE_HANDLER_OFF_ENV, "0"))


def _installed_by_tune(handler: Any) -> bool:
    return getattr(handler, "__module__", None) == "ray.tune.tune"
