"""What the hybrid searcher's warm-up serves, stated once: it is a choice of ``HybridSearcher``
(``warmup_source``), of ``ray-diffnas search`` and ``bench-table`` (``--hybrid-warmup``), and part of a
kept benchmark run's settings, and the command-line parser reads it without importing torch.

Before the graph model exists there is nothing to screen the LLM's candidates with: ``random`` serves the
graph searcher's uniform draws and asks the LLM only once the model can screen its answers; ``llm`` runs
the LLM's candidates unscreened (worth it only with an LLM whose first proposals beat chance).
"""

from __future__ import annotations

from typing import Literal, get_args

HybridWarmup = Literal["random", "llm"]
HYBRID_WARMUPS: tuple[str, ...] = get_args(HybridWarmup)
# Chosen on seeds 0-19 of the UNet and NAS-Bench-201 tables by a rule written before the runs (lower "hybrid
# minus graph" mean regret in 5 of 8 cells; docs/benchmarks.md, "Choosing the warm-up"); "llm" before.
DEFAULT_HYBRID_WARMUP: HybridWarmup = "random"
