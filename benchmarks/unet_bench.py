"""Issue 17 end to end: build the digits UNet table and its noise floor, then judge every searcher on
it and on the NAS-Bench-201 development table. Every step resumes: a build goes on from its Tune
state, a comparison keeps each finished (searcher, seed) run, so a stopped run loses at most the
trial or run in flight. Run it again to go on; ``--steps`` picks steps.

Steps, in order (the commands are the ones a user would type):

1. ``build``: ``ray-diffnas build-table --dataset digits --space unet-bench`` (320 architectures,
   8 x 100 steps each, seed 0) into ``runs/table-digits8``; copied to ``benchmarks/tables/``.
2. ``noise``: 30 of them drawn at random (``--sample 30 --sample-seed 0``) trained again with seed 1.
3. ``floor``: ``benchmarks.noise_floor`` on the two tables.
4. ``compare``: ``ray-diffnas bench-table`` for each table x scheduler x seed set: the UNet table plain
   and with ASHA replay, the NAS-Bench-201 table plain; seeds 0-19 (where choices may be made) and
   100-119 (reported only); random, optuna (TPE), evolution, graph first, then gpt4 with the local
   model (the slowest), then the hybrid (issue 19), added to the same folders. Each finished
   (searcher, seed) run is also kept in ``benchmarks/results/unet_bench/runs/`` and reused on a
   rerun, on any machine.

5. ``tables``: the docs' markdown tables from the summaries.
6. ``choose``: which warm-up the hybrid takes by default, by the rule written before its runs (docs,
   "Choosing the warm-up"), from the summaries of seeds 0-19 only.

``--hybrid-warmup random|llm`` runs the hybrid with that warm-up in comparisons of their own
(``<comparison>-hybrid-warmup-<value>``), which take every other searcher's kept runs from the plain
comparison: how a variant of the hybrid is chosen on seeds 0-19 without running the rest again.

    python -m benchmarks.unet_bench [--steps build noise floor compare tables] [--budget 100]
        [--searchers random,optuna,evolution,graph] [--only unet-plain ...] [--seed-sets 0-19]
        [--hybrid-warmup random]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from ray_diffnas.app.options import parse_seeds
from ray_diffnas.atomic import atomic_write
from ray_diffnas.bench.build import BUILD_FILE
from ray_diffnas.bench.harness import RUNS_FOLDER, against_key, summary_references
from ray_diffnas.searchers.hybrid_warmup import DEFAULT_HYBRID_WARMUP, HYBRID_WARMUPS

RUNS = Path("runs")
TABLE = RUNS / "table-digits8" / "table.parquet"
NOISE_TABLE = RUNS / "table-digits8-seed1" / "table.parquet"
SHIPPED = Path("benchmarks/tables")
SHIPPED_TABLE = SHIPPED / "unet_digits8.parquet"  # the comparisons read the table the repository ships
NB201 = Path("../shared/data/nb201_cifar10_valid.csv")
RESULTS = Path("benchmarks/results/unet_bench")
BASELINES = "random,optuna,evolution,graph"
# Every searcher's mean regret is also given minus each of these searchers' (those in the comparison).
AGAINST = ("random", "graph", "gpt4")
SEED_SETS = ("0-19", "100-119")  # choose on the first, report on both


def ray_diffnas(*args: str) -> int:
    command = [sys.executable, "-m", "ray_diffnas", *args]
    print(f"\n$ {' '.join(command[2:])}", flush=True)
    start = time.perf_counter()
    process = subprocess.Popen(command)
    while True:
        try:
            code = process.wait()
            break
        except KeyboardInterrupt:  # Ctrl-C reached the command too: let it write what it has, then stop
            print("stopping: waiting for the command to write what it has", flush=True)
    print(f"exit {code} after {time.perf_counter() - start:.0f} s", flush=True)
    return code


def build_into(table: Path, shipped: Path, *flags: str) -> int:
    """Builds (or goes on building) ``table`` from what ``shipped`` already holds, then ships it.

    The shipped file is the build's carry-over between machines and sessions: its finished rows are
    reused (``--reuse-table``), and after a run that finished or was stopped with Ctrl-C (which still
    writes the table, unfinished rows marked) the new table replaces it. A table that is not complete
    says so in its metadata (``rows_complete`` of ``architectures``).
    """
    saved = table.parent / BUILD_FILE  # a build under way goes on with the options it started with
    if saved.is_file():
        reused = json.loads(saved.read_text()).get("reuse_table")
    else:
        reused = str(shipped.resolve()) if shipped.is_file() else None
    reuse = ["--reuse-table", reused] if reused else []
    before = table.stat().st_mtime if table.is_file() else None
    code = ray_diffnas("build-table", "--dataset", "digits", "--space", "unet-bench", *flags, *reuse,
                       "--output", str(table.parent))  # fmt: skip
    if table.is_file() and table.stat().st_mtime != before:
        shipped.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(table, shipped)
    return code


def build() -> None:
    if build_into(TABLE, SHIPPED_TABLE) != 0:
        raise SystemExit("the table is not complete yet: rerun to go on")


def noise() -> None:
    flags = ("--sample", "30", "--sample-seed", "0", "--seed", "1")
    if build_into(NOISE_TABLE, SHIPPED / "unet_digits8_seed1_sample30.parquet", *flags) != 0:
        raise SystemExit("the noise-floor table is not complete yet: rerun to go on")


def floor() -> None:
    subprocess.check_call(
        [sys.executable, "-m", "benchmarks.noise_floor", "--table", str(TABLE), "--other", str(NOISE_TABLE),
         "--output", "benchmarks/results/noise_floor_digits8.json"]
    )  # fmt: skip


COMPARISONS = {
    "unet-plain": ["--table", str(SHIPPED_TABLE)],
    "unet-asha": ["--table", str(SHIPPED_TABLE), "--scheduler", "asha"],
    "nb201-plain": ["--table", str(NB201), "--space", "nb201", "--objective", "cifar10_valid_acc:max"],
}
# The LLM searchers last: hours each (issue 19's hybrid beside issue 17's gpt4, on the same tables).
STAGES = (BASELINES, f"{BASELINES},gpt4", f"{BASELINES},gpt4,hybrid")
VARIANT_TAG = "-hybrid-warmup-"  # the name of a comparison of a variant of the hybrid: <comparison><tag><value>


def comparisons(
    budget: int,
    searchers: str | None = None,
    only: list[str] | None = None,
    seed_sets: list[str] | None = None,
    hybrid_warmup: str | None = None,
) -> list[tuple[str, list[str]]]:
    """(name, bench-table flags) for every comparison, fastest searchers first: each stage in ``STAGES``
    (or the one ``searchers`` list), over ``only`` these comparisons and ``seed_sets`` (default: all); with
    ``hybrid_warmup``, the comparisons of that variant of the hybrid (see the module's docstring); the
    default warm-up's are the plain comparisons."""
    if hybrid_warmup == DEFAULT_HYBRID_WARMUP:
        hybrid_warmup = None
    variant = ["--hybrid-warmup", hybrid_warmup] if hybrid_warmup else []
    plans = []
    for stage in (searchers,) if searchers else STAGES:
        against = [name for name in AGAINST if name in stage.split(",")]
        against_flags = ["--against", ",".join(against)] if against else []  # a lane of one searcher has none
        for seeds in seed_sets or SEED_SETS:
            for name, flags in COMPARISONS.items():
                if only and name not in only:
                    continue
                label = f"{name}-seeds{seeds}" + (f"{VARIANT_TAG}{hybrid_warmup}" if hybrid_warmup else "")
                plans.append(
                    (
                        label,
                        [*flags, "--searcher", stage, *against_flags, "--seeds", seeds, "--budget", str(budget),
                         "--llm", "local", *variant, "--output", str(RUNS / "compare" / label)],
                    )
                )  # fmt: skip
    return plans


def carry_runs(source: Path, target: Path, which: Callable[[str], bool] = lambda name: True) -> None:
    """Copies the finished (searcher, seed) runs of ``source`` that ``target`` lacks (those whose file name
    ``which`` accepts): bench-table reuses a kept run instead of running it again, so runs kept in the
    repository carry a comparison over sessions and machines (the LLM's runs take hours)."""
    if not source.is_dir():
        return
    target.mkdir(parents=True, exist_ok=True)
    for run in source.glob("*.parquet"):
        if which(run.name) and not (target / run.name).exists():  # atomic: two lanes may carry at once
            atomic_write(target / run.name, lambda tmp, run=run: shutil.copyfile(run, tmp))


def is_hybrid_run(file_name: str) -> bool:
    return file_name.startswith("hybrid-seed")


def run_kept(name: str, flags: list[str], results: Path, summary: bool = True) -> None:
    """One ``bench-table`` comparison whose finished runs are kept in ``results/runs/<name>`` (and reused
    from there), its summary written to ``results/<name>.json`` when it completes (unless ``summary`` is
    False: a part of a comparison). A comparison of a variant of the hybrid keeps only the hybrid's runs:
    the other searchers' are the plain comparison's."""
    results.mkdir(parents=True, exist_ok=True)
    output = Path(flags[flags.index("--output") + 1])
    kept = results / "runs" / name
    plain, variant, _ = name.partition(VARIANT_TAG)
    carry_runs(kept, output / RUNS_FOLDER)
    if variant:
        carry_runs(results / "runs" / plain, output / RUNS_FOLDER, lambda run: not is_hybrid_run(run))
    code = ray_diffnas("bench-table", *flags)
    carry_runs(output / RUNS_FOLDER, kept, is_hybrid_run if variant else lambda run: True)  # also when stopped
    if code == 0 and summary:
        summary = json.loads((output / "summary.json").read_text())
        (results / f"{name}.json").write_text(json.dumps(summary, indent=1))
        if (output / "bench.png").is_file():  # regret against queries, with the intervals
            shutil.copyfile(output / "bench.png", results / f"{name}.png")


def compare(
    budget: int,
    searchers: str | None,
    only: list[str] | None,
    seed_sets: list[str] | None,
    part: str | None = None,
    hybrid_warmup: str | None = None,
) -> None:
    run_plans(comparisons(budget, searchers, only, seed_sets, hybrid_warmup), RESULTS, part)


def run_plans(plans: list[tuple[str, list[str]]], results: Path, part: str | None = None) -> None:
    """Each comparison of ``plans`` with :func:`run_kept`. With ``part`` (e.g. ``0-9``) only those seeds, in a
    folder of their own: a second lane beside a full run on a machine with a spare core. Its runs go to the
    same kept folder, so the full comparison reuses them; it writes no summary (a part is not the comparison)."""
    outside = [name for name, flags in plans if part and not set(seed_list(part)) <= set(seed_list(seeds_of(flags)))]
    if outside:
        raise SystemExit(
            f"--part {part} holds seeds outside the seed set of {', '.join(outside)}; give a part of that set "
            f"(e.g. --seed-sets 100-119 --part 100-109)."
        )
    for name, flags in plans:
        if part:
            run_kept(name, part_flags(flags, part), results, summary=False)
        else:
            run_kept(name, flags, results)


def seeds_of(flags: list[str]) -> str:
    return flags[flags.index("--seeds") + 1]


def seed_list(text: str) -> list[int]:
    """The seeds ``bench-table --seeds`` runs for ``text`` (a count, or a range such as 100-119)."""
    try:
        seeds = parse_seeds(text)
    except ValueError as error:
        raise SystemExit(f"seeds {text!r}: {error}") from None
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)


def part_flags(flags: list[str], part: str) -> list[str]:
    """A comparison's ``bench-table`` flags for only the seeds ``part``, with an output folder of its own."""
    flags = list(flags)
    flags[flags.index("--seeds") + 1] = part
    output = Path(flags[flags.index("--output") + 1])
    flags[flags.index("--output") + 1] = str(output.with_name(f"{output.name}-part{part}"))
    return flags


def summary_table(
    summary: dict, heading: str, cell: Callable[[dict], str], last_heading: str, last: Callable[[dict], str]
) -> str:
    """A docs table of one comparison: a row per searcher, ``cell`` of each budget's statistics (10, 25, 50
    and 100 queries, those the run reached), then ``last`` of the largest budget's and the repeats."""
    counts = [c for c in ("10", "25", "50", "100") if c in next(iter(summary["searchers"].values()))["checkpoints"]]
    lines = [
        "| searcher | " + " | ".join(f"{heading} @{c} [95 %]" for c in counts) + f" | {last_heading} | dup |",
        "|---|" + "---|" * (len(counts) + 2),
    ]
    for name, stats in summary["searchers"].items():
        cells = [cell(stats["checkpoints"][c]) for c in counts]
        final = last(stats["checkpoints"][counts[-1]])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {final} | {sum(stats['duplicates'])} |")
    return "\n".join(lines)


def markdown(summary: dict) -> str:
    """The docs' table of one comparison: mean regret [bootstrap 95 %] and median regret per budget."""

    def mean_regret(point: dict) -> str:
        low, high = point["mean_regret_ci95"] or (None, None)
        return f"{point['mean_regret']:.3g} [{low:.3g}, {high:.3g}]" if low is not None else "-"

    return summary_table(
        summary, "mean regret", mean_regret, "median regret @100", lambda point: f"{point['median_regret']:.3g}"
    )


def sources_markdown(summary: dict) -> str:
    """The docs' table of where each searcher's trials came from and how good each source was, against
    chance at the same moments (a new architecture drawn uniformly); empty for a summary written before
    sources were counted."""

    def interval(bounds: list | None) -> str:
        return f" [{bounds[0]:.3g}, {bounds[1]:.3g}]" if bounds else ""

    lines = [
        "| searcher | source | share of queries | mean regret [95 %] | chance's | gain over chance [95 %] |",
        "|---|---|---|---|---|---|",
    ]
    for name, stats in summary["searchers"].items():
        for source, s in stats.get("sources", {}).items():
            regret = f"{s['mean_regret']:.3g}{interval(s['mean_regret_ci95'])}"
            gain = f"{s['gain_over_chance']:+.3g}{interval(s['gain_over_chance_ci95'])}"
            chance = f"{s['chance_mean_regret']:.3g}"
            lines.append(f"| {name} | {source} | {s['share']:.0%} | {regret} | {chance} | {gain} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def against_markdown(summary: dict, reference: str) -> str:
    """The docs' table of each searcher's mean regret minus ``reference``'s, per budget, with the
    bootstrap 95 % interval of the difference; empty for a summary written before it was computed."""
    searchers = summary["searchers"].items()
    rows = {name: stats[against_key(reference)] for name, stats in searchers if against_key(reference) in stats}
    if not rows:
        return ""
    counts = list(next(iter(rows.values())))
    lines = [
        "| searcher | " + " | ".join(f"@{c} [95 %]" for c in counts) + " |",
        "|---|" + "---|" * len(counts),
    ]
    for name, at in rows.items():
        cells = []
        for count in counts:
            point = at[count]
            bounds = point["mean_regret_difference_ci95"]
            value = point["mean_regret_difference"]
            cells.append(
                "-" if value is None else f"{value:+.3g}" + (f" [{bounds[0]:+.3g}, {bounds[1]:+.3g}]" if bounds else "")
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tables() -> None:
    for path in sorted(RESULTS.glob("*.json")):
        summary = json.loads(path.read_text())
        seeds = f"{summary['seeds'][0]}-{summary['seeds'][-1]}"
        print(f"\n{path.stem}: {summary['objective']}:{summary['mode']}, seeds {seeds}")
        print(markdown(summary))
        if sources := sources_markdown(summary):
            print(f"\nWhere the trials came from:\n{sources}")
        for reference in summary_references(summary):
            if against := against_markdown(summary, reference):
                print(f"\nMean regret minus {reference}'s (below 0: lower regret):\n{against}")


CHOICE_TABLES = ("unet-plain", "nb201-plain")  # the hybrid's warm-up is chosen on these, seeds 0-19 only
CHOICE_SEEDS = "0-19"
CHOICE_TIE = "llm"  # the default when the rule was written: a tie keeps it


def variant_summary(results: Path, name: str, hybrid_warmup: str) -> Path:
    """The summary of comparison ``name`` with the hybrid warming up on ``hybrid_warmup``: the plain
    comparison's for the default warm-up, else that variant's comparison's."""
    tag = "" if hybrid_warmup == DEFAULT_HYBRID_WARMUP else f"{VARIANT_TAG}{hybrid_warmup}"
    return results / f"{name}{tag}.json"


def choose(results: Path = RESULTS, tie: str = CHOICE_TIE) -> str:
    """The rule for the hybrid's default warm-up: over the cells (table x budget) of ``CHOICE_TABLES`` on
    seeds 0-19, the warm-up whose hybrid minus graph mean regret is lower in more cells; a tie keeps
    ``tie``. Reads each warm-up's summary where :func:`variant_summary` puts it, so the rule gives the
    same answer before and after the default changes."""
    other = next(w for w in HYBRID_WARMUPS if w != tie)
    wins = {tie: 0, other: 0}
    lines = [
        f"| table | @budget | hybrid ({tie}) minus graph | hybrid ({other}) minus graph | lower |",
        "|---|---|---|---|---|",
    ]
    for table in CHOICE_TABLES:
        name = f"{table}-seeds{CHOICE_SEEDS}"
        paths = {w: variant_summary(results, name, w) for w in (tie, other)}
        missing = [str(path) for path in paths.values() if not path.is_file()]
        if missing:
            raise SystemExit(f"no summary {', '.join(missing)}: run --steps compare for it first")
        against = {
            w: json.loads(path.read_text())["searchers"]["hybrid"][against_key("graph")] for w, path in paths.items()
        }
        for count in against[tie]:
            cells = {w: against[w][count] for w in (tie, other)}
            lower = min(cells, key=lambda w: cells[w]["mean_regret_difference"])
            wins[lower] += 1
            shown = [f"{c['mean_regret_difference']:+.3g} [{c['mean_regret_difference_ci95'][0]:+.3g}, "
                     f"{c['mean_regret_difference_ci95'][1]:+.3g}]" for c in cells.values()]  # fmt: skip
            lines.append(f"| {table} | {count} | {shown[0]} | {shown[1]} | {lower} |")
    chosen = other if wins[other] > wins[tie] else tie
    print("\n".join(lines))
    print(f"\ncells won: {wins}; the default warm-up: {chosen}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", nargs="+", default=["build", "noise", "floor", "compare", "tables"])
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--searchers", help="one comparison's searchers (default: each stage in turn)")
    parser.add_argument("--only", nargs="+", choices=sorted(COMPARISONS), help="these comparisons only")
    parser.add_argument("--seed-sets", nargs="+", choices=SEED_SETS, help="these seed sets only")
    parser.add_argument("--part", help="compare: only these seeds (e.g. 0-9), kept for a later full compare")
    parser.add_argument("--hybrid-warmup", choices=HYBRID_WARMUPS, help="compare: this variant of the hybrid")
    args = parser.parse_args()
    for step in args.steps:
        if step == "compare":
            compare(args.budget, args.searchers, args.only, args.seed_sets, args.part, args.hybrid_warmup)
        else:
            {"build": build, "noise": noise, "floor": floor, "tables": tables, "choose": choose}[step]()


if __name__ == "__main__":
    main()
