"""The one place that builds a Tune search algorithm from its name: for ``ray-diffnas search``,
``ray-diffnas bench-table`` and any script.

Every searcher gets the same things: the space, the objective (metric, mode, constraints), a seed
and a budget. The model-based searchers take the space and objective in their constructor; Tune's
own (random, Optuna's TPE) take them from ``param_space`` and ``TuneConfig``.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, get_args

from ray_diffnas.errors import ConfigError, DiffNASError
from ray_diffnas.searchers.llm.endpoint import EndpointFile
from ray_diffnas.searchers.objective import Objective
from ray_diffnas.searchers.pareto import ParetoObjective

if TYPE_CHECKING:
    from ray_diffnas.spaces.protocol import SearchSpace

SearcherName = Literal["graph", "gpt4", "hybrid", "random", "optuna", "nsga2", "evolution"]
SEARCHERS: tuple[str, ...] = get_args(SearcherName)
# The searchers that call an LLM (--llm, --model; a local server for --llm local).
LLM_SEARCHERS: tuple[str, ...] = ("gpt4", "hybrid")
# What `ray-diffnas search` runs; Optuna's samplers search a flat form of the space that a trial
# cannot train from, so they stay a bench-table baseline.
SEARCH_COMMAND_SEARCHERS: tuple[str, ...] = ("graph", "gpt4", "hybrid", "random", "evolution")
# The searchers that aim for the objective's constraints (Tune's random and Optuna's TPE do not see them).
CONSTRAINT_AWARE = ("graph", "gpt4", "hybrid", "evolution")
# Optuna's samplers need one categorical choice per parameter: only spaces with a flat form.
FLAT_ONLY = ("optuna", "nsga2")
# The searchers that take several objectives (a ParetoObjective): Tune's random search ignores the
# metric, Optuna's TPE becomes MOTPE, NSGA-II is multi-objective by design, the graph searcher
# conditions on Pareto rank, and the LLM is shown the front and asked to extend it.
MULTI_OBJECTIVE = ("random", "optuna", "nsga2", "graph", "gpt4", "hybrid")
NSGA2_POPULATION = 20  # five generations in a 100-query run (Optuna's default, 50, gives two); fixed before any run


class SearcherSetup(NamedTuple):
    """A search algorithm and the ``param_space`` it searches."""

    search_alg: Any
    param_space: dict[str, Any]


def parse_searchers(names: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"graph,random"`` or ``["graph", "random"]`` -> the names, checked, without repeats.

    Example:
        >>> parse_searchers("random, optuna")
        ['random', 'optuna']
    """
    items = names.split(",") if isinstance(names, str) else list(names)
    chosen = list(dict.fromkeys(str(n).strip() for n in items if str(n).strip()))
    unknown = [n for n in chosen if n not in SEARCHERS]
    if unknown or not chosen:
        raise ConfigError(
            f"Unknown searcher(s) {unknown or names!r}; choose from {list(SEARCHERS)}, "
            f"comma-separated (e.g. --searcher graph,random,optuna)."
        )
    return chosen


def check_searcher(name: str, space: SearchSpace) -> None:
    """Raises a clear error when ``name`` cannot run on ``space`` here (a flat space, an optional package)."""
    if name not in SEARCHERS:
        raise ConfigError(f"Unknown searcher {name!r}; choose from {list(SEARCHERS)}.")
    if name in FLAT_ONLY and not hasattr(space, "flat_choices"):
        raise ConfigError(
            f"The {name} searcher needs a flat space (one categorical choice per parameter, "
            f"e.g. --space nb201); {type(space).__name__} is not one."
        )
    if name in ("optuna", "nsga2") and importlib.util.find_spec("optuna") is None:
        raise DiffNASError(f"The {name} searcher needs Optuna: pip install 'ray-diffnas[bench]'.")


def make_searcher(
    name: str,
    space: SearchSpace,
    objective: Objective | ParetoObjective,
    param_space: dict[str, Any] | None = None,
    *,
    seed: int = 0,
    budget: int | None = None,
    max_concurrent: int | None = None,
    warmup: int | None = None,
    llm_model: str | None = None,
    llm_url: str | EndpointFile | None = None,
    hybrid_warmup: str | None = None,
) -> SearcherSetup:
    """The search algorithm called ``name``, and the ``param_space`` to run it with.

    Args:
        name: One of ``SEARCHERS``.
        space: The architecture space.
        objective: Metric, mode and constraints; or several metrics (a :class:`ParetoObjective`),
            which the ``MULTI_OBJECTIVE`` searchers take.
        param_space: The trials' ``param_space`` (default: ``space.param_space()``); Optuna's
            samplers (optuna, nsga2) get the space's flat form instead.
        seed: Seeds the searcher.
        budget: Proposals before the model-based searchers finish (``max_trials``).
        max_concurrent: Trials at once, for Tune's random search (which Tune does not limit).
        warmup: Random proposals before the graph searcher's model, or evolution's population size
            (default: each searcher's own default).
        llm_model: The LLM searcher's model (default ``gpt-4o``).
        llm_url: The LLM searcher's endpoint: a URL, an :class:`EndpointFile`, or None for
            ``$OPENAI_BASE_URL`` / OpenAI's.
        hybrid_warmup: What the hybrid's warm-up serves, ``random`` or ``llm`` (default:
            ``DEFAULT_HYBRID_WARMUP``).

    Example:
        >>> from ray_diffnas.spaces.nb201 import NB201Space
        >>> setup = make_searcher("graph", NB201Space(), Objective("acc", "max"), seed=1, budget=5)
        >>> type(setup.search_alg).__name__, sorted(setup.param_space)
        ('GraphDiffusionSearcher', ['arch', 'space'])
    """
    check_searcher(name, space)
    if isinstance(objective, ParetoObjective) and name not in MULTI_OBJECTIVE:
        raise ConfigError(
            f"The {name} searcher takes one objective; with several ({', '.join(objective.metrics)}) use one of "
            f"{list(MULTI_OBJECTIVE)}, or give one objective."
        )
    param_space = space.param_space() if param_space is None else param_space
    if name == "random":
        from ray.tune.search import BasicVariantGenerator

        # Its own concurrency limit: Tune's max_concurrent_trials only wraps Searcher instances.
        return SearcherSetup(BasicVariantGenerator(random_state=seed, max_concurrent=max_concurrent or 0), param_space)
    if name in ("optuna", "nsga2"):
        return _optuna(name, space, objective, seed)
    if isinstance(objective, ParetoObjective):
        metric: str | list[str] = objective.metrics
        mode: str | list[str] = objective.modes
        note = None
    else:
        metric, mode, note = objective.metric, objective.mode, objective.note
    model_based: dict[str, Any] = {
        "space": space,
        "metric": metric,
        "mode": mode,
        "constraints": list(objective.constraints),
        "seed": seed,
        "max_trials": budget,
    }
    if name == "evolution":
        from ray_diffnas.searchers.evolution import RegularizedEvolution

        # A warm-up is evolution's random phase: a population of that size, tournaments of half of it.
        sizes = {} if warmup is None else {"population_size": max(2, warmup), "tournament_size": max(1, warmup // 2)}
        return SearcherSetup(RegularizedEvolution(**sizes, **model_based), param_space)
    extra: dict[str, Any] = {} if warmup is None else {"warmup": warmup}
    if name == "graph":
        from ray_diffnas.searchers.graph.searcher import GraphDiffusionSearcher

        return SearcherSetup(GraphDiffusionSearcher(**extra, **model_based), param_space)
    from ray_diffnas.searchers.llm.searcher import DEFAULT_MODEL, GPT4Searcher

    def llm(**searcher: Any) -> GPT4Searcher:
        # The local model's slower answers and its server's schema form are GPT4Searcher's defaults for it
        return GPT4Searcher(model=llm_model or DEFAULT_MODEL, base_url=llm_url, objective_note=note, **searcher)

    if name == "hybrid":
        from ray_diffnas.searchers.hybrid import HybridSearcher

        # The LLM writes prompts and calls the endpoint; the hybrid owns the space, objective and memory.
        if hybrid_warmup is not None:
            extra["warmup_source"] = hybrid_warmup
        return SearcherSetup(HybridSearcher(llm=llm(), **extra, **model_based), param_space)
    return SearcherSetup(llm(**model_based), param_space)


def _optuna(name: str, space: Any, objective: Objective | ParetoObjective, seed: int) -> SearcherSetup:
    """Optuna's TPE (``optuna``; multi-objective TPE with several objectives) or NSGA-II (``nsga2``)."""
    from ray import tune

    try:
        import optuna
        from ray.tune.search.optuna import OptunaSearch
    except ImportError:
        raise DiffNASError(f"The {name} searcher needs Optuna: pip install 'ray-diffnas[bench]'.") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one INFO line per trial otherwise
    flat = {key: tune.choice(list(values)) for key, values in space.flat_choices().items()}
    if name == "nsga2":
        from ray_diffnas.searchers.optuna_samplers import PicklableNSGAIISampler

        sampler: Any = PicklableNSGAIISampler(population_size=NSGA2_POPULATION, seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)
    if isinstance(objective, ParetoObjective):  # several metrics, which TuneConfig cannot hold: the searcher gets them
        search = OptunaSearch(sampler=sampler, metric=objective.metrics, mode=objective.modes)
    else:  # one: from TuneConfig, as Tune configures every searcher
        search = OptunaSearch(sampler=sampler)
    return SearcherSetup(search, flat)
