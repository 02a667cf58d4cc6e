"""MemorySearcher: the Ray Tune ``Searcher`` base that both project searchers build on.

It owns what every architecture searcher needs and nothing model-specific: the space (from the
constructor or Tune's ``param_space``), metric and mode (from the constructor or ``TuneConfig``),
the map of live trials, the :class:`SearchMemory`, a forgiving ``on_trial_complete``, warm starts,
a budget, and save/restore into a blank instance. A subclass implements one hook,
:meth:`MemorySearcher.propose`, which returns the next architectures.
"""

from __future__ import annotations

import base64
import json
import logging
import numbers
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from ray import cloudpickle
from ray.tune.search import UNDEFINED_METRIC_MODE, UNDEFINED_SEARCH_SPACE, Searcher
from ray.tune.search.sample import Domain

if TYPE_CHECKING:
    import pandas as pd

from ray_diffnas.atomic import atomic_write
from ray_diffnas.errors import ConfigError
from ray_diffnas.searchers.memory import ENDED, SCORED, MemoryFileError, NotAMemoryFileError, SearchMemory, TrialRecord
from ray_diffnas.searchers.objective import MODES, Constraint, Objective, parse_constraints, reported
from ray_diffnas.searchers.pareto import ParetoObjective
from ray_diffnas.searchers.tune_state import SavedTrial, iteration, saved_trials
from ray_diffnas.spaces.domain import ArchDomain
from ray_diffnas.spaces.protocol import Architecture, SearchSpace
from ray_diffnas.spaces.registry import space_from_dict
from ray_diffnas.trainable.reports import METRIC, MODE
from ray_diffnas.trainable.settings import PROPOSER_KEY

logger = logging.getLogger(__name__)

MEMORY_FILE = "search-memory.parquet"


@dataclass(frozen=True)
class Proposal:
    """One architecture a proposer offers, with who made it and what it cost."""

    arch: Architecture
    proposer: str  # one of ray_diffnas.searchers.memory.PROPOSERS
    prompt_tokens: int = 0
    completion_tokens: int = 0
    note: str | None = None  # Why this proposer (e.g. why a fallback was needed).
    settings: dict[str, Any] = field(default_factory=dict)  # Training settings that come with it (user points).


class MemorySearcher(Searcher):
    """A Tune searcher over the architectures of any :class:`SearchSpace`, with a :class:`SearchMemory`.

    Subclasses implement :meth:`propose`. The base never proposes an architecture that is live
    or already in memory, records every outcome, and saves everything in one Parquet file.

    Args:
        space: The architecture space (any :class:`SearchSpace`); default: taken from
            ``param_space`` (see :meth:`UNetSpace.param_space`).
        metric: Metric to optimise; default: from ``TuneConfig``. A list of metrics (Tune's
            convention, as ``OptunaSearch`` takes it) asks for their Pareto front, if the searcher
            supports several objectives (``supports_several_objectives``); the first is the one
            the memory records each trial's curve of.
        mode: ``min`` or ``max``; default: from ``TuneConfig``. A list, one per metric, with a list
            of metrics.
        constraints: Bounds on other reported metrics: ``{"latency_ms": 5.0}`` (upper bounds) or
            strings such as ``["latency_ms<=5"]`` (see :class:`Objective` for what counts as met).
        points_to_evaluate: Architectures (``UNetArch`` dicts, or configs with an ``arch`` entry)
            to run first.
        warm_start: A previous ``results.parquet`` or search-memory file whose outcomes seed the memory.
        max_trials: Return ``Searcher.FINISHED`` after this many proposals; None for no budget.
        seed: Seeds the searcher's random choices.

    Example:
        >>> class FirstOfSpace(MemorySearcher):  # the smallest possible searcher
        ...     def propose(self, count):
        ...         return [Proposal(self.space.sample(self.rng), "random") for _ in range(count)]
        >>> from ray_diffnas.spaces.unet_space import UNetSpace
        >>> searcher = FirstOfSpace(space=UNetSpace(image_size=8), metric="rfid", mode="min")
        >>> config = searcher.suggest("t1")
        >>> sorted(config)  # the architecture, and who proposed it (the console and results show it)
        ['arch', 'proposer']
    """

    supports_several_objectives = False  # a subclass that aims at a Pareto front says so

    def __init__(
        self,
        space: SearchSpace | None = None,
        metric: str | Sequence[str] | None = None,
        mode: str | Sequence[str] | None = None,
        *,
        constraints: Mapping[str, float] | Sequence[str | Constraint] | None = None,
        points_to_evaluate: Sequence[Mapping[str, Any]] | None = None,
        warm_start: str | os.PathLike | None = None,
        max_trials: int | None = None,
        seed: int = 0,
    ) -> None:
        self._objectives: tuple[list[str], list[str]] | None = None  # (metrics, modes) of a multi-objective search
        metric, mode = self._take_objectives(metric, mode)
        if mode is not None and mode not in MODES:
            raise ConfigError(f"{type(self).__name__}: mode must be one of {list(MODES)}, but got {mode!r}.")
        super().__init__(metric=metric, mode=mode)
        self._space = space
        self.constraints: list[Constraint] = parse_constraints(constraints)
        self._base_config: dict[str, Any] = {}
        self._points = [dict(p) for p in points_to_evaluate or []]
        self._warm_start = None if warm_start is None else str(warm_start)
        self.max_trials = max_trials
        self.rng = np.random.default_rng(seed)
        self.memory = SearchMemory(metric or METRIC, mode or MODE)
        self.live: dict[str, str] = {}  # trial id -> architecture key
        self._pending: list[Proposal] = []  # proposals made in a batch, not yet handed out
        # LLM tokens no record carries yet (an LLM searcher bills each call as it answers; a record forgotten):
        # the next record carries them, so the memory's columns add up to the usage
        self.unbilled_tokens: tuple[int, int] = (0, 0)
        self._proposed = 0
        self._reruns: set[str] = set()  # trials taken in from Tune's reruns of failed ones (never live)
        # Set when it finished because no new architecture could be found (not because of a budget): a
        # run that ends before its budget for this reason is complete; for any other it was stopped.
        self.exhausted = False
        self._stalled_at: int | None = None  # finished-record count when the proposer last came back empty
        if space is not None and metric and mode:
            self._on_configured()

    def _take_objectives(
        self, metric: str | Sequence[str] | None, mode: str | Sequence[str] | None
    ) -> tuple[str | None, str | None]:
        """Keeps a list of metrics and modes (several objectives); returns the first of each (one metric:
        unchanged), which the memory records curves of."""
        if isinstance(metric, str) or metric is None:
            if mode is not None and not isinstance(mode, str):
                raise ConfigError(f"{type(self).__name__}: one metric takes one mode, but got modes {list(mode)}.")
            return metric, mode
        metrics = [str(m) for m in metric]
        modes = [mode] * len(metrics) if isinstance(mode, str) else list(mode or [])
        if len(metrics) > 1:
            if not self.supports_several_objectives:
                raise ConfigError(
                    f"{type(self).__name__} takes one metric, but got {metrics}; give one metric, or use a searcher "
                    f"that searches for a Pareto front (GraphDiffusionSearcher, or OptunaSearch with NSGA-II)."
                )
            ParetoObjective(metrics, modes)  # checks the pairs (two or more, one mode each, no repeats)
            self._objectives = (metrics, modes)
        return (metrics[0] if metrics else None), (modes[0] if modes else None)

    @property
    def pareto(self) -> ParetoObjective | None:
        """The objectives of a multi-objective search (with the constraints), else None."""
        if self._objectives is None:
            return None
        return ParetoObjective(*self._objectives, self.constraints)

    @property
    def space(self) -> SearchSpace:
        """The architecture space (raises, with the fix, when Tune has not given one yet)."""
        if self._space is None:
            self._check_ready()
        assert self._space is not None
        return self._space

    @space.setter
    def space(self, space: SearchSpace | None) -> None:
        self._space = space

    @property
    def has_space(self) -> bool:
        return self._space is not None

    # --- the hook -------------------------------------------------------------------------

    def propose(self, count: int) -> list[Proposal]:
        """Returns up to ``count`` new architectures (more are kept for later trials)."""
        raise NotImplementedError

    # --- configuration ----------------------------------------------------------------------

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        """Takes the space, the training settings and metric/mode from Tune.

        Accepted whenever ``config`` is a :meth:`UNetSpace.param_space`, or the searcher already has
        a space (given, or restored) and ``config`` holds the trials' settings: this searcher is what
        resolves the ``arch`` domain and samples the searched settings, and the settings there are what
        the trials must run with. A metric or mode the searcher already has must agree with Tune's.

        Raises:
            ConfigError: when Tune's metric or mode differs from the searcher's.
        """
        space = _space_from_param_space(config)
        if space is None and self._space is None:
            return False
        if unresolved := _not_sampled(config, arch_is_searched=space is not None):
            raise ConfigError(
                f"{type(self).__name__} samples the architecture and top-level Tune domains (tune.uniform, "
                f"tune.choice, ...) of param_space, but not {', '.join(unresolved)}: its trials would get them "
                "unresolved. Give those settings a value or a top-level domain (for a grid search, run one search "
                "per value)."
            )
        if space is not None and self._space is not None and self._space != space:
            logger.warning("%s: keeping the space it was given; param_space describes %r.", type(self).__name__, space)
        self._space = self._space or space
        self._base_config = {k: v for k, v in config.items() if k not in ("arch", "space")}
        if self._metric:
            self._check_agrees_with_tune(metric, mode)
        else:
            metric, mode = self._take_objectives(metric, mode)
            self._metric = metric
        self._mode = self._mode or mode
        self._on_configured()
        return True

    def _check_agrees_with_tune(self, metric: str | Sequence[str] | None, mode: str | Sequence[str] | None) -> None:
        """Tune ranks, stops and reports trials by its metric and mode: a searcher that aims at others would
        search for what Tune does not pick. Tune may name the first objective of a multi-objective searcher."""
        ours: tuple[list[str | None], list[str | None]] = (
            (list(self._objectives[0]), list(self._objectives[1]))
            if self._objectives
            else ([self._metric], [self._mode])
        )
        for what, theirs, mine in (("metric", metric, ours[0]), ("mode", mode, ours[1])):
            named = [theirs] if isinstance(theirs, str) else list(theirs or [])
            if named and mine[0] is not None and named not in (mine, mine[:1]):
                raise ConfigError(
                    f"{type(self).__name__} was given {what} {mine if len(mine) > 1 else mine[0]!r}, but Tune's "
                    f"TuneConfig names {theirs!r}; give the same {what} to both, or to one of them only."
                )

    @property
    def objective(self) -> Objective:
        """What this searcher optimises (metric and mode from the constructor or Tune; its constraints)."""
        self._check_ready()
        assert self._metric is not None and self._mode is not None  # _check_ready checked them
        return Objective(self._metric, self._mode, self.constraints, self._objective_note())

    def _objective_note(self) -> str | None:
        """What the metric means, in a sentence, where the searcher knows it (the LLM's prompt shows it)."""
        return None

    def _on_configured(self) -> None:
        self._bind_memory()
        self._check_points()
        if self._warm_start is not None:
            path, self._warm_start = self._warm_start, None
            self.warm_start_from(path)

    def _check_points(self) -> None:
        """Checks every point to evaluate once the space is known, before any trial starts (a bad one found
        by ``suggest`` would stop the search with trials already run); a repeated architecture is said."""
        keys: dict[str, int] = {}
        for i, point in enumerate(self._points):
            key = self._point_arch(point, f"point {i}").key()
            if key in keys:
                logger.warning(
                    "%s: points %d and %d of points_to_evaluate are the same architecture %s; only the first "
                    "runs (a search trains each architecture once).",
                    type(self).__name__,
                    keys[key],
                    i,
                    key,
                )
            keys.setdefault(key, i)

    def _bind_memory(self) -> None:
        """Gives the memory this searcher's objectives: a memory file keeps the metric and mode, not the
        constraints (they belong to the searcher that reads it), so a restored memory gets them here."""
        if self._metric and self._mode:
            self.memory.objective = Objective(self._metric, self._mode, self.constraints)
        self.memory.pareto = self.pareto

    def _check_ready(self) -> None:
        if self._space is None:
            raise RuntimeError(
                UNDEFINED_SEARCH_SPACE.format(cls=type(self).__name__, space="space")
                + (
                    " If this searcher comes from tune.Tuner.restore: Tune had saved no state of the run to restore "
                    "it from (the driver stopped before Tune's first save), and a restored Tuner keeps no "
                    "param_space; pass it again, Tuner.restore(path, trainable, param_space=...), or start the "
                    "search anew."
                )
            )
        if not self._metric or not self._mode:
            raise RuntimeError(
                UNDEFINED_METRIC_MODE.format(cls=type(self).__name__, metric=self._metric, mode=self._mode)
            )

    # --- Tune's calls -------------------------------------------------------------------------

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]  # FINISHED is a str
        self._check_ready()
        if self.max_trials is not None and self._proposed >= self.max_trials:
            return Searcher.FINISHED
        proposal = self._next_point() or self._next_stalled_aware_proposal()
        if proposal is None:
            if not self.live:
                logger.warning(
                    "%s: no new architecture could be found; the space looks exhausted. Finishing.", type(self).__name__
                )
                self.exhausted = True
                return Searcher.FINISHED
            return None  # nothing new right now; Tune asks again when a trial ends
        key = proposal.arch.key()
        config = {**self._config_for(proposal.arch), **proposal.settings, PROPOSER_KEY: proposal.proposer}
        tokens = (proposal.prompt_tokens, proposal.completion_tokens)
        tokens = self.billed(tokens) if self._bills_tokens(proposal) else tokens
        self.memory.propose(trial_id, config, key, proposal.proposer, *tokens, note=proposal.note)
        self.live[trial_id] = key
        self._proposed += 1
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._take_in_rerun(trial_id, result)
        if not self.memory.report(trial_id, result or {}):
            logger.debug("%s: result for unknown trial %s ignored.", type(self).__name__, trial_id)
            return
        record = self.memory.get(trial_id)
        if trial_id in self._reruns:  # not this searcher's trial: never live (see _take_in_rerun)
            self._complete_rerun_at_its_end(trial_id, result or {})
        elif record is not None and record.arch_key is not None:
            self.live.setdefault(trial_id, record.arch_key)  # a retried trial is live again

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self._take_in_rerun(trial_id, result)
        self.live.pop(trial_id, None)
        record = self.memory.get(trial_id)
        if record is None:
            logger.warning("%s: completion of unknown trial %s ignored.", type(self).__name__, trial_id)
            return
        if record.status != "running" and trial_id in self._reruns:
            return  # a rerun recorded at its last iteration already
        if record.status != "running":
            logger.warning("%s: trial %s completed twice; the second report is ignored.", type(self).__name__, trial_id)
            return
        result = result or {}
        fault = record.error  # the reason a failing trial reported (see ray_diffnas.trainable.faults)
        if error or fault:  # a scheduler may stop a trial at its fault report, before it raises
            reason = fault or result.get("error") or "the trial raised an error (see Tune's error file)"
            self.memory.complete(trial_id, None if fault else result, status="failed", error=reason)
        else:
            self.memory.complete(trial_id, result, status=self._finished_status(record, result))
        self.on_outcome(trial_id)

    def _take_in_rerun(self, trial_id: str, result: Mapping[str, Any] | None) -> None:
        """Takes in a trial this searcher never suggested that reruns one of its failed trials:
        ``Tuner.restore(..., restart_errored=True)`` reruns each errored trial under a new id. Its
        record replaces the failed one (who proposed it, its settings and tokens kept), so the memory
        holds the architecture once, with the rerun's outcome."""
        if self.memory.get(trial_id) is not None or self._space is None:
            return  # the common case, on every result: a trial this searcher knows
        arch = _trial_arch(result or {})
        if arch is None:
            return
        try:
            key = self.space.validate(arch).key()
        except ConfigError:
            return
        failed = [r for r in self.memory.records(["failed"]) if r.arch_key == key]
        if not failed:
            return  # not one of this search's trials: nothing to take it in from
        earlier = self.memory.forget(failed[-1].trial_id)
        assert earlier is not None
        self.memory.propose(
            trial_id,
            earlier.config,
            key,
            earlier.proposer,
            earlier.prompt_tokens,
            earlier.completion_tokens,
            note=f"rerun of failed trial {earlier.trial_id} (Tuner.restore with restart_errored)",
        )
        self._reruns.add(trial_id)

    def _complete_rerun_at_its_end(self, trial_id: str, result: Mapping[str, Any]) -> None:
        """Records a taken-in rerun as completed at its last iteration: a ConcurrencyLimiter passes on its
        results but not its completion (it did not suggest it), so its end may never be told otherwise."""
        record = self.memory.get(trial_id)
        if record is not None and record.status == "running" and result.get("training_iteration") == self._last(record):
            self.memory.complete(trial_id, None, status="completed")
            self.on_outcome(trial_id)

    def on_outcome(self, trial_id: str) -> None:
        """Called after each trial ends and is recorded; subclasses may learn from it."""

    def _finished_status(self, record: TrialRecord, result: Mapping[str, Any]) -> str:
        """``stopped`` for a trial the scheduler ended before its last iteration: a low-fidelity result.
        With no result (HyperBand ends a paused trial so), the iterations the trial reported say."""
        target = self._last(record)
        done = result.get("training_iteration", record.iterations or None)
        if target is not None and isinstance(done, numbers.Real) and done < target:
            return "stopped"
        return "completed"

    def _last(self, record: TrialRecord) -> int | None:
        """The trial's last iteration (its ``max_iterations``), when its settings say."""
        target = record.config.get("max_iterations", self._base_config.get("max_iterations"))
        return int(target) if isinstance(target, numbers.Integral) else None

    def add_evaluated_point(
        self,
        parameters: dict,
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        """Records an outcome observed outside this search (Tune's warm-start API); an architecture the
        memory already holds is not recorded twice.

        Raises:
            ConfigError: for a multi-objective searcher: the point carries one value, which cannot place
                it on the front (``warm_start=`` takes a results table or memory with every objective).
        """
        self._check_ready()
        if self.pareto is not None:
            raise ConfigError(
                f"{type(self).__name__} searches several objectives ({', '.join(self.pareto.metrics)}), but "
                "add_evaluated_point carries one value; pass the earlier search's results.parquet or "
                "search-memory.parquet as warm_start=... instead, which holds every objective."
            )
        arch = self.space.validate(parameters.get("arch", parameters))
        if self.memory.has_key(arch.key()):
            logger.info("%s: %s is in the memory already; not added again.", type(self).__name__, arch.key())
            return
        curve = _floats(intermediate_values) + ([] if value is None else [float(value)])
        status = "failed" if error else ("stopped" if pruned else "completed")
        self._add_outcome(parameters, curve, status)

    def _add_outcome(
        self, parameters: Mapping[str, Any], curve: list[float], status: str, metrics: Mapping[str, Any] | None = None
    ) -> None:
        """Records an outside outcome: the objective's curve, and the other metrics it reported (with
        several objectives, the others are what places it on the front)."""
        arch = self.space.validate(parameters.get("arch", parameters))
        trial_id = self.memory.new_id("evaluated")
        self.memory.propose(trial_id, {"arch": arch.to_dict()}, arch.key(), "warm_start")
        for i, v in enumerate(curve, start=1):
            self.memory.report(trial_id, {**(metrics or {}), self.objective.metric: v, "training_iteration": i})
        error = "reported as an error" if status == "failed" else None
        self.memory.complete(trial_id, None, status=status, error=error)

    # --- proposals ------------------------------------------------------------------------

    def _next_point(self) -> Proposal | None:
        while self._points:
            point = self._points.pop(0)
            arch = self._point_arch(point, "a point")
            if self._is_new(arch.key()):
                settings = {k: v for k, v in point.items() if k != "arch"} if "arch" in point else {}
                return Proposal(arch, "user", settings=settings)
        return None

    def _point_arch(self, point: Mapping[str, Any], which: str) -> Architecture:
        """The architecture of a point to evaluate (``{"arch": ..., settings}`` or the architecture alone)."""
        try:
            return self.space.validate(point.get("arch", point))
        except ConfigError as exc:
            raise ConfigError(f"{type(self).__name__}: {which} of points_to_evaluate is invalid: {exc}") from None

    def _next_stalled_aware_proposal(self) -> Proposal | None:
        """Asks the proposer again only after a trial has ended since it last came back empty:
        Tune calls ``suggest`` in a loop, and an exhausted proposer must not be hammered."""
        finished = len(self.memory.records(ENDED))  # not len(memory): an invalid proposal is no trial that ended
        if self._stalled_at is not None and finished == self._stalled_at:
            return None
        proposal = self._next_proposal()
        self._stalled_at = None if proposal is not None else finished
        return proposal

    def _next_proposal(self) -> Proposal | None:
        for _ in range(2):  # refill once if every stored proposal has gone stale
            while self._pending:
                proposal = self._pending.pop(0)
                if self._is_new(proposal.arch.key()):
                    return proposal
            wanted = max(1, self._wanted_batch())
            self._pending = [p for p in self.propose(wanted) if self._is_new(p.arch.key())]
        return None

    def set_aside(self, tokens: tuple[int, int]) -> None:
        """Tokens no record carries yet (a call's, as it answers; a forgotten record's): the next record's."""
        saved = getattr(self, "unbilled_tokens", (0, 0))  # a searcher pickled before 2026-12-05 has none
        self.unbilled_tokens = (saved[0] + tokens[0], saved[1] + tokens[1])

    def _bills_tokens(self, proposal: Proposal) -> bool:
        """Whether the record of ``proposal`` carries the tokens set aside (here every record does)."""
        return True

    def billed(self, tokens: tuple[int, int]) -> tuple[int, int]:
        """``tokens`` and those set aside since the last record: what the record made now carries."""
        self.set_aside(tokens)
        billed, self.unbilled_tokens = self.unbilled_tokens, (0, 0)
        return billed

    def _best_feasible(self, k: int) -> list[TrialRecord]:
        """The ``k`` best finished trials that met every constraint (see :class:`Objective`): the parents a
        searcher mutates. With several objectives: by Pareto rank, and within a rank those that add most
        hypervolume first (:meth:`SearchMemory.front_members`)."""
        if self.pareto is not None:
            return self.memory.front_members(k)
        objective = self.objective
        usable = [
            r
            for r in self.memory.records(SCORED)
            if r.arch_key is not None and r.best is not None and objective.feasible(r.last_metrics)
        ]
        return sorted(usable, key=lambda r: objective.sort_key(r.best))[:k]

    def _neighbour(self, parents: Sequence[Mapping[str, Any]], taken_keys: set[str], tries: int = 50) -> Any:
        """A mutation of one of ``parents`` (a fresh sample when there are none) that is new and
        not in ``taken_keys``, if one turns up in ``tries`` draws: the fallback move of model searchers."""
        for _ in range(tries):
            if parents:
                parent = self.space.validate(parents[int(self.rng.integers(len(parents)))])
                arch = self.space.mutate(parent, self.rng)
            else:
                arch = self.space.sample(self.rng)
            if self._untried(arch.key(), taken_keys):
                break
        return arch

    def _untried(self, key: str, taken_keys: set[str]) -> bool:
        """Whether an architecture is neither in the memory nor among ``taken_keys`` (this batch's picks)."""
        return self._is_new(key) and key not in taken_keys

    def _new_neighbour(self, parents: Sequence[Mapping[str, Any]], taken_keys: set[str]) -> Any:
        """A new mutation of one of ``parents`` or, when their neighbourhoods are spent (a small space), a
        fresh sample: a search goes on while the space has untried architectures. A repeat comes back only
        when none turns up, and ends the search."""
        arch = self._neighbour(parents, taken_keys)
        if parents and not self._untried(arch.key(), taken_keys):
            arch = self._neighbour([], taken_keys)
        return arch

    def _wanted_batch(self) -> int:
        """How many proposals to ask for at once: one per trial that could start now."""
        return 1

    def _is_new(self, key: str) -> bool:
        return not self.memory.has_key(key)  # live trials are in memory too (status "running")

    def _config_for(self, arch: Architecture) -> dict[str, Any]:
        config: dict[str, Any] = {"arch": arch.to_dict()}
        for name, value in self._base_config.items():
            if isinstance(value, Domain):  # a searched training setting: sample it
                config[name] = value.sample(random_state=self.rng)
        return config

    # --- warm start -------------------------------------------------------------------------

    def warm_start_from(self, path: str | os.PathLike) -> int:
        """Seeds the memory with a previous ``results.parquet`` or search memory; returns rows added."""
        self._check_ready()
        path = Path(path)
        try:
            memory, _ = SearchMemory.load(path)
            curves_of = memory.objective.metric
            rows = [(r.config.get("arch", {}), r.curve, r.status, r.last_metrics) for r in memory.records(SCORED)]
        except NotAMemoryFileError:
            frame = _read_results(path)
            curves_of = METRIC  # a search's results table: its curves (rfid_curve) are the search's metric's
            rows = [
                (_json(row["arch"]), _floats(row.get("rfid_curve")), row.get("status", "completed"), row)
                for row in frame.to_dict("records")
            ]
        if curves_of != self.objective.metric:
            raise ConfigError(
                f"Warm-start file {str(path)!r} holds curves of {curves_of!r}, but {type(self).__name__} searches "
                f"{self.objective.metric!r}: they would be read as its values. Pass the file of a search of "
                f"{self.objective.metric!r}, or leave warm_start out."
            )
        added, outside = 0, 0
        for arch_values, curve, status, metrics in rows:
            if status not in SCORED:
                continue  # a failed trial's partial curve says nothing reliable
            try:
                arch = self.space.validate(arch_values)
            except ConfigError:
                outside += 1  # outside this space (e.g. another image size): nothing to learn from
                continue
            if not curve or self.memory.has_key(arch.key()):
                continue
            # the metrics it reported (a results table's arch.* and train.* columns are settings, not outcomes)
            numbers_only = {k: v for k, v in metrics.items() if "." not in k and reported(metrics, k) is not None}
            self._add_outcome({"arch": arch.to_dict()}, curve, status, numbers_only)
            added += 1
        if outside and not added:
            raise ConfigError(
                f"Warm-start file {str(path)!r} holds {outside} finished architecture(s), none of them in this "
                f"searcher's space {self.space!r}: it comes from a search over another space (or image size). "
                f"Pass the results of a search over the same space, or leave warm_start out."
            )
        if outside:
            logger.warning(
                "%s: warm start skipped %d architecture(s) of %s outside this space.",
                type(self).__name__,
                outside,
                path,
            )
        logger.info("%s: warm start added %d outcomes from %s.", type(self).__name__, added, path)
        return added

    # --- save / restore -----------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        """Everything but the memory records, JSON-able (the memory file's metadata)."""
        return {
            "class": type(self).__name__,
            "space": None if self._space is None else self._space.to_dict(),
            "metric": self._metric,
            "mode": self._mode,
            "objectives": None
            if self._objectives is None
            else {"metrics": self._objectives[0], "modes": self._objectives[1]},
            "base_config": _describe_base_config(self._base_config),
            "searched_settings": _pickled_domains(self._base_config),
            "points": self._points,
            "max_trials": self.max_trials,
            "proposed": self._proposed,
            "live": self.live,
            "rng": self.rng.bit_generator.state,
            "pending": [proposal_state(p) for p in self._pending],
            "stalled_at": self._stalled_at,
            "unbilled_tokens": list(getattr(self, "unbilled_tokens", (0, 0))),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        objectives = state.get("objectives")  # none in states saved before several objectives (2026-12-02)
        saved = None if not objectives else (list(objectives["metrics"]), list(objectives["modes"]))
        if saved != self._objectives and self._objectives is not None:
            raise ConfigError(
                f"{type(self).__name__} searches {self._objectives[0]}, but the saved search had "
                f"{saved[0] if saved else [state['metric']]}; restore it into a searcher with the same metrics."
            )
        self._space = None if state["space"] is None else space_from_dict(state["space"])
        self._metric, self._mode = state["metric"], state["mode"]
        self._objectives = saved
        if not self._base_config:  # restored without param_space: the settings it had, searched ones too
            searched = _unpickled_domains(state.get("searched_settings"))
            self._base_config = dict(state.get("base_config") or {}) | searched
        self._points = list(state["points"])
        self.max_trials, self._proposed = state["max_trials"], state["proposed"]
        self.live = dict(state["live"])
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = state["rng"]
        self._pending = [proposal_from_state(p, self.space) for p in state["pending"]]
        self._stalled_at = state.get("stalled_at")
        self.unbilled_tokens = tuple(state.get("unbilled_tokens", (0, 0)))

    def save(self, checkpoint_path: str) -> Path:
        """Writes the memory and the searcher's state to one Parquet file, atomically; returns its path."""
        return self.memory.save(checkpoint_path, state=self.get_state())

    def restore(self, checkpoint_path: str) -> None:
        """Loads a file written by :meth:`save` into this (possibly blank) searcher."""
        memory, state = SearchMemory.load(checkpoint_path)
        if "space" not in state:
            raise MemoryFileError(
                f"{checkpoint_path!r} is a search memory without searcher state (saved by SearchMemory.save, "
                f"not by a searcher); to learn from its outcomes pass it as warm_start=... instead."
            )
        if state.get("class") not in (None, type(self).__name__):
            logger.warning("%s restores a memory written by %s.", type(self).__name__, state.get("class"))
        self.set_state(state)  # first: a state this searcher cannot take leaves it untouched
        self.memory = memory
        self._bind_memory()

    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        """Writes the memory file, and its copy under Tune's searcher-state name, into ``checkpoint_dir``.

        ``search-memory.parquet`` is the file users open. When Tune resumes a run it brings back
        only the ``*.json`` and ``*.pkl`` files of the experiment folder into a new driver folder
        (``TuneController.resume``), so the memory alone would be left behind by a resume in a new
        Ray session; the copy under Tune's own name (``searcher-state-<session>.pkl``, Parquet
        bytes despite the suffix) is what comes back.
        """
        memory_file = self.save(os.path.join(checkpoint_dir, MEMORY_FILE))
        state_file = os.path.join(checkpoint_dir, self.CKPT_FILE_TMPL.format(session_str))
        atomic_write(state_file, lambda tmp: shutil.copyfile(memory_file, tmp))

    def restore_from_dir(self, checkpoint_dir: str) -> None:
        """Restores from the newest searcher-state file in ``checkpoint_dir`` (or its memory file), then
        follows the trials of Tune's experiment state there, which are the ones Tune resumes."""
        path = newest_searcher_state(checkpoint_dir, self.CKPT_FILE_TMPL)
        if path is None:
            raise MemoryFileError(
                f"{type(self).__name__}: neither {self.CKPT_FILE_TMPL.format('*')} nor {MEMORY_FILE} is in "
                f"{checkpoint_dir!r} to restore from; pass the experiment folder of a run this searcher saved."
            )
        self.restore(str(path))
        trials = saved_trials(checkpoint_dir)
        if trials is not None:
            self.follow_trials(trials)

    def follow_trials(self, trials: Sequence[SavedTrial]) -> None:
        """Makes the memory agree with the trials of a saved Tune run.

        Tune copies its state and this searcher's to storage one file at a time, so a driver killed
        mid-copy may leave the memory one save behind or ahead of the trials Tune resumes. Tune's
        list wins: a trial the memory lacks is added (proposer ``restored``), one that finished or
        reported more for Tune is brought up to date, and a proposal Tune never recorded is dropped
        (its architecture was never trained, so it may be proposed again).
        """
        tune_ids = {t.trial_id for t in trials}
        unrun_points = []
        for record in self.memory.records():
            if record.arch_key is not None and record.proposer != "warm_start" and record.trial_id not in tune_ids:
                self.memory.forget(record.trial_id)
                if record.proposer == "user":  # a point the user asked for: it must still run
                    unrun_points.append({k: v for k, v in record.config.items() if k != PROPOSER_KEY})
                self.set_aside((record.prompt_tokens, record.completion_tokens))  # the next record carries them
                self.live.pop(record.trial_id, None)
                logger.warning(
                    "%s: dropped proposal %s, which Tune's saved state does not hold.",
                    type(self).__name__,
                    record.trial_id,
                )
        self._points[:0] = unrun_points
        for trial in trials:
            found = self.memory.get(trial.trial_id)
            if found is None:
                arch = self.space.validate(trial.config.get("arch", {}))
                settings = {k: v for k, v in trial.config.items() if k in ("arch", *self._searched_settings())}
                self.memory.propose(
                    trial.trial_id,
                    {**settings, "arch": arch.to_dict()},
                    arch.key(),
                    "restored",
                    note="restored by Tune; the searcher's last save missed it",
                )
                found = self.memory.get(trial.trial_id)
            assert found is not None
            record = found
            behind = [r for r in trial.results if iteration(r) > record.iterations]
            if behind or (trial.finished and record.status == "running"):
                for result in behind:
                    self.memory.report(trial.trial_id, result)
                if trial.errored:
                    self.memory.complete(
                        trial.trial_id,
                        None,
                        status="failed",
                        error=record.error or "the trial raised an error (see Tune's error file)",
                    )
                elif trial.finished:
                    last = trial.results[-1] if trial.results else {}
                    self.memory.complete(trial.trial_id, None, status=self._finished_status(record, last))
            self._track(trial, record.arch_key)
        # The proposals that count against max_trials are the trials Tune holds (whichever save was newer).
        self._proposed = sum(r.proposer != "warm_start" for r in self.memory.records() if r.arch_key is not None)

    def _track(self, trial: SavedTrial, key: str | None) -> None:
        if trial.finished:
            self.live.pop(trial.trial_id, None)
        elif key is not None:
            self.live[trial.trial_id] = key

    def _searched_settings(self) -> list[str]:
        return [name for name, value in self._base_config.items() if isinstance(value, Domain)]


def proposal_state(proposal: Proposal) -> dict[str, Any]:
    """A proposal not yet handed out, as JSON-able state (its training settings come from the base config)."""
    return {
        "arch": proposal.arch.to_dict(),
        "proposer": proposal.proposer,
        "note": proposal.note,
        "prompt_tokens": proposal.prompt_tokens,
        "completion_tokens": proposal.completion_tokens,
    }


def proposal_from_state(state: Mapping[str, Any], space: SearchSpace) -> Proposal:
    """The proposal :func:`proposal_state` saved, validated against ``space``."""
    return Proposal(
        space.validate(state["arch"]),
        state["proposer"],
        state.get("prompt_tokens", 0),
        state.get("completion_tokens", 0),
        state.get("note"),
    )


def newest_searcher_state(folder: str | os.PathLike, template: str = Searcher.CKPT_FILE_TMPL) -> Path | None:
    """The newest searcher-state file a :class:`MemorySearcher` wrote in ``folder``, else its memory file."""
    states = sorted(Path(folder).glob(template.format("*")))  # session strings are timestamps: the last is newest
    memory = Path(folder) / MEMORY_FILE
    return states[-1] if states else (memory if memory.is_file() else None)


def _not_sampled(config: Mapping[str, Any], arch_is_searched: bool) -> list[str]:
    """The keys of ``config`` whose values a trial would get unresolved: a grid search anywhere, a domain
    below the top level, or an ``arch`` domain that is not the space's (this searcher proposes ``arch``)."""
    found = []
    for key, value in config.items():
        if (key == "arch" and arch_is_searched) or key == "space":
            continue
        if key == "arch" and (isinstance(value, Domain) or _unresolved(value)):
            found.append("arch (the searcher proposes it: leave it out, or use space.param_space())")
        elif not isinstance(value, Domain) and _unresolved(value):
            found.append(repr(key))
    return found


def _unresolved(value: Any) -> bool:
    if isinstance(value, Domain):
        return True
    if isinstance(value, Mapping):
        return "grid_search" in value or any(_unresolved(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_unresolved(v) for v in value)
    return False


def _space_from_param_space(config: Mapping[str, Any]) -> Any | None:
    if isinstance(config.get("space"), Mapping):
        return space_from_dict(config["space"])
    domain = config.get("arch")
    return domain.space if isinstance(domain, ArchDomain) else None


def _describe_base_config(config: Mapping[str, Any]) -> dict[str, Any]:
    # The fixed settings, as JSON (the searched ones, Tune Domains, are not JSON: _pickled_domains).
    return {k: v for k, v in config.items() if not isinstance(v, Domain) and _jsonable(v)}


def _pickled_domains(config: Mapping[str, Any]) -> str | None:
    """The searched settings (Tune Domains) of ``config``, pickled as Tune pickles its search space.
    ``Tuner.restore`` without ``param_space`` gives the searcher Tune's pickled copy of it, made before
    the run configured it, and its saved state: unless the state holds the Domains, the searcher does not
    sample them and each new trial gets the Domain object itself."""
    searched = {k: v for k, v in config.items() if isinstance(v, Domain)}
    return base64.b64encode(cloudpickle.dumps(searched)).decode("ascii") if searched else None


def _unpickled_domains(text: str | None) -> dict[str, Domain]:
    return {} if not text else dict(cloudpickle.loads(base64.b64decode(text)))


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _trial_arch(result: Mapping[str, Any]) -> Any:
    """The architecture a Tune result carries in its config: nested, or flattened (``config/arch/...``)
    as Tune hands results to a searcher; None when it carries none."""
    if isinstance(result.get("config"), Mapping):
        return result["config"].get("arch")
    if "config/arch" in result:
        return result["config/arch"]
    prefix = "config/arch/"
    fields = {k.removeprefix(prefix): v for k, v in result.items() if k.startswith(prefix)}
    return fields or None


def _floats(values: Any) -> list[float]:
    return [] if values is None else [float(v) for v in values]


def _json(text: Any) -> dict[str, Any]:
    return json.loads(text) if isinstance(text, str) else dict(text or {})


def _read_results(path: Path) -> pd.DataFrame:
    import pandas as pd
    import pyarrow as pa

    try:
        frame = pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise MemoryFileError(f"Warm-start file {str(path)!r} could not be read as Parquet ({error}).") from None
    if "arch" not in frame.columns:
        raise MemoryFileError(
            f"Warm-start file {str(path)!r} has no 'arch' column; pass a results.parquet written by "
            f"ray-diffnas search or a search-memory file."
        )
    return frame
