"""SearchMemory: records, top-k, de-duplication, and its Parquet file."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ray_diffnas.searchers.memory import METADATA_KEY, MemoryFileError, SearchMemory


def _memory() -> SearchMemory:
    memory = SearchMemory(metric="rfid", mode="min")
    memory.propose("a", {"arch": {"base_channels": 8}}, "k-a", proposer="llm", prompt_tokens=100, completion_tokens=20)
    memory.propose("b", {"arch": {"base_channels": 16}}, "k-b", proposer="fallback")
    memory.propose("c", {"arch": {"base_channels": 24}}, "k-c", proposer="user")
    for i, value in enumerate([30.0, 20.0, 12.0], start=1):
        memory.report("a", {"rfid": value, "training_iteration": i, "latency_ms": 2.0})
    memory.complete("a", {"rfid": 12.0, "training_iteration": 3}, status="completed")
    memory.report("b", {"rfid": 25.0, "training_iteration": 1})
    memory.complete("b", {"rfid": 25.0, "training_iteration": 1}, status="stopped")
    memory.complete("c", None, status="failed", error="TrainingDivergedError: loss became nan")
    memory.invalid({"base_channels": 7}, "base_channels must be a multiple of 8", proposer="llm", prompt_tokens=50)
    return memory


def test_records_keep_curves_statuses_and_tokens() -> None:
    memory = _memory()
    a = memory.get("a")
    assert a.curve == [30.0, 20.0, 12.0] and a.iterations == 3 and a.status == "completed"
    assert a.last_metrics["latency_ms"] == 2.0
    assert memory.get("b").status == "stopped" and memory.get("b").iterations == 1
    assert memory.get("c").status == "failed" and "nan" in memory.get("c").error
    assert [r.status for r in memory.records(["invalid"])] == ["invalid"]
    assert memory.tokens() == (150, 20)


def test_top_k_ranks_by_best_value_in_the_search_mode() -> None:
    memory = _memory()
    assert [r.trial_id for r in memory.top_k(5)] == ["a", "b"]
    maximize = SearchMemory(metric="acc", mode="max")
    for trial, value in (("x", 0.5), ("y", 0.9)):
        maximize.propose(trial, {}, trial, proposer="random")
        maximize.complete(trial, {"acc": value, "training_iteration": 1}, status="completed")
    assert maximize.best().trial_id == "y"


def test_de_duplication_by_architecture_key() -> None:
    memory = _memory()
    assert memory.has_key("k-b") and not memory.has_key("k-z")
    assert memory.keys() == {"k-a", "k-b", "k-c"}


def test_a_trial_stopped_at_its_fault_report_is_recorded_as_failed_with_the_reason() -> None:
    """ASHA may stop a trial at its last rung on the fault report it sends before raising: Tune then calls
    ``on_trial_complete`` with that report, never ``on_trial_result``, and no error flag."""
    from ray_diffnas.searchers.evolution import RegularizedEvolution
    from ray_diffnas.spaces.nb201 import NB201Space

    searcher = RegularizedEvolution(space=NB201Space(), metric="acc", mode="max", population_size=2, tournament_size=1)
    searcher.suggest("t1")
    searcher.on_trial_result("t1", {"acc": 0.7, "training_iteration": 1})
    fault = "TrainingDivergedError: the loss became nan at step 20"
    searcher.on_trial_complete("t1", {"acc": math.nan, "fault": fault, "training_iteration": 2})
    record = searcher.memory.get("t1")
    assert (record.status, record.error) == ("failed", fault)  # not "completed" with its iteration-1 value
    after_a_good_report = SearchMemory(metric="acc", mode="max")  # a trial Tune retried reports normally again
    after_a_good_report.propose("r", {}, "k", proposer="random")
    after_a_good_report.report("r", {"fault": fault, "training_iteration": 1})
    after_a_good_report.complete("r", {"acc": 0.8, "training_iteration": 1}, status="completed")
    assert (after_a_good_report.get("r").status, after_a_good_report.get("r").error) == ("completed", None)


def test_a_trial_without_a_finite_metric_is_recorded_as_failed() -> None:
    memory = SearchMemory()
    memory.propose("n", {}, "k", proposer="random")
    memory.complete("n", {"rfid": math.nan, "training_iteration": 1}, status="completed")
    assert memory.get("n").status == "failed" and "no finite 'rfid'" in memory.get("n").error


def test_unknown_trials_are_reported_not_raised() -> None:
    memory = SearchMemory()
    assert memory.report("ghost", {"rfid": 1.0}) is False
    assert memory.complete("ghost", {"rfid": 1.0}, status="completed") is False


def test_parquet_round_trip_keeps_records_and_state(tmp_path: Path) -> None:
    memory = _memory()
    path = memory.save(tmp_path / "memory.parquet", state={"rng": [1, 2, 3], "calls": 4})
    loaded, state = SearchMemory.load(path)
    assert state == {"rng": [1, 2, 3], "calls": 4}
    assert [vars(r) for r in loaded.records()] == [vars(r) for r in memory.records()]
    frame = pd.read_parquet(path)  # a plain table for users
    assert list(frame["trial_id"]) == ["a", "b", "c", "invalid-3"]
    assert list(frame["status"]) == ["completed", "stopped", "failed", "invalid"]


def test_corrupted_file_is_a_clear_error(tmp_path: Path) -> None:
    path = _memory().save(tmp_path / "memory.parquet")
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(MemoryFileError, match="not a readable Parquet file.*truncated or corrupted"):
        SearchMemory.load(path)


def test_foreign_parquet_file_is_a_clear_error(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1]}), tmp_path / "other.parquet")
    with pytest.raises(MemoryFileError, match="not a ray_diffnas search memory"):
        SearchMemory.load(tmp_path / "other.parquet")


def test_file_from_another_format_version_is_a_clear_error(tmp_path: Path) -> None:
    table = _memory().to_table()
    old = table.replace_schema_metadata({METADATA_KEY: b'{"format_version": 0, "metric": "rfid", "mode": "min"}'})
    pq.write_table(old, tmp_path / "old.parquet")
    with pytest.raises(MemoryFileError, match="format version 0; this ray_diffnas reads version 1"):
        SearchMemory.load(tmp_path / "old.parquet")


def test_numpy_metrics_count_as_numbers() -> None:
    import numpy as np

    memory = SearchMemory()
    memory.propose("n", {}, "k", proposer="random")
    memory.report("n", {"rfid": np.float32(4.5), "training_iteration": np.int64(1)})
    memory.complete("n", {"rfid": np.float32(4.5), "training_iteration": np.int64(1)}, status="completed")
    assert memory.get("n").status == "completed" and memory.get("n").curve == [4.5]


def test_a_trial_re_run_from_its_checkpoint_keeps_one_value_per_iteration() -> None:
    memory = SearchMemory()
    memory.propose("r", {}, "k", proposer="random")
    for it, value in [(1, 30.0), (2, 20.0), (3, 15.0)]:
        memory.report("r", {"rfid": value, "training_iteration": it})
    memory.complete("r", None, status="failed", error="node died")
    for it, value in [(3, 14.0), (4, 11.0)]:  # Tune retries it from the checkpoint of iteration 2
        memory.report("r", {"rfid": value, "training_iteration": it})
    memory.complete("r", {"rfid": 11.0, "training_iteration": 4}, status="completed")
    record = memory.get("r")
    assert record.curve == [30.0, 20.0, 14.0, 11.0] and record.status == "completed" and record.error is None


def test_failed_and_running_trials_are_not_in_the_top_k() -> None:
    memory = _memory()
    memory.propose("diverged", {}, "k-d", proposer="llm")
    memory.report("diverged", {"rfid": 0.5, "training_iteration": 1})
    memory.complete("diverged", None, status="failed", error="nan")
    memory.propose("live", {}, "k-l", proposer="llm")
    memory.report("live", {"rfid": 0.1, "training_iteration": 1})
    assert [r.trial_id for r in memory.top_k(5)] == ["a", "b"]


def test_a_memory_saved_when_random_draws_were_named_sampler_reads_them_as_random(tmp_path: Path) -> None:
    memory = SearchMemory(metric="rfid", mode="min")
    memory.propose("t1", {}, "k", proposer="random")
    path = memory.save(tmp_path / "memory.parquet")
    table = pq.read_table(path)
    old = table.set_column(table.schema.get_field_index("proposer"), "proposer", pa.array(["sampler"]))
    pq.write_table(old.replace_schema_metadata(table.schema.metadata), path)
    loaded, _ = SearchMemory.load(path)
    assert [record.proposer for record in loaded.records()] == ["random"]


def test_an_invalid_proposal_after_a_forgotten_trial_keeps_the_earlier_one() -> None:
    # A restored search forgets the proposals Tune did not keep; the next invalid proposal took the id of
    # an earlier one (the count of records) and replaced it, its error and tokens lost.
    memory = SearchMemory()
    memory.propose("t0", {}, "a", proposer="llm")
    first = memory.invalid({"arch": "junk"}, "not JSON", proposer="llm", prompt_tokens=100)
    memory.forget("t0")
    second = memory.invalid({"arch": "more junk"}, "not JSON either", proposer="llm", prompt_tokens=50)
    assert first != second
    assert [r.error for r in memory.records(["invalid"])] == ["not JSON", "not JSON either"]
    assert memory.tokens()[0] == 150


def test_the_front_places_a_trial_by_its_best_rfid_as_the_results_table_does() -> None:
    from ray_diffnas.searchers.pareto import ParetoObjective

    memory = SearchMemory("rfid", "min")
    memory.pareto = ParetoObjective(["rfid", "latency_ms"], ["min", "min"])
    memory.propose("a", {}, "ka", "random")
    for i, rfid in enumerate([5.0, 3.0, 4.0], start=1):  # its RFID got worse after its best
        memory.report("a", {"rfid": rfid, "latency_ms": 2.0, "training_iteration": i})
    memory.complete("a", None, "completed")
    memory.propose("b", {}, "kb", "random")
    memory.complete("b", {"rfid": 3.5, "latency_ms": 2.0, "training_iteration": 1}, "completed")
    assert memory.best().trial_id == "a"
    assert memory.pareto_ranks() == {"a": 0, "b": 1}  # not by its last RFID, 4.0, which b's 3.5 beats
    assert [r.trial_id for r in memory.front_members(2)] == ["a", "b"]


def test_a_re_run_after_a_missing_value_truncates_at_the_right_iteration() -> None:
    """Iteration 2 reported no RFID (NaN): it keeps its place, so the re-run of iteration 3 from the
    checkpoint of iteration 2 replaces iteration 3's value (it was appended after it, shifting the curve)."""
    memory = SearchMemory()
    memory.propose("r", {}, "k", proposer="random")
    for it, value in [(1, 30.0), (2, math.nan), (3, 15.0)]:
        memory.report("r", {"rfid": value, "training_iteration": it})
    for it, value in [(3, 14.0), (4, 11.0)]:  # re-run from the checkpoint of iteration 2
        memory.report("r", {"rfid": value, "training_iteration": it})
    memory.complete("r", {"rfid": 11.0, "training_iteration": 4}, status="completed")
    record = memory.get("r")
    assert record.curve[0] == 30.0 and math.isnan(record.curve[1]) and record.curve[2:] == [14.0, 11.0]
    assert (record.best, record.iterations, record.status) == (11.0, 4, "completed")


def test_iterations_the_memory_never_saw_keep_their_places() -> None:
    """A trial known only by its result at iteration 3 (restored from Tune's state): a re-run of iteration 2
    must drop that value, and the best with it."""
    memory = SearchMemory()
    memory.propose("r", {}, "k", proposer="restored")
    memory.report("r", {"rfid": 9.0, "training_iteration": 3})
    assert [math.isnan(v) for v in memory.get("r").curve] == [True, True, False]
    memory.report("r", {"rfid": 12.0, "training_iteration": 2})  # re-run from the checkpoint of iteration 1
    record = memory.get("r")
    assert math.isnan(record.curve[0]) and record.curve[1:] == [12.0] and record.best == 12.0
