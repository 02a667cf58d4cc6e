"""What ``train_diffusion`` reports, in words: the notes a searcher's prompt shows for its metrics.

Light on purpose (no torch): the LLM searcher reads it in the driver.
"""

from __future__ import annotations

# What train_diffusion reports for a search to optimise, and which way is better.
METRIC, MODE = "rfid", "min"
# The metric the trainable optimises, explained for an LLM that has never seen this project.
METRIC_NOTES: dict[str, str] = {
    "rfid": (
        "an FID of a few generated images after short training (RFID). Trials report it once per "
        "iteration; a scheduler (ASHA) stops weak trials early, so a trial stopped at an early iteration "
        "was judged on a noisy, partly trained model. Cost matters too: latency_ms and params_m are reported"
    ),
}
# Cost figures every report carries; the prompt shows them beside each outcome: what the denoiser costs
# to run (latency, size) and what its trial cost to train (CPU seconds of its process, so far).
COST_METRICS: tuple[str, ...] = ("latency_ms", "params_m", "cpu_seconds")
# What the denoiser costs, which a search may trade RFID against (``ray-diffnas search --objective``):
# measured from the architecture, so the same for every trial of it.
TRADE_OFF_METRICS: tuple[str, ...] = ("latency_ms", "params_m", "gflops")
# A cost is better lower: the direction of every trade-off metric.
COST_MODE = "min"
# Every number a trial reports (Tune adds training_iteration): what a constraint may bound and the
# results table keeps.
REPORTED_METRICS: tuple[str, ...] = (
    METRIC,
    "loss",
    "latency_ms",
    "params_m",
    "gflops",
    "images_seen",
    "cpu_seconds",
    "step",
    "training_iteration",
)
