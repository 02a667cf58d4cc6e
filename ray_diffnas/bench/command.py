"""``ray-diffnas bench-table`` as a function: one objective (:class:`TableBenchmark`, regret) or several
(:class:`ParetoBenchmark`, the front's hypervolume and IGD)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray_diffnas.bench.harness import BenchResult, TableBenchmark
from ray_diffnas.bench.pareto_bench import ParetoBenchmark
from ray_diffnas.searchers.factory import parse_searchers

if TYPE_CHECKING:
    from ray_diffnas.app.options import BenchTableOptions


def run_bench_table(options: BenchTableOptions) -> BenchResult:
    """Checks the options, reads the table, runs the searchers, writes the results."""
    options.check()
    searchers = parse_searchers(options.searcher)  # a typo answers at once, before the table is read or Ray starts
    settings: dict[str, Any] = dict(
        space=options.space,
        arch_column=options.arch_column,
        constraints=options.constraints,
        max_concurrent_trials=options.max_concurrent,
        warmup=options.warmup,
        scheduler=options.scheduler,
        reduction_factor=options.reduction_factor,
        grace_period=options.grace_period,
        llm=options.llm,
        model=options.model,
        hybrid_warmup=options.hybrid_warmup,
        address=options.address,
    )
    if len(options.objective) > 1:
        bench: TableBenchmark = ParetoBenchmark.from_file(options.table, options.objective, **settings)
    else:
        objective = options.objective[0] if options.objective else None
        bench = TableBenchmark.from_file(options.table, objective, **settings)
    return bench.run(
        searchers, budget=options.budget, seeds=options.seeds, output=options.output, against=options.against
    )
