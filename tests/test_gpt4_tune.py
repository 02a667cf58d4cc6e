"""GPT4Searcher inside real Ray Tune runs (tune.run and tune.Tuner, with ASHA) through the loopback server."""

from __future__ import annotations

from pathlib import Path

import pytest
from llm_server import FakeLLMServer
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from ray_diffnas import UNetSpace, train_diffusion
from ray_diffnas.searchers.base import MEMORY_FILE
from ray_diffnas.searchers.llm.searcher import GPT4Searcher
from ray_diffnas.searchers.memory import SearchMemory

pytestmark = pytest.mark.slow  # whole searches, Ray clusters or killed drivers: minutes

SENTINEL_KEY = "sk-SENTINEL-tune-run-9876543210"
SPACE = UNetSpace(image_size=8, base_channels=(8, 16), channel_mults=(1, 2), num_res_blocks=(1,))
SMALL = {
    "dataset": "digits",
    "max_iterations": 2,
    "steps_per_iteration": 8,
    "rfid_samples": 64,
    "sampler_steps": 2,
    "batch_size": 16,
}


def _files_containing(folder: Path, needle: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_tune_run_with_asha_records_every_trial_in_memory(ray_session, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_KEY)
    with FakeLLMServer(SPACE) as server:
        searcher = GPT4Searcher(base_url=server.url, proposals_per_call=2)
        analysis = tune.run(
            train_diffusion,
            config=SPACE.param_space(**SMALL),
            metric="rfid",
            mode="min",
            search_alg=searcher,
            scheduler=ASHAScheduler(max_t=2, grace_period=1),
            num_samples=4,
            storage_path=str(tmp_path),
            name="gpt4_run",
            verbose=0,
        )
    assert len(analysis.trials) == 4 and all(t.status == "TERMINATED" for t in analysis.trials)
    assert len(server.requests) == 2  # two proposals per call, four trials
    keys = [SPACE.key(t.config["arch"]) for t in analysis.trials]
    assert len(set(keys)) == 4
    memory_file = tmp_path / "gpt4_run" / MEMORY_FILE
    memory, state = SearchMemory.load(memory_file)
    assert {r.status for r in memory.records()} <= {"completed", "stopped"} and len(memory) == 4
    assert all(r.curve for r in memory.records())
    assert state["usage"]["calls"] == 2
    # the second prompt carries the first call's proposals: running then, or finished with their outcomes
    first = [r.arch_key for r in memory.records()][:2]
    assert all(key in server.user_prompts()[1] for key in first)
    assert _files_containing(tmp_path, SENTINEL_KEY.encode()) == []


def test_tuner_with_gpt4_searcher_and_asha(ray_session, tmp_path: Path) -> None:
    with FakeLLMServer(SPACE) as server:
        tuner = tune.Tuner(
            train_diffusion,
            param_space=SPACE.param_space(**SMALL),
            tune_config=tune.TuneConfig(
                metric="rfid",
                mode="min",
                num_samples=3,
                search_alg=GPT4Searcher(base_url=server.url, api_key=SENTINEL_KEY),
                scheduler=ASHAScheduler(max_t=2, grace_period=1),
            ),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="gpt4_tuner"),
        )
        grid = tuner.fit()
    assert not grid.errors and len(grid) == 3
    assert len({SPACE.key(r.config["arch"]) for r in grid}) == 3
    assert _files_containing(tmp_path, SENTINEL_KEY.encode()) == []


def test_tuner_with_the_hybrid_searcher_serves_llm_candidates_and_keeps_no_key(ray_session, tmp_path: Path) -> None:
    from ray_diffnas.searchers.hybrid import HybridSearcher

    with FakeLLMServer(SPACE) as server:
        llm = GPT4Searcher(base_url=server.url, api_key=SENTINEL_KEY)
        searcher = HybridSearcher(
            llm=llm, llm_candidates=3, warmup=2, train_steps=30, prior_graphs=64, max_trials=4, warmup_source="llm"
        )
        tuner = tune.Tuner(
            train_diffusion,
            param_space=SPACE.param_space(**SMALL),
            tune_config=tune.TuneConfig(
                metric="rfid", mode="min", num_samples=4, search_alg=searcher, max_concurrent_trials=1
            ),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="hybrid_tuner"),
        )
        grid = tuner.fit()
    assert not grid.errors and len(grid) == 4
    memory, state = SearchMemory.load(tmp_path / "hybrid_tuner" / MEMORY_FILE)
    proposers = [r.proposer for r in memory.records()]
    assert proposers[:2] == ["llm", "llm"]  # the warm-up runs the LLM's candidates
    assert set(proposers[2:]) <= {"llm", "graph", "neighbour", "fallback"}
    assert state["llm"]["usage"]["calls"] >= 1 and state["llm_screen"]["received"] >= 3
    assert _files_containing(tmp_path, SENTINEL_KEY.encode()) == []
