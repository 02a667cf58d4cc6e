"""Judge searchers on a tabular benchmark: ``ray-diffnas bench-table`` as a library.

A tabular benchmark is a table of (architecture -> metrics) measured once, e.g. NAS-Bench-201.
Each seed of each searcher is a real Ray Tune run whose trials look their architecture up in the
table (one lookup = one query), so a searcher is judged exactly as it runs in a real search,
only without the training. The harness records, per query, the best objective found so far and
the regret against the table's optimum, and writes:

- ``trajectories.parquet``: one row per (searcher, seed, query);
- ``summary.json``: per searcher, at 10/25/50/100/all queries: median best, mean and median regret
  with bootstrap 95 % intervals over seeds; queries to reach the optimum, the share of queries
  meeting the constraints, duplicate queries, wall time; and each searcher's mean regret minus that of
  each reference searcher (``against``: random search by default), with the bootstrap 95 % interval
  of the difference;
- ``bench.png``: mean regret against queries with its bootstrap 95 % band over seeds.

With ``scheduler="asha"`` (ASHA replay) a trial reports the table's curve of the objective one
iteration at a time (``rfid@1``, ``rfid@2``, ... of a table ``build-table`` wrote) and ASHA stops
weak trials as it would in a search; the budget is then counted in full trials' worth of
iterations (a trial stopped after 2 of 8 iterations costs 0.25), and a searcher's pick after a
budget is the trial with the best *reported* value, scored by its architecture's true final value.

Nothing here knows a particular benchmark: the space parses the architecture column and every
other numeric column is a metric.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from ray.tune import Callback, Stopper

from ray_diffnas.app.stop_signal import fit_watching_for_stop
from ray_diffnas.app.storage import make_output_folder
from ray_diffnas.bench.code_version import code_version
from ray_diffnas.bench.screen import screen_summary
from ray_diffnas.bench.sources import source_summary
from ray_diffnas.bench.stats import bootstrap_interval, difference_interval
from ray_diffnas.bench.table import ArchTable, TableError, load_table, read_table_metadata, table_file, write_table_file
from ray_diffnas.bench.table_trainable import TableLookup, lookup_trainable, replay_trainable
from ray_diffnas.errors import ConfigError, DiffNASError, Stopped
from ray_diffnas.searchers.factory import (
    LLM_SEARCHERS,
    MULTI_OBJECTIVE,
    SearcherSetup,
    check_searcher,
    make_searcher,
    parse_searchers,
)
from ray_diffnas.searchers.hybrid_warmup import DEFAULT_HYBRID_WARMUP, HYBRID_WARMUPS
from ray_diffnas.searchers.llm.endpoint import check_llm_model, check_llm_reachable, llm_model, local_llm_server
from ray_diffnas.searchers.objective import Constraint, Objective
from ray_diffnas.searchers.pareto import ParetoObjective
from ray_diffnas.spaces.registry import space_from_dict, space_from_spec
from ray_diffnas.text_table import format_table
from ray_diffnas.trainable.asha import GRACE_PERIOD, REDUCTION_FACTOR, asha_scheduler
from ray_diffnas.trainable.settings import PROPOSER_KEY

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

CHECKPOINTS = (10, 25, 50, 100)
REFERENCE_SEARCHER = "random"  # by default every other searcher's regret is also given as a difference from this one's


def against_key(reference: str) -> str:
    """The summary's key for a searcher's mean regret minus ``reference``'s (see :meth:`TableBenchmark.run`)."""
    return f"against_{reference}"


def summary_references(summary: Mapping[str, Any]) -> list[str]:
    """The searchers a summary compares the others with (one written before ``against``: random search)."""
    return list(summary.get("against", [REFERENCE_SEARCHER]))


RUNS_FOLDER = "runs"  # one finished run per file: a rerun of the benchmark resumes from them
RUN_METADATA_KEY = b"ray_diffnas.bench_run"
# 2: queries in the order trials started (before, a Searcher's trials were left in the result grid's order).
RUN_FORMAT = 2
# Settings a run of a searcher that asks no LLM does not depend on: its kept run serves any --llm/--model.
LLM_SETTINGS = ("llm", "model")
HYBRID_SETTINGS = ("hybrid_warmup",)  # settings only the hybrid searcher's runs depend on
# Settings added after runs were kept, with the value those runs had: a hybrid run kept before
# --hybrid-warmup existed served the LLM's candidates in its warm-up.
LEGACY_SETTINGS = {"hybrid_warmup": "llm"}
TABLE_DIGEST = "table_sha256"  # the run settings' key for the table file's content
BENCH_SCHEDULERS = ("none", "asha")
TRAJECTORY_COLUMNS = [
    "searcher",
    "seed",
    "query",
    "budget_used",
    "trial_id",
    "arch_key",
    "objective",
    "true_objective",
    "iterations",
    "in_table",
    "feasible",
    "duplicate",
    "best_so_far",
    "regret",
    "error",
]


def checkpoints(budget: int) -> list[int]:
    """The query counts a summary reports: 10, 25, 50, 100 (those within the budget) and the budget.

    Example:
        >>> checkpoints(60), checkpoints(8)
        ([10, 25, 50, 60], [8])
    """
    return sorted({c for c in CHECKPOINTS if c <= budget} | {budget})


@dataclass
class RunRecord:
    """One Tune run: one searcher, one seed.

    Attributes:
        searcher: The searcher's name.
        seed: Its seed.
        trajectory: One row per query, in the order the searcher suggested them (see
            ``TRAJECTORY_COLUMNS``).
        wall_seconds: Time of ``Tuner.fit`` (searcher and trials together).
        warmup: Queries the searcher declares as warm-up (its ``warmup`` attribute, else 0).
        screened_out: The LLM candidates the hybrid searcher's screen kept from running (key, kind, why),
            so that the table can say what they would have scored; empty for the other searchers.
        complete: Whether the run spent its budget, or its searcher found no new architecture to try;
            False for a run stopped part-way (Ctrl-C), which is neither kept nor summarised.
        stopped: Whether a Ctrl-C came during the run (Tune caught it); a run that still spent its budget
            is complete and kept, and the benchmark stops after it.
    """

    searcher: str
    seed: int
    trajectory: pd.DataFrame
    wall_seconds: float
    warmup: int = 0
    screened_out: list[dict[str, str]] = field(default_factory=list)
    complete: bool = True
    stopped: bool = False


@dataclass
class BenchResult:
    """What :meth:`TableBenchmark.run` produced: the trajectories, the summary and the files."""

    trajectories: pd.DataFrame
    summary: dict[str, Any]
    runs: list[RunRecord] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)

    def table_text(self) -> str:
        """The compact stdout table (searcher x checkpoint: median best / mean regret)."""
        return format_summary(self.summary)


class TableBenchmark:
    """Runs searchers on a table of architectures and scores them against the table's optimum.

    Args:
        table: The table (see :func:`ray_diffnas.bench.table.load_table`, or use :meth:`from_file`).
        objective: The numeric column to optimise.
        mode: ``max`` or ``min``.
        constraints: Bounds on other numeric columns, e.g. ``["latency_ms<=5"]``; the optimum
            and best-so-far then count feasible rows only.
        max_concurrent_trials: Trials at once. 1 (default) lets a model-based searcher see every
            result before its next suggestion, as in a real sequential search.
        warmup: Warm-up queries for the graph searcher (default: its own default).
        scheduler: ``none`` (each query looks a row up) or ``asha`` (replays each row's curve under
            ASHA; needs a table ``build-table`` wrote).
        reduction_factor: ASHA's reduction factor (as ``ray-diffnas search --reduction-factor``).
        grace_period: Iterations before ASHA first compares a trial (as ``ray-diffnas search --grace-period``).
        llm: ``openai`` or ``local``, for the LLM searchers, gpt4 and hybrid (as ``ray-diffnas search --llm``).
        model: The LLM searchers' model name.
        hybrid_warmup: What the hybrid searcher's warm-up serves: ``random`` draws or the ``llm``'s candidates.
        address: A Ray cluster address (default: a local Ray, started once for all runs).

    Example:
        >>> from ray_diffnas.spaces.nb201 import NB201Space
        >>> space = NB201Space()
        >>> rng = np.random.default_rng(0)
        >>> archs = {space.sample(rng).key() for _ in range(300)}
        >>> frame = pd.DataFrame({"arch": sorted(archs), "acc": [float(a.count("conv")) for a in sorted(archs)]})
        >>> bench = TableBenchmark(load_table(frame, space), "acc", "max")
        >>> bench.optimum >= 5.0
        True
        >>> result = bench.run(["random"], budget=5, seeds=1, output="/tmp/bench-doc")  # doctest: +SKIP
        >>> result.summary["searchers"]["random"]["checkpoints"]["5"]["median_best"]  # doctest: +SKIP
        5.0
    """

    def __init__(
        self,
        table: ArchTable,
        objective: str,
        mode: str = "max",
        constraints: Sequence[str | Constraint] = (),
        *,
        max_concurrent_trials: int = 1,
        warmup: int | None = None,
        scheduler: str = "none",
        reduction_factor: float = REDUCTION_FACTOR,
        grace_period: int = GRACE_PERIOD,
        llm: str = "openai",
        model: str | None = None,
        hybrid_warmup: str = DEFAULT_HYBRID_WARMUP,
        address: str | None = None,
    ) -> None:
        if max_concurrent_trials < 1:
            raise ConfigError(f"max_concurrent_trials must be >= 1, but got {max_concurrent_trials}.")
        if warmup is not None and warmup < 0:
            raise ConfigError(f"warmup must be >= 0, but got {warmup}.")
        self.table = table
        self.target = Objective(objective, mode, list(constraints))  # what "better" and "feasible" mean here
        self.objective, self.mode, self.constraints = objective, mode, list(self.target.constraints)
        table.require_metric(objective, "objective")
        for constraint in self.constraints:
            table.require_metric(constraint.metric, f"constraint {str(constraint)!r}")
        self.max_concurrent_trials = max_concurrent_trials
        self.warmup = warmup
        if scheduler not in BENCH_SCHEDULERS:
            raise ConfigError(f"scheduler must be one of {list(BENCH_SCHEDULERS)}, but got {scheduler!r}.")
        if scheduler == "asha" and not reduction_factor > 1:
            raise ConfigError(f"ASHA's reduction factor must be > 1, but got {reduction_factor}.")
        self.scheduler, self.reduction_factor, self.grace_period = scheduler, reduction_factor, grace_period
        self.curve = self._curve_columns() if scheduler == "asha" else ()
        if scheduler == "asha" and not 1 <= grace_period <= len(self.curve):
            raise ConfigError(
                f"ASHA's grace period must be from 1 to {len(self.curve)} (the table's curves have "
                f"{len(self.curve)} iterations), but got {grace_period}."
            )
        if hybrid_warmup not in HYBRID_WARMUPS:
            raise ConfigError(f"hybrid_warmup must be one of {list(HYBRID_WARMUPS)}, but got {hybrid_warmup!r}.")
        self.llm, self.model, self.hybrid_warmup, self.address = llm, model, hybrid_warmup, address
        self.feasible = {key: self._row_feasible(row) for key, row in table.rows.items()}
        self.optimum, self.optimum_key = self._find_optimum()
        # The driver resolves keys with the space it already has; trials get a light copy.
        self._driver_lookup = TableLookup(table.rows, table.aliases, table.space, table.columns)
        self._lookups: dict[bool, TableLookup] = {}

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        objective: str | None = None,
        *,
        space: str | Any | None = None,
        arch_column: str | None = None,
        constraints: Sequence[str] = (),
        **kwargs: Any,
    ) -> TableBenchmark:
        """Loads a CSV/Parquet table; ``objective`` is ``"COL:max"`` / ``"COL:min"``; ``space`` a
        space or its ``--space`` spelling (``nb201``, ``unet:32``, ``unet-bench:8``).

        A table ``build-table`` wrote records its space, architecture column and objective; those
        are the defaults. Otherwise the space defaults to ``nb201``, the column to ``arch``, and the
        objective must be given."""
        metadata = read_table_metadata(table_file(path)) or {}  # a missing file is that error, not "no objective"
        objective = objective or metadata.get("objective")
        if objective is None:
            raise ConfigError("--objective must be given (e.g. cifar10_valid_acc:max): the table records none.")
        target = Objective.parse(objective, constraints)  # a bad objective or constraint fails before the table is read
        table = open_table(path, space, arch_column)
        return cls(table, target.metric, target.mode, target.constraints, **kwargs)

    # --- the table's side -----------------------------------------------------------------

    def _curve_columns(self) -> tuple[str, ...]:
        """The objective's value after each iteration (ASHA replays them), from the table's metadata."""
        curve = self.table.metadata.get("curve") or {}
        columns = tuple(curve.get("columns") or ())
        if not columns:
            raise TableError(
                f"ASHA replay needs each architecture's curve (its objective after every iteration), which "
                f"'ray-diffnas build-table' records; {self.table.source!r} has none: use --scheduler none."
            )
        for column in columns:
            self.table.require_metric(column, "curve")
        return columns

    def _hidden_in_replay(self) -> tuple[str, ...]:
        """Columns a replayed trial must not report before its last iteration (they tell its final value)."""
        derived = tuple((self.table.metadata.get("curve") or {}).get("derived") or ())
        return tuple(dict.fromkeys((*self.curve, *derived, self.objective)))

    def _row_feasible(self, row: dict[str, float]) -> bool:
        return self.target.value(row) is not None and self.target.feasible(row)

    def _find_optimum(self) -> tuple[float, str]:
        candidates = [(row[self.objective], key) for key, row in self.table.rows.items() if self.feasible[key]]
        if not candidates:
            if self.constraints:
                raise TableError(
                    f"No row of {self.table.source!r} meets the constraints "
                    f"{[str(c) for c in self.constraints]}; loosen them ({self._ranges()})."
                )
            raise TableError(f"The objective column {self.objective!r} of {self.table.source!r} has no numbers.")
        value, key = min(candidates, key=lambda item: self.target.sort_key(item[0]))
        return float(value), key

    def _ranges(self) -> str:
        parts = []
        for metric in dict.fromkeys(c.metric for c in self.constraints):
            values = [row[metric] for row in self.table.rows.values() if not math.isnan(row[metric])]
            if values:
                parts.append(f"{metric} ranges from {min(values):g} to {max(values):g}")
        return "; ".join(parts) or "the constrained columns have no numbers"

    def table_info(self) -> dict[str, Any]:
        """The table and its optimum, as written to ``summary.json``."""
        return {
            "source": self.table.source,
            "arch_column": self.table.arch_column,
            "rows": len(self.table),
            "skipped_rows": self.table.skipped_rows,
            "duplicate_rows": self.table.duplicate_rows,
            "metrics": list(self.table.columns),
            "feasible_rows": int(sum(self.feasible.values())),
            "optimum": self.optimum,
            "optimum_arch": self.optimum_key,
            "optimum_row": self.table.row_numbers[self.optimum_key],
            "uniform_draw_mean_regret": self.uniform_draw_regret(),
            "built_with": {k: self.table.metadata.get(k) for k in ("dataset", "image_size", "training", "seed")}
            if self.table.metadata
            else None,
        }

    # --- searchers --------------------------------------------------------------------------

    def check_searchers(self, names: str | Iterable[str]) -> list[str]:
        """Parses the names and checks each can run here (optional packages, flat space, LLM access)."""
        chosen = parse_searchers(names if isinstance(names, str) else list(names))
        for name in chosen:
            check_searcher(name, self.table.space)
        single = [name for name in chosen if name not in MULTI_OBJECTIVE]
        if isinstance(self.searched_objective(), ParetoObjective) and single:  # now, not after the others' runs
            raise ConfigError(
                f"--searcher {single[0]} takes one objective; with several use one of {', '.join(MULTI_OBJECTIVE)}."
            )
        if set(LLM_SEARCHERS) & set(chosen):
            check_llm_reachable(self.llm, next(name for name in chosen if name in LLM_SEARCHERS))
            check_llm_model(self.llm, self.model)
        return chosen

    def make_searcher(self, name: str, seed: int, budget: int, llm_url: str | None = None) -> SearcherSetup:
        """The Tune search algorithm for ``name`` and the ``param_space`` it searches."""
        model = llm_model(self.llm, self.model)
        return make_searcher(
            name,
            self.table.space,
            self.searched_objective(),
            seed=seed,
            budget=self.max_trials(budget),
            max_concurrent=self.max_concurrent_trials,
            warmup=self.warmup,
            llm_model=model,
            llm_url=llm_url,
            hybrid_warmup=self.hybrid_warmup,
        )

    # --- running ----------------------------------------------------------------------------

    def run(
        self,
        searchers: str | Iterable[str],
        budget: int,
        seeds: int | Sequence[int],
        output: str | os.PathLike,
        *,
        plot: bool = True,
        against: str | Iterable[str] | None = None,
    ) -> BenchResult:
        """Runs every searcher for every seed and writes the trajectories, summary and plot.

        Args:
            searchers: Names from ``SEARCHERS`` (a list or a comma-separated string).
            budget: Queries (Tune trials) per run; under ASHA replay, full trials' worth of iterations.
            seeds: A count K (seeds 0..K-1) or the seeds themselves.
            output: The folder for ``trajectories.parquet``, ``summary.json``, ``bench.png``, each
                finished run (``runs/<searcher>-seed<seed>.parquet``: run again, the benchmark keeps
                the runs made with the same settings, and refuses to replace one made with others) and
                Tune's own files (``tune/<searcher>-seed<seed>``).
            plot: Whether to draw ``bench.png``.
            against: Searchers (run by this call) that every other searcher is compared with: its mean
                regret minus theirs at each budget, with the bootstrap 95 % interval of the difference
                (``against_<name>`` in the summary). Default: random search, where it runs.
        """
        if not isinstance(budget, int) or budget < 1:
            raise ConfigError(f"The budget must be a positive number of queries, but got {budget!r}.")
        seed_list = _seeds(seeds)
        chosen = self.check_searchers(searchers)
        references = _references(against, chosen)
        output = Path(output).expanduser().resolve()
        self.check_kept_runs(chosen, seed_list, budget, output)
        code_version()  # taken now, as the runs start: what each kept run records
        make_output_folder(output)
        runs: list[RunRecord] = []
        start = time.perf_counter()
        with self._llm_server(chosen) as llm_url:
            for name in chosen:
                for seed in seed_list:
                    run = self.cached_run(name, seed, budget, output, llm_url=llm_url)
                    if not run.complete:  # Tune caught a Ctrl-C and ended the run early: stop here
                        raise Stopped(
                            f"Stopped: {name} seed {seed} ended after {_ran(run.trajectory).sum()} queries, before its "
                            f"budget, and is not kept. Finished runs ({len(runs)} in this command) are kept in "
                            f"{output / RUNS_FOLDER}: run the same command again to go on from there."
                        )
                    runs.append(run)
                    if run.stopped:  # a Ctrl-C came as the run's last trials finished: it is kept, and so stops
                        raise Stopped(
                            f"Stopped: {name} seed {seed} spent its budget as Ctrl-C came, and is kept. Finished runs "
                            f"({len(runs)} in this command) are kept in {output / RUNS_FOLDER}: run the same command "
                            f"again to go on from there."
                        )
        trajectories = pd.concat([r.trajectory for r in runs], ignore_index=True)
        summary = self.summarize(runs, budget, against=references)
        summary["wall_seconds"] = round(time.perf_counter() - start, 2)
        return self._write(BenchResult(trajectories, summary, runs), output, plot, budget)

    def max_trials(self, budget: int) -> int:
        """Trials a run may start: the budget, or under ASHA replay one per iteration of it (the
        iteration budget stops the run first)."""
        return budget * len(self.curve) if self.scheduler == "asha" else budget

    def _init_ray(self) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, configure_logging=False)

    def _llm_server(self, chosen: list[str]) -> contextlib.AbstractContextManager[str | None]:
        if not set(LLM_SEARCHERS) & set(chosen):
            return contextlib.nullcontext(None)
        return local_llm_server(self.llm)  # one server for every LLM searcher's run (None: the OpenAI API)

    @functools.cached_property
    def table_digest(self) -> str | None:
        """The SHA-256 of the table's file (None for a table given as a DataFrame)."""
        path = Path(self.table.source)
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None

    def run_settings(self, budget: int) -> dict[str, Any]:
        """What a finished run's result depends on besides its searcher and seed: a cached run counts
        only when these match."""
        return {
            "format": RUN_FORMAT,
            "table": Path(self.table.source).name,  # the file, not where it lies: kept runs serve any checkout
            TABLE_DIGEST: self.table_digest,
            "rows": len(self.table),
            "optimum": self.optimum,
            "objective": self.objective,
            "mode": self.mode,
            "constraints": [str(c) for c in self.constraints],
            "budget": budget,
            "scheduler": self.scheduler,
            "reduction_factor": self.reduction_factor,
            "grace_period": self.grace_period if self.scheduler == "asha" else None,
            "max_concurrent_trials": self.max_concurrent_trials,
            "warmup": self.warmup,
            "llm": self.llm,
            "model": self.model,
            "hybrid_warmup": self.hybrid_warmup,
        }

    def check_kept_runs(self, names: Sequence[str], seeds: Sequence[int], budget: int, output: Path) -> None:
        """Refuses, before any run, to replace a run kept in ``output`` with other settings (another budget,
        table or scheduler): it may be hours of compute, and its folder says nothing of them.

        Raises:
            ConfigError: naming the kept run, the settings that differ, and the fix.
        """
        settings = json.dumps(_jsonable(self.run_settings(budget)), sort_keys=True)
        for name in names:
            for seed in seeds:
                path = output / RUNS_FOLDER / f"{name}-seed{seed}.parquet"
                kept = _kept_settings(path)
                differences = {} if kept is None else _settings_differences(kept, settings, _settings_not_used_by(name))
                if differences:
                    listed = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in differences.items())
                    raise ConfigError(
                        f"{str(path)!r} is a run kept with other settings ({listed}); pass another --output to run "
                        f"with these, or rerun with its settings to reuse it."
                    )

    def cached_run(self, name: str, seed: int, budget: int, output: Path, llm_url: str | None = None) -> RunRecord:
        """:meth:`run_one`, kept in ``output/runs/<searcher>-seed<seed>.parquet``: a benchmark stopped
        part-way and run again reruns only the runs it had not finished (with the same settings)."""
        path = output / RUNS_FOLDER / f"{name}-seed{seed}.parquet"
        settings = json.dumps(_jsonable(self.run_settings(budget)), sort_keys=True)
        cached = _read_cached_run(path, settings, ignore=_settings_not_used_by(name))
        if cached is not None:
            logger.info("%s seed %d: kept from %s.", name, seed, path)
            self._charge_no_pick(cached.trajectory)  # runs kept before the rule left these NaN
            return cached
        record = self.run_one(name, seed, budget, output / "tune", llm_url=llm_url)
        if not record.complete:
            return record  # stopped part-way: keeping it would pass a cut-short run off as a finished one
        meta = {
            "settings": settings,
            "code": code_version(),  # recorded, not matched (see ray_diffnas.bench.code_version)
            "wall_seconds": record.wall_seconds,
            "warmup": record.warmup,
            "screened_out": record.screened_out,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        write_table_file(record.trajectory, path, meta, key=RUN_METADATA_KEY)
        return record

    def run_one(
        self, name: str, seed: int, budget: int, storage: str | os.PathLike[str], llm_url: str | None = None
    ) -> RunRecord:
        """One Tune run of one searcher; returns its trajectory (starts a local Ray, or joins ``address``,
        unless Ray is running)."""
        from ray import tune
        from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

        self._init_ray()  # here, not before the runs: a benchmark whose runs are all kept needs no Ray
        search_alg, param_space = self.make_searcher(name, seed, budget, llm_url)
        generator = type(search_alg).__name__ == "BasicVariantGenerator"
        lookup = self._trial_lookup(flat="arch" not in param_space)
        started = StartOrder()
        if self.scheduler == "asha":
            trainable = tune.with_parameters(
                replay_trainable,
                lookup=lookup,
                curve=self.curve,
                hidden=self._hidden_in_replay(),
                metric=self.objective,
            )
            scheduler: Any = asha_scheduler(len(self.curve), self.grace_period, self.reduction_factor)
            stop: Any = IterationBudget(budget * len(self.curve))
        else:
            trainable, scheduler, stop = tune.with_parameters(lookup_trainable, lookup=lookup), None, None
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                **self.tune_objective(),
                num_samples=self.max_trials(budget),
                search_alg=search_alg,
                scheduler=scheduler,
                max_concurrent_trials=None if generator else self.max_concurrent_trials,
                reuse_actors=True,  # one worker per run: a fresh actor per trial costs seconds
            ),
            run_config=tune.RunConfig(
                storage_path=str(Path(storage).resolve()),
                name=f"{name}-seed{seed}",
                verbose=0,
                stop=stop,
                callbacks=[CSVLoggerCallback(), JsonLoggerCallback(), started],
            ),
        )
        start = time.perf_counter()
        # Tune prints its experiment banner even at verbose=0: keep stdout for the harness's table.
        banner = io.StringIO()
        with contextlib.redirect_stdout(banner), _without_tensorboard_logger():
            grid, stopped = fit_watching_for_stop(tuner)
        wall = time.perf_counter() - start
        logger.debug("Tune: %s", banner.getvalue().strip())
        warmup = getattr(search_alg, "warmup", 0)
        warmup = int(warmup) if isinstance(warmup, (int, np.integer)) else 0
        frame = self.trajectory(
            name,
            seed,
            [(r.metrics or {}, r.config or {}, r.error) for r in (grid[i] for i in range(len(grid)))],
            order=started.order,
        )
        logger.info(
            "%s seed %d: %d queries in %.1f s (%.3f s per query).",
            name,
            seed,
            len(frame),
            wall,
            wall / max(len(frame), 1),
        )
        _check_llm_answered(search_alg, name, seed)
        screen = getattr(search_alg, "llm_screen", None)  # the hybrid's: what it kept the LLM from running
        # Tune ends a run early, without an error, when it catches Ctrl-C (SIGINT); the trials Tune's own
        # searchers had queued are then in the result grid without having run.
        ran = _ran(frame).all()
        complete = ran and (self._spent_budget(frame, budget) or bool(getattr(search_alg, "exhausted", False)))
        screened = list(screen["screened_out"]) if screen else []
        return RunRecord(name, seed, frame, wall, warmup, screened, complete, stopped)

    def _spent_budget(self, frame: pd.DataFrame, budget: int) -> bool:
        """Whether a run's queries (under ASHA replay, its iterations in full trials' worth) reached ``budget``."""
        if len(frame) >= self.max_trials(budget):
            return True
        return self.scheduler == "asha" and len(frame) > 0 and float(frame["budget_used"].iloc[-1]) >= budget - 1e-9

    def searched_objective(self) -> Any:
        """What the searchers are given to optimise (the objective and the constraints)."""
        return self.target

    def regret_label(self) -> str:
        """What a query's regret is, in words (the plot's axis)."""
        return f"regret in {self.objective} (0 = the table's best)"

    def tune_objective(self) -> dict[str, Any]:
        """``TuneConfig``'s metric and mode (what ASHA and the searchers Tune configures go by)."""
        return {"metric": self.objective, "mode": self.mode}

    def scored_metrics(self) -> list[str]:
        """The table's columns each query's row carries into the trajectory besides the objective
        (the constraints' metrics: a feasible pick is judged by them)."""
        return list(dict.fromkeys(c.metric for c in self.constraints))

    def _trial_lookup(self, flat: bool) -> TableLookup:
        if flat not in self._lookups:
            self._lookups[flat] = self.table.lookup(flat=flat)
        return self._lookups[flat]

    # --- scoring ----------------------------------------------------------------------------

    def trajectory(
        self, name: str, seed: int, trials: Sequence[tuple[dict, dict, Any]], order: Mapping[str, int] | None = None
    ) -> pd.DataFrame:
        """Rows of one run from its trials' ``(last result, config, error)``, in suggestion order:
        ``order`` maps each trial id to its place (what :class:`StartOrder` saw); without it, the
        counter in ``<experiment>_<00000>`` ids (Tune's random search names trials so)."""
        rows = []
        for metrics, config, error in trials:
            key = self._driver_lookup.key(config)
            row = self.table.rows.get(key) if key is not None else None
            value = self.target.value(metrics)
            objective = value if error is None and value is not None else math.nan
            true_value = self.target.value(row or {})
            rows.append(
                {
                    "searcher": name,
                    "seed": seed,
                    "trial_id": str(metrics.get("trial_id", "")),
                    "arch_key": key,
                    "objective": objective,
                    "true_objective": math.nan if true_value is None else true_value,
                    "iterations": int(metrics.get("training_iteration") or 0),
                    "in_table": row is not None,
                    "proposer": config.get(PROPOSER_KEY),  # the project searchers say who proposed each trial
                    "feasible": bool(row is not None and key is not None and error is None and self.feasible[key]),
                    "error": None if error is None else f"{type(error).__name__}: {str(error)[:300]}",
                    **{metric: (row or {}).get(metric, math.nan) for metric in self.scored_metrics()},
                }
            )
        measured = ["searcher", "seed", "trial_id", "arch_key", "objective", "true_objective", "iterations"]
        measured += ["in_table", "proposer", "feasible", "error"]
        frame = pd.DataFrame(rows, columns=measured + self.scored_metrics())
        # Tune's result grid is not in suggestion order; a Searcher's trials have ids without a counter.
        place = [order.get(t, 1 << 62) for t in frame["trial_id"]] if order else map(_trial_number, frame["trial_id"])
        frame = frame.iloc[np.argsort(list(place), kind="stable")]
        return self._with_progress(frame.reset_index(drop=True))

    def _count_queries(self, frame: pd.DataFrame) -> None:
        """Adds the query number, the budget used (queries; under ASHA replay, full trials' worth of
        iterations) and whether each query repeats an earlier architecture."""
        frame["query"] = np.arange(1, len(frame) + 1)
        if self.scheduler == "asha":
            frame["budget_used"] = frame["iterations"].clip(lower=1).cumsum() / len(self.curve)
        else:
            frame["budget_used"] = frame["query"].astype(float)
        keys = frame["arch_key"]
        frame["duplicate"] = keys.notna() & keys.duplicated()

    def _with_progress(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Adds the query number, the budget used (queries; under ASHA replay, full trials' worth of
        iterations), duplicates, the pick so far (best reported value) scored by its true value, and regret."""
        self._count_queries(frame)
        picked: float | None = None  # the best reported value so far: what the search would pick
        best_so_far, true_of_pick = [], math.nan
        for value, true_value, feasible in zip(frame["objective"], frame["true_objective"], frame["feasible"]):
            if feasible and self.target.better(value, picked):
                picked, true_of_pick = float(value), float(true_value)
            best_so_far.append(true_of_pick)
        frame["best_so_far"] = best_so_far
        frame["regret"] = (self.optimum - frame["best_so_far"]).abs()  # the optimum is the best feasible row
        self._charge_no_pick(frame)
        return frame[TRAJECTORY_COLUMNS + [c for c in frame.columns if c not in TRAJECTORY_COLUMNS]]

    def summarize(
        self, runs: Sequence[RunRecord], budget: int, against: Sequence[str] = (REFERENCE_SEARCHER,)
    ) -> dict[str, Any]:
        """The ``summary.json`` contents for these runs (see the module docstring); each searcher's mean
        regret is also compared with each searcher of ``against`` that ran."""
        by_searcher: dict[str, list[RunRecord]] = {}
        for run in runs:
            by_searcher.setdefault(run.searcher, []).append(run)
        searchers = {name: self._summarize_searcher(group, budget) for name, group in by_searcher.items()}
        references = [name for name in against if name in by_searcher]
        for reference in references:
            for name, group in by_searcher.items():
                if name != reference:
                    searchers[name][against_key(reference)] = _against(group, by_searcher[reference], budget)
        return {
            "objective": self.objective,
            "mode": self.mode,
            "constraints": [str(c) for c in self.constraints],
            "budget": budget,
            "scheduler": self.scheduler,
            "reduction_factor": self.reduction_factor if self.scheduler == "asha" else None,
            "grace_period": self.grace_period if self.scheduler == "asha" else None,
            "seeds": sorted({r.seed for r in runs}),
            "table": self.table_info(),
            "against": references,
            "searchers": searchers,
        }

    def _summarize_searcher(self, runs: list[RunRecord], budget: int) -> dict[str, Any]:
        at = {}
        for count in checkpoints(budget):
            best, regret = values_at(runs, "best_so_far", count), values_at(runs, "regret", count)
            at[str(count)] = {
                "queries": count,
                "median_best": _stat(np.nanmedian, best),
                "mean_best": _stat(np.nanmean, best),
                "mean_regret": _stat(np.nanmean, regret),
                "mean_regret_ci95": bootstrap_interval(regret, np.mean),
                "median_regret": _stat(np.nanmedian, regret),
                "median_regret_ci95": bootstrap_interval(regret, np.median),
                "seeds_with_a_feasible_query": int(np.sum(~np.isnan(best))),
            }
        reached = [self._queries_to_optimum(r.trajectory) for r in runs]
        warmup = max(r.warmup for r in runs)
        everything = pd.concat([r.trajectory for r in runs])
        late = everything[everything["query"] > warmup]
        wall = [round(r.wall_seconds, 2) for r in runs]
        queries = int(sum(len(r.trajectory) for r in runs))
        return {
            "checkpoints": at,
            "queries_to_optimum": reached,
            "median_queries_to_optimum": _median_or_none(reached),
            "feasible_share": _share(everything["feasible"]),
            "warmup": warmup,
            "feasible_share_after_warmup": _share(late["feasible"]),
            "duplicates": [int(r.trajectory["duplicate"].sum()) for r in runs],
            "not_in_table": [int((~r.trajectory["in_table"]).sum()) for r in runs],
            "errors": [int(r.trajectory["error"].notna().sum()) for r in runs],
            "queries": [len(r.trajectory) for r in runs],
            "wall_seconds": wall,
            "seconds_per_query": round(sum(wall) / max(queries, 1), 4),
            **({"llm_screen": screen} if (screen := self._screen_summary(runs)) else {}),
            **({"sources": sources} if (sources := self._source_summary(runs)) else {}),
        }

    def _screen_summary(self, runs: list[RunRecord]) -> dict[str, Any] | None:
        """What the LLM candidates served and screened out were worth (see :func:`screen_summary`)."""
        return screen_summary(runs, self._true_value, self.optimum)

    def _source_summary(self, runs: list[RunRecord]) -> dict[str, Any] | None:
        """Each source's queries and mean regret against chance's (see :func:`source_summary`)."""
        return source_summary(runs, self._row_regrets)

    @functools.cached_property
    def _row_regrets(self) -> dict[str, float]:
        """Every row's regret (its objective's distance from the optimum), by architecture key: computed
        once, for the table's summary and each searcher's sources."""
        values = {key: self.target.value(row) for key, row in self.table.rows.items()}
        return {key: abs(self.optimum - float(v)) for key, v in values.items() if v is not None and np.isfinite(v)}

    def _charge_no_pick(self, trajectory: pd.DataFrame) -> None:
        """A search with no feasible query yet has no pick: its regret is the worst feasible row's, so that
        a seed that only proposed infeasible architectures counts in the mean (as the worst), not out of it."""
        if trajectory["regret"].isna().any():
            trajectory["regret"] = trajectory["regret"].fillna(self.no_pick_regret)

    @functools.cached_property
    def no_pick_regret(self) -> float:
        """The regret of the worst feasible row: what a search is charged before its first feasible query."""
        return max(r for key, r in self._row_regrets.items() if self.feasible.get(key))

    def uniform_draw_regret(self) -> float | None:
        """The mean regret of one architecture drawn uniformly from the table."""
        return float(np.mean(list(self._row_regrets.values())))

    def _true_value(self, key: str) -> float | None:
        """The table's value of the objective for an architecture key (None: not in the table)."""
        row = self.table.rows.get(key)
        return None if row is None else self.target.value(row)

    def _queries_to_optimum(self, trajectory: pd.DataFrame) -> float | None:
        """The budget used when the search's pick first was the optimum (None: never)."""
        hit = np.isclose(trajectory["best_so_far"], self.optimum, rtol=1e-12, atol=0.0)
        return float(trajectory.loc[hit, "budget_used"].iloc[0]) if hit.any() else None

    # --- files ------------------------------------------------------------------------------

    def _write(self, result: BenchResult, output: Path, plot: bool, budget: int) -> BenchResult:
        paths = {"trajectories": output / "trajectories.parquet", "summary": output / "summary.json"}
        result.trajectories.to_parquet(paths["trajectories"], index=False)
        if plot:
            from ray_diffnas.bench.plot import plot_bench

            paths["plot"] = plot_bench(
                result.trajectories,
                self.optimum,
                output / "bench.png",
                objective=self.objective,
                budget=budget,
                asha=self.scheduler == "asha",
                ylabel=self.regret_label(),
            )
        result.summary["files"] = {name: str(path) for name, path in paths.items()}
        paths["summary"].write_text(json.dumps(_jsonable(result.summary), indent=1))
        result.paths = paths
        return result


def open_table(path: str | os.PathLike, space: str | Any | None = None, arch_column: str | None = None) -> ArchTable:
    """Reads a benchmark table. A table ``build-table`` wrote records its space and architecture
    column (the defaults here); otherwise the space defaults to ``nb201`` and the column to ``arch``.
    ``space`` is a space or its ``--space`` spelling (``nb201``, ``unet:32``, ``unet-bench:8``)."""
    metadata = read_table_metadata(path) or {}
    if space is None:
        space = space_from_dict(metadata["space"]) if "space" in metadata else space_from_spec("nb201")
    elif isinstance(space, str):
        space = space_from_spec(space)
    arch_column = arch_column or metadata.get("arch_column") or "arch"
    if metadata.get("rows_complete", 0) < metadata.get("architectures", 0):
        logger.warning(
            "%s is a build that is not complete: %d of %d architectures have a final value, and regret "
            "is measured against the best of those; finish it with the command that built it.",
            path,
            metadata["rows_complete"],
            metadata["architectures"],
        )
    return load_table(path, space, arch_column)


def _against(runs: list[RunRecord], reference: list[RunRecord], budget: int) -> dict[str, Any]:
    """At each checkpoint: this searcher's mean regret minus the reference's, with the bootstrap 95 %
    interval of the difference (negative: lower regret than the reference)."""
    at = {}
    for count in checkpoints(budget):
        mine, theirs = values_at(runs, "regret", count), values_at(reference, "regret", count)
        mean, reference_mean = _stat(np.nanmean, mine), _stat(np.nanmean, theirs)
        at[str(count)] = {
            "mean_regret_difference": None if mean is None or reference_mean is None else mean - reference_mean,
            "mean_regret_difference_ci95": difference_interval(mine, theirs),
        }
    return at


def format_summary(summary: dict[str, Any]) -> str:
    """A fixed-width table: one line per searcher, ``median best / mean regret`` per checkpoint."""
    counts = [int(c) for c in next(iter(summary["searchers"].values()))["checkpoints"]] if summary["searchers"] else []
    header = ["searcher"] + [f"q={c}" for c in counts] + ["median q to opt", "dup", "s/query"]
    lines = []
    for name, stats in summary["searchers"].items():
        cells = [name]
        for c in counts:
            point = stats["checkpoints"][str(c)]
            interval = point.get("mean_regret_ci95")
            spread = f" [{_fmt(interval[0])}, {_fmt(interval[1])}]" if interval else ""
            cells.append(f"{_fmt(point['median_best'])} / {_fmt(point['mean_regret'])}{spread}")
        reached = stats["median_queries_to_optimum"]
        cells += [
            "never" if reached is None else f"{reached:g}",
            str(sum(stats["duplicates"])),
            f"{stats['seconds_per_query']:.3f}",
        ]
        lines.append(cells)
    text = [
        f"median best {summary['objective']} / mean regret [bootstrap 95 % interval] after q "
        f"{'full trials of compute (ASHA replay)' if summary.get('scheduler') == 'asha' else 'queries'}, "
        f"over {len(summary['seeds'])} seed(s):",
        format_table(header, lines),
    ]
    table = summary["table"]
    if "front" in table:  # several objectives (ParetoBenchmark)
        reference = ", ".join(f"{m} {_fmt(v)}" for m, v in table["reference_point"].items())
        text.append(
            f"the table's true front: {len(table['front'])} architectures ({', '.join(summary['objectives'])}); "
            f"hypervolume reference point: {reference}"
        )
    else:
        text.append(
            f"table optimum {summary['objective']} = {_fmt(table['optimum'])} ({summary['mode']}) at row "
            f"{table['optimum_row']}: {table['optimum_arch']}"
        )
        text += _sources_text(summary) + _against_text(summary)
    return "\n".join(text)


def _against_text(summary: dict[str, Any]) -> list[str]:
    """Per reference searcher, one line per other searcher: the difference of mean regrets per checkpoint."""
    text = []
    for reference in summary_references(summary):
        lines = []
        for name, stats in summary["searchers"].items():
            if against_key(reference) in stats:
                parts = []
                for count, point in stats[against_key(reference)].items():
                    interval = point["mean_regret_difference_ci95"]
                    spread = f" [{_fmt(interval[0])}, {_fmt(interval[1])}]" if interval else ""
                    parts.append(f"q={count} {_fmt(point['mean_regret_difference'])}{spread}")
                lines.append(f"  {name}: {', '.join(parts)}")
        if lines:
            text += [f"mean regret minus {reference}'s [bootstrap 95 % interval]; below 0: lower regret", *lines]
    return text


def _references(against: str | Iterable[str] | None, chosen: Sequence[str]) -> list[str]:
    """The searchers to compare the others with: by default random search (where it runs, as
    :meth:`TableBenchmark.summarize` keeps only those that ran); named ones must run."""
    if against is None:
        return [REFERENCE_SEARCHER]
    names = parse_searchers(against if isinstance(against, str) else list(against))
    missing = [name for name in names if name not in chosen]
    if missing:
        raise ConfigError(
            f"--against {','.join(missing)}: a searcher to compare with must run in the same command; "
            f"add it to --searcher (now {','.join(chosen)})."
        )
    return names


def _sources_text(summary: dict[str, Any]) -> list[str]:
    """One line per searcher that names its sources: each source's share and mean regret, and chance's
    (a new architecture drawn uniformly) at the same moments of its runs."""
    lines = []
    for name, stats in summary["searchers"].items():
        if "sources" in stats:
            parts = [
                f"{s} {v['share']:.0%} ({_fmt(v['mean_regret'])}; {_fmt(v['chance_mean_regret'])})"
                for s, v in stats["sources"].items()
            ]
            lines.append(f"  {name}: {', '.join(parts)}")
    if not lines:
        return []
    heading = "where the trials came from: share of queries (mean regret; chance's at the same moments)"
    return [heading, *lines]


def _ran(frame: pd.DataFrame) -> pd.Series:
    """Which queries of a trajectory ran: they reported at least once, or failed."""
    return (frame["iterations"] >= 1) | frame["error"].notna()


class StartOrder(Callback):
    """Records the order in which trials start: with the searcher's trials started as it suggests
    them, the suggestion order (Tune's result grid is in another order)."""

    def __init__(self) -> None:
        self.order: dict[str, int] = {}

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.order.setdefault(trial.trial_id, len(self.order))


class IterationBudget(Stopper):
    """Stops a run once its trials have reported ``limit`` iterations in all (ASHA replay's budget)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        self.used += 1
        return False

    def stop_all(self) -> bool:
        return self.used >= self.limit


@contextlib.contextmanager
def _without_tensorboard_logger() -> Iterator[None]:
    """Keeps Tune from adding its TensorBoard logger, which doubles the cost of a table look-up
    (Tune reads this variable when ``fit`` starts; its CSV and JSON loggers are passed explicitly)."""
    name = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"
    before = os.environ.get(name)
    os.environ[name] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


class LLMRunError(DiffNASError):
    """An LLM searcher's run in which LLM calls failed: it measured its fallbacks, not the LLM."""


def _check_llm_answered(searcher: Any, name: str, seed: int) -> None:
    """Refuses a run of ``gpt4`` or ``hybrid`` in which any LLM call failed for good (after the client's
    retries). The searchers go on without the LLM, which is right for a user's search but not for a
    benchmark of the LLM: its fallbacks (or, in the hybrid, the graph model alone) would be counted as
    the LLM searcher. A local server that died mid-run is the case seen."""
    llm = getattr(searcher, "llm", searcher)  # the hybrid's LLM searcher, or the LLM searcher itself
    usage = getattr(llm, "usage", None)
    if not isinstance(usage, dict):
        return  # not an LLM searcher
    failed, answered = int(usage.get("failed_calls", 0)), int(usage.get("calls", 0))
    if failed:
        raise LLMRunError(
            f"{name} seed {seed}: {failed} of {failed + answered} LLM calls failed (the warnings above say "
            "why), so the run is not kept: it would count fallbacks as the LLM's proposals. Runs finished "
            "before it are kept; make the LLM answer again and run the same command to go on from there."
        )


def _settings_not_used_by(searcher: str) -> tuple[str, ...]:
    """The run settings a searcher's result does not depend on: its kept run serves any value of them."""
    unused = () if searcher == "hybrid" else HYBRID_SETTINGS
    return unused if searcher in LLM_SEARCHERS else (*LLM_SETTINGS, *unused)


def _read_cached_run(path: Path, settings: str, ignore: Sequence[str] = ()) -> RunRecord | None:
    """A run saved by :meth:`TableBenchmark.cached_run` with these settings (but for the keys ``ignore``),
    else None."""
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {})[RUN_METADATA_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException):
        return None  # damaged or foreign: run it again
    if not _same_settings(meta.get("settings"), settings, ignore):
        return None
    frame = table.to_pandas()
    name, seed = str(frame["searcher"].iloc[0]), int(frame["seed"].iloc[0])
    screened = list(meta.get("screened_out") or [])  # runs cached before the hybrid searcher have none
    return RunRecord(name, seed, frame, float(meta["wall_seconds"]), int(meta["warmup"]), screened)


def _same_settings(saved: str | None, settings: str, ignore: Sequence[str]) -> bool:
    """Whether a kept run's settings (JSON) agree with these on every key but ``ignore``."""
    return saved == settings or not _settings_differences(saved, settings, ignore)


def _settings_differences(saved: str | None, settings: str, ignore: Sequence[str]) -> dict[str, tuple[Any, Any]]:
    """The keys on which a kept run's settings (JSON) differ from these, but ``ignore``: key -> (kept, now)."""
    now = json.loads(settings)
    try:
        before = json.loads(saved or "")
    except ValueError:
        before = None
    if not isinstance(before, dict):
        return {"settings": (saved, "these")}
    before = {**LEGACY_SETTINGS, **before}
    if "grace_period" not in before:  # kept before --grace-period: ASHA replays started comparing after 1
        before["grace_period"] = 1 if before.get("scheduler") == "asha" else None
    if TABLE_DIGEST not in before:
        # Kept before tables were named by file name and digest: "table" held the absolute path. Such a run
        # is matched by the file's name (its rows, optimum and objective must still agree), so that the
        # runs kept in a repository serve any clone of it.
        before = {**before, "table": Path(str(before.get("table"))).name}
        ignore = (*ignore, TABLE_DIGEST)
    keys = sorted((set(before) | set(now)) - set(ignore))
    return {k: (before.get(k), now.get(k)) for k in keys if before.get(k) != now.get(k)}


def _kept_settings(path: Path) -> str | None:
    """The settings a kept run was made with (None: no kept run there, or one that cannot be read)."""
    try:
        return json.loads((pq.read_schema(path).metadata or {})[RUN_METADATA_KEY])["settings"]
    except (OSError, KeyError, ValueError, TypeError, pa.ArrowException):
        return None


def _seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"seeds must be a positive count, but got {seeds}.")
        return list(range(int(seeds)))
    seed_list = [int(s) for s in seeds]  # type: ignore[union-attr]  # not an int: a sequence
    if not seed_list:
        raise ConfigError("Give at least one seed.")
    return list(dict.fromkeys(seed_list))


def _trial_number(trial_id: str) -> int:
    suffix = str(trial_id).rsplit("_", 1)[-1]
    return int(suffix) if suffix.isdigit() else 1 << 62


def value_at(trajectory: pd.DataFrame, column: str, count: int) -> float:
    """The column's value once ``count`` queries' budget was used (the last value when the run used less)."""
    upto = trajectory[trajectory["budget_used"] <= count + 1e-9]
    return float(upto[column].iloc[-1]) if len(upto) else math.nan


def values_at(runs: Sequence[RunRecord], column: str, count: int) -> np.ndarray:
    """Each run's :func:`value_at`: one value per seed, NaN where a run had none yet."""
    return np.array([value_at(r.trajectory, column, count) for r in runs])


def _stat(function: Any, values: np.ndarray) -> float | None:
    if np.isnan(values).all():
        return None
    return float(function(values))


def _median_or_none(reached: list[float | None]) -> float | None:
    """Median queries to the optimum; a seed that never reached it counts as infinitely many."""
    values = np.array([math.inf if r is None else r for r in reached], dtype=float)
    median = float(np.median(values)) if len(values) else math.inf
    return None if math.isinf(median) or math.isnan(median) else median


def _share(values: pd.Series) -> float | None:
    return None if len(values) == 0 else round(float(values.mean()), 4)


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def _jsonable(value: Any) -> Any:
    """NaN and infinities as null (strict JSON), numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(value) else float(value)
    return value
