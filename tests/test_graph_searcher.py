"""GraphDiffusionSearcher: a hand-driven search on NAS-Bench-201, condition labels, bad inputs,
save / restore into a blank instance, and a real Tune run with ASHA on the diffusion task."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ray_diffnas.errors import ConfigError
from ray_diffnas.searchers.base import MEMORY_FILE
from ray_diffnas.searchers.graph.diffusion import GraphDiffusionConfig
from ray_diffnas.searchers.graph.searcher import BAD, GOOD, MIN_GOOD, GraphDiffusionSearcher
from ray_diffnas.searchers.memory import SearchMemory
from ray_diffnas.spaces.domain import ArchDomain
from ray_diffnas.spaces.graphs import to_dense
from ray_diffnas.spaces.nb201 import NB201Space
from ray_diffnas.spaces.unet_space import UNetSpace

SMALL_MODEL = GraphDiffusionConfig(hidden=32, layers=2, heads=2, sampling_steps=10, batch_size=32)
CONSTRAINTS = ["latency_ms<=3"]
UNKNOWN = 2


def objective(arch) -> dict[str, float]:
    """Accuracy grows with convolutions (plus a fixed per-architecture jitter); so does latency."""
    jitter = int(hashlib.sha256(arch.key().encode()).hexdigest()[:8], 16) / 16**8
    convs = sum(op.startswith("nor_conv") for op in arch.ops)
    return {"acc": convs + jitter, "latency_ms": 0.5 + 0.6 * convs, "training_iteration": 1}


def _searcher(**overrides) -> GraphDiffusionSearcher:
    options = dict(
        space=NB201Space(),
        metric="acc",
        mode="max",
        constraints=CONSTRAINTS,
        warmup=6,
        retrain_every=3,
        train_steps=60,
        retrain_steps=20,
        candidates=16,
        prior_graphs=128,
        model=SMALL_MODEL,
        seed=0,
    )
    return GraphDiffusionSearcher(**{**options, **overrides})


@pytest.fixture(scope="module")
def searched() -> GraphDiffusionSearcher:
    """20 trials, one at a time: suggest, evaluate, complete."""
    searcher, space = _searcher(), NB201Space()
    for i in range(20):
        config = searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", objective(space.validate(config["arch"])))
    return searcher


# --- a hand-driven search -------------------------------------------------------------------------


def test_search_proposes_new_architectures_from_the_model_after_warmup(searched: GraphDiffusionSearcher) -> None:
    records = searched.memory.records()
    assert len(records) == 20 and not searched.live
    assert len({r.arch_key for r in records}) == 20  # nothing proposed twice
    assert all(r.status == "completed" for r in records)
    proposers = [r.proposer for r in records]
    assert proposers[:6] == ["random"] * 6
    assert set(proposers[6:]) <= {"graph", "neighbour", "fallback"}, proposers
    assert proposers[6:].count("graph") + proposers[6:].count("neighbour") >= 10, proposers
    stats = searched.stats
    assert stats["trainings"] >= 3 and searched.trained_on >= 15 and searched.model.steps_trained >= 60 + 2 * 20
    assert stats["sampled"] >= stats["valid"] >= stats["novel"] >= proposers.count("graph")
    assert stats["valid"] >= 0.3 * stats["sampled"], stats
    assert stats["train_seconds"] > 0 and stats["sample_seconds"] > 0

    # the model asks for quality *within* the latency budget: more of its proposals are feasible
    # than the random warm-up's, and its best feasible one is at least as good
    def feasible(record) -> bool:
        return record.last_metrics["latency_ms"] <= 3

    warm, model = records[:6], records[6:]
    assert np.mean([feasible(r) for r in model]) > max(0.6, np.mean([feasible(r) for r in warm]))
    assert max(r.best for r in model if feasible(r)) >= max((r.best for r in warm if feasible(r)), default=0.0)


def test_searcher_labels_its_outcomes_after_training(searched: GraphDiffusionSearcher) -> None:
    finished = searched._finished()
    seen = finished[: searched.trained_on]  # what the last training labelled
    labels = [searched._labels(r) for r in finished]
    good = sum(label[0] == GOOD for label in labels[: searched.trained_on])
    # the best quality_quantile of them, at least MIN_GOOD (accuracies are distinct)
    assert good == max(MIN_GOOD, math.ceil(searched.quality_quantile * len(seen)))
    assert min(r.best for r, label in zip(seen, labels) if label[0] == GOOD) == searched._threshold
    assert {tuple(label) for label in labels} <= {(q, c) for q in (GOOD, BAD) for c in (GOOD, BAD)}
    # the constraint label is the reported latency against its bound
    assert all((label[1] == GOOD) == (r.last_metrics["latency_ms"] <= 3) for label, r in zip(labels, finished))


# --- labels ------------------------------------------------------------------------------------------


def _complete(searcher: GraphDiffusionSearcher, trial_id: str, result: dict | None, error: bool = False):
    searcher.suggest(trial_id)
    searcher.on_trial_complete(trial_id, result, error=error)
    return searcher.memory.get(trial_id)


def test_constraint_labels_good_bad_or_unknown() -> None:
    searcher = _searcher(warmup=100)
    fast = _complete(searcher, "fast", {"acc": 5.0, "latency_ms": 2.0})
    edge = _complete(searcher, "edge", {"acc": 5.0, "latency_ms": 3.0})
    slow = _complete(searcher, "slow", {"acc": 5.0, "latency_ms": 4.0})
    missing = _complete(searcher, "missing", {"acc": 5.0})
    nan = _complete(searcher, "nan", {"acc": 5.0, "latency_ms": math.nan})
    # before any threshold exists, quality is unknown; each condition is labelled on its own (the
    # over-budget trial's quality is judged by its metric alone, as the others')
    assert [searcher._labels(r) for r in (fast, edge, slow, missing, nan)] == [
        [UNKNOWN, GOOD],
        [UNKNOWN, GOOD],
        [UNKNOWN, BAD],
        [UNKNOWN, UNKNOWN],
        [UNKNOWN, UNKNOWN],
    ]


@pytest.mark.parametrize("mode", ["max", "min"])
def test_quality_labels_follow_the_quantile_and_failed_trials_are_bad(mode: str) -> None:
    searcher = _searcher(mode=mode, warmup=100, quality_quantile=0.2)
    records = [_complete(searcher, f"t{v}", {"acc": float(v), "latency_ms": 1.0}) for v in range(20)]
    failed = _complete(searcher, "failed", {"acc": 100.0 if mode == "max" else -100.0, "latency_ms": 1.0}, error=True)
    diverged = _complete(searcher, "diverged", {"acc": math.nan})
    assert failed.status == diverged.status == "failed"
    threshold = searcher._quality_threshold(searcher._finished())
    assert threshold == (16.0 if mode == "max" else 3.0)  # the best 20 % of 20; failed trials do not count
    searcher._threshold = threshold
    good = {r.trial_id for r in records if searcher._labels(r)[0] == GOOD}
    assert good == ({"t16", "t17", "t18", "t19"} if mode == "max" else {"t0", "t1", "t2", "t3"})
    assert all(searcher._labels(r)[0] == BAD for r in records if r.trial_id not in good)
    assert searcher._labels(failed) == [BAD, GOOD]  # a failed trial is bad, whatever it reported
    assert searcher._labels(diverged) == [BAD, UNKNOWN]


def test_few_outcomes_still_give_a_good_class_of_min_good() -> None:
    searcher = _searcher(warmup=100, quality_quantile=0.2)
    records = [_complete(searcher, f"t{v}", {"acc": float(v)}) for v in range(5)]
    searcher._threshold = searcher._quality_threshold(searcher._finished())
    good = [r.trial_id for r in records if searcher._labels(r)[0] == GOOD]
    assert good == [f"t{v}" for v in range(5 - MIN_GOOD, 5)]  # the quantile alone would make one


def test_guidance_names_a_condition_or_a_constraint_metric() -> None:
    searcher = _searcher(guidance={"quality": 2.0, "latency_ms": 0.0})
    assert searcher.condition_names == ["quality", "latency_ms<=3"]
    assert searcher.guidance == {"quality": 2.0, "latency_ms<=3": 0.0}
    assert _searcher(guidance={"latency_ms<=3": 1.5}).guidance["latency_ms<=3"] == 1.5


# --- bad inputs ------------------------------------------------------------------------------------------


class FlatSpace:
    """A space without a graph encoding."""

    def sample(self, rng):
        return NB201Space().sample(rng)

    def validate(self, values):
        return NB201Space().validate(values)

    def to_dict(self):
        return {"kind": "flat"}


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"guidance": {"speed": 1.0}},
            r"guidance names an unknown condition 'speed'; conditions: \['quality', 'latency_ms<=3'\]",
        ),
        ({"guidance": {"quality": -0.5}}, r"guidance\['quality'\] must be a number >= 0, but got -0.5"),
        ({"guidance": {"latency_ms": "high"}}, r"guidance\['latency_ms'\] must be a number >= 0, but got 'high'"),
        ({"warmup": 0}, "GraphDiffusionSearcher warmup must be an integer >= 1, but got 0"),
        ({"retrain_every": 2.5}, "retrain_every must be an integer >= 1, but got 2.5"),
        ({"candidates": -1}, "candidates must be an integer >= 1"),
        ({"neighbours": -2}, "neighbours must be an integer >= 0, but got -2"),
        ({"quality_quantile": 1.5}, r"quality_quantile must be in \(0, 1\), e.g. 0.2 for the top 20 %, but got 1.5"),
        ({"quality_quantile": 0.0}, r"quality_quantile must be in \(0, 1\)"),
        ({"constraints": ["latency_ms=3"]}, "Constraint 'latency_ms=3' is not of the form METRIC<=VALUE"),
        ({"constraints": {"latency_ms": "3"}}, r"constraints\['latency_ms'\] must be a number"),
        ({"mode": "median"}, r"mode must be one of \['min', 'max'\], but got 'median'"),
        ({"space": FlatSpace()}, r"needs a space with a graph encoding \(UNetSpace, NB201Space\), but got FlatSpace"),
    ],
)
def test_bad_inputs_raise_config_error(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _searcher(**options)


def test_a_param_space_without_a_graph_encoding_is_refused() -> None:
    searcher = GraphDiffusionSearcher()
    with pytest.raises(ConfigError, match="needs a space with a graph encoding"):
        searcher.set_search_properties("acc", "max", {"arch": ArchDomain(FlatSpace())})


# --- save / restore ------------------------------------------------------------------------------------------


def _net_outputs(searcher: GraphDiffusionSearcher) -> tuple[torch.Tensor, torch.Tensor]:
    space = NB201Space()
    graphs = [space.encode(space.sample(np.random.default_rng(i))) for i in range(5)]
    X, E, mask = to_dense(graphs, space.max_nodes)
    conditions = torch.tensor([[1, 1], [0, 1], [2, 2], [1, 0], [2, 1]])
    searcher.model.net.eval()
    with torch.no_grad():
        return searcher.model.net(X, E, mask, torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9]), conditions)


def _rows(searcher: GraphDiffusionSearcher) -> list[tuple]:
    return [
        (r.trial_id, r.arch_key, r.proposer, r.status, r.best, r.last_metrics, r.curve)
        for r in searcher.memory.records()
    ]


def test_save_and_restore_into_a_blank_instance(searched: GraphDiffusionSearcher, tmp_path: Path) -> None:
    path = str(tmp_path / "graph.parquet")
    searched.save(path)
    blank = GraphDiffusionSearcher(constraints=CONSTRAINTS)
    assert blank.model is None and not blank.has_space
    blank.restore(path)
    assert blank.space == searched.space and blank.metric == "acc" and blank.mode == "max"
    assert _rows(blank) == _rows(searched)
    assert blank.trained_on == searched.trained_on and blank._threshold == searched._threshold
    assert blank.stats == searched.stats
    assert blank.model.steps_trained == searched.model.steps_trained
    assert blank.model.config == searched.model.config
    # the latency cost model is refitted from the restored memory (not saved) when first needed
    assert blank._cost_models is None and set(searched._cost_models) == {0}
    blank._predicted_to_meet([NB201Space().sample(np.random.default_rng(0))])
    assert set(blank._cost_models) == {0} and blank._cost_models[0].reports == len(blank._finished())
    ours, theirs = _net_outputs(searched), _net_outputs(blank)
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
    config = blank.suggest("next")
    assert config is not None and isinstance(config, dict)
    key = NB201Space().key(config["arch"])
    assert not searched.memory.has_key(key) and blank.memory.get("next").proposer in ("graph", "neighbour", "fallback")
    blank.on_trial_complete("next", objective(NB201Space().validate(config["arch"])))
    assert blank.memory.get("next").status == "completed"


@pytest.mark.parametrize("constraints", [["latency_ms<=5"], None, ["latency_ms<=3", "params_m<=1"]])
def test_restoring_with_other_constraints_is_refused(
    searched: GraphDiffusionSearcher, tmp_path: Path, constraints
) -> None:
    path = str(tmp_path / "graph.parquet")
    searched.save(path)
    with pytest.raises(ConfigError, match=r"conditions .* differ from the saved ones .*pass the same constraints"):
        GraphDiffusionSearcher(constraints=constraints).restore(path)


# --- a real Tune run ------------------------------------------------------------------------------------------

TUNE_SPACE = UNetSpace(image_size=8, base_channels=(8,), channel_mults=(1, 2), num_res_blocks=(1,))
TINY = {
    "dataset": "digits",
    "max_iterations": 2,
    "steps_per_iteration": 8,
    "rfid_samples": 64,
    "sampler_steps": 2,
    "batch_size": 16,
}


@pytest.mark.slow
def test_tuner_with_graph_searcher_and_asha(ray_session, tmp_path: Path) -> None:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from ray_diffnas import train_diffusion

    searcher = GraphDiffusionSearcher(
        warmup=2, retrain_every=1, train_steps=30, retrain_steps=10, candidates=16, prior_graphs=128, model=SMALL_MODEL
    )
    grid = tune.Tuner(
        train_diffusion,
        param_space=TUNE_SPACE.param_space(**TINY),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=ASHAScheduler(max_t=2, grace_period=1),
            num_samples=5,
            metric="rfid",
            mode="min",
            max_concurrent_trials=2,
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="graph_tuner"),
    ).fit()
    assert not grid.errors and len(grid) == 5
    keys = [TUNE_SPACE.key(result.config["arch"]) for result in grid]
    assert len(set(keys)) == 5
    assert all(math.isfinite(result.metrics["rfid"]) for result in grid)
    memory, state = SearchMemory.load(tmp_path / "graph_tuner" / MEMORY_FILE)
    records = memory.records()
    assert len(records) == 5 and {r.status for r in records} <= {"completed", "stopped"}
    assert {r.arch_key for r in records} == set(keys)
    proposers = [r.proposer for r in records]
    assert proposers[:2] == ["random", "random"] and "graph" in proposers, proposers
    assert state["graph"]["stats"]["trainings"] >= 1 and state["graph"]["model"] is not None
    assert state["space"] == TUNE_SPACE.to_dict()


def test_the_warm_up_draws_new_architectures_in_a_small_space() -> None:
    # The 320-architecture UNet bench space samples two-level UNets half the time (64 of them): plain
    # draws repeat within a few trials, and a repeat ended the search (seed 1 stopped after 4 trials).
    from ray_diffnas.spaces.unet_bench import bench_space

    space = bench_space(8)
    searcher = GraphDiffusionSearcher(space=space, metric="rfid", mode="min", warmup=40, seed=1)
    for i in range(40):
        config = searcher.suggest(f"t{i}")
        assert isinstance(config, dict), f"finished after {i} trials"
        searcher.on_trial_complete(f"t{i}", {"rfid": float(space.validate(config["arch"]).base_channels)})
    assert len(searcher.memory.keys()) == 40
