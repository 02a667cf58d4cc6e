"""Where a searcher's trials came from, and how good each source was: judged on a table, where every
architecture's true value is known.

The project's searchers name the source of every trial (``proposer``: ``llm``, ``repair`` and
``fallback`` for the LLM searcher; the graph model's samples, neighbours and warm-up draws; the hybrid's
LLM candidates). A source's mean regret (the distance of its architectures' true values from the
table's optimum) alone would mislead: a source used late in a run draws from what is left, and the good
architectures are gone by then. So each query is set beside **chance at that moment**: the mean regret
of the architectures its run had not yet tried, i.e. what a uniform draw of a new architecture would
have scored there. A source proposes better than chance when its regret is below that, e.g. whether a
small LLM's own proposals beat a random new architecture, apart from the fallbacks that serve when it
has none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ray_diffnas.bench.stats import seed_bootstrap_mean

if TYPE_CHECKING:
    from ray_diffnas.bench.harness import RunRecord


def source_summary(runs: Sequence[RunRecord], regrets: Mapping[str, float]) -> dict[str, Any] | None:
    """Per source over ``runs``: its queries, their share, their mean regret, chance's mean regret at
    the same moments, and the mean gain over chance (chance's regret minus the source's; positive:
    better than chance), each mean with a bootstrap 95 % interval that resamples whole seeds.
    Duplicates (a query that repeats an earlier one of its run) and architectures outside the table are
    left out. None for searchers that do not name their sources (Tune's own).

    Args:
        runs: One searcher's runs.
        regrets: Every table row's regret, by architecture key.

    Example:
        >>> import pandas as pd
        >>> from ray_diffnas.bench.harness import RunRecord
        >>> regrets = {"a": 0.0, "b": 1.0, "c": 2.0, "d": 3.0}  # chance before any query: 1.5; after c: 4/3
        >>> trajectory = pd.DataFrame({"query": [1, 2, 3], "arch_key": ["c", "a", "b"],
        ...                            "proposer": ["random", "llm", "llm"], "duplicate": [False] * 3})
        >>> summary = source_summary([RunRecord("gpt4", 0, trajectory, 1.0)], regrets)
        >>> {name: (s["queries"], s["mean_regret"], round(s["chance_mean_regret"], 3)) for name, s in summary.items()}
        {'llm': (2, 0.5, 1.667), 'random': (1, 2.0, 1.5)}
    """
    moments = [_with_chance(r.trajectory, regrets) for r in runs if "proposer" in r.trajectory]
    named = [m[m["proposer"].notna()] for m in moments]
    total = sum(len(m) for m in named)
    if not total:
        return None
    sources = {}
    for name in sorted({p for m in named for p in m["proposer"]}):
        mine = [m[m["proposer"] == name] for m in named]
        regret = [m["regret_of_pick"].to_numpy(float) for m in mine]
        chance = [m["chance_regret"].to_numpy(float) for m in mine]
        gain = [c - r for c, r in zip(chance, regret)]
        queries = sum(len(m) for m in mine)
        sources[name] = {
            "queries": queries,
            "share": queries / total,
            "seeds": sum(1 for m in mine if len(m)),
            "mean_regret": float(np.concatenate(regret).mean()),
            "mean_regret_ci95": seed_bootstrap_mean(regret),
            "chance_mean_regret": float(np.concatenate(chance).mean()),
            "gain_over_chance": float(np.concatenate(gain).mean()),
            "gain_over_chance_ci95": seed_bootstrap_mean(gain),
        }
    return sources


def _with_chance(trajectory: pd.DataFrame, regrets: Mapping[str, float]) -> pd.DataFrame:
    """The run's new, in-table queries with their regret and chance's: the mean regret of the table's
    architectures the run had not tried before that query."""
    total, rows = float(sum(regrets.values())), len(regrets)
    tried: set[str] = set()
    tried_sum, kept = 0.0, []
    for _, query in trajectory.sort_values("query").iterrows():
        key = query["arch_key"]
        if query["duplicate"] or key not in regrets or key in tried:
            continue
        chance = (total - tried_sum) / (rows - len(tried))
        kept.append({"proposer": query["proposer"], "regret_of_pick": regrets[key], "chance_regret": chance})
        tried.add(key)
        tried_sum += regrets[key]
    return pd.DataFrame(kept, columns=["proposer", "regret_of_pick", "chance_regret"])
