"""Trial faults in real Tune runs: NaN loss, an exception, a memory limit, a killed trial process.

Each failing trial is recorded as failed with its reason, the reason reaches the searcher (the
LLM's prompt, the graph model's labels), and the search goes on. A trial whose process is killed
(a real SIGKILL) is retried from its last checkpoint by ``FailureConfig`` and its step count
continues.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from llm_server import FakeLLMServer
from ray import tune

from ray_diffnas import GPT4Searcher, SearchMemory, UNetSpace, train_diffusion
from ray_diffnas.searchers.base import MEMORY_FILE
from ray_diffnas.searchers.graph.searcher import BAD, GraphDiffusionSearcher

pytestmark = pytest.mark.slow  # whole searches, Ray clusters or killed drivers: minutes

SPACE = UNetSpace(image_size=8, base_channels=(8, 16), channel_mults=(1, 2), num_res_blocks=(1,))
SETTINGS = dict(
    dataset="digits", max_iterations=2, steps_per_iteration=10, rfid_samples=64, sampler_steps=2, batch_size=16
)
ARCHS = [SPACE.sample(np.random.default_rng(i)).to_dict() for i in range(40)]
DISTINCT = list({SPACE.key(a): a for a in ARCHS}.values())
# One point per fault, each on its own architecture: the settings ride along with the point.
FAULTS = {
    "nan": {"lr": 1e12, "warmup_steps": 0},
    "memory": {"max_memory_gb": 0.01},
    "raises": {"dataset": "folder", "data_root": "/no/such/folder"},
}
EXPECTED_REASON = {
    "nan": "TrainingDivergedError: The training loss became",
    "memory": "MemoryLimitError: The trial's process uses",
    "raises": "DataError: Data root '/no/such/folder'",
}


def _points() -> list[dict]:
    return [{"arch": DISTINCT[i], **settings} for i, settings in enumerate(FAULTS.values())]


def _run(searcher, tmp_path: Path, num_samples: int) -> tune.ResultGrid:
    tuner = tune.Tuner(
        train_diffusion,
        param_space=SPACE.param_space(**SETTINGS),
        tune_config=tune.TuneConfig(
            metric="rfid", mode="min", num_samples=num_samples, search_alg=searcher, max_concurrent_trials=2
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="faults"),
    )
    return tuner.fit()


def _reasons(searcher) -> dict[str, str]:
    by_key = {SPACE.key(p["arch"]): name for name, p in zip(FAULTS, _points())}
    return {by_key[r.arch_key]: r.error for r in searcher.memory.records(["failed"]) if r.arch_key in by_key}


def test_failed_trials_reach_the_graph_searcher_with_their_reasons(ray_session, tmp_path: Path) -> None:
    searcher = GraphDiffusionSearcher(
        points_to_evaluate=_points(),
        warmup=4,
        retrain_every=2,
        train_steps=30,
        retrain_steps=10,
        prior_graphs=32,
        candidates=8,
        seed=0,
    )
    grid = _run(searcher, tmp_path, num_samples=6)

    assert len(grid) == 6 and len(grid.errors) == 3  # the search went on past its three faults
    reasons = _reasons(searcher)
    assert set(reasons) == set(FAULTS)
    for name, reason in reasons.items():
        assert reason.startswith(EXPECTED_REASON[name]), (name, reason)
    assert len(searcher.memory.records(["completed", "stopped"])) == 3
    assert searcher.model is not None  # trained on the outcomes, failures included ...
    for record in searcher.memory.records(["failed"]):
        assert searcher._labels(record)[0] == BAD  # ... which it learns as bad architectures


def test_failed_trials_show_in_the_llm_prompt_with_their_reasons(ray_session, tmp_path: Path) -> None:
    with FakeLLMServer(SPACE) as server:
        searcher = GPT4Searcher(
            base_url=server.url, api_key="sk-test", points_to_evaluate=_points(), proposals_per_call=2
        )
        grid = _run(searcher, tmp_path, num_samples=6)
        prompts = server.user_prompts()

    assert len(grid) == 6 and len(grid.errors) == 3
    assert set(_reasons(searcher)) == set(FAULTS)
    memory_prompts = "\n".join(p for p in prompts if "## Outcomes, in the order they finished" in p)
    assert "[failed after" in memory_prompts
    for name in FAULTS:  # each reason reached a prompt written after its trial failed
        assert EXPECTED_REASON[name][:40] in memory_prompts, name


class KillTrialOnce(tune.Callback):
    """SIGKILLs the trial's worker process right after its first result (a real process death)."""

    def __init__(self) -> None:
        self.killed: list[int] = []

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if not self.killed and result["training_iteration"] == 1:
            self.killed.append(result["pid"])
            os.kill(result["pid"], signal.SIGKILL)


def test_killed_trial_is_retried_from_its_checkpoint(ray_session, tmp_path: Path) -> None:
    searcher = GraphDiffusionSearcher(warmup=2, seed=0)
    killer = KillTrialOnce()
    tuner = tune.Tuner(
        train_diffusion,
        param_space=SPACE.param_space(**{**SETTINGS, "max_iterations": 3}),
        tune_config=tune.TuneConfig(metric="rfid", mode="min", num_samples=1, search_alg=searcher),
        run_config=tune.RunConfig(
            storage_path=str(tmp_path),
            name="retry",
            callbacks=[killer],
            failure_config=tune.FailureConfig(max_failures=1),
        ),
    )
    grid = tuner.fit()

    assert killer.killed and not grid.errors
    result = grid[0]
    steps = result.metrics_dataframe["step"].dropna().astype(int).tolist()
    assert steps[-1] == 30 and result.metrics["training_iteration"] == 3
    assert sorted(set(steps)) == [10, 20, 30]  # resumed from its checkpoint: the step count continued
    (record,) = searcher.memory.records()
    assert record.status == "completed" and record.error is None and len(record.curve) == 3


def _digit_images(folder: Path, per_class: int = 12) -> None:
    """An image folder (one sub-folder per class) of scikit-learn's 8x8 digits."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label in range(10):
        (folder / str(label)).mkdir(parents=True)
        for i, image in enumerate(digits.images[digits.target == label][:per_class]):
            Image.fromarray((image * 255 / 16).astype(np.uint8), mode="L").save(folder / str(label) / f"{i}.png")


def test_a_failed_trial_rerun_by_restart_errored_replaces_its_failed_record(ray_session, tmp_path: Path) -> None:
    """``Tuner.restore(..., restart_errored=True)`` reruns a failed trial under a new trial id: the
    searcher takes it in (it was dropped as an unknown trial), so the memory holds its architecture
    once, with the rerun's outcome and who proposed it."""
    folder = tmp_path / "images"
    point = {"arch": DISTINCT[0], "dataset": "folder", "data_root": str(folder)}
    tuner = tune.Tuner(
        train_diffusion,
        param_space=SPACE.param_space(**SETTINGS),
        tune_config=tune.TuneConfig(
            metric="rfid",
            mode="min",
            num_samples=1,
            search_alg=GraphDiffusionSearcher(points_to_evaluate=[point]),
            max_concurrent_trials=1,  # a ConcurrencyLimiter: it passes on the rerun's results, not its end
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="rerun"),
    )
    assert len(tuner.fit().errors) == 1  # its images are not there yet
    _digit_images(folder)
    grid = tune.Tuner.restore(str(tmp_path / "rerun"), train_diffusion, restart_errored=True).fit()

    assert len(grid) == 1 and not grid.errors
    memory, _ = SearchMemory.load(tmp_path / "rerun" / MEMORY_FILE)
    (record,) = memory.records()
    assert (record.trial_id, record.status, record.proposer) == (grid[0].metrics["trial_id"], "completed", "user")
    assert len(record.curve) == 2 and record.error is None
