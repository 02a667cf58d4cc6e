"""``ray-diffnas build-table``: train every architecture of a finite space once, and write the table.

The build is one Ray Tune run, a grid over the space's architectures with ``train_diffusion`` as
the trainable: it runs on a laptop, a GPU box (``gpus_per_trial=0.1`` packs ten trials on a card)
or a cluster without changes, and a rerun of the same command resumes it (finished architectures
are kept, unfinished ones go on from their last checkpoint).

The table (``table.parquet``) has one row per architecture: its JSON (``arch``), key and fields;
RFID after every iteration (``rfid@1`` ... ``rfid@K``, so that schedulers such as ASHA can be
replayed); ``rfid_final`` and ``rfid_best``; latency, parameters, FLOPs; wall seconds and images
seen. The data set, space, budget, seed and feature extractor ride in the file's metadata
(``ray_diffnas.bench.table.TABLE_METADATA_KEY``), where ``bench-table`` finds the space.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from ray.tune import Callback
from ray.tune.experiment import Trial

from ray_diffnas.app.options import TUNE_FOLDER
from ray_diffnas.app.results import UNFINISHED
from ray_diffnas.app.storage import make_output_folder
from ray_diffnas.atomic import atomic_write
from ray_diffnas.bench.reuse import finished_rows, reused_rows
from ray_diffnas.bench.table import write_table_file
from ray_diffnas.errors import DiffNASError
from ray_diffnas.spaces.registry import space_from_spec
from ray_diffnas.spaces.unet_arch import UNetArch
from ray_diffnas.spaces.unet_bench import BENCH_SPACE_KIND
from ray_diffnas.spaces.unet_space import UNetSpace

if TYPE_CHECKING:
    from ray_diffnas.app.options import BuildTableOptions

logger = logging.getLogger(__name__)

TABLE_FILE = "table.parquet"
BUILD_FILE = "build_options.json"  # the options a build started with: a rerun must match them to resume
RESUMABLE_CHANGES = ("address", "cpus_per_trial")  # what a resumed build may change: where it runs, not what
RESOLVED_FEATURES = "rfid_features_resolved"  # in BUILD_FILE: what the first run resolved --rfid-features to
TABLE_FORMAT = 1
CURVE_METRIC = "rfid"
ARCH_COLUMN = "arch"
DEFAULT_OBJECTIVE = "rfid_final:min"
COST_COLUMNS = ("latency_ms", "params_m", "gflops")


def curve_column(iteration: int, metric: str = CURVE_METRIC) -> str:
    """The column of ``metric`` after ``iteration`` iterations (``rfid@3``)."""
    return f"{metric}@{iteration}"


@dataclass
class BuildResult:
    """What a build produced: the table (as a frame), its path and its metadata."""

    frame: pd.DataFrame
    path: Path
    metadata: dict[str, Any]


def resolve_space(spec: str, image_size: int) -> UNetSpace:
    """The space ``spec`` names, at ``image_size`` when the spec gives no size (``unet-bench``).

    Raises:
        DiffNASError: for a space that is not a UNet space, or one of another image size.
    """
    spec = spec.strip()
    if spec in (UNetSpace.kind, BENCH_SPACE_KIND):  # a UNet space named without its size: the trials' size
        spec = f"{spec}:{image_size}"
    space = space_from_spec(spec)
    if not isinstance(space, UNetSpace):
        raise DiffNASError(f"build-table trains UNet denoisers: --space {spec!r} is not a UNet space.")
    if space.image_size != image_size:
        raise DiffNASError(
            f"--space {spec!r} is for {space.image_size} px images, but trials train at {image_size} px; "
            f"pass --image-size {space.image_size} or a space of size {image_size}."
        )
    return space


def chosen_architectures(space: UNetSpace, sample: int | None, sample_seed: int) -> list[dict[str, Any]]:
    """Every architecture of the space (sorted by key), or ``sample`` of them drawn at random."""
    archs = space.enumerate()
    if sample is not None and sample < len(archs):
        picked = np.random.default_rng(sample_seed).choice(len(archs), size=sample, replace=False)
        archs = [archs[int(i)] for i in sorted(picked)]
    return [arch.to_dict() for arch in archs]


def build_table(options: BuildTableOptions) -> BuildResult:
    """Trains every architecture of the space (resuming a build in ``options.output``) and writes the table.

    Architectures finished in ``options.reuse_table`` are taken from it, not trained. A build stopped
    with Ctrl-C (SIGINT) still writes its table, with the architectures it has not finished as
    ``unfinished`` rows; a rerun of the command goes on.
    """
    options.check()
    from ray_diffnas.data.datasets import load_dataset
    from ray_diffnas.metrics.rfid import RFID

    data = load_dataset(options.dataset, options.data_root, options.train_image_size)
    space = resolve_space(options.space, data.image_size)
    archs = chosen_architectures(space, options.sample, options.sample_seed)
    output = Path(options.output).expanduser().resolve()
    metadata = _metadata(options, space, data.image_size, len(archs))
    resume = _check_same_build(options, output)
    # The reference statistics, cached once before the trials start; --rfid-features auto is resolved once,
    # by the build's first run, for every trial on any node and every rerun
    rfid = RFID(data, _saved_choice(output) or options.rfid_features)
    _save_choice(output, rfid.choice)
    metadata["rfid_features"] = rfid.features  # what the rows' RFIDs mean: a reused table must agree
    reused = reused_rows(_table_to_reuse(options, output, resume), metadata, archs)
    # A resumed build keeps the finished rows of its own table: those reused when it started may have left
    # --reuse-table since, and its restored grid has no trial for them (checked before any training)
    own = _own_rows(output, metadata, archs) if resume else None
    to_train = [arch for arch in archs if json.dumps(arch, sort_keys=True) not in reused.arch_jsons]
    logger.info(
        "%s %d of the %d architectures of %s at %d px (%d x %d steps each; %d taken from %s) into %s.",
        "Resuming the build of" if resume else "Training",
        len(to_train),
        len(archs),
        options.space,
        data.image_size,
        options.max_iterations,
        options.steps_per_iteration,
        len(reused.frame),
        reused.source,
        output,
    )
    start = time.perf_counter()
    # Every trial, on any node, scores with the extractor resolved above (the record keeps the option as given)
    trained = _train(dataclasses.replace(options, rfid_features=rfid.choice), space, to_train, output, resume)
    # The time of the build that made a reused table; none for this folder's own, whose runs build_time.json has.
    earlier = 0.0 if reused.source == str(output / TABLE_FILE) else reused.build_wall_seconds
    seconds = _add_build_time(output, time.perf_counter() - start) + earlier
    frame = _merge([trained, reused.frame, own], archs, data.image_size, options.max_iterations)
    metadata.update(
        rows_complete=int(finished_rows(frame).sum()),
        reused={"table": reused.source, "rows": len(reused.frame)} if reused.source else None,
        build_wall_seconds=round(seconds, 1),
        train_seconds_total=round(float(frame["train_seconds"].sum()), 1),
    )
    path = write_table_file(frame, output / TABLE_FILE, metadata)
    if metadata["rows_complete"] < len(archs):
        logger.warning(
            "%d of %d architectures are finished (the others are 'unfinished' or 'failed' rows); %s",
            metadata["rows_complete"],
            len(archs),
            _how_to_go_on(_outside_the_grid(frame, trained) if resume else 0, path),
        )
    return BuildResult(frame, path, metadata)


def _own_rows(output: Path, metadata: dict[str, Any], archs: list[dict[str, Any]]) -> pd.DataFrame | None:
    """The finished rows of the table a resumed build wrote before (None before its first table)."""
    here = output / TABLE_FILE
    return reused_rows(str(here), metadata, archs, own=True).frame if here.is_file() else None


def _outside_the_grid(frame: pd.DataFrame, trained: pd.DataFrame) -> int:
    """How many unfinished architectures the resumed Tune run has no trial for: its grid was fixed when the
    build started without them (they were in the reused table then), and no table holds them finished now."""
    in_grid = set(trained[ARCH_COLUMN]) if len(trained) else set()
    return int((~finished_rows(frame) & ~frame[ARCH_COLUMN].isin(in_grid)).sum())


def _how_to_go_on(outside: int, table: Path) -> str:
    """What the end-of-build warning tells the user to do about the rows left unfinished."""
    if not outside:
        return "rerun the command to go on."
    return (
        f"the resumed run's grid has no trial for {outside} of them (they came from the reused table when the "
        "build started, and neither it nor this folder's table holds them finished now), so a rerun here cannot "
        f"train them: build on with --output NEW_FOLDER --reuse-table {table}."
    )


def _merge(
    sources: list[pd.DataFrame | None], archs: list[dict[str, Any]], image_size: int, max_iterations: int
) -> pd.DataFrame:
    """One row per architecture of the build, sorted by key, from the rows of ``sources`` (earlier first
    wins between finished rows): a finished row wins over an unfinished one of the same architecture (a
    build resumed after its reused table was updated may hold both), and an architecture with no row yet
    gets an ``unfinished`` one."""
    chosen = {json.dumps(arch, sort_keys=True): arch for arch in archs}
    frame = pd.concat([f for f in sources if f is not None and len(f)], ignore_index=True)
    frame = frame[frame[ARCH_COLUMN].isin(list(chosen))] if len(frame) else frame
    missing = sorted(set(chosen) - set(frame[ARCH_COLUMN] if len(frame) else ()))
    rows = pd.DataFrame([unfinished_row(chosen[arch], image_size, max_iterations) for arch in missing])
    frame = pd.concat([f for f in (frame, rows) if len(f)], ignore_index=True)
    frame["_unfinished"] = ~finished_rows(frame)
    frame = frame.sort_values(["arch_key", "_unfinished"], kind="stable").drop_duplicates(ARCH_COLUMN)
    return frame.drop(columns="_unfinished").reset_index(drop=True)


def _train(
    options: BuildTableOptions, space: UNetSpace, archs: list[dict[str, Any]], output: Path, resume: bool
) -> pd.DataFrame:
    """Trains ``archs`` as one Tune run (resumed when ``resume``); their table rows."""
    if not archs and not resume:
        return pd.DataFrame()
    from ray_diffnas.app.console import quiet_unstarted_trials
    from ray_diffnas.app.results import results_frame

    with quiet_unstarted_trials():  # after a Ctrl-C the rest of the grid never started: its rows say so
        grid = _tuner(options, space, archs, output, resume).fit()
    return table_frame(results_frame(grid), options.max_iterations)


def _table_to_reuse(options: BuildTableOptions, output: Path, resume: bool) -> str | None:
    """``--reuse-table``; or, for a build with no Tune run to resume (its ``tune/`` folder deleted, or its
    table copied here from another machine), the table already in ``output``: its finished rows are kept,
    not trained again and overwritten.

    Raises:
        DiffNASError: when ``--reuse-table`` names another table than the one ``output`` holds.
    """
    here = output / TABLE_FILE
    if resume or not here.is_file():
        return options.reuse_table
    if options.reuse_table is None or Path(options.reuse_table).expanduser().resolve() == here:
        logger.info("%s holds no Tune run to resume; its finished rows are kept, the rest trained.", here)
        return str(here)
    raise DiffNASError(
        f"{str(output)!r} already holds a table ({TABLE_FILE}) and no Tune run to resume; building there with "
        f"--reuse-table {options.reuse_table!r} would replace it. Pass another --output, or --reuse-table "
        f"{str(here)!r}."
    )


def _check_same_build(options: BuildTableOptions, output: Path) -> bool:
    """Whether ``output`` holds this build to resume (a different build there is an error)."""
    saved = output / BUILD_FILE
    wanted = _options_json(options)
    before = json.loads(saved.read_text()) if saved.is_file() else {}
    changed = {
        k: (before.get(k), v) for k, v in wanted.items() if before and k not in RESUMABLE_CHANGES and before.get(k) != v
    }
    if changed:
        raise DiffNASError(
            f"{str(output)!r} holds a build with other options ("
            + ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in changed.items())
            + "); rerun with its options to resume it, or pass another --output."
        )
    make_output_folder(output)
    kept = {k: before[k] for k in (RESOLVED_FEATURES,) if k in before}  # what the first run resolved
    atomic_write(saved, lambda tmp: Path(tmp).write_text(json.dumps(wanted | kept, indent=1)))
    from ray import tune

    return tune.Tuner.can_restore(str(output / TUNE_FOLDER))


def _saved_choice(output: Path) -> str | None:
    """The extractor the build's first run resolved ``--rfid-features`` to (None before it)."""
    return json.loads((output / BUILD_FILE).read_text()).get(RESOLVED_FEATURES)


def _save_choice(output: Path, choice: str) -> None:
    saved = json.loads((output / BUILD_FILE).read_text())
    if saved.get(RESOLVED_FEATURES) != choice:
        saved[RESOLVED_FEATURES] = choice
        atomic_write(output / BUILD_FILE, lambda tmp: Path(tmp).write_text(json.dumps(saved, indent=1)))


def _options_json(options: BuildTableOptions) -> dict[str, Any]:
    values = dataclasses.asdict(options)
    values.pop("output")
    return json.loads(json.dumps(values, default=str))


def _tuner(
    options: BuildTableOptions, space: UNetSpace, archs: list[dict[str, Any]], output: Path, resume: bool
) -> Any:
    import ray
    from ray import tune

    from ray_diffnas.app.storage import atomic_local_filesystem, remove_partial_writes
    from ray_diffnas.trainable.trial import train_diffusion

    if not ray.is_initialized():
        ray.init(address=options.address, include_dashboard=False, configure_logging=False)
    trainable = tune.with_resources(train_diffusion, {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial})
    if resume:
        remove_partial_writes(output / TUNE_FOLDER)
        # Failed trials stay failed (the table records why); killed ones go on from their checkpoints.
        return tune.Tuner.restore(
            str(output / TUNE_FOLDER), trainable, resume_errored=False, storage_filesystem=atomic_local_filesystem()
        )
    data_root = None if options.data_root is None else str(Path(options.data_root).expanduser().resolve())
    param_space = space.param_space(
        dataset=options.dataset, data_root=data_root, image_size=space.image_size, **options.training_settings()
    )
    param_space["arch"] = tune.grid_search(archs)
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(num_samples=1, trial_dirname_creator=trial_folder_name),
        run_config=tune.RunConfig(
            name=TUNE_FOLDER,
            storage_path=str(output),
            storage_filesystem=atomic_local_filesystem(),
            # A resumed trial needs the last one; two, so that Tune does not snapshot its state at every save.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=[BuildProgress(len(archs))],
            verbose=0,
        ),
    )


def trial_folder_name(trial: Trial) -> str:
    """Short trial folders (Tune's default spells out the whole architecture)."""
    return trial.trial_id


def table_frame(results: pd.DataFrame, max_iterations: int) -> pd.DataFrame:
    """The table from a build's ``results_frame``: one row per architecture, sorted by key.

    A trial that did not run every iteration (``failed``, or ``unfinished``: not yet trained) keeps
    its partial curve and has no ``rfid_final`` / ``rfid_best`` (NaN): a benchmark treats it as having
    no value. A trial that never reported (Tune has no config for it) has no row here.
    """
    rows = []
    for _, trial in results.iterrows():
        arch = json.loads(trial["arch"])
        if not arch:
            continue
        row = _table_row(arch, trial["arch_key"], list(trial["rfid_curve"]), max_iterations)
        row.update({name: trial[name] for name in COST_COLUMNS})
        row["train_seconds"] = trial["wall_seconds"]
        row["images_seen"] = trial["images_seen"]
        # No scheduler stops a build's trials: one that is not done was interrupted (Ctrl-C) or never started.
        row["status"] = UNFINISHED if trial["status"] == "stopped" else trial["status"]
        row["error"] = trial["error"]
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values("arch_key", kind="stable").reset_index(drop=True) if rows else frame


def unfinished_row(arch: dict[str, Any], image_size: int, max_iterations: int) -> dict[str, Any]:
    """The row of an architecture the build has not trained yet."""
    row = _table_row(arch, UNetArch.from_dict(arch, image_size).key(), [], max_iterations)
    row.update({name: math.nan for name in (*COST_COLUMNS, "train_seconds", "images_seen")})
    row.update(status=UNFINISHED, error=None)
    return row


def _table_row(arch: dict[str, Any], key: str, curve: list[float], max_iterations: int) -> dict[str, Any]:
    complete = len(curve) >= max_iterations and all(math.isfinite(v) for v in curve[:max_iterations])
    row: dict[str, Any] = {ARCH_COLUMN: json.dumps(arch, sort_keys=True), "arch_key": key}
    row.update({name: _cell(value) for name, value in arch.items()})
    for i in range(1, max_iterations + 1):
        row[curve_column(i)] = curve[i - 1] if i <= len(curve) else math.nan
    row["rfid_final"] = curve[max_iterations - 1] if complete else math.nan
    row["rfid_best"] = min(curve[:max_iterations]) if complete else math.nan
    row["iterations"] = len(curve)
    return row


def _cell(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def _add_build_time(output: Path, seconds: float) -> float:
    """Adds this run's wall time to the build's (a resumed build counts every run); returns the total."""
    path = output / "build_time.json"
    runs = json.loads(path.read_text())["runs"] if path.is_file() else []
    runs.append({"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": round(seconds, 1)})
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps({"runs": runs}, indent=1)))
    return float(sum(r["seconds"] for r in runs))


def _metadata(
    options: BuildTableOptions,
    space: UNetSpace,
    image_size: int,
    count: int,
) -> dict[str, Any]:
    """The build's record (the figures of its rows are added when they are known)."""
    import platform

    import ray
    import torch

    from ray_diffnas.trainable.settings import TrainingSettings

    where = ("dataset", "data_root", "image_size")  # stated once, beside the settings
    settings = {**TrainingSettings().to_dict(), **options.training_settings()}
    settings = {k: v for k, v in settings.items() if k not in where}
    return {
        "format": TABLE_FORMAT,
        "arch_column": ARCH_COLUMN,
        "objective": DEFAULT_OBJECTIVE,
        # The objective's value after each iteration, and the columns computed from the whole curve: an
        # ASHA replay reports the former one iteration at a time and must not show the latter early.
        "curve": {
            "metric": CURVE_METRIC,
            "columns": [curve_column(i) for i in range(1, options.max_iterations + 1)],
            "derived": ["rfid_final", "rfid_best", "iterations", "train_seconds", "images_seen"],
        },
        "space": space.to_dict(),
        "space_spec": options.space,
        "dataset": options.dataset,
        "image_size": image_size,
        "training": settings,
        "seed": options.seed,
        "architectures": count,
        "sample": options.sample,
        "sample_seed": options.sample_seed if options.sample is not None else None,
        "cpus_per_trial": options.cpus_per_trial,
        "gpus_per_trial": options.gpus_per_trial,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "versions": {"ray": ray.__version__, "torch": torch.__version__},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


class BuildProgress(Callback):
    """A Tune callback that logs one line per finished architecture (the build runs at verbose=0)."""

    def __init__(self, total: int) -> None:
        self.total = total

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._log(trials, trial, "trained")

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._log(trials, trial, "FAILED")

    def _log(self, trials: list[Trial], trial: Trial, what: str) -> None:
        done = sum(t.status in ("TERMINATED", "ERROR") or t is trial for t in trials)  # Tune marks it after us
        result = trial.last_result or {}
        logger.info(
            "%d/%d %s %s: RFID %.3f after %s iterations, %.0f s.",
            done,
            self.total,
            what,
            result.get("arch_key", trial.trial_id),
            float(result.get("rfid", math.nan)),
            result.get("training_iteration", 0),
            float(result.get("time_total_s", math.nan)),
        )
