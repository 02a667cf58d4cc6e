"""A whole architecture search, as a pipeline of named steps.

:func:`run_search` reads top to bottom: check the options, prepare the output folder, load the
data and RFID's reference, build the space, searcher and scheduler, run Tune, and write the
results, plots and summary. Each step is a short function here or in the room it belongs to.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import ray
from ray import tune
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from ray_diffnas.app.console import SearchConsole, quiet_unstarted_trials, tune_output
from ray_diffnas.app.options import (
    CONSOLE,
    OPTIONS_FILE,
    SUMMARY_FILE,
    TUNE_FOLDER,
    TUNE_OUTPUT,
    SearchOptions,
    save_options,
)
from ray_diffnas.app.results import RESULTS_FILE
from ray_diffnas.app.stop_signal import fit_watching_for_stop
from ray_diffnas.app.storage import atomic_local_filesystem, make_output_folder, remove_partial_writes
from ray_diffnas.app.summary import summarize
from ray_diffnas.data.datasets import ImageDataset, load_dataset
from ray_diffnas.errors import DiffNASError, Stopped
from ray_diffnas.metrics.rfid import RFID
from ray_diffnas.searchers.base import MEMORY_FILE
from ray_diffnas.searchers.factory import CONSTRAINT_AWARE, LLM_SEARCHERS, SearcherSetup, make_searcher
from ray_diffnas.searchers.llm.endpoint import ENDPOINT_FILE, EndpointFile, llm_model, local_llm_server
from ray_diffnas.searchers.tune_state import has_saved_state, saved_trials
from ray_diffnas.trainable.asha import asha_scheduler
from ray_diffnas.trainable.reports import METRIC, MODE
from ray_diffnas.trainable.trial import train_diffusion

logger = logging.getLogger(__name__)

TUNE_VERBOSE = 3  # Tune's most detailed output, for -v


@dataclass(frozen=True)
class OutputPlan:
    """Where a search writes, and whether Tune resumes a saved run there."""

    output: Path
    resume: bool

    @property
    def tune_folder(self) -> Path:
        return self.output / TUNE_FOLDER


def run_search(options: SearchOptions, resume: bool = False, verbosity: int = CONSOLE) -> dict[str, Any]:
    """Runs the search and writes ``results.parquet``, ``search.png``, ``best_samples.png``.

    With ``resume``, finishes the search in ``options.output`` that was stopped or killed: Tune
    restores its trials (unfinished ones from their checkpoints) and the searcher with its memory.
    A search stopped before Tune's first save has nothing to restore; it starts again from the beginning.
    ``verbosity``: what prints while it runs (:mod:`ray_diffnas.app.console`: ``QUIET``, ``CONSOLE``,
    ``TUNE_OUTPUT``), given anew to a resumed search (it is not saved).
    Returns a JSON-able summary (best trial, its RFID, the untrained RFID, wall time, file paths).
    """
    start = time.perf_counter()
    options.check()
    warn_ignored_options(options)
    plan = prepare_output(options, resume)
    data, rfid = load_data_and_reference(options)
    if not resume:  # a resumed search, even one that starts over, keeps the options it started with
        # --rfid-features auto, resolved here once: every trial (on any node) and every resume score with it
        options = dataclasses.replace(options, rfid_features=rfid.choice)
        save_options(options, plan.output)
    with llm_server(options, plan) as llm_url:
        init_ray(options.address, trial_logs=verbosity >= TUNE_OUTPUT)
        tuner = (
            restore_tuner(plan, options)
            if plan.resume
            else new_tuner(options, plan, build_search(options, data, llm_url), verbosity)
        )
        with tune_output(verbosity), quiet_unstarted_trials():
            grid, signalled = fit_watching_for_stop(tuner)
        if verbosity >= CONSOLE:
            print(f"Tune's files: {plan.tune_folder}", flush=True)
    stop_if_unfinished(plan, signalled, options.num_samples)
    summary = summarize(grid, rfid, plan.output, options)
    summary["wall_seconds"] = round(time.perf_counter() - start, 1)  # the report's figure (without the report)
    if (plan.tune_folder / MEMORY_FILE).exists():
        summary["search_memory"] = str(plan.tune_folder / MEMORY_FILE)
    summary["report"] = str(write_search_report(plan.output, summary))
    return summary


def write_search_report(output: Path, summary: dict[str, Any]) -> Path:
    """``report.html`` of the finished search (``ray-diffnas report`` rebuilds it)."""
    from ray_diffnas.app.report.folder import read_search_folder
    from ray_diffnas.app.report.page import write_report

    folder = read_search_folder(output, trials=pd.read_parquet(summary["results"]))
    folder.summary = {**(folder.summary or {}), **summary}  # summary.json is written after this: this run's wins
    return write_report(folder)


def stop_if_unfinished(plan: OutputPlan, signalled: bool, num_samples: int) -> None:
    """After Ctrl-C, Tune ends ``fit`` without an error, with trials still to run: write the report of
    the search so far, no results or summary of a finished one, and say how to go on.

    Tune's saved state is read, not the grid it returns: Tune marks the trials it cut short ended
    after saving them as running, which is how a resume finds them. A stop between two trials leaves
    none running, only fewer than ``num_samples`` (a searcher that ran out of architectures ends a
    search with fewer too, but not on a signal).

    Raises:
        Stopped: when a trial of the saved run had not ended, or a signal ended the run short.
    """
    trials = saved_trials(plan.tune_folder)
    go_on = f"'ray-diffnas search --resume {plan.output}'"
    if trials is None:
        if signalled:
            raise Stopped(f"Stopped before Tune's first save: no trial was kept; {go_on} starts the search again.")
        return
    finished = sum(trial.finished for trial in trials)
    if finished == len(trials) and not (signalled and len(trials) < num_samples):
        return
    from ray_diffnas.app.report.folder import read_search_folder
    from ray_diffnas.app.report.page import write_report

    report = write_report(read_search_folder(plan.output))
    raise Stopped(
        f"Stopped: {finished} of {num_samples} trials finished; the search is saved in {plan.tune_folder} "
        f"(report so far: {report}). Finish it with {go_on}."
    )


# --- the steps --------------------------------------------------------------------------------


def warn_ignored_options(options: SearchOptions) -> None:
    """Logs each option the chosen searcher or scheduler does not use (a likely slip, not an error)."""
    if options.constraints and options.searcher not in CONSTRAINT_AWARE:
        aware = ", ".join(CONSTRAINT_AWARE)
        logger.warning("--constraint guides only the %s searchers; %s ignores it.", aware, options.searcher)
    if options.scheduler != "asha" and options.reduction_factor != SearchOptions.reduction_factor:
        logger.warning("--reduction-factor is ASHA's; --scheduler %s ignores it.", options.scheduler)
    if options.scheduler != "asha" and options.grace_period != SearchOptions.grace_period:
        logger.warning("--grace-period is ASHA's; --scheduler %s ignores it.", options.scheduler)
    if options.searcher != "hybrid" and options.hybrid_warmup != SearchOptions.hybrid_warmup:
        logger.warning("--hybrid-warmup is the hybrid searcher's; %s ignores it.", options.searcher)
    for flag in ("llm", "model"):
        if options.searcher not in LLM_SEARCHERS and getattr(options, flag) != getattr(SearchOptions, flag):
            llm = ", ".join(LLM_SEARCHERS)
            logger.warning("--%s is the LLM searchers' (%s); %s ignores it.", flag, llm, options.searcher)


def prepare_output(options: SearchOptions, resume: bool) -> OutputPlan:
    """The output folder, and whether there is a saved Tune run in it to resume.

    Raises:
        DiffNASError: when a new search would overwrite a search already in the folder (one started, or
            the results of a finished one, even with its ``tune/`` folder deleted).
    """
    output = options.output.expanduser().resolve()
    tune_folder = output / TUNE_FOLDER
    results = [name for name in (RESULTS_FILE, SUMMARY_FILE) if (output / name).exists()]  # a finished search's
    restorable = tune.Tuner.can_restore(str(tune_folder)) and has_saved_state(tune_folder)
    if results and not (resume and restorable):
        # A finished search: a new one would write over what it found, and with its Tune state gone (deleted
        # to save space) there is nothing to resume (a resume would start it over).
        raise DiffNASError(
            f"{str(output)!r} holds a finished search ({', '.join(results)}; 'ray-diffnas report {output}' shows "
            f"it); pass another --output for a new search."
        )
    if resume and not restorable:
        # Killed before Tune's first save: no trial result was kept, so starting over loses nothing.
        logger.warning(
            "%s holds no Tune experiment state yet (the search was stopped before its first save); "
            "starting it again from the beginning with its saved options.",
            output,
        )
        resume = False
    elif not resume and (tune_folder.exists() or (output / OPTIONS_FILE).exists()):  # a started search
        raise DiffNASError(
            f"{str(output)!r} already holds a search; finish it with 'ray-diffnas search --resume "
            f"{output}', or pass another --output."
        )
    make_output_folder(output)
    return OutputPlan(output, resume)


def load_data_and_reference(options: SearchOptions) -> tuple[ImageDataset, RFID]:
    """The data set and RFID's reference statistics, built here once: a bad path fails before any
    trial starts, and trials find the feature extractor cached."""
    data = load_dataset(options.dataset, options.data_root, options.train_image_size)
    return data, RFID(data, options.rfid_features)


@contextlib.contextmanager
def llm_server(options: SearchOptions, plan: OutputPlan) -> Iterator[EndpointFile | None]:
    """The LLM searcher's endpoint for the length of the search: for ``--llm local`` a server this
    process runs, handed over as an :class:`EndpointFile` (a resumed search's server has a new port)."""
    if options.searcher not in LLM_SEARCHERS or options.llm != "local":
        yield None
        return
    endpoint = EndpointFile(plan.output / ENDPOINT_FILE)
    with local_llm_server(options.llm, endpoint):
        yield endpoint


def init_ray(address: str | None, trial_logs: bool = True) -> None:
    """Starts or joins Ray; ``trial_logs`` forwards what trials print (Ray Train's checkpoint lines, a
    failing trial's traceback) to this console, as Tune's own output does."""
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, configure_logging=False, log_to_driver=trial_logs)


def build_search(options: SearchOptions, data: ImageDataset, llm_url: str | EndpointFile | None) -> SearcherSetup:
    """The space, the searcher (with the ``param_space`` its trials run with)."""
    space = options.space(data.image_size)
    objective = options.target()
    param_space = space.param_space(
        dataset=options.dataset, data_root=_absolute(options.data_root), **options.training_settings()
    )
    if options.searcher == "random":
        return make_searcher("random", space, objective, param_space, seed=options.seed)
    # Few trials: the graph searcher starts learning after a few outcomes instead of its default warm-up.
    # max_trials = num_samples: a resume whose Tune state lags its searcher's asks for no trial too many.
    warmup = max(2, min(10, options.num_samples // 2))
    model = llm_model(options.llm, options.model)
    return make_searcher(
        options.searcher,
        space,
        objective,
        param_space,
        seed=options.seed,
        budget=options.num_samples,
        warmup=warmup,
        llm_model=model,
        llm_url=llm_url,
        hybrid_warmup=options.hybrid_warmup,
    )


def make_scheduler(options: SearchOptions) -> TrialScheduler:
    if options.scheduler == "asha":
        return asha_scheduler(options.max_iterations, options.grace_period, options.reduction_factor)
    return FIFOScheduler()


def trainable_with_resources(options: SearchOptions) -> Any:
    return tune.with_resources(train_diffusion, {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial})


def new_tuner(options: SearchOptions, plan: OutputPlan, search: SearcherSetup, verbosity: int = CONSOLE) -> tune.Tuner:
    default_proposer = "random" if options.searcher == "random" else options.searcher
    console: list[tune.Callback] = (
        [SearchConsole(options.max_iterations, default_proposer)] if verbosity == CONSOLE else []
    )
    return tune.Tuner(
        trainable_with_resources(options),
        param_space=search.param_space,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode=MODE,
            num_samples=options.num_samples,
            search_alg=search.search_alg,
            scheduler=make_scheduler(options),
        ),
        run_config=tune.RunConfig(
            # A kill while Tune copies its state to --output must leave no file half-written.
            name=TUNE_FOLDER,
            storage_path=str(plan.output),
            storage_filesystem=atomic_local_filesystem(),
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute=METRIC, checkpoint_score_order=MODE
            ),
            callbacks=console,
            verbose=TUNE_VERBOSE if verbosity >= TUNE_OUTPUT else 0,  # 0: no config dumps, no progress table
        ),
    )


def restore_tuner(plan: OutputPlan, options: SearchOptions) -> tune.Tuner:
    """Tune's saved run, with the temporary files of writes a kill cut off removed first."""
    removed = remove_partial_writes(plan.tune_folder)
    if removed:
        logger.info("Removed %d temporary file(s) of writes the stop cut off.", removed)
    # Errored trials stay errored (they failed for a reason); killed ones resume.
    try:
        return _restore(plan, options)
    except ModuleNotFoundError as error:
        if not str(error.name).startswith("ray_diffnas"):
            raise
        raise DiffNASError(
            f"{str(plan.output)!r} was saved by a ray_diffnas from before its modules moved into rooms "
            f"(2026-12-02; it names {error.name!r}); finish it with the release that started it, or start a new "
            f"search (its tune/search-memory.parquet can warm-start one: GraphDiffusionSearcher(warm_start=...))."
        ) from None


def _restore(plan: OutputPlan, options: SearchOptions) -> tune.Tuner:
    return tune.Tuner.restore(
        str(plan.tune_folder),
        trainable=trainable_with_resources(options),
        resume_errored=False,
        storage_filesystem=atomic_local_filesystem(),
    )


def _absolute(path: str | None) -> str | None:
    # Trials run in other working directories (and on other nodes): pass absolute paths.
    return None if path is None else str(Path(path).expanduser().resolve())
