"""Where a searcher's trials came from, and how good each source was: judged on a table, where every
architecture's true value is known.

The project's searchers name the source of every trial (``proposer``: ``llm``, ``repair`` and
``fallback`` for the LLM searcher; the graph model's samples, neighbours and warm-up draws; the hybrid's
LLM candidates). Each source's mean regret (the distance of its architectures' true values from the
table's optimum) set beside the mean regret of a uniform draw from the table says whether that source
proposes better than chance: e.g. whether a small LLM's own proposals beat a random architecture, apart
from the fallbacks that serve when it has none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ray_diffnas.bench.stats import seed_bootstrap_mean

if TYPE_CHECKING:
    from ray_diffnas.bench.harness import RunRecord


def source_summary(runs: Sequence[RunRecord], optimum: float) -> dict[str, Any] | None:
    """Per source over ``runs``: its queries, their share, and their mean regret with a bootstrap 95 %
    interval (whole seeds resampled), to set beside a uniform draw's (the table's
    ``uniform_draw_mean_regret``). Duplicates (a query that repeats an earlier one of its run) and
    architectures outside the table are left out. None for searchers that do not name their sources
    (Tune's own).

    Example:
        >>> import pandas as pd
        >>> from ray_diffnas.bench.harness import RunRecord
        >>> trajectory = pd.DataFrame({"proposer": ["llm", "fallback", "llm"], "duplicate": [False] * 3,
        ...                            "true_objective": [1.5, 1.2, 1.1]})
        >>> summary = source_summary([RunRecord("gpt4", 0, trajectory, 1.0)], optimum=1.0)
        >>> {name: (s["queries"], round(s["mean_regret"], 2)) for name, s in summary.items()}
        {'fallback': (1, 0.2), 'llm': (2, 0.3)}
    """
    frames = [r.trajectory for r in runs if "proposer" in r.trajectory]
    named = [f[f["proposer"].notna() & ~f["duplicate"] & np.isfinite(f["true_objective"])] for f in frames]
    if not any(len(f) for f in named):
        return None
    total = sum(len(f) for f in named)
    sources = {}
    for name in sorted({p for f in named for p in f["proposer"]}):
        per_seed = [np.abs(optimum - f.loc[f["proposer"] == name, "true_objective"].to_numpy(float)) for f in named]
        pooled = np.concatenate(per_seed)
        sources[name] = {
            "queries": len(pooled),
            "share": len(pooled) / total,
            "seeds": sum(1 for g in per_seed if len(g)),
            "mean_regret": float(pooled.mean()),
            "mean_regret_ci95": seed_bootstrap_mean(per_seed),
        }
    return sources
