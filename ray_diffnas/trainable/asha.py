"""ASHA, as ``ray-diffnas search`` runs trials and ``bench-table`` replays them, stated once: its defaults,
the scheduler, and the iterations at which it compares trials (the report draws them).

ASHA (Li et al., 2020; Tune's ``ASHAScheduler``) runs every trial for ``grace_period`` iterations, then
at each rung (``grace_period x ETA^k`` iterations) lets the best 1/ETA of the trials that reached it go
on. A later first rung costs compute and spares the trials whose early RFID misjudges them: on the
digits UNet table, RFID after one iteration agrees with the final one only at Spearman's rho 0.50, after
two at 0.56 (docs/benchmarks.md, the noise floor).
"""

from __future__ import annotations

from typing import Any

GRACE_PERIOD = 1  # iterations every trial runs before ASHA first compares it
REDUCTION_FACTOR = 2.0  # ETA: each rung lets the best 1/ETA go on


def asha_scheduler(max_iterations: int, grace_period: int, reduction_factor: float) -> Any:
    """Tune's ASHA over ``training_iteration`` (each trial reports once per iteration)."""
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=max_iterations,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
    )


def asha_rungs(max_iterations: int, reduction_factor: float, grace_period: int = GRACE_PERIOD) -> list[int]:
    """The iterations at which ASHA compares trials: GRACE, GRACE x ETA, GRACE x ETA^2 ... below max_t.

    Example:
        >>> asha_rungs(8, 2.0), asha_rungs(8, 2.0, grace_period=2)
        ([1, 2, 4], [2, 4])
    """
    rungs, rung = [], float(grace_period)
    while rung < max_iterations:
        rungs.append(int(round(rung)))
        rung *= reduction_factor
    return rungs
