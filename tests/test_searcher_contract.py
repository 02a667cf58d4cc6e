"""The contract every project searcher keeps (one suite, run against each searcher, as Optuna does)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd
import pytest
from llm_server import FakeLLMServer
from ray.tune.search import Searcher

from ray_diffnas import (
    ConfigError,
    GPT4Searcher,
    GraphDiffusionSearcher,
    HybridSearcher,
    MemorySearcher,
    Proposal,
    UNetSpace,
)
from ray_diffnas.searchers.evolution import RegularizedEvolution
from ray_diffnas.searchers.graph.diffusion import GraphDiffusionConfig
from ray_diffnas.searchers.memory import MemoryFileError

SPACE = UNetSpace(image_size=8)
A = {
    "base_channels": 8,
    "channel_mult": [1, 2],
    "num_res_blocks": [1, 1],
    "attention_resolutions": [],
    "num_heads": 1,
    "dropout": 0.0,
    "mid_attention": False,
}


class SpaceSampler(MemorySearcher):
    """The smallest searcher: uniform samples of the space."""

    def propose(self, count: int) -> list[Proposal]:
        return [Proposal(self.space.sample(self.rng), "random") for _ in range(count)]


Factory = Callable[..., MemorySearcher]


SMALL_GRAPH_MODEL = GraphDiffusionConfig(hidden=16, layers=1, heads=2, sampling_steps=5, batch_size=16)
# The graph searcher's options here, and the hybrid's (a graph searcher with an LLM source): small and quick.
SMALL_GRAPH_SEARCH = dict(
    warmup=2, retrain_every=1, train_steps=10, retrain_steps=5, candidates=8, prior_graphs=32, model=SMALL_GRAPH_MODEL
)


@pytest.fixture(params=["sampler", "gpt4", "graph", "evolution", "hybrid"])
def make(request) -> Iterator[Factory]:
    if request.param == "sampler":
        yield SpaceSampler
        return
    if request.param == "evolution":
        yield lambda **kw: RegularizedEvolution(population_size=3, tournament_size=2, **kw)
        return
    if request.param == "graph":
        yield lambda **kw: GraphDiffusionSearcher(**SMALL_GRAPH_SEARCH, **kw)
        return
    with FakeLLMServer(SPACE) as server:
        if request.param == "hybrid":
            yield lambda **kw: HybridSearcher(
                llm=GPT4Searcher(base_url=server.url, api_key="sk-test"), llm_candidates=2, **SMALL_GRAPH_SEARCH, **kw
            )
            return
        yield lambda **kw: GPT4Searcher(base_url=server.url, api_key="sk-test", **kw)


def test_unconfigured_searcher_raises_rays_own_messages(make: Factory) -> None:
    with pytest.raises(RuntimeError, match="no search space has been defined"):
        make().suggest("t1")
    with pytest.raises(RuntimeError, match=r"the `metric` \(None\) or `mode` \(None\) parameters have not been set"):
        make(space=SPACE).suggest("t1")


def test_space_metric_and_mode_come_from_tune(make: Factory) -> None:
    searcher = make()
    assert searcher.set_search_properties("rfid", "min", SPACE.param_space(dataset="digits")) is True
    assert searcher.space == SPACE and searcher.metric == "rfid" and searcher.mode == "min"
    config = searcher.suggest("t1")
    SPACE.validate(config["arch"])
    # Tune asks again (e.g. a new Tuner after a restore): the settings are refreshed, metric kept.
    assert searcher.set_search_properties("rfid", None, SPACE.param_space(dataset="digits", lr=0.01)) is True
    assert searcher.metric == "rfid" and searcher.suggest("t2")["arch"] is not None
    assert searcher._base_config["lr"] == 0.01
    # A searcher with a space takes any param_space as the trials' settings; one with none cannot use it.
    assert searcher.set_search_properties("rfid", "min", {"dataset": "digits", "max_iterations": 2}) is True
    assert searcher._base_config == {"dataset": "digits", "max_iterations": 2}
    assert make().set_search_properties("rfid", "min", {"lr": 0.1}) is False


def test_a_space_given_to_the_searcher_takes_metric_and_mode_from_tune(make: Factory) -> None:
    searcher = make(space=SPACE)  # param_space written by hand, not space.param_space()
    assert searcher.set_search_properties("rfid", "min", {"dataset": "digits", "max_iterations": 4}) is True
    assert (searcher.metric, searcher.mode) == ("rfid", "min")
    assert searcher.suggest("t1")["arch"] is not None


def test_a_param_space_the_searcher_cannot_resolve_is_an_error(make: Factory) -> None:
    """The searcher samples top-level domains only: a grid search, a nested domain or another arch domain
    would reach the trials unresolved (Tune leaves them to the searcher once it accepts param_space)."""
    from ray import tune

    nested = {"dataset": "digits", "lr": tune.grid_search([1e-3, 1e-2]), "opt": {"wd": tune.uniform(0, 1)}}
    with pytest.raises(ConfigError, match=r"but not 'lr', 'opt': its trials would get them unresolved"):
        make(space=SPACE).set_search_properties("rfid", "min", nested)
    with pytest.raises(ConfigError, match=r"but not arch \(the searcher proposes it"):
        make(space=SPACE).set_search_properties("rfid", "min", {"arch": tune.choice([1, 2])})
    with pytest.raises(ConfigError, match=r"but not 'lr'"):
        make().set_search_properties("rfid", "min", SPACE.param_space(lr=tune.grid_search([1e-3, 1e-2])))


def test_a_metric_or_mode_tune_contradicts_is_an_error(make: Factory) -> None:
    with pytest.raises(ConfigError, match=r"was given mode 'min', but Tune's TuneConfig names 'max'"):
        make(metric="rfid", mode="min").set_search_properties("rfid", "max", SPACE.param_space(dataset="digits"))
    with pytest.raises(ConfigError, match=r"was given metric 'rfid', but Tune's TuneConfig names 'loss'"):
        make(metric="rfid", mode="min").set_search_properties("loss", None, SPACE.param_space(dataset="digits"))


def test_a_restored_searcher_serves_a_new_tuner(make: Factory, tmp_path: Path) -> None:
    from ray.tune.search.variant_generator import _has_unresolved_values

    searcher = make()
    searcher.set_search_properties("rfid", "min", SPACE.param_space(dataset="digits"))
    searcher.suggest("t1")
    searcher.save(str(tmp_path / "state.parquet"))
    restored = make()
    restored.restore(str(tmp_path / "state.parquet"))
    config = SPACE.param_space(dataset="digits", batch_size=8)
    assert _has_unresolved_values(config)  # Tune refuses a searcher that will not resolve these
    assert restored.set_search_properties("rfid", "min", config) is True
    assert restored.suggest("t2")["arch"] is not None and restored._base_config["batch_size"] == 8


def test_searched_training_settings_are_sampled_too(make: Factory) -> None:
    from ray import tune

    searcher = make()
    searcher.set_search_properties("rfid", "min", SPACE.param_space(dataset="digits", lr=tune.loguniform(1e-4, 1e-2)))
    config = searcher.suggest("t1")
    assert 1e-4 <= config["lr"] <= 1e-2


def test_no_two_live_trials_share_an_architecture(make: Factory) -> None:
    searcher = make(space=SPACE, metric="rfid", mode="min")
    keys = [SPACE.key(searcher.suggest(f"t{i}")["arch"]) for i in range(12)]
    assert len(set(keys)) == 12


def test_on_trial_complete_is_forgiving(make: Factory) -> None:
    searcher = make(space=SPACE, metric="rfid", mode="min")
    for trial in ("none", "nan", "missing", "repeat"):
        searcher.suggest(trial)
    searcher.on_trial_complete("none", None)
    searcher.on_trial_complete("nan", {"rfid": math.nan, "training_iteration": 4})
    searcher.on_trial_complete("missing", {"loss": 0.1, "training_iteration": 4})
    searcher.on_trial_complete("repeat", {"rfid": 5.0, "training_iteration": 4})
    searcher.on_trial_complete("repeat", {"rfid": 1.0, "training_iteration": 4})
    searcher.on_trial_complete("unknown", {"rfid": 1.0})
    searcher.on_trial_result("unknown", {"rfid": 1.0})
    memory = searcher.memory
    assert [memory.get(t).status for t in ("none", "nan", "missing")] == ["failed"] * 3
    assert memory.get("repeat").status == "completed" and memory.get("repeat").best == 5.0
    assert not searcher.live


def test_scheduler_stopped_trials_are_low_fidelity_results(make: Factory) -> None:
    searcher = make()
    searcher.set_search_properties("rfid", "min", SPACE.param_space(dataset="digits", max_iterations=4))
    searcher.suggest("early"), searcher.suggest("full"), searcher.suggest("broken"), searcher.suggest("paused")
    searcher.on_trial_result("early", {"rfid": 30.0, "training_iteration": 1})
    searcher.on_trial_complete("early", {"rfid": 30.0, "training_iteration": 1})
    searcher.on_trial_complete("full", {"rfid": 9.0, "training_iteration": 4})
    searcher.on_trial_complete("broken", {"rfid": 9.0, "training_iteration": 2}, error=True)
    searcher.on_trial_result("paused", {"rfid": 12.0, "training_iteration": 2})
    searcher.on_trial_complete("paused")  # HyperBand ends a paused trial with no result
    statuses = {t: searcher.memory.get(t).status for t in ("early", "full", "broken", "paused")}
    assert statuses == {"early": "stopped", "full": "completed", "broken": "failed", "paused": "stopped"}


def test_points_to_evaluate_come_first_and_bad_points_are_named(make: Factory) -> None:
    searcher = make(space=SPACE, metric="rfid", mode="min", points_to_evaluate=[A, {"arch": A}])
    assert searcher.suggest("t1")["arch"] == A and searcher.memory.get("t1").proposer == "user"
    assert searcher.suggest("t2")["arch"] != A  # the duplicate point is skipped
    bad = [A, {**A, "base_channels": 12}]  # checked before any trial starts, not when its turn comes
    with pytest.raises(ConfigError, match="(?s)point 1 of points_to_evaluate is invalid.*multiple of 8"):
        make(space=SPACE, metric="rfid", mode="min", points_to_evaluate=bad)
    with pytest.raises(ConfigError, match="(?s)point 1 of points_to_evaluate is invalid.*multiple of 8"):
        make(points_to_evaluate=bad).set_search_properties("rfid", "min", SPACE.param_space(dataset="digits"))


def test_add_evaluated_point_feeds_memory_and_blocks_repeats(make: Factory) -> None:
    searcher = make(space=SPACE, metric="rfid", mode="min")
    searcher.add_evaluated_point({"arch": A}, 7.5, intermediate_values=[20.0, 11.0])
    record = searcher.memory.best()
    assert record.curve == [20.0, 11.0, 7.5] and record.proposer == "warm_start"
    searcher.add_evaluated_point({"arch": A}, 6.0)  # the same architecture again (an analysis added twice)
    assert len(searcher.memory.records()) == 1 and searcher.memory.best().curve == [20.0, 11.0, 7.5]
    assert all(searcher.suggest(f"t{i}")["arch"] != A for i in range(5))
    if searcher.supports_several_objectives:  # one value cannot place a point on a front
        several = make(space=SPACE, metric=["rfid", "latency_ms"], mode=["min", "min"])
        with pytest.raises(ConfigError, match="add_evaluated_point carries one value; pass the earlier"):
            several.add_evaluated_point({"arch": A}, 7.5)


def test_budget_spent_returns_finished(make: Factory) -> None:
    searcher = make(space=SPACE, metric="rfid", mode="min", max_trials=2)
    assert isinstance(searcher.suggest("t1"), dict) and isinstance(searcher.suggest("t2"), dict)
    assert searcher.suggest("t3") == Searcher.FINISHED


def test_save_restore_round_trip_into_a_blank_instance(make: Factory, tmp_path: Path) -> None:
    searcher = make(space=SPACE, metric="rfid", mode="min", seed=3)
    for trial in ("1", "2", "not_completed"):
        searcher.suggest(trial)
    searcher.on_trial_complete("1", {"rfid": 10.0, "training_iteration": 4})
    searcher.on_trial_complete("2", {"rfid": 12.0, "training_iteration": 4})
    path = str(tmp_path / "state.parquet")
    searcher.save(path)
    blank = make()
    blank.restore(path)
    assert "not_completed" in blank.live and blank.space == SPACE and blank.metric == "rfid"
    assert blank.rng.bit_generator.state == searcher.rng.bit_generator.state
    assert len(blank.memory) == len(searcher.memory)
    blank.on_trial_complete("not_completed", {"rfid": 8.0, "training_iteration": 4})
    assert blank.memory.best().trial_id == "not_completed"


def test_a_restored_memory_judges_by_the_restoring_searchers_constraints(make: Factory, tmp_path: Path) -> None:
    # The memory file keeps metric and mode; the constraints belong to the searcher that restores it.
    searcher = make(space=SPACE, metric="rfid", mode="min", constraints={"latency_ms": 5.0}, seed=3)
    searcher.suggest("1")
    searcher.on_trial_complete("1", {"rfid": 10.0, "latency_ms": 9.0, "training_iteration": 4})
    path = str(tmp_path / "state.parquet")
    searcher.save(path)
    blank = make(constraints={"latency_ms": 5.0})
    blank.restore(path)
    assert blank.memory.objective == searcher.memory.objective
    assert not blank.memory.objective.feasible(blank.memory.records()[0].last_metrics)


def test_warm_start_from_a_previous_results_parquet(make: Factory, tmp_path: Path) -> None:
    import json

    results = pd.DataFrame(
        {
            "arch": [json.dumps(A), json.dumps({**A, "base_channels": 16}), json.dumps({**A, "base_channels": 12})],
            "rfid_curve": [[30.0, 12.0], [25.0], [1.0]],
            "status": ["completed", "stopped", "completed"],
        }
    )
    path = tmp_path / "results.parquet"
    results.to_parquet(path)
    searcher = make(space=SPACE, metric="rfid", mode="min", warm_start=path)
    records = searcher.memory.records()
    assert len(records) == 2  # the architecture outside the space is skipped
    assert [r.status for r in records] == ["completed", "stopped"] and records[0].curve == [30.0, 12.0]
    with pytest.raises(ConfigError, match=r"holds curves of 'rfid', but .* searches 'fid'"):
        make(space=SPACE, metric="fid", mode="min", warm_start=path)  # its RFIDs are no FIDs


def test_warm_start_from_a_foreign_file_is_a_clear_error(make: Factory, tmp_path: Path) -> None:
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "other.parquet")
    with pytest.raises(MemoryFileError, match="has no 'arch' column"):
        make(space=SPACE, metric="rfid", mode="min", warm_start=tmp_path / "other.parquet")


def test_an_exhausted_space_finishes_the_search(make: Factory) -> None:
    tiny = UNetSpace(
        image_size=8,
        base_channels=(8,),
        channel_mults=(1,),
        num_levels=(2,),
        num_res_blocks=(1,),
        attention_max_resolution=0,
        num_heads=(1,),
        dropout=(0.0,),
        mid_attention=(False,),
    )
    searcher = make(space=tiny, metric="rfid", mode="min")
    first = searcher.suggest("only")
    assert tiny.validate(first["arch"])
    assert searcher.suggest("while-live") is None  # nothing new, but a trial is running: wait
    searcher.on_trial_complete("only", {"rfid": 3.0, "training_iteration": 4})
    assert not searcher.exhausted
    assert searcher.suggest("after") == Searcher.FINISHED
    assert searcher.exhausted  # finished for want of architectures, not of budget: a complete run
