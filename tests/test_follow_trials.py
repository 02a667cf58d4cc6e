"""A restored searcher follows the trials of Tune's saved state (issue 15): a driver killed while Tune
copied its files may leave the memory a save behind or ahead of the trials Tune resumes."""

from __future__ import annotations

import numpy as np

from ray_diffnas import GraphDiffusionSearcher, UNetSpace
from ray_diffnas.searchers.tune_state import SavedTrial

SPACE = UNetSpace(image_size=8)


def _result(iteration: int, rfid: float) -> dict:
    return {"training_iteration": iteration, "rfid": rfid, "latency_ms": 3.0}


def test_the_memory_takes_tunes_trials_as_they_were_saved() -> None:
    searcher = GraphDiffusionSearcher(space=SPACE, metric="rfid", mode="min", warmup=8, seed=0)
    searcher.set_search_properties("rfid", "min", SPACE.param_space(dataset="digits", max_iterations=2))
    configs = {t: searcher.suggest(t) for t in ("done", "behind", "ghost")}
    for t in ("done", "behind"):
        searcher.on_trial_result(t, _result(1, 40.0))
    searcher.on_trial_complete("done", _result(2, 30.0))
    unknown = {"arch": SPACE.sample(searcher.rng).to_dict(), "max_iterations": 2}
    tune_trials = [
        SavedTrial("done", "TERMINATED", configs["done"], [_result(1, 40.0), _result(2, 30.0)]),
        SavedTrial("behind", "TERMINATED", configs["behind"], [_result(1, 40.0), _result(2, 25.0)]),
        SavedTrial("unknown", "RUNNING", unknown, [_result(1, 35.0)]),
    ]  # "ghost" was proposed after Tune's last saved state: Tune will never run it

    searcher.follow_trials(tune_trials)

    memory = searcher.memory
    assert memory.get("ghost") is None and not memory.has_key(SPACE.key(configs["ghost"]["arch"]))
    assert (memory.get("done").status, memory.get("done").curve) == ("completed", [40.0, 30.0])
    assert (memory.get("behind").status, memory.get("behind").curve) == ("completed", [40.0, 25.0])
    restored = memory.get("unknown")
    assert (restored.proposer, restored.status, restored.curve) == ("restored", "running", [35.0])
    assert searcher.live == {"unknown": restored.arch_key}
    searcher.on_trial_complete("unknown", _result(2, 20.0))  # Tune resumes it, and it finishes
    assert (memory.get("unknown").status, memory.get("unknown").curve) == ("completed", [35.0, 20.0])
    assert searcher.live == {}


def test_a_point_to_evaluate_that_tune_never_recorded_still_runs() -> None:
    """A driver killed between the searcher's save and Tune's: the point was handed out, but Tune's state
    has no trial for it. The memory forgets it, and the point goes back to the front of the queue."""
    point = {"arch": SPACE.sample(np.random.default_rng(7)).to_dict(), "lr": 0.003}
    searcher = GraphDiffusionSearcher(space=SPACE, metric="rfid", mode="min", points_to_evaluate=[point], seed=0)
    searcher.set_search_properties("rfid", "min", SPACE.param_space(dataset="digits", max_iterations=2))
    assert searcher.suggest("lost")["arch"] == point["arch"]

    searcher.follow_trials([])

    assert searcher.memory.get("lost") is None
    again = searcher.suggest("again")
    assert (again["arch"], again["lr"]) == (point["arch"], 0.003)
    assert searcher.memory.get("again").proposer == "user"
