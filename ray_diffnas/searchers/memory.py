"""SearchMemory: every proposal a searcher made and what became of it, kept in one Parquet file.

The file is both the searcher's checkpoint (its state rides in the Parquet metadata) and a table a
user opens with pandas or DuckDB: one row per proposal.
"""

from __future__ import annotations

import heapq
import json
import math
import numbers
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ray_diffnas.atomic import atomic_write
from ray_diffnas.errors import DiffNASError
from ray_diffnas.searchers.objective import Objective, reported
from ray_diffnas.searchers.pareto import ParetoObjective, hypervolume_contributions, pareto_ranks, reference_point
from ray_diffnas.trainable.faults import FAULT_KEY
from ray_diffnas.trainable.reports import METRIC, MODE

FORMAT_VERSION = 1
METADATA_KEY = b"ray_diffnas.search_memory"
STATUSES = ("running", "completed", "stopped", "failed", "invalid")
SCORED = ("completed", "stopped")  # the statuses of a trial that ran to a value (stopped: by a scheduler, early)
ENDED = (*SCORED, "failed")  # the statuses of a trial that ran and ended
# restored: a trial Tune restored that the memory had not recorded (the driver died between the two saves)
# random: a uniform draw from the space (a warm-up, or a searcher with nothing better to offer)
PROPOSERS = ("llm", "repair", "fallback", "warm_start", "user", "random", "graph", "neighbour", "restored")
RENAMED_PROPOSERS = {"sampler": "random"}  # names in memories saved before 2026-12-02


class MemoryFileError(DiffNASError):
    """A search-memory file is missing, corrupted, foreign or from another format version."""


class NotAMemoryFileError(MemoryFileError):
    """A readable Parquet file that is not a search memory (e.g. a ``results.parquet``)."""


@dataclass
class TrialRecord:
    """One proposal and its outcome."""

    trial_id: str
    config: dict[str, Any]  # What was proposed (the architecture, and any searched settings).
    arch_key: str | None  # Canonical architecture key; None for an invalid proposal.
    proposer: str  # one of PROPOSERS
    status: str = "running"  # running | completed | stopped | failed | invalid
    # The objective at each report, NaN where it was missing (a report per iteration: index i is iteration i + 1).
    curve: list[float] = field(default_factory=list)
    best: float | None = None  # The best finite value of the curve (in the memory's mode).
    last_metrics: dict[str, float] = field(default_factory=dict)  # Numeric metrics of the last report.
    iterations: int = 0  # Reports received (the rung reached under ASHA).
    error: str | None = None  # Why it failed, or why the proposal was invalid.
    note: str | None = None  # Why this proposer (e.g. "LLM unavailable: APITimeoutError").
    prompt_tokens: int = 0
    completion_tokens: int = 0
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)


_SCHEMA = pa.schema(
    [
        ("trial_id", pa.string()),
        ("config", pa.string()),  # JSON
        ("arch_key", pa.string()),
        ("proposer", pa.string()),
        ("status", pa.string()),
        ("curve", pa.list_(pa.float64())),
        ("best", pa.float64()),
        ("last_metrics", pa.string()),  # JSON
        ("iterations", pa.int64()),
        ("error", pa.string()),
        ("note", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("created", pa.float64()),
        ("updated", pa.float64()),
    ]
)
_JSON_COLUMNS = ("config", "last_metrics")
RANK_COLUMN = "pareto_rank"  # written beside the columns above when the search has several objectives


class SearchMemory:
    """Every proposal and outcome of one search, in proposal order.

    Example:
        >>> memory = SearchMemory(metric="rfid", mode="min")
        >>> memory.propose("t1", {"arch": {"base_channels": 16}}, "c16", proposer="llm")
        >>> memory.report("t1", {"rfid": 12.5, "latency_ms": 3.0})
        True
        >>> memory.complete("t1", {"rfid": 9.0}, status="completed")
        True
        >>> memory.top_k(1)[0].best, memory.has_key("c16")
        (9.0, True)
    """

    def __init__(self, metric: str = METRIC, mode: str = MODE) -> None:
        self.objective = Objective(metric, mode)  # what "better" and "missing" mean for every record
        # Several objectives (a multi-objective search sets it): each finished trial then has a Pareto rank.
        self.pareto: ParetoObjective | None = None
        self._records: dict[str, TrialRecord] = {}
        self._key_index: set[str] = set()  # de-duplication in O(1), whatever the memory's size

    @property
    def metric(self) -> str:
        return self.objective.metric

    @property
    def mode(self) -> str:
        return self.objective.mode

    def _add(self, record: TrialRecord) -> None:
        self._records[record.trial_id] = record
        if record.arch_key is not None:
            self._key_index.add(record.arch_key)

    # --- recording ----------------------------------------------------------------------

    def propose(
        self,
        trial_id: str,
        config: Mapping[str, Any],
        arch_key: str,
        proposer: str,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        note: str | None = None,
    ) -> None:
        """Records a proposal handed to a trial (status ``running``)."""
        self._check_proposer(proposer)
        self._add(
            TrialRecord(
                trial_id,
                dict(config),
                arch_key,
                proposer,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                note=note,
            )
        )

    def forget(self, trial_id: str) -> TrialRecord | None:
        """Removes a record (a proposal that never became a trial Tune kept); returns it."""
        record = self._records.pop(trial_id, None)
        if (
            record is not None
            and record.arch_key is not None
            and not any(r.arch_key == record.arch_key for r in self._records.values())
        ):
            self._key_index.discard(record.arch_key)
        return record

    def new_id(self, prefix: str) -> str:
        """A record id for something that is not a Tune trial (``invalid-7``, ``evaluated-3``) that no record
        holds: the count of records alone would repeat an id once a record has been forgotten, and the
        new record would silently replace the old one.

        Example:
            >>> memory = SearchMemory()
            >>> memory.propose("t1", {}, "a", proposer="llm")
            >>> first = memory.invalid({}, "bad", proposer="llm")
            >>> _ = memory.forget("t1")
            >>> memory.new_id("invalid") != first
            True
        """
        n = len(self._records)
        while f"{prefix}-{n}" in self._records:
            n += 1
        return f"{prefix}-{n}"

    def invalid(
        self, config: Any, error: str, proposer: str, prompt_tokens: int = 0, completion_tokens: int = 0
    ) -> str:
        """Records a proposal that never became a trial; returns its record id."""
        self._check_proposer(proposer)
        record_id = self.new_id("invalid")
        payload = config if isinstance(config, Mapping) else {"raw": str(config)[:2000]}
        self._add(
            TrialRecord(
                record_id,
                dict(payload),
                None,
                proposer,
                status="invalid",
                error=error[:2000],
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
            )
        )
        return record_id

    def report(self, trial_id: str, result: Mapping[str, Any]) -> bool:
        """Adds one intermediate result; returns False for an unknown trial."""
        record = self._records.get(trial_id)
        if record is None:
            return False
        fault = result.get(FAULT_KEY)
        if isinstance(fault, str):  # the trial's last word before it raises: why it fails
            record.error, record.updated = fault, time.time()
            return True
        iteration = result.get("training_iteration")
        if isinstance(iteration, numbers.Integral) and 1 <= int(iteration) <= len(record.curve):
            # A trial re-run from a checkpoint reports iterations again: keep one value per iteration.
            del record.curve[int(iteration) - 1 :]
            record.best = self.objective.best(record.curve)
        elif isinstance(iteration, numbers.Integral) and int(iteration) > len(record.curve) + 1:
            # Reports this memory never saw (a trial restored from Tune's state with its last result only)
            record.curve.extend([math.nan] * (int(iteration) - 1 - len(record.curve)))
        record.status, record.error = "running", None  # a failed trial that Tune retries lives again
        value = self.objective.value(result)
        # A missing value keeps its place, so that a re-run's iteration numbers point at the right values
        record.curve.append(math.nan if value is None else value)
        if self.objective.better(value, record.best):
            record.best = value
        record.iterations = int(result.get("training_iteration") or record.iterations + 1)
        record.last_metrics = {k: v for k in result if (v := reported(result, k)) is not None}
        record.updated = time.time()
        return True

    def complete(self, trial_id: str, result: Mapping[str, Any] | None, status: str, error: str | None = None) -> bool:
        """Closes a trial as ``completed``, ``stopped`` or ``failed``; returns False for an unknown one."""
        if status not in ENDED:
            raise ValueError(f"status must be completed, stopped or failed, but got {status!r}.")
        record = self._records.get(trial_id)
        if record is None:
            return False
        if result:
            iteration = result.get("training_iteration")
            if iteration is None or iteration != record.iterations or not record.curve:
                self.report(trial_id, result)  # the final result, unless on_trial_result saw it
            if isinstance(iteration, numbers.Real) and not isinstance(iteration, bool):
                record.iterations = int(float(iteration))
        if status != "failed" and record.error:
            # The last report was a fault (a normal one clears it): a scheduler stopped the trial at its fault
            # report (ASHA at the last rung), or a restore replayed it, before the trial's raise reached Tune.
            status, error = "failed", record.error
        if status != "failed" and record.best is None:
            status, error = "failed", error or f"no finite '{self.metric}' was reported"
        record.status, record.error, record.updated = status, error, time.time()
        return True

    @staticmethod
    def _check_proposer(proposer: str) -> None:
        if proposer not in PROPOSERS:
            raise ValueError(f"proposer must be one of {PROPOSERS}, but got {proposer!r}.")

    # --- reading ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, trial_id: object) -> bool:
        return trial_id in self._records

    def get(self, trial_id: str) -> TrialRecord | None:
        return self._records.get(trial_id)

    def records(self, statuses: Iterable[str] | None = None) -> list[TrialRecord]:
        wanted = set(statuses) if statuses is not None else None
        return [r for r in self._records.values() if wanted is None or r.status in wanted]

    def has_key(self, arch_key: str) -> bool:
        """Whether an architecture was tried (or is running): the de-duplication test."""
        return arch_key in self._key_index

    def keys(self) -> set[str]:
        return set(self._key_index)

    def top_k(self, k: int) -> list[TrialRecord]:
        """The ``k`` best finished records (completed or stopped) by best objective value.

        Running and failed trials are left out: a value from a trial that later diverged is no
        evidence for its architecture.
        """
        scored = (r for r in self._records.values() if r.best is not None and r.status in SCORED)
        return heapq.nsmallest(k, scored, key=lambda r: (self.objective.sort_key(r.best), r.status != "completed"))

    def best(self) -> TrialRecord | None:
        top = self.top_k(1)
        return top[0] if top else None

    def front_point(self, record: TrialRecord) -> dict[str, float]:
        """The metrics that place a finished trial on the front (:meth:`ParetoObjective.point`)."""
        assert self.pareto is not None, "a front needs several objectives"
        return self.pareto.point(record.last_metrics, record.best)

    def pareto_ranks(self, feasible_only: bool = True) -> dict[str, int]:
        """The Pareto rank (0 = on the front) of each finished trial that reported every objective (and met
        the constraints, unless not ``feasible_only``), by trial id; empty unless the search has several
        objectives (``pareto``).

        Example:
            >>> memory = SearchMemory("rfid", "min")
            >>> memory.pareto = ParetoObjective(["rfid", "latency_ms"], ["min", "min"])
            >>> for i, (rfid, ms) in enumerate([(3.0, 1.0), (2.0, 2.0), (3.0, 3.0)]):
            ...     memory.propose(f"t{i}", {}, f"k{i}", "random")
            ...     _ = memory.complete(f"t{i}", {"rfid": rfid, "latency_ms": ms}, "completed")
            >>> memory.pareto_ranks()
            {'t0': 0, 't1': 0, 't2': 1}
        """
        if self.pareto is None:
            return {}
        scored = []
        for record in self.records(SCORED):
            point = self.front_point(record)
            costs = self.pareto.costs(point)
            if costs is not None and (not feasible_only or self.pareto.feasible(point)):
                scored.append((record.trial_id, costs))
        if not scored:
            return {}
        ranks = pareto_ranks([costs for _, costs in scored])
        return {trial_id: int(rank) for (trial_id, _), rank in zip(scored, ranks)}

    def front(self) -> list[TrialRecord]:
        """The finished trials on the Pareto front (rank 0 of :meth:`pareto_ranks`), in the order they were proposed."""
        on_front = {trial_id for trial_id, rank in self.pareto_ranks().items() if rank == 0}
        return [r for r in self._records.values() if r.trial_id in on_front]

    def front_members(self, k: int) -> list[TrialRecord]:
        """The ``k`` best finished feasible trials with several objectives: by Pareto rank, and within a rank
        those that add most hypervolume first (the members that hold a thin stretch of the front up, whose
        neighbours extend it). The parents every searcher mutates when it searches for a front; empty
        unless the search has several objectives.

        Example:
            >>> memory = SearchMemory("rfid", "min")
            >>> memory.pareto = ParetoObjective(["rfid", "latency_ms"], ["min", "min"])
            >>> for i, (rfid, ms) in enumerate([(1.0, 9.0), (1.1, 5.0), (5.0, 1.0), (6.0, 6.0)]):
            ...     memory.propose(f"t{i}", {}, f"k{i}", "random")
            ...     _ = memory.complete(f"t{i}", {"rfid": rfid, "latency_ms": ms}, "completed")
            >>> [r.trial_id for r in memory.front_members(3)]  # t1 holds up the widest stretch
            ['t1', 't2', 't0']
        """
        pareto = self.pareto
        ranks = self.pareto_ranks()  # feasible trials only
        if pareto is None or not ranks:
            return []
        records = [self._records[t] for t in ranks]
        costs = np.array([pareto.costs(self.front_point(r)) for r in records])
        reference = reference_point(costs)
        added = np.zeros(len(records))
        for rank in set(ranks.values()):
            layer = [i for i, r in enumerate(records) if ranks[r.trial_id] == rank]
            added[layer] = hypervolume_contributions(costs[layer], reference)
        order = sorted(range(len(records)), key=lambda i: (ranks[records[i].trial_id], -added[i]))
        return [records[i] for i in order[:k]]

    def tokens(self) -> tuple[int, int]:
        """Total prompt and completion tokens spent."""
        records = self._records.values()
        return sum(r.prompt_tokens for r in records), sum(r.completion_tokens for r in records)

    # --- persistence --------------------------------------------------------------------

    def to_table(self, state: Mapping[str, Any] | None = None) -> pa.Table:
        """The memory as an Arrow table; ``state`` (JSON-able) rides in the schema metadata."""
        rows = []
        for record in self._records.values():
            row = asdict(record)
            for name in _JSON_COLUMNS:
                row[name] = json.dumps(row[name], sort_keys=True, default=str)
            rows.append(row)
        meta = {"format_version": FORMAT_VERSION, "metric": self.metric, "mode": self.mode, "state": dict(state or {})}
        schema = _SCHEMA.with_metadata({METADATA_KEY: json.dumps(meta, default=str).encode()})
        table = pa.Table.from_pylist(rows, schema=schema)
        if self.pareto is not None:  # for the people who open the file: recomputed from last_metrics on load
            ranks = self.pareto_ranks()
            table = table.append_column(RANK_COLUMN, pa.array([ranks.get(t) for t in self._records], pa.int64()))
        return table

    def save(self, path: str | os.PathLike, state: Mapping[str, Any] | None = None) -> Path:
        """Writes the memory (and ``state``) to one Parquet file, atomically."""
        table = self.to_table(state)
        return atomic_write(path, lambda tmp: pq.write_table(table, tmp))

    @classmethod
    def load(cls, path: str | os.PathLike) -> tuple[SearchMemory, dict[str, Any]]:
        """Reads a memory file; returns the memory and the saved searcher state.

        Raises:
            MemoryFileError: for a missing, corrupted, foreign or other-version file.
        """
        path = Path(path)
        if not path.is_file():
            raise MemoryFileError(f"Search memory file {str(path)!r} does not exist.")
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as error:
            raise MemoryFileError(
                f"Search memory file {str(path)!r} is not a readable Parquet file ({error}); it may be "
                f"truncated or corrupted. Restore it from a copy, or start a new search."
            ) from None
        meta = _memory_metadata(table, path)
        memory = cls(metric=meta["metric"], mode=meta["mode"])
        for row in table.to_pylist():
            row.pop(RANK_COLUMN, None)
            for name in _JSON_COLUMNS:
                row[name] = json.loads(row[name]) if row[name] else {}
            row["proposer"] = RENAMED_PROPOSERS.get(row["proposer"], row["proposer"])
            memory._add(TrialRecord(**row))
        return memory, dict(meta.get("state") or {})


def _memory_metadata(table: pa.Table, path: Path) -> dict[str, Any]:
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise NotAMemoryFileError(
            f"{str(path)!r} is a Parquet file but not a ray_diffnas search memory (no "
            f"{METADATA_KEY.decode()!r} metadata). To warm-start from a results table, pass it as "
            f"warm_start=... instead."
        )
    try:
        meta = json.loads(raw)
    except ValueError:
        raise MemoryFileError(f"The search-memory metadata of {str(path)!r} is corrupted (not JSON).") from None
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise MemoryFileError(
            f"{str(path)!r} is a search memory of format version {version}; this ray_diffnas reads version "
            f"{FORMAT_VERSION}. Open it with the ray_diffnas release that wrote it."
        )
    missing = set(_SCHEMA.names) - set(table.column_names)
    if missing:
        raise MemoryFileError(f"Search memory {str(path)!r} lacks columns {sorted(missing)}; it is corrupted.")
    return meta
