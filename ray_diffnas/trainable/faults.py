"""Trial faults: why a trial failed, told to the searcher and kept in the search memory.

Tune tells a searcher only *that* a trial failed (``on_trial_complete(error=True)``), not why.
So a failing trial first reports one last result whose ``fault`` entry says why (the loss
became NaN, the process grew past its memory limit, an exception), then raises, and Tune
retries it or records it as failed. Searchers read the reason from that result: the LLM's
prompt shows it; the graph model learns the architecture as a bad one.
"""

from __future__ import annotations

import math
from typing import Callable

import psutil

FAULT_KEY = "fault"
REASON_CHARS = 500


class MemoryLimitError(RuntimeError):
    """A trial's process grew past its ``max_memory_gb``."""


def check_memory(limit_gb: float | None, step: int) -> None:
    """Raises :class:`MemoryLimitError` when this process's resident memory exceeds ``limit_gb``."""
    if limit_gb is None:
        return
    used_gb = psutil.Process().memory_info().rss / 2**30
    if used_gb > limit_gb:
        raise MemoryLimitError(
            f"The trial's process uses {used_gb:.2f} GiB at step {step}, over its max_memory_gb of {limit_gb:g}; "
            f"lower 'batch_size' or the architecture's channels, or raise 'max_memory_gb'."
        )


def fault_reason(error: BaseException) -> str:
    """One line that names the fault: the error's class and its message."""
    message = " ".join(str(error).split()) or "(no message)"
    return f"{type(error).__name__}: {message}"[:REASON_CHARS]


def report_fault(report: Callable[..., None], error: BaseException) -> None:
    """Reports the fault as the trial's last result (``rfid`` NaN, so Tune's metric check
    passes and no scheduler ranks it). Reporting must not hide the original error."""
    try:
        report({"rfid": math.nan, FAULT_KEY: fault_reason(error)})
    except Exception:  # noqa: BLE001 - the trial is failing anyway; Tune shows the original error
        pass
