"""The ``ray-diffnas`` command: its parser is built from the option dataclasses of each subcommand."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import types
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence, Union, get_args, get_origin, get_type_hints

from ray_diffnas.app.job_env import check_output_survives_job, leave_job_working_dir
from ray_diffnas.app.options import (
    CONSOLE,
    QUIET,
    SUMMARY_FILE,
    TUNE_OUTPUT,
    BenchTableOptions,
    BuildTableOptions,
    SearchOptions,
    literal_choices,
    required_fields,
)
from ray_diffnas.errors import DiffNASError, Stopped

PATH_FLAGS = (
    "output",
    "resume",
    "data_root",
    "table",
    "reuse_table",
    "folder",
)  # made absolute: trials run in other folders


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Tune's-style help: each flag's default once, and none for an absent default (None, False) or
    for a help text that already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        # "is": a default of 0 (a seed, no GPUs) is said; only an absent one (None, False) is not.
        absent = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        switch = action.nargs == 0  # -v, --torch-compile: the flag takes no value, its default is not one to give
        if absent or switch or "default" in text:
            return text
        return super()._get_help_string(action)


def number_at_least(kind: type, minimum: float) -> Callable[[str], Any]:
    """An argparse type: a number of ``kind`` >= ``minimum``, with a message that says so."""
    wanted = (
        "a positive integer"
        if (kind is int and minimum == 1)
        else f"{'an integer' if kind is int else 'a number'} >= {minimum:g}"
    )

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, but got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {wanted}, but got {value}")
        return value

    return parse


def add_options(parser: argparse.ArgumentParser, options: type) -> None:
    """One flag per field of the ``options`` dataclass: its name, type, default, choices and help."""
    hints, required = get_type_hints(options), required_fields(options)
    for f in dataclasses.fields(options):
        hint, meta = _optional_inner(hints[f.name]), f.metadata
        flag = meta.get("flag") or "--" + f.name.replace("_", "-")
        kwargs: dict[str, Any] = {"dest": f.name, "help": meta.get("help", ""), "default": f.default}
        if meta.get("metavar"):
            kwargs["metavar"] = meta["metavar"]
        if f.name in required:
            kwargs["required"] = True
        choices = meta.get("choices") or literal_choices(hint)
        if hint is bool:
            kwargs["action"] = "store_true"
        elif get_origin(hint) is tuple:  # repeatable
            kwargs.update(action="append", default=None)
        elif choices:
            kwargs["choices"] = choices
        elif meta.get("parse"):
            kwargs["type"] = _argparse_type(meta["parse"])
        elif hint in (int, float):
            minimum = meta.get("minimum")
            kwargs["type"] = hint if minimum is None else number_at_least(hint, minimum)
        if isinstance(f.default, Path):
            kwargs["default"] = str(f.default)
        parser.add_argument(flag, **kwargs)


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An option's ``parse`` as an argparse type: its ValueError becomes the parser's message."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def _optional_inner(hint: Any) -> Any:
    """``X | None`` -> ``X``."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def options_from_args(options: type, args: argparse.Namespace) -> Any:
    hints = get_type_hints(options)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(options)}
    for f in dataclasses.fields(options):
        if values[f.name] is None and get_origin(hints[f.name]) is tuple:  # a repeatable flag never given
            values[f.name] = f.default
    return options(**values)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ray-diffnas",
        description="Architecture search for the denoising UNets of image diffusion models, on Ray Tune.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    search = commands.add_parser(
        "search",
        help="search UNet architectures for a diffusion model with Ray Tune",
        formatter_class=HelpFormatter,
    )
    add_options(search, SearchOptions)
    search.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="finish the search whose --output is DIR (stopped or killed); its saved options "
        "are used and the other flags, except --address and -v/-q, are ignored",
    )
    loudness = search.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="store_const",
        const=TUNE_OUTPUT,
        default=CONSOLE,
        help="Tune's own output (progress tables, trial configs) and what trials print, instead of one line "
        "per trial event",
    )
    loudness.add_argument(
        "-q",
        "--quiet",
        dest="verbosity",
        action="store_const",
        const=QUIET,
        help="print only the final summary (leaderboard, best trial, front, file paths)",
    )
    bench = commands.add_parser(
        "bench-table",
        help="judge searchers on a tabular benchmark (a table of architectures and their metrics)",
        formatter_class=HelpFormatter,
        description="Each seed of each searcher is a Ray Tune run whose trials look their architecture up in "
        "the table (one look-up = one query). Writes trajectories.parquet, summary.json and "
        "bench.png to --output and prints median best / mean regret per searcher.",
    )
    add_options(bench, BenchTableOptions)
    build = commands.add_parser(
        "build-table",
        help="train every architecture of a finite UNet space once and write a tabular benchmark",
        formatter_class=HelpFormatter,
        description="A Ray Tune grid over the space's architectures, each trained with the search's trainable at "
        "one budget. Writes --output/table.parquet (one row per architecture: RFID after every iteration, final "
        "and best RFID, latency, parameters, FLOPs, wall time); rerun the same command to resume a stopped build.",
    )
    add_options(build, BuildTableOptions)
    report = commands.add_parser(
        "report",
        help="rebuild the leaderboard and the HTML report of a search (finished, running, or killed)",
        formatter_class=HelpFormatter,
        description="Reads a search's --output folder (results.parquet, or Tune's experiment folder for a search "
        "still running or whose driver was killed, and the search memory) and writes DIR/report.html: one "
        "self-contained page that opens offline.",
    )
    report.add_argument("folder", metavar="DIR", help="the --output folder of a ray-diffnas search")
    report.add_argument(
        "--samples",
        type=int,
        default=3,
        metavar="N",
        help="draw samples from the best N models' checkpoints (0: none, and no model is loaded)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet = getattr(args, "verbosity", CONSOLE) == QUIET
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "verbosity", CONSOLE) < TUNE_OUTPUT:  # Tune's notes on where its files are, at -v only
        logging.getLogger("ray.tune").setLevel(logging.WARNING)
        # torch-geometric's own use of torch.jit.script, on import: nothing a user of this command can act on.
        warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)
    try:
        _resolve_paths_for_ray_job(args)
        if args.command == "search":
            return run_search_command(args)
        if args.command == "bench-table":
            return run_bench_table_command(args)
        if args.command == "build-table":
            return run_build_table_command(args)
        if args.command == "report":
            return run_report_command(args)
    except DiffNASError as error:
        print(f"ray-diffnas: error: {error}", file=sys.stderr)
        return 2
    except Stopped as stopped:
        print(f"ray-diffnas: {stopped}", file=sys.stderr)
        return 130  # the shell's code for a command ended by Ctrl-C
    return 1


def _resolve_paths_for_ray_job(args: argparse.Namespace) -> None:
    """Make the user's paths absolute, then, under a Ray job, leave its soon-deleted working dir."""
    for flag in ("output", "resume"):
        if getattr(args, flag, None) is not None:
            check_output_survives_job(f"--{flag}", getattr(args, flag))
    for flag in PATH_FLAGS:
        value = getattr(args, flag, None)
        if value is not None:
            setattr(args, flag, str(Path(value).expanduser().resolve()))
    space = getattr(args, "space", None)  # a space's JSON file, or its name (unet-bench:8), which stays as it is
    if space is not None and Path(space).expanduser().is_file():
        args.space = str(Path(space).expanduser().resolve())
    leave_job_working_dir()


def run_search_command(args: argparse.Namespace) -> int:
    from ray_diffnas.app.options import load_options

    if args.resume is not None:
        options = load_options(args.resume)
        options = dataclasses.replace(options, address=args.address or options.address)
        return _finish_search(options, resume=True, verbosity=args.verbosity)
    return _finish_search(options_from_args(SearchOptions, args), resume=False, verbosity=args.verbosity)


def _finish_search(options: SearchOptions, resume: bool, verbosity: int) -> int:
    options.check()  # a bad option answers at once, before Ray and torch are imported
    from ray_diffnas.app.run import run_search

    summary = run_search(options, resume=resume, verbosity=verbosity)
    table = summary.pop("leaderboard")
    (options.output / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, default=str))
    front = summary.get("front")
    order = "the Pareto front first (pareto_rank 0), then" if front is not None else ""
    order = f"the trials that meet the constraints first, then {order}" if options.constraints else order
    print(f"\nLeaderboard ({order} lower RFID is better; features: {summary['rfid_features']}):".replace("( ", "("))
    print(table)
    if front is not None:
        others = summary["objectives"][1:]
        print(f"\nPareto front of rfid against {', '.join(others)}: {len(front)} trial(s)")
        for point in front:
            values = ", ".join(f"{m} {point[m]:.3g}" for m in summary["objectives"])
            print(f"  {point['arch_key']}: {values}")
    print(
        f"\nBest trial {summary['best_trial_id']}: RFID {summary['best_rfid']:.3f} "
        f"(the same architecture untrained: {summary['untrained_rfid']:.3f}); "
        f"{summary['trials']} trials in {summary['wall_seconds']:.0f} s."
    )
    print(f"Results: {summary['results']}\nPlots: {summary['search_plot']}, {summary['samples_plot']}")
    print(f"Report: {summary['report']}")
    if "search_memory" in summary:
        print(f"Search memory: {summary['search_memory']}")
    return 0 if summary["trials_with_rfid"] else 1


def run_bench_table_command(args: argparse.Namespace) -> int:
    from ray_diffnas.bench.command import run_bench_table

    options = options_from_args(BenchTableOptions, args)
    result = run_bench_table(options)
    summary = result.summary
    constraints = f", {', '.join(summary['constraints'])}" if summary["constraints"] else ""
    print(
        f"\n{len(summary['searchers'])} searcher(s) x {len(summary['seeds'])} seed(s) x {options.budget} queries on "
        f"{summary['table']['rows']} architectures in {summary['wall_seconds']:.0f} s "
        f"({summary['objective']}:{summary['mode']}{constraints}):"
    )
    print(result.table_text())
    print("Files: " + ", ".join(str(p) for p in result.paths.values()))
    return 0


def run_build_table_command(args: argparse.Namespace) -> int:
    options = options_from_args(BuildTableOptions, args)
    options.check()  # a bad option answers at once, before Ray and torch are imported
    from ray_diffnas.bench.build import build_table

    result = build_table(options)
    meta = result.metadata
    print(
        f"\n{meta['rows_complete']} of {meta['architectures']} architectures trained in full "
        f"({meta['build_wall_seconds']:.0f} s of build time, {meta['train_seconds_total']:.0f} s of trial time)."
    )
    print(f"Table: {result.path}")
    print(f"Judge searchers on it: ray-diffnas bench-table --table {result.path} --objective {meta['objective']}")
    return 0 if meta["rows_complete"] == meta["architectures"] else 1


def run_report_command(args: argparse.Namespace) -> int:
    if args.samples < 0:
        raise DiffNASError(f"--samples must be 0 or more, but got {args.samples}.")
    from ray_diffnas.app.report.folder import read_search_folder
    from ray_diffnas.app.report.page import write_report
    from ray_diffnas.app.results import leaderboard

    folder = read_search_folder(args.folder)
    path = write_report(folder, samples=args.samples)
    print(f"Leaderboard of {folder.path} ({folder.state}, {len(folder.trials)} trials; lower RFID is better):")
    print(leaderboard(folder.trials))
    print(f"Report: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
